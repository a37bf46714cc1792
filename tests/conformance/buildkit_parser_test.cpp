// BuildKit's own parser test vectors (../shared/conformance/buildkit-parser, see its README):
// every positive case must dump byte for byte like BuildKit's Node.Dump(), every negative case
// must fail, and testfile-line must carry BuildKit's line ranges.
#include "support/conformance.hpp"

#include <minibuild/dockerfile/parser.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using minibuild::Code;
using minibuild::dockerfile::dump_buildkit;
using minibuild::dockerfile::parse_dockerfile;

namespace {

fs::path suite_dir() {
  return fs::path(minibuild::test::conformance_dir()) / "buildkit-parser";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Case directories of one kind, sorted so failures are reported in a stable order.
std::vector<fs::path> cases(bool with_result) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(suite_dir())) {
    if (!entry.is_directory() || entry.path().filename() == "testfile-line") {
      continue;
    }
    if (fs::exists(entry.path() / "result") == with_result) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("every positive BuildKit parser case dumps exactly like BuildKit", "[buildkit-parser]") {
  const auto positive = cases(true);
  REQUIRE(positive.size() == 33);
  for (const fs::path& dir : positive) {
    INFO("case " << dir.filename().string());
    auto parsed = parse_dockerfile(read_file(dir / "Dockerfile"), "Dockerfile");
    REQUIRE(parsed);
    CHECK(dump_buildkit(*parsed) == read_file(dir / "result"));
  }
}

TEST_CASE("every negative BuildKit parser case fails with a Dockerfile error",
          "[buildkit-parser]") {
  const auto negative = cases(false);
  REQUIRE(negative.size() == 4);
  for (const fs::path& dir : negative) {
    INFO("case " << dir.filename().string());
    auto parsed = parse_dockerfile(read_file(dir / "Dockerfile"), "Dockerfile");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::dockerfile);
    REQUIRE(parsed.error().location());
    CHECK(parsed.error().location()->file == "Dockerfile");
  }
}

TEST_CASE("negative cases fail for BuildKit's reasons", "[buildkit-parser]") {
  const auto message = [](const char* name) {
    auto parsed = parse_dockerfile(read_file(suite_dir() / name / "Dockerfile"), "Dockerfile");
    REQUIRE_FALSE(parsed);
    return parsed.error().message();
  };
  CHECK(message("empty_dockerfile") == "file with no instructions");
  CHECK(message("only_comments") == "file with no instructions");
  CHECK(message("env_no_value") == "ENV must have two arguments");
  CHECK(message("shykes-nested-json") ==
        "when using JSON array syntax, arrays must be comprised of strings only");
}

TEST_CASE("testfile-line carries BuildKit's line ranges", "[buildkit-parser]") {
  auto parsed =
      parse_dockerfile(read_file(suite_dir() / "testfile-line" / "Dockerfile"), "Dockerfile");
  REQUIRE(parsed);
  const auto& nodes = parsed->instructions;
  REQUIRE(nodes.size() == 3);
  CHECK(nodes.front().start_line == 5);
  CHECK(nodes.back().end_line == 31);
  CHECK(nodes[0].start_line == 5);
  CHECK(nodes[0].end_line == 5);
  CHECK(nodes[1].start_line == 11);
  CHECK(nodes[1].end_line == 12);
  CHECK(nodes[2].start_line == 17);
  CHECK(nodes[2].end_line == 31);
  // `# ESCAPE=\` is a directive even in upper case, so it does not count as an instruction.
  CHECK(parsed->directives.escape == '\\');
  // The RUN has blank lines inside its continuation.
  REQUIRE(parsed->warnings.size() == 1);
  CHECK(parsed->warnings[0].location.line == 19);
}

TEST_CASE("the escapes and continueIndent cases warn about empty continuation lines",
          "[buildkit-parser]") {
  for (const char* name : {"escapes", "continueIndent"}) {
    INFO("case " << name);
    auto parsed = parse_dockerfile(read_file(suite_dir() / name / "Dockerfile"), "Dockerfile");
    REQUIRE(parsed);
    REQUIRE_FALSE(parsed->warnings.empty());
    CHECK(parsed->warnings[0].message.find("empty continuation line") != std::string::npos);
  }
}
