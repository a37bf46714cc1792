// Descriptor-relative file helpers for the COPY/ADD engine. None follows a symlink in the names
// it is given.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::build {

/// The names in the directory open for reading as `dirfd` (not O_PATH), sorted bytewise, without
/// "." and "..". `where` names the directory in errors. The descriptor's position is consumed.
Result<std::vector<std::string>> list_directory(int dirfd, std::string_view where);

/// Copies the rest of `in` to `out` without holding the file in memory: FICLONE when both are on
/// a filesystem that shares extents, else copy_file_range(2), else read/write through a small
/// buffer (different filesystems on older kernels, or filesystems without the call). Returns the
/// bytes copied. `what` names the file in errors.
Result<std::uint64_t> copy_file_data(int in, int out, std::string_view what);

/// Reads a whole small file (a .dockerignore) from `fd`; fails beyond `limit` bytes.
Result<std::string> read_all(int fd, std::string_view what, std::size_t limit);

/// Removes `name` in `dirfd`: a non-directory is unlinked (a symlink itself, never its target),
/// a directory is emptied first, descending with O_NOFOLLOW. Missing is not an error.
Result<void> remove_tree(int dirfd, const std::string& name, std::string_view where);

/// Extended attributes the destination refused. Refusals never fail a COPY/ADD: BuildKit's
/// file op logs and ignores xattr errors, so minibuild counts them and warns once per step.
struct XattrRefusals {
  std::uint64_t count = 0;
  std::set<std::string> reasons; ///< "security.capability: Operation not permitted"

  void note(std::string_view name, int err);
  void merge(const XattrRefusals& other);
  /// "could not copy N extended attributes (reasons...)", or "" when nothing was refused.
  std::string warning() const;
};

/// Sets one xattr on `fd` (open for reading or writing, not O_PATH). A refusal the destination
/// is entitled to (EPERM, EACCES, ENOTSUP, EINVAL, E2BIG, ENOSPC, ERANGE) is noted in `refused`;
/// any other error fails, naming `what`.
Result<void> set_xattr(int fd, const std::string& name, std::string_view value,
                       std::string_view what, XattrRefusals& refused);

/// Copies every xattr of `in` to `out` (both open, not O_PATH) except host-specific ones. The
/// kernel lists trusted.* only to CAP_SYS_ADMIN, so those travel only as root. Call after the
/// data is written and after any chown: both clear security.capability. A source filesystem
/// without xattrs copies nothing; an unreadable source attribute fails, naming `what`.
Result<void> copy_xattrs(int in, int out, std::string_view what, XattrRefusals& refused);

} // namespace minibuild::build
