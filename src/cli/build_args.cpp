#include "build_args.hpp"

namespace minibuild::cli {

Result<std::vector<std::pair<std::string, std::string>>>
parse_build_args(const std::vector<std::string>& args, const char* (*getenv)(const char*)) {
  std::vector<std::pair<std::string, std::string>> parsed;
  for (const auto& arg : args) {
    size_t equals = arg.find('=');
    std::string key = arg.substr(0, equals);
    if (key.empty() || key.find_first_of(" \t\n") != std::string::npos) {
      return fail(Code::usage, "invalid --build-arg \"" + arg + "\": expected KEY=VALUE or KEY");
    }
    std::string value;
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
    } else {
      const char* from_env = getenv(key.c_str());
      if (from_env == nullptr) {
        continue;
      }
      value = from_env;
    }
    // A later --build-arg for the same key wins, as in docker.
    std::erase_if(parsed, [&](const auto& entry) { return entry.first == key; });
    parsed.emplace_back(std::move(key), std::move(value));
  }
  return parsed;
}

} // namespace minibuild::cli
