// Word expansion exactly as BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) does it:
// quotes, escapes, $v ${v} ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?m} ${v?m}, ${v#p} ${v##p} ${v%p}
// ${v%%p}, ${v/p/r} ${v//p/r}. Used on instruction arguments where Docker expands.
//
// The behaviour, including BuildKit's quirks, in one place:
//   - Unquoted: the escape character (`\` or the `# escape=` backtick) makes the next character
//     literal; a lone trailing escape is dropped. '...' is literal. In "...", the escape only
//     escapes `"`, `$` and itself and is kept before anything else; `$` still expands.
//   - `$` followed by a character that cannot start a name stays a literal `$`. A name is letters,
//     digits and `_` (Unicode letters and digits, as Go's unicode package sees them); a run of
//     digits (`$10`, `$001`) or one of `@ * # ? - $ ! 0` is a name too. They are looked up like
//     any other name, so they are unset unless the environment defines them.
//   - ${v-w} ${v+w} ${v?m} test "unset"; the `:` forms test "unset or empty". ${v?m} fails with
//     "v: m", or "v: is not allowed to be unset" / "v: is not allowed to be empty" when m is empty.
//   - Patterns (# ## % %% / //) are BuildKit's glob subset: `*` and `?` are wildcards that do not
//     match a newline (BuildKit turns them into Go regexp `.`), `\*` `\?` `\\` are literal, `\}`
//     and
//     `\/` are a literal `}` and `/`, any other `\x` is an error, and `[` is an ordinary character
//     (no bracket expressions). # and % remove the shortest prefix/suffix, ## and %% the longest.
//     ${v/p/r} replaces the leftmost match of p, with the longest match at that position, and
//     ${v//p/r} every non-overlapping match. p is not anchored and an empty p matches the empty
//     string (so ${v/$EMPTY/r} prepends r); `/#` and `/%` are not anchors. Quirks kept from Go's
//     ReplaceAllString: in ${v//p/r} a `$0` or `${0}` in r stands for the matched text, `$$` for
//     `$`, and `$name` for nothing. The pattern and replacement keep their escape characters.
//   - Unsupported forms are errors: ${} ${:} ${.} ${{ ${v:=w} ${v=w} ${v:1} ${v:#p} ${v:%p}, an
//     unterminated ${ or quote.
//   - Bytes that are not valid UTF-8 in the word become U+FFFD, as Go's text/scanner reads them;
//     variable values are copied byte for byte (except through % and %%, which decode them).
//
// Nesting depth: BuildKit recurses without a limit. This implementation keeps its own frame stack
// on the heap instead of the call stack, so a 10,000-deep ${a:-${a:-...}} expands like BuildKit
// does instead of overflowing the stack, and the work stays linear in the word length.
//
// Deliberate deviation: some BuildKit versions share one word buffer between nested expansions,
// so ProcessWords("a${b:-c}d") drops the "a" (it gives "cd"). process_words keeps every character
// ("acd"), as BuildKit did before that buffer was introduced; process_word is unaffected.
#pragma once

#include <minibuild/base/error.hpp>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::dockerfile {

/// An ordered set of variables (ENV and ARG values). Setting an existing name replaces its value
/// and keeps its position, as Docker's env lists do.
class Environment {
public:
  void set(std::string name, std::string value);
  std::optional<std::string_view> get(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  void erase(std::string_view name);
  const std::vector<std::pair<std::string, std::string>>& entries() const { return m_entries; }

private:
  std::vector<std::pair<std::string, std::string>> m_entries;
};

struct ShellLexerOptions {
  bool raw_quotes = false;  ///< keep quote characters in the output
  bool raw_escapes = false; ///< keep escape characters in the output
  bool skip_unset = false;  ///< leave `$name` of an unset variable as written
};

/// What an expansion produced, and which variable names it looked up (for the "unused build
/// argument" warning and cache keys). Every lookup counts, including the names of forms whose
/// value was not needed (${A:-x} with A set still matches A) and positional names like "1".
struct Expansion {
  std::string word;
  std::set<std::string> matched;   ///< names looked up and found set
  std::set<std::string> unmatched; ///< names looked up and not set
};

struct WordsExpansion {
  std::vector<std::string> words;
  std::set<std::string> matched;
  std::set<std::string> unmatched;
};

/// Expands words with one escape character and one set of options. Stateless apart from those, so
/// one lexer may be used from several threads at once.
class ShellLexer {
public:
  explicit ShellLexer(char escape = '\\', ShellLexerOptions options = {})
      : m_escape(escape), m_options(options) {}

  /// Expands one word: whitespace is kept, no field splitting (BuildKit ProcessWord).
  /// Errors (Code::dockerfile, no location: the caller attaches it) for unterminated quotes,
  /// bad substitutions like `${}` or `${a:=b}`, and `${v?msg}` of an unset variable.
  Result<Expansion> process_word(std::string_view word, const Environment& env) const;

  /// Expands and splits into words on unquoted whitespace, splitting unquoted expansions too
  /// (BuildKit ProcessWords).
  Result<WordsExpansion> process_words(std::string_view word, const Environment& env) const;

  char escape() const { return m_escape; }

private:
  char m_escape;
  ShellLexerOptions m_options;
};

} // namespace minibuild::dockerfile
