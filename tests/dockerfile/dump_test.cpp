// The two dumps of a parsed Dockerfile: BuildKit's S-expressions (Go quoting rules) and
// minibuild's JSON; plus the golden files under tests/data/parser*.
//
// Golden files: tests/data/parser/<case>/Dockerfile must parse and dump_json() must equal
// `expected`; tests/data/parser-negative/<case>/Dockerfile must fail with a Dockerfile error and
// the message in `expected_error`. Set MINIBUILD_UPDATE_GOLDEN=1 to rewrite the expected files
// (then review the diff).
#include <minibuild/dockerfile/parser.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using minibuild::Code;
using minibuild::dockerfile::dump_buildkit;
using minibuild::dockerfile::dump_json;
using minibuild::dockerfile::Node;
using minibuild::dockerfile::parse_dockerfile;
using minibuild::dockerfile::ParsedDockerfile;

namespace {

/// One instruction with the given arguments, dumped the BuildKit way (without the parentheses
/// and newline).
std::string dump_args(std::vector<std::string> args, std::vector<std::string> flags = {}) {
  ParsedDockerfile parsed;
  Node node;
  node.keyword = "cmd";
  node.args = std::move(args);
  node.flags = std::move(flags);
  parsed.instructions.push_back(node);
  const std::string out = dump_buildkit(parsed);
  REQUIRE(out.size() >= 3);
  return out.substr(1, out.size() - 3);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

bool update_golden() {
  const char* flag = std::getenv("MINIBUILD_UPDATE_GOLDEN");
  return flag != nullptr && std::string(flag) == "1";
}

std::vector<fs::path> case_dirs(const fs::path& root) {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) {
      dirs.push_back(entry.path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

} // namespace

TEST_CASE("dump_buildkit quotes arguments like Go's strconv.Quote", "[dockerfile][dump]") {
  SECTION("quote, backslash and the named control escapes") {
    CHECK(dump_args({"a\"b\\c"}) == R"(cmd "a\"b\\c")");
    CHECK(dump_args({"\a\b\f\n\r\t\v"}) == R"(cmd "\a\b\f\n\r\t\v")");
  }
  SECTION("other C0 controls and DEL use \\x") {
    CHECK(dump_args({std::string("\0\x01\x1f\x7f", 4)}) == R"(cmd "\x00\x01\x1f\x7f")");
  }
  SECTION("printable non-ASCII stays literal") {
    CHECK(dump_args({"\xE2\x98\x83 \xE2\x99\xA5 \xC3\xA9 \xF0\x9F\x98\x80"}) ==
          "cmd \"\xE2\x98\x83 \xE2\x99\xA5 \xC3\xA9 \xF0\x9F\x98\x80\"");
    CHECK(dump_args({"\xEF\xBF\xBD"}) == "cmd \"\xEF\xBF\xBD\""); // a real U+FFFD is printable
  }
  SECTION("unprintable runes use \\u or \\U") {
    CHECK(dump_args({"\xC2\xA0"}) == R"(cmd "\u00a0")");             // no-break space
    CHECK(dump_args({"\xC2\x85"}) == R"(cmd "\u0085")");             // next line (C1 control)
    CHECK(dump_args({"\xE2\x80\x8B"}) == R"(cmd "\u200b")");         // zero-width space (Cf)
    CHECK(dump_args({"\xEF\xBB\xBF"}) == R"(cmd "\ufeff")");         // BOM inside an argument
    CHECK(dump_args({"\xEE\x80\x80"}) == R"(cmd "\ue000")");         // private use
    CHECK(dump_args({"\xF3\xB0\x80\x80"}) == R"(cmd "\U000f0000")"); // plane-15 private use
    CHECK(dump_args({"\xE2\x80\xA8"}) == R"(cmd "\u2028")");         // line separator
  }
  SECTION("bytes that are not UTF-8 use \\x, one per byte") {
    CHECK(dump_args({"\xff\xfe"}) == R"(cmd "\xff\xfe")");
    CHECK(dump_args({"\xC0\x80"}) == R"(cmd "\xc0\x80")");                 // overlong NUL
    CHECK(dump_args({"\xED\xA0\x80"}) == R"(cmd "\xed\xa0\x80")");         // encoded surrogate
    CHECK(dump_args({"\xE2\x98"}) == R"(cmd "\xe2\x98")");                 // truncated sequence
    CHECK(dump_args({"\xF4\x90\x80\x80"}) == R"(cmd "\xf4\x90\x80\x80")"); // above U+10FFFF
  }
  SECTION("flags print as Go's %q of a []string") {
    CHECK(dump_args({"x"}, {"--a=1", "--b=\"q\""}) == R"(cmd ["--a=1" "--b=\"q\""] "x")");
  }
}

TEST_CASE("dump_buildkit prints one line per instruction", "[dockerfile][dump]") {
  auto parsed = parse_dockerfile("FROM a\nonbuild --f RUN --m=1 [\"x\"]\nCMD\nFOO bar\n", "D");
  REQUIRE(parsed);
  CHECK(dump_buildkit(*parsed) ==
        "(from \"a\")\n(onbuild [\"--f\"] (run [\"--m=1\"] \"x\"))\n(cmd)\n(foo \"\")\n");
}

TEST_CASE("an instruction made only of continuations dumps as BuildKit's (\"\")",
          "[dockerfile][dump]") {
  auto parsed = parse_dockerfile("FROM a\n\\\n  \\\n", "D");
  REQUIRE(parsed);
  REQUIRE(parsed->instructions.size() == 2);
  CHECK(parsed->instructions[1].keyword.empty());
  CHECK(dump_buildkit(*parsed) == "(from \"a\")\n(\"\")\n");
}

TEST_CASE("dump_json has the documented shape", "[dockerfile][dump]") {
  auto parsed = parse_dockerfile("# syntax=x/y\nFROM a\nRUN <<-EOF\n\thi\n\tEOF\n"
                                 "ONBUILD RUN [\"a\"]\nCMD [oops\n",
                                 "Dockerfile");
  REQUIRE(parsed);
  const std::string text = dump_json(*parsed);
  CHECK(text.back() == '\n');
  const auto doc = nlohmann::json::parse(text);
  CHECK(doc["file"] == "Dockerfile");
  CHECK(doc["directives"] ==
        nlohmann::json({{"escape", "\\"}, {"syntax", "x/y"}, {"check", nullptr}}));
  REQUIRE(doc["instructions"].size() == 4);

  const auto& run = doc["instructions"][1];
  CHECK(run["keyword"] == "run");
  CHECK(run["original"] == "RUN <<-EOF");
  CHECK(run["args"] == nlohmann::json::array({"<<-EOF"}));
  CHECK(run["flags"] == nlohmann::json::array());
  CHECK(run["json_form"] == false);
  CHECK(run["nested"].is_null());
  CHECK(run["start_line"] == 3);
  CHECK(run["end_line"] == 3);
  REQUIRE(run["heredocs"].size() == 1);
  CHECK(run["heredocs"][0] == nlohmann::json({{"name", "EOF"},
                                              {"content", "hi\n"},
                                              {"expand", true},
                                              {"chomp", true},
                                              {"fd", nullptr},
                                              {"start_line", 4},
                                              {"end_line", 5}}));

  const auto& onbuild = doc["instructions"][2];
  CHECK(onbuild["args"] == nlohmann::json::array());
  CHECK(onbuild["nested"]["keyword"] == "run");
  CHECK(onbuild["nested"]["json_form"] == true);
  CHECK(onbuild["nested"]["args"] == nlohmann::json::array({"a"}));

  REQUIRE(doc["warnings"].size() == 1);
  CHECK(doc["warnings"][0]["line"] == 7);
  CHECK(doc["warnings"][0]["end_line"] == 7);
  CHECK(doc["warnings"][0]["column"] == 0);
  CHECK(doc["warnings"][0]["message"].get<std::string>().find("not valid JSON") !=
        std::string::npos);
}

TEST_CASE("dump_json sorts keys, is stable and survives bytes that are not UTF-8",
          "[dockerfile][dump]") {
  auto parsed = parse_dockerfile("FROM a\xff\nRUN b\n", "D");
  REQUIRE(parsed);
  const std::string first = dump_json(*parsed);
  CHECK(first == dump_json(*parsed));
  CHECK(first.find("\"a\xEF\xBF\xBD\"") != std::string::npos); // U+FFFD replaces the 0xFF byte
  CHECK(first.find("\"directives\"") < first.find("\"file\""));
  CHECK(first.find("\"file\"") < first.find("\"instructions\""));
  CHECK(first.find("\"instructions\"") < first.find("\"warnings\""));
  CHECK(first.find("\"args\"") < first.find("\"end_line\""));
  CHECK_NOTHROW(nlohmann::json::parse(first));
}

TEST_CASE("golden parser cases dump as expected", "[dockerfile][dump][golden]") {
  const fs::path root = fs::path(MINIBUILD_TEST_DATA_DIR) / "parser";
  const auto dirs = case_dirs(root);
  REQUIRE(dirs.size() >= 5);
  for (const fs::path& dir : dirs) {
    INFO("case " << dir.filename().string());
    auto parsed = parse_dockerfile(read_file(dir / "Dockerfile"), "Dockerfile");
    REQUIRE(parsed);
    const std::string actual = dump_json(*parsed);
    if (update_golden()) {
      write_file(dir / "expected", actual);
    }
    CHECK(actual == read_file(dir / "expected"));
  }
}

TEST_CASE("golden negative parser cases fail as expected", "[dockerfile][dump][golden]") {
  const fs::path root = fs::path(MINIBUILD_TEST_DATA_DIR) / "parser-negative";
  const auto dirs = case_dirs(root);
  REQUIRE(dirs.size() >= 5);
  for (const fs::path& dir : dirs) {
    INFO("case " << dir.filename().string());
    auto parsed = parse_dockerfile(read_file(dir / "Dockerfile"), "Dockerfile");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::dockerfile);
    const std::string actual = parsed.error().what() + "\n";
    if (update_golden()) {
      write_file(dir / "expected_error", actual);
    }
    CHECK(actual == read_file(dir / "expected_error"));
  }
}
