// Real-world Dockerfiles (../shared/conformance/real-dockerfiles/*/Dockerfile, see its README):
// each must parse, convert to typed instructions and plan with default options, and every named
// stage must plan as a --target. Known exceptions would be listed in k_exceptions with the
// reason; there are none.
#include "support/conformance.hpp"

#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/dockerfile/plan.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::dockerfile;
namespace fs = std::filesystem;

namespace {

// Directory name → why it cannot plan. Empty: every file plans.
const std::map<std::string, std::string> k_exceptions = {};

struct Case {
  std::string name;
  std::string text;
};

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  const fs::path root = fs::path(test::conformance_dir()) / "real-dockerfiles";
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto file = entry.path() / "Dockerfile";
    if (!entry.is_directory() || !fs::is_regular_file(file)) {
      continue;
    }
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    cases.push_back({entry.path().filename().string(), text.str()});
  }
  std::sort(cases.begin(), cases.end(),
            [](const Case& a, const Case& b) { return a.name < b.name; });
  return cases;
}

} // namespace

TEST_CASE("every real-world Dockerfile parses and plans with default options",
          "[real-dockerfiles]") {
  const auto cases = load_cases();
  REQUIRE(cases.size() >= 36);
  int planned = 0;
  int stages = 0;
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    if (k_exceptions.count(c.name) != 0) {
      WARN("skipped " << c.name << ": " << k_exceptions.at(c.name));
      continue;
    }
    auto parsed = parse_dockerfile(c.text, c.name + "/Dockerfile");
    if (!parsed) {
      FAIL_CHECK("parse: " << parsed.error().what());
      continue;
    }
    auto plan = make_plan(*parsed, PlanOptions{});
    if (!plan) {
      FAIL_CHECK("plan: " << plan.error().what());
      continue;
    }
    CHECK_FALSE(plan->stages.empty());
    CHECK(plan->stages.back().index == plan->target);
    CHECK(plan->target == plan->stage_count - 1);
    // Every dependency builds and comes before its dependant.
    for (const auto& stage : plan->stages) {
      for (int dep : stage.depends_on) {
        CHECK(dep < stage.index);
        CHECK(plan->stage(dep) != nullptr);
      }
    }
    ++planned;
    stages += plan->stage_count;
  }
  CHECK(planned + static_cast<int>(k_exceptions.size()) == static_cast<int>(cases.size()));
  WARN("real-dockerfiles: " << planned << " of " << cases.size() << " planned, " << stages
                            << " stages in all");
}

TEST_CASE("every named stage of the real-world Dockerfiles plans as --target",
          "[real-dockerfiles]") {
  int targets = 0;
  for (const auto& c : load_cases()) {
    if (k_exceptions.count(c.name) != 0) {
      continue;
    }
    auto parsed = parse_dockerfile(c.text, c.name + "/Dockerfile");
    REQUIRE(parsed);
    std::vector<std::string> names;
    for (const auto& node : parsed->instructions) {
      if (node.keyword == "from" && node.args.size() == 3) {
        std::string name = node.args[2];
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        names.push_back(name);
      }
    }
    for (const auto& name : names) {
      INFO("case: " << c.name << ", target: " << name);
      PlanOptions options;
      options.target = name;
      auto plan = make_plan(*parsed, options);
      if (!plan) {
        FAIL_CHECK("plan: " << plan.error().what());
        continue;
      }
      REQUIRE_FALSE(plan->stages.empty());
      CHECK(plan->stages.back().name == name);
      ++targets;
    }
  }
  WARN("real-dockerfiles: " << targets << " named stages planned as --target");
}

TEST_CASE("plans of the real-world Dockerfiles dump the same bytes twice", "[real-dockerfiles]") {
  for (const auto& c : load_cases()) {
    if (k_exceptions.count(c.name) != 0) {
      continue;
    }
    INFO("case: " << c.name);
    auto parsed = parse_dockerfile(c.text, c.name + "/Dockerfile");
    REQUIRE(parsed);
    PlanOptions options;
    options.build_args = {{"HTTP_PROXY", "http://proxy:3128"}, {"UNUSED_ARG", "1"}};
    auto first = make_plan(*parsed, options);
    auto second = make_plan(*parsed, options);
    REQUIRE(first);
    REQUIRE(second);
    CHECK(dump_plan(*first) == dump_plan(*second));
    // An argument nothing declares is always reported.
    const auto& warnings = first->warnings;
    CHECK(std::any_of(warnings.begin(), warnings.end(), [](const Warning& warning) {
      return warning.message == "One or more build-args [UNUSED_ARG] were not consumed";
    }));
  }
}

TEST_CASE("heredoc sources and ONBUILD triggers of the real-world Dockerfiles are typed",
          "[real-dockerfiles]") {
  int inline_sources = 0;
  int triggers = 0;
  for (const auto& c : load_cases()) {
    INFO("case: " << c.name);
    auto parsed = parse_dockerfile(c.text, c.name + "/Dockerfile");
    REQUIRE(parsed);
    for (const auto& node : parsed->instructions) {
      auto instruction = parse_instruction(node, c.name + "/Dockerfile");
      REQUIRE(instruction);
      const auto check_inline = [&](const std::vector<InlineSource>& sources) {
        for (const auto& source : sources) {
          INFO("heredoc " << source.name << " on line " << node.start_line);
          CHECK_FALSE(source.content.empty()); // the body was found by its delimiter
          ++inline_sources;
        }
      };
      if (instruction->kind() == InstructionKind::copy) {
        check_inline(instruction->as<CopyInstruction>().inline_sources);
      } else if (instruction->kind() == InstructionKind::add) {
        check_inline(instruction->as<AddInstruction>().inline_sources);
      } else if (instruction->kind() == InstructionKind::onbuild) {
        const auto& onbuild = instruction->as<OnbuildInstruction>();
        CHECK_FALSE(onbuild.expression.empty());
        CHECK(instruction_kind(onbuild.trigger.keyword).has_value());
        ++triggers;
      }
    }
  }
  CHECK(inline_sources > 0);
  CHECK(triggers > 0);
  WARN("real-dockerfiles: " << inline_sources << " COPY/ADD heredoc sources, " << triggers
                            << " ONBUILD triggers");
}

TEST_CASE("every instruction of the real-world Dockerfiles expands in its stage's scope",
          "[real-dockerfiles]") {
  int expanded = 0;
  for (const auto& c : load_cases()) {
    INFO("case: " << c.name);
    auto parsed = parse_dockerfile(c.text, c.name + "/Dockerfile");
    REQUIRE(parsed);
    auto plan = make_plan(*parsed, PlanOptions{});
    REQUIRE(plan);
    const ShellLexer lexer(parsed->directives.escape);
    for (const auto& stage : plan->stages) {
      // What the executor will do: carry the scope through the stage, expand each instruction.
      StageScope scope = stage.initial_scope;
      for (const auto& instruction : stage.instructions) {
        INFO("line " << instruction.location.line << ": " << instruction.original);
        auto result = expand_instruction(instruction, scope.expansion_environment(), lexer);
        if (!result) {
          FAIL_CHECK("expand: " << result.error().what());
          continue;
        }
        ++expanded;
        if (instruction.kind() == InstructionKind::arg) {
          REQUIRE(apply_arg(scope, instruction, plan->global_args, plan->build_args, lexer));
        } else if (instruction.kind() == InstructionKind::env) {
          REQUIRE(apply_env(scope, instruction, lexer));
        } else if (instruction.kind() == InstructionKind::run) {
          for (const auto& mount : result->as<RunInstruction>().mounts) {
            CHECK(mount.resolved);
          }
        }
      }
    }
  }
  WARN("real-dockerfiles: " << expanded << " instructions expanded");
}
