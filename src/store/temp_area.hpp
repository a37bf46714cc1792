// This process's private corner of <root>/tmp (private to src/store).
//
// Each Store gets one session directory, tmp/<pid>-<random>/, created on first use and held
// under an exclusive flock for the Store's lifetime (umoci's dir engine does the same). Every
// temporary file and tree of the session lives there, so "is this leftover still in use?" has
// a simple answer: a session directory that can be flock'ed belongs to a process that is gone.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace minibuild::store {

class TempArea {
public:
  /// The directory under the root that holds all session directories.
  static constexpr std::string_view k_dir = "tmp";

  explicit TempArea(StoreFs& fs) : m_fs(fs) {}
  /// Removes the session directory (best effort: after a simulated crash the StoreFs refuses,
  /// and the leftovers are cleaned later, as after a real one).
  ~TempArea();
  TempArea(const TempArea&) = delete;
  TempArea& operator=(const TempArea&) = delete;

  /// A fresh, unused relative path inside the session directory ("tmp/123-ab…/blob-4"); creates
  /// the session directory on first use. Nothing is created at the returned path. Thread-safe:
  /// this is what lets several threads of one process open blob writers and unpack layers on
  /// one Store at the same time (parallel pulls).
  Result<std::string> new_path(std::string_view prefix);

  /// Removes every entry of tmp/ except live sessions (those whose flock is held, including
  /// this one). Returns the number of entries removed.
  Result<std::size_t> clean_stale();

private:
  Result<void> ensure_session();
  std::string session_path() const;

  mutable std::mutex m_mutex; // guards m_session, m_lock, m_counter

  StoreFs& m_fs;
  std::string m_session; // relative path, empty until first use
  UniqueFd m_lock;
  std::uint64_t m_counter = 0;
};

} // namespace minibuild::store
