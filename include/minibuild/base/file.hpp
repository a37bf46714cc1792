// Small whole-file helpers for inputs the user names (Dockerfile, .dockerignore, build-arg files).
// Store and layer code uses the atomic writers and verified readers of their own modules instead.
#pragma once

#include <minibuild/base/error.hpp>

#include <string>

namespace minibuild {

/// Reads a whole regular file into memory. Fails with Code::not_found when it does not exist and
/// Code::io for other errors; the message names the path.
Result<std::string> read_file(const std::string& path);

} // namespace minibuild
