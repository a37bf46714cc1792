// Word expansion exactly as BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) does it:
// quotes, escapes, $v ${v} ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?m} ${v?m}, ${v#p} ${v##p} ${v%p}
// ${v%%p}, ${v/p/r} ${v//p/r}. Used on instruction arguments where Docker expands.
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
/// argument" warning and cache keys).
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
