// A minimal, deterministic tar writer for the exporters' archives (oci-archive,
// docker-archive): directories and regular files only, ustar headers, owner 0:0, no user or
// group names, one fixed mtime. The layer module has its own writer for layer content (with
// xattrs, links and devices); these archives only ever hold image blobs and small JSON files.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/byte_source.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace minibuild::build {

/// Writes a tar stream to a descriptor it borrows. Entry names are relative paths of at most 99
/// bytes (every name the exporters write is shorter; longer ones are Code::internal). Sizes that
/// do not fit ustar's 11 octal digits (8 GiB and more) use the base-256 encoding GNU tar, Go's
/// archive/tar and libarchive read. Not thread-safe.
class TarWriter {
public:
  /// `fd` is where the archive goes; `display` names it in messages; `mtime` is every entry's
  /// modification time. `seekable` says whether add_stream() may write a placeholder header and
  /// come back to fix its size (a regular file: yes; a pipe: no).
  TarWriter(int fd, std::string display, std::int64_t mtime, bool seekable);

  /// A directory entry, mode 0755. `name` ends with '/'.
  Result<void> add_directory(std::string_view name);
  /// A regular file (mode 0644) holding `content`.
  Result<void> add_file(std::string_view name, std::string_view content);
  /// A regular file (mode 0644) with everything `source` yields, streamed. With `size` known,
  /// a source that yields more or fewer bytes is Code::corrupt (an archive entry cannot change
  /// size after its header). Without it, the writer must be seekable: the header is written
  /// with size 0 and rewritten once the end of the source is reached. Returns the entry size.
  Result<std::uint64_t> add_stream(std::string_view name, oci::ByteSource& source,
                                   std::optional<std::uint64_t> size);
  /// Writes the two zero blocks that end an archive. No entry may be added afterwards.
  Result<void> finish();

  /// Bytes written so far.
  std::uint64_t offset() const { return m_offset; }

private:
  Result<void> write(std::string_view bytes);
  Result<void> write_header(std::string_view name, char type, std::uint64_t size,
                            std::optional<std::uint64_t> at_offset = std::nullopt);
  Result<void> pad(std::uint64_t size);

  int m_fd;
  std::string m_display;
  std::int64_t m_mtime;
  bool m_seekable;
  std::uint64_t m_offset = 0;
  bool m_finished = false;
};

/// A ustar header block for a regular file ('0') or directory ('5') entry, as TarWriter writes
/// it. Exposed for tests.
std::string tar_header(std::string_view name, char type, std::uint64_t size, std::int64_t mtime);

} // namespace minibuild::build
