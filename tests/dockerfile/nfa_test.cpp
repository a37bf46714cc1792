// The shared Pike VM (src/dockerfile/nfa.hpp) on hand-built programs: leftmost-first priorities,
// the any_match early stop, assertions (also at a search position inside the text) and linear
// time. The compilers that feed it are tested through shell_lexer_test and dockerignore_test.
#include "dockerfile/nfa.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

using namespace minibuild::dockerfile::detail;

namespace {

/// `a*` (greedy when longest, lazy otherwise) followed by `b`: split, rune a, jump, rune b, match.
Program a_star_b(bool longest) {
  Program program;
  program.instructions.push_back({Op::split, 0, longest ? 1U : 3U, longest ? 3U : 1U});
  program.instructions.push_back({Op::rune, 'a'});
  program.instructions.push_back({Op::jump, 0, 0});
  program.instructions.push_back({Op::rune, 'b'});
  program.instructions.push_back({Op::match});
  return program;
}

/// `\bx` : word boundary, then x.
Program boundary_x() {
  Program program;
  program.instructions.push_back({Op::assertion, 0, 0, 0, Assertion::word_boundary});
  program.instructions.push_back({Op::rune, 'x'});
  program.instructions.push_back({Op::match});
  return program;
}

/// `.*?` then match: the lazy star that matches the empty string at once.
Program lazy_any() {
  Program program;
  program.instructions.push_back({Op::split, 0, 3, 1});
  program.instructions.push_back({Op::any_but_newline});
  program.instructions.push_back({Op::jump, 0, 0});
  program.instructions.push_back({Op::match});
  return program;
}

bool same(const std::optional<Span>& span, std::size_t begin, std::size_t end) {
  return span && span->begin == begin && span->end == end;
}

} // namespace

TEST_CASE("nfa: leftmost-first spans follow the split order", "[dockerfile][nfa]") {
  Matcher matcher;
  CHECK(
      same(matcher.find(a_star_b(true), "xxaab", 0, Anchor::anywhere, Want::leftmost_first), 2, 5));
  CHECK(same(matcher.find(a_star_b(false), "xxaab", 0, Anchor::anywhere, Want::leftmost_first), 2,
             5));
  CHECK_FALSE(matcher.find(a_star_b(true), "xxaab", 0, Anchor::start, Want::leftmost_first));
  CHECK(same(matcher.find(a_star_b(true), "xxaab", 2, Anchor::start, Want::leftmost_first), 2, 5));
  CHECK_FALSE(matcher.find(a_star_b(true), "aaa", 0, Anchor::anywhere, Want::leftmost_first));
}

TEST_CASE("nfa: any_match reports whether there is a match", "[dockerfile][nfa]") {
  Matcher matcher;
  CHECK(matcher.find(a_star_b(true), "zzb", 0, Anchor::anywhere, Want::any_match));
  CHECK_FALSE(matcher.find(a_star_b(true), "zza\n", 0, Anchor::anywhere, Want::any_match));
  CHECK(same(matcher.find(lazy_any(), "abc", 1, Anchor::anywhere, Want::any_match), 1, 1));
}

TEST_CASE("nfa: an unanchored search goes on when a start adds no thread", "[dockerfile][nfa]") {
  Matcher matcher;
  // At 0 and 1 the boundary fails (" " then "  "), so no thread runs until position 2.
  CHECK(same(matcher.find(boundary_x(), "  x", 0, Anchor::anywhere, Want::leftmost_first), 2, 3));
  CHECK_FALSE(matcher.find(boundary_x(), "ax", 0, Anchor::anywhere, Want::any_match));
}

TEST_CASE("nfa: assertions see the rune before a search position", "[dockerfile][nfa]") {
  Matcher matcher;
  CHECK_FALSE(matcher.find(boundary_x(), "ax", 1, Anchor::start, Want::leftmost_first));
  CHECK(same(matcher.find(boundary_x(), "-x", 1, Anchor::start, Want::leftmost_first), 1, 2));
  // "é" is two bytes; the rune before byte 2 is a letter, not a word character in Go's ASCII \b.
  CHECK(
      same(matcher.find(boundary_x(), "\xC3\xA9x", 2, Anchor::start, Want::leftmost_first), 2, 3));
  Program begin;
  begin.instructions.push_back({Op::assertion, 0, 0, 0, Assertion::begin_text});
  begin.instructions.push_back({Op::match});
  CHECK(same(matcher.find(begin, "ab", 0, Anchor::anywhere, Want::leftmost_first), 0, 0));
  CHECK_FALSE(matcher.find(begin, "ab", 1, Anchor::anywhere, Want::leftmost_first));
}

TEST_CASE("nfa: a char_class consumes the runes of its class", "[dockerfile][nfa]") {
  Program program;
  program.classes.push_back({{'0', '9'}, {'a', 'f'}});
  program.instructions.push_back({Op::char_class, 0, 0});
  program.instructions.push_back({Op::match});
  Matcher matcher;
  CHECK(same(matcher.find(program, "zz7", 0, Anchor::anywhere, Want::leftmost_first), 2, 3));
  CHECK_FALSE(matcher.find(program, "zzg", 0, Anchor::anywhere, Want::leftmost_first));
  CHECK(class_contains(program.classes[0], 'f'));
  CHECK_FALSE(class_contains(program.classes[0], ':'));
}

TEST_CASE("nfa: one Matcher runs programs of different sizes", "[dockerfile][nfa]") {
  Matcher matcher;
  CHECK(matcher.find(boundary_x(), "x", 0, Anchor::anywhere, Want::any_match));
  CHECK(same(matcher.find(a_star_b(true), "aab", 0, Anchor::start, Want::leftmost_first), 0, 3));
  CHECK(matcher.find(boundary_x(), "x", 0, Anchor::anywhere, Want::any_match));
}

TEST_CASE("nfa: a 1 MB search without a match stays linear", "[dockerfile][nfa]") {
  const std::string text(1 << 20, 'a');
  Matcher matcher;
  // Every position starts a thread and every thread loops on `a`: the dedup keeps the list at
  // program size, so this finishes quickly instead of taking quadratic time.
  CHECK_FALSE(matcher.find(a_star_b(true), text, 0, Anchor::anywhere, Want::leftmost_first));
  CHECK_FALSE(matcher.find(a_star_b(false), text, 0, Anchor::anywhere, Want::any_match));
}
