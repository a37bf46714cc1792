// Descriptor-relative file helpers for the COPY/ADD engine. None follows a symlink in the names
// it is given.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdint>
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

} // namespace minibuild::build
