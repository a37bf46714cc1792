// The Pike VM: all threads advance together one rune at a time, so nothing backtracks. The
// generation counter stands in for clearing a per-pc "already added" set at every position.
#include "nfa.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace minibuild::dockerfile::detail {

namespace {

struct Decoded {
  Rune rune;
  std::size_t width;
};

/// The rune at `pos`, or k_eof (width 0) at the end.
Decoded rune_at(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) {
    return {k_eof, 0};
  }
  const auto decoded = decode_rune(text, pos);
  return {decoded.rune, decoded.size};
}

/// utf8.DecodeLastRuneInString(text[:pos]): the rune ending at `pos`, U+FFFD when the bytes
/// before `pos` do not end a valid sequence, k_eof at the beginning.
Rune rune_before(std::string_view text, std::size_t pos) {
  if (pos == 0) {
    return k_eof;
  }
  std::size_t begin = pos - 1;
  while (begin > 0 && pos - begin < 4 &&
         (static_cast<unsigned char>(text[begin]) & 0xC0U) == 0x80U) {
    --begin;
  }
  const auto decoded = decode_rune(text, begin);
  return begin + decoded.size == pos ? decoded.rune : k_rune_error;
}

bool is_word(Rune rune) {
  return (rune >= '0' && rune <= '9') || (rune >= 'a' && rune <= 'z') ||
         (rune >= 'A' && rune <= 'Z') || rune == '_';
}

} // namespace

bool class_contains(const RuneClass& ranges, Rune rune) {
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), rune,
                                   [](Rune r, const RuneRange& range) { return r < range.lo; });
  return it != ranges.begin() && rune <= std::prev(it)->hi;
}

std::optional<Span> Matcher::find(const Program& program, std::string_view text, std::size_t from,
                                  Anchor anchor, Want want) {
  // Marks left by another program are from older generations, so growing is enough.
  if (m_marks.size() < program.instructions.size()) {
    m_marks.resize(program.instructions.size(), 0);
  }
  std::vector<Thread>& current = m_current;
  std::vector<Thread>& following = m_following;
  current.clear();
  std::optional<Span> found;
  ++m_generation;
  Rune previous = rune_before(text, from);
  Decoded at = rune_at(text, from);
  if (anchor == Anchor::start) {
    add_thread(program, current, 0, from, {previous, at.rune, from == 0, from == text.size()});
  }
  for (std::size_t pos = from;;) {
    if (anchor == Anchor::anywhere && !found) {
      // A later start has the lowest priority; it goes in with the threads that reached pos,
      // in the same generation, so a pc they already hold is not added twice.
      add_thread(program, current, 0, pos, {previous, at.rune, pos == 0, pos == text.size()});
    } else if (current.empty()) {
      break; // nothing left running and no start will be added
    }
    const Decoded next = rune_at(text, pos + at.width);
    const Context there{at.rune, next.rune, false, pos + at.width == text.size()};
    ++m_generation;
    following.clear();
    for (const Thread& thread : current) {
      const Instruction& inst = program.instructions[thread.pc];
      if (inst.op == Op::match) {
        // Threads after this one have lower priority: a match here beats all of them.
        found = Span{thread.start, pos};
        if (want == Want::any_match) {
          return found;
        }
        break;
      }
      const bool consumes =
          at.rune != k_eof &&
          ((inst.op == Op::rune && inst.rune == at.rune) ||
           (inst.op == Op::any_but_newline && at.rune != '\n') ||
           (inst.op == Op::char_class && class_contains(program.classes[inst.x], at.rune)));
      if (consumes) {
        add_thread(program, following, thread.pc + 1, thread.start, there);
      }
    }
    std::swap(current, following);
    if (pos >= text.size()) {
      break;
    }
    previous = at.rune;
    pos += at.width;
    at = next;
  }
  return found;
}

/// Adds pc and everything reachable through split/jump and holding assertions, in priority order
/// (the preferred branch of a split first), skipping pcs already added in this generation: Go's
/// NFA does the same, and the dedup is what keeps a search linear in the text length.
void Matcher::add_thread(const Program& program, std::vector<Thread>& list, std::uint32_t pc,
                         std::size_t start, const Context& context) {
  m_stack.clear();
  m_stack.push_back(pc);
  while (!m_stack.empty()) {
    const std::uint32_t at = m_stack.back();
    m_stack.pop_back();
    if (m_marks[at] == m_generation) {
      continue;
    }
    m_marks[at] = m_generation;
    const Instruction& inst = program.instructions[at];
    switch (inst.op) {
    case Op::split:
      m_stack.push_back(inst.y);
      m_stack.push_back(inst.x);
      break;
    case Op::jump:
      m_stack.push_back(inst.x);
      break;
    case Op::assertion: {
      bool holds = false;
      switch (inst.assertion) {
      case Assertion::begin_text:
        holds = context.at_begin;
        break;
      case Assertion::end_text:
        holds = context.at_end;
        break;
      case Assertion::word_boundary:
        holds = is_word(context.before) != is_word(context.after);
        break;
      case Assertion::not_word_boundary:
        holds = is_word(context.before) == is_word(context.after);
        break;
      }
      if (holds) {
        m_stack.push_back(at + 1);
      }
      break;
    }
    case Op::rune:
    case Op::any_but_newline:
    case Op::char_class:
    case Op::match:
      list.push_back({at, start});
      break;
    }
  }
}

} // namespace minibuild::dockerfile::detail
