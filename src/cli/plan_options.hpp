// Turning CLI options (--build-arg, --target, --platform) into dockerfile::PlanOptions, shared by
// `build` and `parse --format plan`.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/dockerfile/plan.hpp>

#include <string>
#include <vector>

namespace minibuild::cli {

/// The platform minibuild runs on, from uname(2), normalised ("linux/amd64", "linux/arm64").
dockerfile::Platform host_platform();

/// Builds PlanOptions: build args parsed (KEY from the environment), the target platform from
/// --platform (default: the host's), the build platform = the host's.
Result<dockerfile::PlanOptions> make_plan_options(const std::vector<std::string>& build_args,
                                                  const std::string& target,
                                                  const std::string& platform);

} // namespace minibuild::cli
