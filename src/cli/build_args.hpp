// `--build-arg KEY=VALUE` / `--build-arg KEY` parsing, shared by `build` and `parse`.
#pragma once

#include <minibuild/base/error.hpp>

#include <string>
#include <utility>
#include <vector>

namespace minibuild::cli {

/// Parses build arguments in order. `KEY` alone takes KEY's value from the environment and is
/// dropped when the environment lacks it, as `docker build` does. `getenv` is injected for tests.
/// An empty key or one with a space fails with Code::usage.
Result<std::vector<std::pair<std::string, std::string>>>
parse_build_args(const std::vector<std::string>& args, const char* (*getenv)(const char*));

} // namespace minibuild::cli
