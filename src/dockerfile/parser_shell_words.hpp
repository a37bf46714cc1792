// Private to the Dockerfile parser: the word splitter BuildKit's parser runs to find heredocs.
//
// BuildKit finds heredocs by running its shell lexer (frontend/dockerfile/shell, `ProcessWords`)
// over the instruction line with an empty environment, keeping unset variables literally
// (SkipUnsetEnv) and optionally keeping quotes and escapes (RawQuotes, RawEscapes), and then
// matching each word against `^(\d*)<<(-?)\s*([^<]*)$`. Which words come out decides which
// heredocs exist, so this reproduces that lexer's word splitting for the empty-environment case,
// including its quirks:
//   - input is decoded like Go's text/scanner: invalid UTF-8 reads as U+FFFD, a leading BOM is
//     skipped;
//   - `${name<op>word}` keeps its text but splits it on whitespace like an expansion result;
//   - a nested `${...}` resets the partial word being built around it (upstream shares one word
//     buffer between nesting levels);
//   - an unterminated quote or brace is an error, which the line scan treats as "no words".
// One deliberate difference: `${` nested more than k_max_nesting deep is an error too. Go's
// stacks grow; ours do not, and continuation lines make an instruction line unbounded.
// This is not minibuild's word expander (that is shell_lexer.cpp); it exists only so heredoc
// detection agrees with BuildKit.
#pragma once

#include "go_unicode.hpp"
#include "shell_names.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::dockerfile::detail {

struct ShellWordsOptions {
  bool raw_quotes = false;  ///< keep quote characters in the words
  bool raw_escapes = false; ///< keep the escape character in the words
};

/// Words of `text`, or an error message. Always uses '\' as the escape character, as BuildKit's
/// heredoc detection does whatever the `# escape=` directive says.
class ShellWords {
public:
  ShellWords(std::string_view text, ShellWordsOptions options)
      : m_text(text), m_raw_quotes(options.raw_quotes), m_raw_escapes(options.raw_escapes) {
    // text/scanner skips a byte order mark at the very start of its input.
    if (m_text.substr(0, 3) == "\xEF\xBB\xBF") {
      m_pos = 3;
    }
  }

  /// Runs the lexer; on failure returns the lexer's message.
  std::pair<std::vector<std::string>, std::optional<std::string>> words() {
    auto result = process_stop_on(k_eof, m_raw_escapes);
    if (!result) {
      return {{}, std::move(m_error)};
    }
    return {std::move(result->second), std::nullopt};
  }

private:
  static constexpr int k_max_nesting = 256;
  static constexpr Rune k_escape = '\\';

  struct Accumulator {
    std::string* buf;
    std::vector<std::string> words;
    bool in_word = false;

    void add_raw_char(Rune ch) {
      append_rune(*buf, ch);
      in_word = true;
    }
    void add_char(Rune ch) {
      if (is_space(ch)) {
        if (in_word && !buf->empty()) {
          words.push_back(std::move(*buf));
          buf->clear();
          in_word = false;
        }
        return;
      }
      add_raw_char(ch);
    }
    void add_string(std::string_view text) {
      for (std::size_t pos = 0; pos < text.size();) {
        const DecodedRune d = decode_rune(text, pos);
        add_char(d.rune);
        pos += d.size;
      }
    }
    void add_raw_string(std::string_view text) {
      buf->append(text);
      in_word = true;
    }
    std::vector<std::string> take_words() {
      if (!buf->empty()) {
        words.push_back(std::move(*buf));
        buf->clear();
        in_word = false;
      }
      return std::move(words);
    }
  };

  Rune peek() const {
    if (m_pos >= m_text.size()) {
      return k_eof;
    }
    return decode_rune(m_text, m_pos).rune;
  }

  Rune next() {
    if (m_pos >= m_text.size()) {
      return k_eof;
    }
    const DecodedRune d = decode_rune(m_text, m_pos);
    m_pos += d.size;
    return d.rune;
  }

  static void append(std::string& out, Rune ch) {
    if (ch != k_eof) {
      append_rune(out, ch);
    } else {
      append_rune(out, k_rune_error); // Go's string(rune(-1))
    }
  }

  std::nullopt_t error(std::string message) {
    m_error = std::move(message);
    return std::nullopt;
  }

  using Processed = std::optional<std::pair<std::string, std::vector<std::string>>>;

  Processed process_stop_on(Rune stop, bool raw_escapes) {
    std::string result;
    m_words_buffer.clear();
    Accumulator words{&m_words_buffer, {}, false};
    const bool saved_raw_escapes = m_raw_escapes;
    m_raw_escapes = raw_escapes;
    struct Restore {
      bool& flag;
      bool value;
      ~Restore() { flag = value; }
    } restore{m_raw_escapes, saved_raw_escapes};

    while (peek() != k_eof) {
      Rune ch = peek();
      if (stop != k_eof && ch == stop) {
        next();
        return std::pair{std::move(result), words.take_words()};
      }
      if (ch == '$' || ch == '\'' || ch == '"') {
        std::optional<std::string> part;
        if (ch == '$') {
          part = process_dollar();
        } else if (ch == '\'') {
          part = process_single_quote();
        } else {
          part = process_double_quote();
        }
        if (!part) {
          return std::nullopt;
        }
        result += *part;
        if (ch == '$') {
          words.add_string(*part);
        } else {
          words.add_raw_string(*part);
        }
        continue;
      }
      ch = next();
      if (ch == k_escape) {
        if (m_raw_escapes) {
          words.add_raw_char(ch);
          append(result, ch);
        }
        ch = next();
        if (ch == k_eof) {
          break;
        }
        words.add_raw_char(ch);
      } else {
        words.add_char(ch);
      }
      append(result, ch);
    }
    if (stop != k_eof) {
      std::string stop_text;
      append(stop_text, stop);
      return error("unexpected end of statement while looking for matching " + stop_text);
    }
    return std::pair{std::move(result), words.take_words()};
  }

  std::optional<std::string> process_single_quote() {
    std::string result;
    Rune ch = next();
    if (m_raw_quotes) {
      append(result, ch);
    }
    while (true) {
      ch = next();
      if (ch == k_eof) {
        return error("unexpected end of statement while looking for matching single-quote");
      }
      if (ch == '\'') {
        if (m_raw_quotes) {
          append(result, ch);
        }
        return result;
      }
      append(result, ch);
    }
  }

  std::optional<std::string> process_double_quote() {
    std::string result;
    Rune ch = next();
    if (m_raw_quotes) {
      append(result, ch);
    }
    while (true) {
      const Rune p = peek();
      if (p == k_eof) {
        return error("unexpected end of statement while looking for matching double-quote");
      }
      if (p == '"') {
        ch = next();
        if (m_raw_quotes) {
          append(result, ch);
        }
        return result;
      }
      if (p == '$') {
        auto value = process_dollar();
        if (!value) {
          return std::nullopt;
        }
        result += *value;
        continue;
      }
      ch = next();
      if (ch == k_escape) {
        if (m_raw_escapes) {
          append(result, ch);
        }
        const Rune after = peek();
        if (after == k_eof) {
          continue; // the loop then reports the missing quote
        }
        if (after == '"' || after == '$' || after == k_escape) {
          ch = next();
        }
      }
      append(result, ch);
    }
  }

  std::string process_name() {
    std::string name;
    while (peek() != k_eof) {
      const Rune ch = peek();
      if (name.empty() && is_digit(ch)) {
        while (peek() != k_eof && is_digit(peek())) {
          append(name, next());
        }
        return name;
      }
      if (name.empty() && is_special_parameter(ch)) {
        append(name, next());
        return name;
      }
      if (!is_letter(ch) && !is_digit(ch) && ch != '_') {
        break;
      }
      append(name, next());
    }
    return name;
  }

  /// `$name` or `${...}`; with an empty environment every variable is unset, so the text is
  /// kept (SkipUnsetEnv) and only the syntax errors matter.
  std::optional<std::string> process_dollar() {
    next(); // '$'
    if (peek() != '{') {
      const std::string name = process_name();
      return "$" + name;
    }
    next(); // '{'
    if (m_nesting >= k_max_nesting) {
      return error("${...} nested more than " + std::to_string(k_max_nesting) + " levels deep");
    }
    ++m_nesting;
    struct Leave {
      int& nesting;
      ~Leave() { --nesting; }
    } leave{m_nesting};
    const Rune first = peek();
    if (first == k_eof) {
      return error("syntax error: missing '}'");
    }
    if (first == '{' || first == '}' || first == ':') {
      return error("syntax error: bad substitution");
    }
    const std::string name = process_name();
    Rune ch = next();
    std::string op;
    append(op, ch);
    bool null_is_unset = false;
    switch (ch) {
    case '}':
      return "${" + name + "}";
    case ':':
      null_is_unset = true;
      ch = next();
      append(op, ch);
      [[fallthrough]];
    case '+':
    case '-':
    case '?':
    case '#':
    case '%': {
      const bool raw = ch == '#' || ch == '%';
      if (null_is_unset && raw) {
        return error("unsupported modifier (" + op + ") in substitution");
      }
      auto word = process_stop_on('}', raw);
      if (!word) {
        if (peek() == k_eof) {
          return error("syntax error: missing '}'");
        }
        return std::nullopt;
      }
      return "${" + name + op + word->first + "}";
    }
    case '/': {
      if (peek() == '/') {
        next(); // `//` (replace all) prints back as a single '/' upstream too
      }
      auto pattern = process_stop_on('/', true);
      if (!pattern) {
        if (peek() == k_eof) {
          return error("syntax error: missing '/' in ${}");
        }
        return std::nullopt;
      }
      auto replacement = process_stop_on('}', true);
      if (!replacement) {
        if (peek() == k_eof) {
          return error("syntax error: missing '}'");
        }
        return std::nullopt;
      }
      return "${" + name + "/" + pattern->first + "/" + replacement->first + "}";
    }
    default:
      return error("unsupported modifier (" + op + ") in substitution");
    }
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
  bool m_raw_quotes;
  bool m_raw_escapes;
  std::string m_words_buffer; // shared by every nesting level, as upstream
  std::string m_error;
  int m_nesting = 0;
};

} // namespace minibuild::dockerfile::detail
