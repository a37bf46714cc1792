#include "plan_options.hpp"

#include "build_args.hpp"

#include <cstdlib>
#include <sys/utsname.h>

namespace minibuild::cli {

dockerfile::Platform host_platform() {
  dockerfile::Platform platform;
  struct utsname name {};
  if (::uname(&name) == 0) {
    // parse_platform normalises kernel names (x86_64 → amd64, aarch64 → arm64).
    auto parsed = dockerfile::parse_platform(std::string("linux/") + name.machine, platform);
    if (parsed) {
      return *parsed;
    }
  }
  return platform;
}

Result<dockerfile::PlanOptions> make_plan_options(const std::vector<std::string>& build_args,
                                                  const std::string& target,
                                                  const std::string& platform) {
  dockerfile::PlanOptions options;
  MB_TRY_ASSIGN(auto parsed_args, parse_build_args(build_args, [](const char* name) {
                  return static_cast<const char*>(std::getenv(name));
                }));
  for (auto& [key, value] : parsed_args) {
    options.build_args[key] = value;
  }
  options.target = target;
  options.build_platform = host_platform();
  options.target_platform = options.build_platform;
  if (!platform.empty()) {
    auto parsed = dockerfile::parse_platform(platform, options.build_platform);
    if (!parsed) {
      return fail(Code::usage, "invalid --platform \"" + platform + "\": " + parsed.error().what());
    }
    options.target_platform = *parsed;
  }
  return options;
}

} // namespace minibuild::cli
