// Small descriptor-relative filesystem helpers for applying layers. None follows a symlink in
// the names it is given.
#pragma once

#include <minibuild/base/error.hpp>

#include <string>
#include <vector>

namespace minibuild::layer {

/// The names in the directory `dirfd` (an O_PATH descriptor is fine), without "." and "..".
/// `path` is only used in error messages.
Result<std::vector<std::string>> list_directory(int dirfd, const std::string& path);

/// Removes `name` in `dirfd`: unlinks a non-directory (a symlink itself, never its target), or
/// removes a directory with everything below it, descending through descriptors with
/// O_NOFOLLOW. A missing name is not an error. Directories without write permission for their
/// owner are made writable first, so a read-only lower layer can still be replaced.
Result<void> remove_at(int dirfd, const std::string& name, const std::string& path);

} // namespace minibuild::layer
