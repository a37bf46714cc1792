// A Thompson NFA and its Pike-VM simulation, shared by the two regular-expression users of the
// Dockerfile front end: the shell-pattern expansions of shell_lexer.cpp (${v#pat}, ${v/pat/r})
// and the .dockerignore regexps of dockerignore.cpp. Each file keeps its own compiler (glob or Go
// regexp syntax to Program); this file only runs programs.
//
// Matching follows Go's regexp: threads are kept in priority order (a split's first branch before
// its second, an earlier start before a later one), the first thread to reach `match` wins over
// every thread after it (leftmost-first), and no pc is added twice for one position, which keeps
// a search linear in the text length. Private to the dockerfile module.
#pragma once

#include "go_unicode.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace minibuild::dockerfile::detail {

/// An inclusive range of code points.
struct RuneRange {
  Rune lo;
  Rune hi;
};
/// A character class: ranges sorted by lo, disjoint and not adjacent (as a compiler builds them),
/// so a lookup can binary-search.
using RuneClass = std::vector<RuneRange>;

/// Whether `rune` lies in one of the ranges of a normalized class.
bool class_contains(const RuneClass& ranges, Rune rune);

/// Zero-width conditions, as Go's regexp defines them (\A or ^ without (?m), \z or $ without
/// (?m), \b, \B; a word character is ASCII [0-9A-Za-z_]).
enum class Assertion : std::uint8_t { begin_text, end_text, word_boundary, not_word_boundary };

enum class Op : std::uint8_t {
  rune,            ///< consumes `rune`
  any_but_newline, ///< consumes any rune except '\n' (Go's `.` without the s flag)
  char_class,      ///< consumes a rune in Program::classes[x]
  assertion,       ///< continues to pc + 1 when `assertion` holds at the current position
  split,           ///< continues to x (preferred), then to y
  jump,            ///< continues to x
  match,           ///< the program has matched
};

struct Instruction {
  Op op;
  Rune rune = 0;
  std::uint32_t x = 0; ///< split: preferred branch; jump: target; char_class: class index
  std::uint32_t y = 0; ///< split: other branch
  Assertion assertion = Assertion::begin_text;
};

/// A compiled program; execution starts at pc 0. Every split/jump target and every pc + 1 after a
/// consuming instruction or an assertion must be a valid pc, and every char_class index must name
/// a class.
struct Program {
  std::vector<Instruction> instructions;
  std::vector<RuneClass> classes;

  /// The pc the next pushed instruction will get.
  std::uint32_t next_pc() const { return static_cast<std::uint32_t>(instructions.size()); }
};

/// Where a match may start: only at the search position (a leading `^` in the shell patterns),
/// or at any position from there on.
enum class Anchor { start, anywhere };

/// What a search reports: the first match Go's leftmost-first rules pick, or only whether there
/// is a match at all (stops at the first thread that reaches `match`, span unspecified).
enum class Want { leftmost_first, any_match };

/// A match: byte offsets [begin, end) in the searched text.
struct Span {
  std::size_t begin;
  std::size_t end;
};

/// Runs programs. Holds the scratch state (thread lists, marks) so repeated searches do not
/// allocate; one Matcher may run different programs, one search at a time.
class Matcher {
public:
  /// Searches `text` from byte `from` (a rune boundary, <= text.size()). Assertions see the whole
  /// text: at `from` > 0 the previous rune is the one ending there. Shortest or longest
  /// preferences are the program's business (the order of each split's branches). Linear in
  /// (text.size() - from) * program size.
  std::optional<Span> find(const Program& program, std::string_view text, std::size_t from,
                           Anchor anchor, Want want);

private:
  struct Thread {
    std::uint32_t pc;
    std::size_t start;
  };
  struct Context {
    Rune before; ///< the rune before the position, k_eof at the beginning of the text
    Rune after;  ///< the rune at the position, k_eof at the end of the text
    bool at_begin;
    bool at_end;
  };

  void add_thread(const Program& program, std::vector<Thread>& list, std::uint32_t pc,
                  std::size_t start, const Context& context);

  std::vector<std::uint64_t> m_marks; ///< generation in which each pc was last added
  std::uint64_t m_generation = 0;
  std::vector<std::uint32_t> m_stack;
  std::vector<Thread> m_current;
  std::vector<Thread> m_following;
};

} // namespace minibuild::dockerfile::detail
