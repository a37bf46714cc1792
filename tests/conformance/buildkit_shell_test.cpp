// BuildKit's word-expansion vectors (frontend/dockerfile/shell/envVarTest and wordsTest), read at
// run time from the conformance folder with the field rules of its README and of BuildKit's
// TestShellParser4EnvVars / TestShellParser4Words.
#include "support/conformance.hpp"

#include <minibuild/dockerfile/shell_lexer.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <string_view>
#include <vector>

using namespace minibuild;
using namespace minibuild::dockerfile;

namespace {

std::string shell_dir() {
  return test::conformance_dir() + "/buildkit-shell";
}

/// Lines as Go's bufio.Scanner gives them: split on \n, a trailing \r dropped.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    lines.push_back(line);
  }
  return lines;
}

bool is_go_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string trim_space(std::string_view text) {
  while (!text.empty() && is_go_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_go_space(text.back())) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

std::string trim_left_spaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  return std::string(text);
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  for (;;) {
    const auto at = text.find(separator);
    parts.emplace_back(text.substr(0, at));
    if (at == std::string_view::npos) {
      return parts;
    }
    text.remove_prefix(at + 1);
  }
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

} // namespace

TEST_CASE("BuildKit envVarTest: every A and U vector (ProcessWord)", "[buildkit-shell]") {
  Environment env;
  env.set("PWD", "/home");
  env.set("SHELL", "bash");
  env.set("KOREAN", "한국어");
  env.set("NULL", "");
  const ShellLexer lexer('\\');

  int ran = 0;
  int passed = 0;
  int skipped_windows = 0;
  int line_number = 0;
  for (const std::string& raw : read_lines(shell_dir() + "/envVarTest")) {
    ++line_number;
    if (starts_with(raw, "#")) {
      continue;
    }
    const std::string line = trim_space(raw);
    if (line.empty()) {
      continue;
    }
    const auto fields = split(line, '|');
    INFO("envVarTest:" << line_number << ": " << line);
    REQUIRE(fields.size() == 3);
    const std::string platform = trim_space(fields[0]);
    const std::string input = trim_space(fields[1]);
    const std::string expected = trim_space(fields[2]);
    REQUIRE((platform == "A" || platform == "U" || platform == "W"));
    if (platform == "W") {
      ++skipped_windows; // Windows looks names up case-insensitively; minibuild builds Linux images
      continue;
    }
    ++ran;
    const auto result = lexer.process_word(input, env);
    if (expected == "error") {
      CHECK_FALSE(result);
      if (!result) {
        CHECK(result.error().code() == Code::dockerfile);
        CHECK_FALSE(result.error().location());
        ++passed;
      }
    } else {
      CHECK(result);
      if (result) {
        CHECK(result->word == expected);
        passed += result->word == expected ? 1 : 0;
      } else {
        INFO("error: " << result.error().what());
      }
    }
  }
  CHECK(ran == 228);
  CHECK(passed == ran);
  CHECK(skipped_windows == 2);
}

TEST_CASE("BuildKit wordsTest: every vector (ProcessWords)", "[buildkit-shell]") {
  Environment env;
  const ShellLexer lexer('\\');

  int ran = 0;
  int passed = 0;
  int env_lines = 0;
  int line_number = 0;
  for (const std::string& line : read_lines(shell_dir() + "/wordsTest")) {
    ++line_number;
    if (starts_with(line, "#")) {
      continue;
    }
    if (starts_with(line, "ENV ")) {
      // Everything after "ENV " and its leading spaces, trailing spaces included.
      const std::string assignment = trim_left_spaces(std::string_view(line).substr(3));
      const auto equals = assignment.find('=');
      if (equals == std::string::npos) {
        env.set(assignment, "");
      } else {
        env.set(assignment.substr(0, equals), assignment.substr(equals + 1));
      }
      ++env_lines;
      continue;
    }
    const auto fields = split(line, '|');
    INFO("wordsTest:" << line_number << ": " << line);
    REQUIRE(fields.size() == 2);
    const std::string input = trim_space(fields[0]);
    const std::vector<std::string> expected = split(trim_left_spaces(fields[1]), ',');
    ++ran;
    const auto result = lexer.process_words(input, env);
    const std::vector<std::string> got = result ? result->words : std::vector<std::string>{"error"};
    CHECK(got == expected);
    passed += got == expected ? 1 : 0;
  }
  CHECK(ran == 24);
  CHECK(passed == ran);
  CHECK(env_lines == 4);
}
