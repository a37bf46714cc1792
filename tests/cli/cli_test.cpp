#include "cli/build_args.hpp"
#include "cli/diagnostics.hpp"
#include "cli/exit_code.hpp"
#include "cli/options.hpp"

#include <catch2/catch.hpp>

#include <cstring>

using namespace minibuild;
using namespace minibuild::cli;

namespace {

const char* fake_getenv(const char* name) {
  return std::strcmp(name, "FROM_ENV") == 0 ? "env value" : nullptr;
}

} // namespace

TEST_CASE("build args: KEY=VALUE, KEY from the environment, last one wins") {
  auto parsed = parse_build_args({"A=1", "B=", "FROM_ENV", "UNSET", "A=2", "C=x=y"}, fake_getenv);
  REQUIRE(parsed);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"B", ""}, {"FROM_ENV", "env value"}, {"A", "2"}, {"C", "x=y"}};
  CHECK(*parsed == expected);
}

TEST_CASE("build args: an empty key or a key with a space is a usage error") {
  for (const char* bad : {"=value", "A B=1", ""}) {
    auto parsed = parse_build_args({bad}, fake_getenv);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::usage);
  }
}

TEST_CASE("store root: option, then root's default, then XDG_DATA_HOME, then HOME") {
  CHECK(resolve_store_root("/opt/store", "/xdg", "/home/u", false) == "/opt/store");
  CHECK(resolve_store_root("", "/xdg", "/home/u", true) == "/var/lib/minibuild");
  CHECK(resolve_store_root("", "/xdg", "/home/u", false) == "/xdg/minibuild");
  CHECK(resolve_store_root("", nullptr, "/home/u", false) == "/home/u/.local/share/minibuild");
  // A relative XDG_DATA_HOME is invalid per the XDG spec and ignored.
  CHECK(resolve_store_root("", "rel", "/home/u", false) == "/home/u/.local/share/minibuild");
}

TEST_CASE("exit codes follow docs/cli.md") {
  CHECK(exit_code_for(Code::build_failed) == 1);
  CHECK(exit_code_for(Code::usage) == 2);
  CHECK(exit_code_for(Code::dockerfile) == 2);
  CHECK(exit_code_for(Code::not_found) == 3);
  CHECK(exit_code_for(Code::io) == 4);
  CHECK(exit_code_for(Code::corrupt) == 4);
  CHECK(exit_code_for(Code::network) == 5);
  CHECK(exit_code_for(Code::auth) == 5);
  CHECK(exit_code_for(Code::sandbox) == 6);
  CHECK(exit_code_for(Code::unsupported) == 7);
  CHECK(exit_code_for(Code::internal) == 70);
  CHECK(exit_code_for(Code::interrupted) == 130);
}

TEST_CASE("diagnostics quote the line and put a caret under the column") {
  Error error(Code::dockerfile, "unknown flag: --chwon");
  error.at({"Dockerfile", 2, 6, 2});
  std::string text = format_error(error, "FROM scratch\r\nCOPY --chwon=1 a /a\r\n");
  CHECK(text == "minibuild: error: Dockerfile:2:6: unknown flag: --chwon\n"
                " 2 | COPY --chwon=1 a /a\n"
                "   |      ^\n");
}

TEST_CASE("diagnostics keep tabs for alignment and hide control characters") {
  Error error(Code::dockerfile, "bad");
  error.at({"Dockerfile", 1, 3, 1});
  CHECK(format_error(error, "\t\x01X") == "minibuild: error: Dockerfile:1:3: bad\n"
                                          " 1 | \t?X\n"
                                          "   | \t ^\n");
}

TEST_CASE("diagnostics without source text or location print one line") {
  Error error(Code::io, "disk full");
  CHECK(format_error(error) == "minibuild: error: disk full\n");
  error.at({"Dockerfile", 99, 1, 99});
  CHECK(format_error(error, "FROM a\n") == "minibuild: error: Dockerfile:99:1: disk full\n");
}

TEST_CASE("very long lines are cut in diagnostics") {
  Error error(Code::dockerfile, "bad");
  error.at({"Dockerfile", 1, 0, 1});
  std::string text = format_error(error, std::string(1 << 20, 'x'));
  CHECK(text.size() < 400);
  CHECK(text.find("...") != std::string::npos);
}

TEST_CASE("warnings name file and line") {
  CHECK(format_warning({"Dockerfile", 7, 0, 7}, "empty continuation line") ==
        "minibuild: warning: Dockerfile:7: empty continuation line\n");
}
