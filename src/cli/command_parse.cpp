// `minibuild parse`: prints a Dockerfile as BuildKit's AST dump, as JSON, or as a build plan.
#include "commands.hpp"
#include "diagnostics.hpp"
#include "plan_options.hpp"

#include <minibuild/dockerfile/parser.hpp>

#include <cstdio>

namespace minibuild::cli {

Result<void> run_parse(Context& context, const ParseOptions& options) {
  std::string display_name = options.dockerfile == "-" ? "<stdin>" : options.dockerfile;
  MB_TRY_ASSIGN(std::string text, context.read_user_file(options.dockerfile, display_name));
  MB_TRY_ASSIGN(auto parsed, dockerfile::parse_dockerfile(text, display_name));
  for (const auto& warning : parsed.warnings) {
    std::fputs(format_warning(warning.location, warning.message).c_str(), stderr);
  }
  std::string out;
  if (options.format == "json") {
    out = dockerfile::dump_json(parsed);
  } else if (options.format == "buildkit") {
    out = dockerfile::dump_buildkit(parsed);
  } else {
    MB_TRY_ASSIGN(auto plan_options,
                  make_plan_options(options.build_args, options.target, options.platform));
    // The plan repeats the parser's warnings after its own checks; print only the new ones.
    parsed.warnings.clear();
    MB_TRY_ASSIGN(auto plan, dockerfile::make_plan(parsed, plan_options));
    for (const auto& warning : plan.warnings) {
      std::fputs(format_warning(warning.location, warning.message).c_str(), stderr);
    }
    out = dockerfile::dump_plan(plan);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return {};
}

} // namespace minibuild::cli
