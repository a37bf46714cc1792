// What a `$` may be followed by in a Dockerfile word, shared by the shell lexer and the heredoc
// word splitter (private to src/dockerfile).
#pragma once

#include "go_unicode.hpp"

namespace minibuild::dockerfile::detail {

/// The shell's special parameters after `$` ($@ $* $# $? $- $$ $! $0): BuildKit never sets them,
/// so they expand to nothing, but they end a name as one character.
inline bool is_special_parameter(Rune ch) {
  switch (ch) {
  case '@':
  case '*':
  case '#':
  case '?':
  case '-':
  case '$':
  case '!':
  case '0':
    return true;
  default:
    return false;
  }
}

} // namespace minibuild::dockerfile::detail
