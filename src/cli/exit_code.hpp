// The mapping from error Code to process exit code: the only place it is decided.
// Documented in docs/cli.md; a change here changes that table too.
#pragma once

#include <minibuild/base/error.hpp>

namespace minibuild::cli {

inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_usage = 2;

int exit_code_for(Code code);

} // namespace minibuild::cli
