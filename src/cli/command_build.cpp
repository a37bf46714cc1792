// `minibuild build`: Dockerfile → plan → (later issues) execution and outputs.
#include "commands.hpp"
#include "diagnostics.hpp"
#include "plan_options.hpp"

#include <minibuild/dockerfile/parser.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace minibuild::cli {

namespace {

// Docker resolves -f relative to the working directory and defaults to CONTEXT/Dockerfile;
// buildah and podman also accept CONTEXT/Containerfile, so do we when there is no Dockerfile.
std::string dockerfile_path(const BuildOptions& options) {
  if (!options.dockerfile.empty()) {
    return options.dockerfile;
  }
  std::filesystem::path context(options.context);
  if (!std::filesystem::exists(context / "Dockerfile") &&
      std::filesystem::exists(context / "Containerfile")) {
    return (context / "Containerfile").string();
  }
  return (context / "Dockerfile").string();
}

} // namespace

Result<void> run_build(Context& context, const BuildOptions& options) {
  if (!std::filesystem::is_directory(options.context)) {
    return fail(Code::not_found, "build context \"" + options.context + "\" is not a directory");
  }
  std::string path = dockerfile_path(options);
  std::string display_name = path == "-" ? "<stdin>" : path;
  MB_TRY_ASSIGN(std::string text, context.read_user_file(path, display_name));
  MB_TRY_ASSIGN(auto plan_options,
                make_plan_options(options.build_args, options.target, options.platform));
  MB_TRY_ASSIGN(auto parsed, dockerfile::parse_dockerfile(text, display_name));
  MB_TRY_ASSIGN(auto plan, dockerfile::make_plan(parsed, plan_options));
  for (const auto& warning : plan.warnings) {
    std::fputs(format_warning(warning.location, warning.message).c_str(), stderr);
  }
  return fail(Code::unsupported,
              "building images is not implemented in this version: the Dockerfile was parsed "
              "and planned; image output comes next");
}

} // namespace minibuild::cli
