// File helpers of the exporters: atomic files created next to their destination, and writes to
// a descriptor that may be a file or standard output.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace minibuild::build {

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR. `what` names the file.
Result<void> write_all(int fd, std::span<const char> bytes, std::string_view what);

/// Opens (O_DIRECTORY|O_CLOEXEC) the directory `path`, relative to `dir_fd` (AT_FDCWD for the
/// working directory). `display` is the absolute-ish path used in messages.
Result<UniqueFd> open_directory(int dir_fd, const std::string& path, std::string_view display);

/// A new file under a temporary name, renamed to its final name only by commit() (STYLE.md
/// habit 12). The temporary file lives in `temp_dir_fd`, which must be on the same filesystem as
/// the final directory; its name starts with ".minibuild-" and ends with ".tmp" so a leftover
/// from a killed process is recognisable. Destroying an uncommitted AtomicFile unlinks it.
/// Move-only; not thread-safe.
class AtomicFile {
public:
  /// Creates the temporary file (O_CREAT|O_EXCL, mode 0666 & ~umask). `temp_dir_fd` is borrowed
  /// and must stay open until commit() or destruction; `temp_dir` names it in messages.
  static Result<AtomicFile> create(int temp_dir_fd, std::string temp_dir);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  int fd() const { return m_fd.get(); }
  /// Path of the temporary file, for messages.
  std::string temp_path() const { return m_temp_dir + "/" + m_name; }

  Result<void> write(std::string_view bytes) {
    return write_all(fd(), {bytes.data(), bytes.size()}, temp_path());
  }

  /// fsync's the file, renames it to `name` in `dir_fd` (replacing what is there), and fsync's
  /// that directory so the rename is durable. `dir` names that directory in messages.
  Result<void> commit(int dir_fd, const std::string& dir, const std::string& name);

private:
  AtomicFile(int temp_dir_fd, std::string temp_dir, std::string name, UniqueFd fd)
      : m_temp_dir_fd(temp_dir_fd), m_temp_dir(std::move(temp_dir)), m_name(std::move(name)),
        m_fd(std::move(fd)) {}

  int m_temp_dir_fd = -1;
  std::string m_temp_dir;
  std::string m_name;
  UniqueFd m_fd;
  bool m_committed = false;
};

/// Where an archive goes: a file written atomically (a temporary file in the destination's
/// directory, renamed over `dest` by commit()), or standard output for "-". The parent directory
/// must exist (Code::not_found); a `dest` that is a directory is Code::usage.
class ArchiveDestination {
public:
  static Result<ArchiveDestination> open(const std::string& dest);

  int fd() const { return m_file ? m_file->fd() : 1; }
  /// Whether the archive may be written out of order (pwrite): only for the temporary file.
  bool seekable() const { return m_file.has_value(); }
  /// The destination, for messages ("-" is "standard output").
  const std::string& display() const { return m_display; }
  /// Makes the archive visible under its name (fsync + rename + directory fsync); for standard
  /// output, nothing. Without commit() the temporary file is removed.
  Result<void> commit();

private:
  ArchiveDestination() = default;

  std::string m_display;
  std::string m_dir;
  std::string m_name;
  UniqueFd m_dir_fd;
  std::optional<AtomicFile> m_file;
};

/// Splits a destination path into its directory ("." when none) and its last component.
std::pair<std::string, std::string> split_destination(const std::string& path);

} // namespace minibuild::build
