// The stat cache: file digests of a build context, reused while a file's stat is unchanged, so an
// unchanged 20,000-file context is digested from stat(2) alone (docs/cache.md).
//
// One file per context root: `<store root>/cache/stat/<sha256 of the context's absolute path>.bin`
// (file_for()). It maps a path relative to the context root to the stat fields it had when it
// was hashed (st_dev, st_ino, size, mtime and ctime in nanoseconds) and the digests read then.
// An entry is trusted only when every field still matches. ctime cannot be set by a user and
// changes on every write, chmod, rename into place or xattr change, so it catches a rewrite that
// keeps size and mtime (touch -r, or two writes within one mtime tick).
//
// The racy-git problem: a file hashed and then written again within the same timestamp granule
// would keep its stat and wrongly keep its digest. record() therefore refuses files whose mtime
// or ctime is less than k_racy_window before the build started (`build_start_ns`): they are
// hashed again next time, and cached once they have been quiet for that long.
//
// Format (version 1, little-endian): the line "minibuild-stat-cache 1\n", a u64 entry count,
// the entries (u32 path length, path, u64 dev, ino, size, i64 mtime_ns, ctime_ns, u8 age, u8
// has_xattrs, 32 bytes content sha256, [32 bytes xattr sha256]) and the sha256 of everything
// before it. A file that is truncated, corrupt or of another version loads as empty: it is only
// a cache. Entries unused for k_max_age saves are dropped, so renamed files do not pile up.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unordered_map>

namespace minibuild::store {

/// What a regular file contributes to a cache key besides its stat.
struct FileDigests {
  oci::Digest content; ///< sha256 of the data
  oci::Digest xattrs;  ///< sha256 of the image xattrs; empty when the file has none
};

/// Files changed less than this before the build started are not cached (see above).
inline constexpr std::int64_t k_racy_window_ns = 2'000'000'000;
/// Saves an unused entry survives.
inline constexpr std::uint8_t k_max_age = 8;

/// One context's stat cache, loaded once per build and saved at its end. Not thread-safe; two
/// builds of one context may run at once (each saves atomically; the last save wins).
class StatCache {
public:
  /// `<store_root>/cache/stat/<hex sha256 of the absolute context path>.bin`.
  static std::string file_for(const std::string& store_root, const std::string& context_dir);

  /// Loads `file` (missing, corrupt or foreign: an empty cache). `build_start_ns` is the wall
  /// clock (CLOCK_REALTIME) when the build started. Fails only when `file` exists and cannot be
  /// read (Code::io, naming it).
  static Result<StatCache> load(std::string file, std::int64_t build_start_ns);

  /// The digests recorded for `rel` when all of `st`'s fields match; marks the entry used.
  std::optional<FileDigests> lookup(const std::string& rel, const struct stat& st);
  /// Records the digests of `rel` read while it had stat `st`. Returns false (and records
  /// nothing) for a racily clean file (see above).
  bool record(const std::string& rel, const struct stat& st, const FileDigests& digests);

  /// Writes the cache back when anything changed (an entry recorded or removed, an entry
  /// unused since the last save ages by one): temp file in the same directory, fsync,
  /// rename, fsync of the directory (atomic: readers see the old or the new file). Creates the
  /// directory. A second save without lookups in between does nothing.
  Result<void> save();

  const std::string& file() const { return m_file; }
  std::size_t size() const { return m_entries.size(); }
  std::uint64_t hits() const { return m_hits; }
  std::uint64_t racy() const { return m_racy; } ///< record() calls refused as racy

private:
  struct Entry {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    std::uint8_t age = 0;
    bool used = false;
    FileDigests digests;
  };

  StatCache(std::string file, std::int64_t build_start_ns)
      : m_file(std::move(file)), m_build_start_ns(build_start_ns) {}

  std::string m_file;
  std::int64_t m_build_start_ns = 0;
  std::unordered_map<std::string, Entry> m_entries;
  bool m_dirty = false;  ///< an entry was added or removed
  bool m_pending = true; ///< looked up or recorded since loading or the last save
  std::uint64_t m_hits = 0;
  std::uint64_t m_racy = 0;
};

} // namespace minibuild::store
