// Word expansion, following BuildKit's frontend/dockerfile/shell/lex.go step by step.
//
// BuildKit's lexer is recursive descent: processStopOn (a word up to a stop character) calls
// processDollar and processDoubleQuote, and processDollar calls processStopOn again for the word
// inside ${v:-word}. Here the same three routines are frames on an explicit stack (Expander), so
// the nesting depth is bounded by memory, not by the thread's stack. Patterns (# % /) are
// BuildKit's glob-to-Go-regexp translation run on a small Pike VM with the same leftmost-first
// preferences as Go's regexp, which is linear in the value length (RE2 guarantees the same for
// BuildKit).
#include "go_unicode.hpp"
#include "nfa.hpp"
#include "shell_names.hpp"

#include <minibuild/dockerfile/shell_lexer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::dockerfile {

void Environment::set(std::string name, std::string value) {
  for (auto& entry : m_entries) {
    if (entry.first == name) {
      entry.second = std::move(value);
      return;
    }
  }
  m_entries.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> Environment::get(std::string_view name) const {
  for (const auto& entry : m_entries) {
    if (entry.first == name) {
      return entry.second;
    }
  }
  return std::nullopt;
}

void Environment::erase(std::string_view name) {
  std::erase_if(m_entries, [&](const auto& entry) { return entry.first == name; });
}

namespace {

using detail::Anchor;
using detail::append_rune;
using detail::decode_rune;
using detail::is_special_parameter;
using detail::k_eof;
using detail::k_rune_error;
using detail::Op;
using detail::Rune;
using detail::RuneScanner;
using detail::Span;

/// Longest piece of the source quoted in an error message; a 1 MB word must not become a 1 MB
/// message.
constexpr std::size_t k_snippet_limit = 64;

std::string rune_text(Rune rune) {
  std::string text;
  if (rune != k_eof) {
    append_rune(text, rune);
  }
  return text;
}

std::vector<Rune> decode_all(std::string_view text) {
  std::vector<Rune> runes;
  runes.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const auto decoded = decode_rune(text, pos);
    runes.push_back(decoded.rune);
    pos += decoded.size;
  }
  return runes;
}

std::string encode_all(const std::vector<Rune>& runes) {
  std::string text;
  text.reserve(runes.size());
  for (Rune rune : runes) {
    append_rune(text, rune);
  }
  return text;
}

/// BuildKit's wordsStruct: collects the fields of process_words. Characters from expansions go
/// through add_char (whitespace splits), quoted text and escaped characters through the raw adders.
class WordSplitter {
public:
  void add_char(Rune ch) {
    const bool space = detail::is_space(ch);
    if (space && m_in_word) {
      if (!m_word.empty()) {
        m_words.push_back(std::move(m_word));
        m_word.clear();
        m_in_word = false;
      }
    } else if (!space) {
      add_raw_char(ch);
    }
  }
  void add_raw_char(Rune ch) {
    append_rune(m_word, ch);
    m_in_word = true;
  }
  void add_string(std::string_view text) {
    for (std::size_t pos = 0; pos < text.size();) {
      const auto decoded = decode_rune(text, pos);
      add_char(decoded.rune);
      pos += decoded.size;
    }
  }
  void add_raw_string(std::string_view text) {
    m_word += text;
    m_in_word = true;
  }
  std::vector<std::string> finish() {
    if (!m_word.empty()) {
      m_words.push_back(std::move(m_word));
      m_word.clear();
    }
    return std::move(m_words);
  }

private:
  std::vector<std::string> m_words;
  std::string m_word;
  bool m_in_word = false;
};

// ---------------------------------------------------------------------------------------------
// Patterns. BuildKit converts the glob to a Go regexp: `*` → `.*` (greedy) or `.*?` (lazy), `?`
// → `.`, every other character literal, and anchors it with `^` for # and %. This is the same
// program, compiled for a Pike VM that keeps Go's leftmost-first thread priorities.

enum class Stars { shortest, longest };

class Pattern {
public:
  /// convertShellPatternToRegex: a pattern BuildKit would reject (a `\` before anything but
  /// `*` `?` `\` `}` `/`, or at the end) is an error naming the escape.
  static Result<Pattern> compile(std::string_view glob, Stars stars) {
    Pattern pattern;
    auto& program = pattern.m_program.instructions;
    RuneScanner scanner(glob); // a fresh text/scanner: it also drops a leading byte order mark
    bool previous_star = false;
    for (Rune tok = scanner.next(); tok != k_eof; tok = scanner.next()) {
      if (tok == '*') {
        if (previous_star) {
          continue; // `**` matches what `*` matches, with the same preferences
        }
        previous_star = true;
        const std::uint32_t loop = pattern.m_program.next_pc();
        const std::uint32_t any = loop + 1;
        const std::uint32_t after = loop + 3;
        if (stars == Stars::longest) {
          program.push_back({Op::split, 0, any, after});
        } else {
          program.push_back({Op::split, 0, after, any});
        }
        program.push_back({Op::any_but_newline}); // Go's `.`: not a newline
        program.push_back({Op::jump, 0, loop});
        continue;
      }
      previous_star = false;
      if (tok == '?') {
        program.push_back({Op::any_but_newline});
        continue;
      }
      if (tok == '\\') {
        // `\}` and `\/` were needed to get } and / past the ${...} syntax; the escape is not part
        // of the pattern, and the next round takes the character literally.
        if (scanner.peek() == '}' || scanner.peek() == '/') {
          continue;
        }
        tok = scanner.next();
        if (tok != '*' && tok != '?' && tok != '\\') {
          return fail(Code::dockerfile, tok == k_eof ? std::string("'\\' at the end")
                                                     : "invalid escape '\\" + rune_text(tok) + "'");
        }
      }
      program.push_back({Op::rune, tok});
    }
    program.push_back({Op::match});
    return pattern;
  }

  /// The first match Go's regexp would report (FindStringIndex) when the search starts at byte
  /// `from`: the leftmost start, and at that start the match the star preferences pick.
  std::optional<Span> find(std::string_view text, std::size_t from, Anchor anchor) {
    return m_matcher.find(m_program, text, from, anchor, detail::Want::leftmost_first);
  }

private:
  detail::Program m_program;
  detail::Matcher m_matcher; ///< scratch state, kept to avoid allocating per search
};

/// BuildKit's reversePattern: reverses the runes but keeps each `\x` pair in order, so `a\*c`
/// becomes `c\*a`. A trailing lone `\` is reversed like any other character.
std::string reverse_pattern(std::string_view pattern) {
  const std::vector<Rune> runes = decode_all(pattern);
  std::vector<Rune> out(runes.size());
  const std::size_t count = runes.size();
  for (std::size_t i = 0; i < count;) {
    const std::size_t out_index = count - 1 - i;
    if (runes[i] == '\\' && i + 1 < count) {
      out[out_index - 1] = runes[i];
      out[out_index] = runes[i + 1];
      i += 2;
    } else {
      out[out_index] = runes[i];
      ++i;
    }
  }
  return encode_all(out);
}

/// Go's reverseString: by runes, so invalid bytes come back as U+FFFD.
std::string reverse_string(std::string_view text) {
  std::vector<Rune> runes = decode_all(text);
  std::reverse(runes.begin(), runes.end());
  return encode_all(runes);
}

/// Go's Regexp.Expand for a pattern without groups: `$$` is `$`, `$0`/`${0}` the match, any other
/// well-formed `$name`/`${name}` nothing, and a malformed `$` stays literal.
void expand_template(std::string& out, std::string_view tmpl, std::string_view match) {
  while (!tmpl.empty()) {
    const std::size_t dollar = tmpl.find('$');
    if (dollar == std::string_view::npos) {
      break;
    }
    out += tmpl.substr(0, dollar);
    tmpl.remove_prefix(dollar + 1);
    if (!tmpl.empty() && tmpl.front() == '$') {
      out += '$';
      tmpl.remove_prefix(1);
      continue;
    }
    std::string_view rest = tmpl;
    const bool brace = !rest.empty() && rest.front() == '{';
    if (brace) {
      rest.remove_prefix(1);
    }
    std::size_t length = 0;
    while (length < rest.size()) {
      const auto decoded = decode_rune(rest, length);
      if (!detail::is_letter(decoded.rune) && !detail::is_digit(decoded.rune) &&
          decoded.rune != '_') {
        break;
      }
      length += decoded.size;
    }
    if (length == 0 || (brace && (length >= rest.size() || rest[length] != '}'))) {
      out += '$'; // malformed: the `$` is text
      continue;
    }
    const std::string_view name = rest.substr(0, length);
    tmpl = rest.substr(length + (brace ? 1 : 0));
    if (name == "0") {
      out += match;
    }
  }
  out += tmpl;
}

/// Go's Regexp.ReplaceAllString: non-overlapping matches left to right, no empty match right after
/// a previous match, and always at least one character of progress.
std::string replace_all(Pattern& pattern, std::string_view value, std::string_view replacement) {
  std::string out;
  std::size_t last_match_end = 0;
  std::size_t search_pos = 0;
  while (search_pos <= value.size()) {
    const auto match = pattern.find(value, search_pos, Anchor::anywhere);
    if (!match) {
      break;
    }
    out += value.substr(last_match_end, match->begin - last_match_end);
    if (match->end > last_match_end || match->begin == 0) {
      expand_template(out, replacement, value.substr(match->begin, match->end - match->begin));
    }
    last_match_end = match->end;
    const std::size_t width = search_pos < value.size() ? decode_rune(value, search_pos).size : 0;
    if (search_pos + width > match->end) {
      search_pos += width;
    } else if (search_pos + 1 > match->end) {
      search_pos += 1;
    } else {
      search_pos = match->end;
    }
  }
  out += value.substr(last_match_end);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The expander.

enum class FrameKind : std::uint8_t {
  word,         ///< processStopOn: characters up to `stop` (EOF for the whole word)
  double_quote, ///< processDoubleQuote
  dollar,       ///< processDollar
};

struct Frame {
  FrameKind kind;
  // word and double_quote
  Rune stop = k_eof;
  bool raw_escapes = false;
  bool child_is_dollar = false; ///< word: the pending child came from `$` (its text splits)
  std::string text{};           ///< word/double_quote: output so far; dollar: the / pattern
  // dollar
  int stage = 0;
  std::size_t start = 0; ///< byte offset of the `$`, for messages
  std::string name{};
  Rune op = 0;           ///< the modifier character (after `:` for the colon forms)
  std::string op_text{}; ///< the modifier as written: "-", ":-", ...
  bool null_is_unset = false;
  bool replace_all = false;
};

/// What a frame step did: pushed a child (which runs next), or finished with a value for its
/// parent.
struct Outcome {
  bool done;
  std::string value;
};

class Expander {
public:
  Expander(std::string_view source, const Environment& env, char escape, ShellLexerOptions options,
           WordSplitter* words)
      : m_source(source), m_scanner(source), m_env(env),
        m_escape(static_cast<unsigned char>(escape)), m_options(options), m_words(words) {}

  Result<std::string> run() {
    push_word(k_eof, m_options.raw_escapes);
    std::optional<std::string> child;
    for (;;) {
      Result<Outcome> outcome = step(std::move(child));
      child.reset();
      if (!outcome) {
        return tl::unexpected<Error>(std::move(outcome).error());
      }
      if (!outcome->done) {
        continue;
      }
      m_stack.pop_back();
      if (m_stack.empty()) {
        return std::move(outcome->value);
      }
      child = std::move(outcome->value);
    }
  }

  std::set<std::string> take_matched() { return std::move(m_matched); }
  std::set<std::string> take_unmatched() { return std::move(m_unmatched); }

private:
  static Outcome done(std::string value) { return Outcome{true, std::move(value)}; }
  static Outcome pushed() { return Outcome{false, {}}; }

  Outcome push_word(Rune stop, bool raw_escapes) {
    m_stack.push_back(Frame{.kind = FrameKind::word, .stop = stop, .raw_escapes = raw_escapes});
    return pushed();
  }
  Outcome push_double_quote(bool raw_escapes) {
    m_stack.push_back(Frame{.kind = FrameKind::double_quote, .raw_escapes = raw_escapes});
    return pushed();
  }
  Outcome push_dollar() {
    m_stack.push_back(Frame{.kind = FrameKind::dollar});
    return pushed();
  }

  Result<Outcome> step(std::optional<std::string> child) {
    switch (m_stack.back().kind) {
    case FrameKind::word:
      return step_word(std::move(child));
    case FrameKind::double_quote:
      return step_double_quote(std::move(child));
    case FrameKind::dollar:
      return step_dollar(std::move(child));
    }
    return fail(Code::internal, "shell lexer: unknown frame kind");
  }

  static void append(std::string& text, std::string&& value) {
    if (text.empty()) {
      text = std::move(value); // keeps ${a:-${a:-...}} linear: the value moves up, not copies
    } else {
      text += value;
    }
  }

  // processStopOn.
  Result<Outcome> step_word(std::optional<std::string> child) {
    Frame& frame = m_stack.back();
    WordSplitter* words = m_stack.size() == 1 ? m_words : nullptr;
    if (child) {
      if (words) {
        if (frame.child_is_dollar) {
          words->add_string(*child);
        } else {
          words->add_raw_string(*child);
        }
      }
      append(frame.text, std::move(*child));
    }
    for (;;) {
      Rune ch = m_scanner.peek();
      if (ch == k_eof) {
        break;
      }
      if (frame.stop != k_eof && ch == frame.stop) {
        m_scanner.next();
        return done(std::move(frame.text));
      }
      if (ch == '$') {
        frame.child_is_dollar = true;
        return push_dollar();
      }
      if (ch == '\'') {
        MB_TRY_ASSIGN(std::string quoted, single_quote());
        if (words) {
          words->add_raw_string(quoted);
        }
        frame.text += quoted;
        continue;
      }
      if (ch == '"') {
        frame.child_is_dollar = false;
        return push_double_quote(frame.raw_escapes);
      }
      ch = m_scanner.next();
      if (ch == m_escape) {
        if (frame.raw_escapes) {
          if (words) {
            words->add_raw_char(ch);
          }
          append_rune(frame.text, ch);
        }
        ch = m_scanner.next();
        if (ch == k_eof) {
          break; // a trailing escape is dropped
        }
        if (words) {
          words->add_raw_char(ch);
        }
      } else if (words) {
        words->add_char(ch);
      }
      append_rune(frame.text, ch);
    }
    if (frame.stop != k_eof) {
      // Only a ${...} opens a word with a stop character, so the parent is a dollar frame.
      const Frame& parent = m_stack[m_stack.size() - 2];
      return fail(Code::dockerfile, "bad substitution: missing '" + rune_text(frame.stop) +
                                        "' in " + snippet(parent.start, m_source.size()));
    }
    return done(std::move(frame.text));
  }

  // processSingleQuote: everything up to the next `'` is literal; there is no escape.
  Result<std::string> single_quote() {
    std::string out;
    Rune ch = m_scanner.next();
    if (m_options.raw_quotes) {
      append_rune(out, ch);
    }
    for (;;) {
      ch = m_scanner.next();
      if (ch == k_eof) {
        return fail(Code::dockerfile, "unterminated quote: missing closing single quote (')");
      }
      if (ch == '\'') {
        if (m_options.raw_quotes) {
          append_rune(out, ch);
        }
        return out;
      }
      append_rune(out, ch);
    }
  }

  // processDoubleQuote.
  Result<Outcome> step_double_quote(std::optional<std::string> child) {
    Frame& frame = m_stack.back();
    if (frame.stage == 0) {
      const Rune quote = m_scanner.next();
      if (m_options.raw_quotes) {
        append_rune(frame.text, quote);
      }
      frame.stage = 1;
    }
    if (child) {
      append(frame.text, std::move(*child));
    }
    for (;;) {
      const Rune peeked = m_scanner.peek();
      if (peeked == k_eof) {
        return fail(Code::dockerfile, "unterminated quote: missing closing double quote (\")");
      }
      if (peeked == '"') {
        const Rune quote = m_scanner.next();
        if (m_options.raw_quotes) {
          append_rune(frame.text, quote);
        }
        return done(std::move(frame.text));
      }
      if (peeked == '$') {
        return push_dollar();
      }
      Rune ch = m_scanner.next();
      if (ch == m_escape) {
        if (frame.raw_escapes) {
          append_rune(frame.text, ch);
        }
        const Rune after = m_scanner.peek();
        if (after == k_eof) {
          continue; // reported as the missing closing quote
        }
        if (after == '"' || after == '$' || after == m_escape) {
          ch = m_scanner.next();
        }
        // Otherwise the escape itself is written (a second time with raw_escapes, as BuildKit).
      }
      append_rune(frame.text, ch);
    }
  }

  // processDollar, split at the points where BuildKit recurses into processStopOn.
  Result<Outcome> step_dollar(std::optional<std::string> child) {
    Frame& frame = m_stack.back();
    switch (frame.stage) {
    case 0:
      return dollar_start(frame);
    case 1:
      return dollar_modifier(frame, std::move(*child));
    case 2:
      frame.text = std::move(*child);
      frame.stage = 3;
      return push_word('}', true);
    default:
      return dollar_replace(frame, std::move(*child));
    }
  }

  Result<Outcome> dollar_start(Frame& frame) {
    frame.start = m_scanner.offset();
    m_scanner.next(); // the `$`
    if (m_scanner.peek() != '{') {
      std::string name = process_name();
      if (name.empty()) {
        return done("$");
      }
      const auto value = lookup(name);
      if (!value && m_options.skip_unset) {
        return done("$" + name);
      }
      return done(std::string(value.value_or("")));
    }
    m_scanner.next(); // the `{`
    const Rune first = m_scanner.peek();
    if (first == k_eof) {
      return fail(Code::dockerfile,
                  "bad substitution: missing '}' in " + snippet(frame.start, m_source.size()));
    }
    if (first == '{' || first == '}' || first == ':') {
      m_scanner.next();
      return fail(Code::dockerfile, "bad substitution: " + substitution_text(frame.start));
    }
    frame.name = process_name();
    Rune ch = m_scanner.next();
    frame.op_text = rune_text(ch);
    switch (ch) {
    case '}': {
      const auto value = lookup(frame.name);
      if (!value && m_options.skip_unset) {
        return done("${" + frame.name + "}");
      }
      return done(std::string(value.value_or("")));
    }
    case ':':
      // The colon forms: whatever follows the `:` is the modifier; it is checked only after its
      // word is read, as BuildKit does (so ${a:=${} reports the inner error).
      frame.null_is_unset = true;
      ch = m_scanner.next();
      frame.op_text += rune_text(ch);
      [[fallthrough]];
    case '+':
    case '-':
    case '?':
    case '#':
    case '%': {
      const bool pattern = ch == '#' || ch == '%';
      if (frame.null_is_unset && pattern) {
        return unsupported_modifier(frame);
      }
      frame.op = ch;
      frame.stage = 1;
      // A pattern keeps its escapes: `\*` must reach the pattern compiler as an escaped star.
      return push_word('}', pattern);
    }
    case '/':
      frame.replace_all = m_scanner.peek() == '/';
      if (frame.replace_all) {
        m_scanner.next();
      }
      frame.stage = 2;
      return push_word('/', true);
    default:
      if (ch == k_eof) {
        return fail(Code::dockerfile,
                    "bad substitution: missing '}' in " + snippet(frame.start, m_source.size()));
      }
      return unsupported_modifier(frame);
    }
  }

  Result<Outcome> dollar_modifier(Frame& frame, std::string word) {
    const auto value = lookup(frame.name);
    if (!value && m_options.skip_unset) {
      return done("${" + frame.name + frame.op_text + word + "}");
    }
    const bool null_or_unset = !value || (frame.null_is_unset && value->empty());
    switch (frame.op) {
    case '-':
      return done(null_or_unset ? std::move(word) : std::string(*value));
    case '+':
      return done(null_or_unset ? std::string() : std::move(word));
    case '?':
      if (!value) {
        return fail(Code::dockerfile,
                    frame.name + ": " + (word.empty() ? "is not allowed to be unset" : word));
      }
      if (frame.null_is_unset && value->empty()) {
        return fail(Code::dockerfile,
                    frame.name + ": " + (word.empty() ? "is not allowed to be empty" : word));
      }
      return done(std::string(*value));
    case '#':
    case '%': {
      // `##`/`%%` are recognised on the expanded word, as BuildKit does: ${v#$P} with P="#x" is
      // ${v##x}.
      const bool longest = !word.empty() && static_cast<unsigned char>(word.front()) == frame.op;
      if (longest) {
        word.erase(0, 1);
      }
      const Stars stars = longest ? Stars::longest : Stars::shortest;
      const std::string_view text = value.value_or("");
      if (frame.op == '#') {
        MB_TRY_ASSIGN(Pattern compiled, compile(frame, word, stars));
        const auto match = compiled.find(text, 0, Anchor::start);
        return done(std::string(text.substr(match ? match->end : 0)));
      }
      // Go's regexp cannot find the shortest match ending at the right edge, so BuildKit reverses
      // value and pattern and trims a prefix; reversing by runes turns invalid bytes into U+FFFD.
      MB_TRY_ASSIGN(Pattern compiled, compile(frame, reverse_pattern(word), stars));
      const std::string reversed = reverse_string(text);
      const auto match = compiled.find(reversed, 0, Anchor::start);
      return done(reverse_string(std::string_view(reversed).substr(match ? match->end : 0)));
    }
    default:
      return unsupported_modifier(frame);
    }
  }

  Result<Outcome> dollar_replace(Frame& frame, std::string replacement) {
    const auto value = lookup(frame.name);
    if (!value && m_options.skip_unset) {
      // BuildKit writes ${v//p/r} back with a single slash.
      return done("${" + frame.name + "/" + frame.text + "/" + replacement + "}");
    }
    MB_TRY_ASSIGN(Pattern compiled, compile(frame, frame.text, Stars::longest));
    const std::string_view text = value.value_or("");
    if (frame.replace_all) {
      return done(replace_all(compiled, text, replacement));
    }
    // The first replacement is plain text: no `$0` expansion here, unlike ${v//p/r}.
    const auto match = compiled.find(text, 0, Anchor::anywhere);
    if (!match) {
      return done(std::string(text));
    }
    std::string out(text.substr(0, match->begin));
    out += replacement;
    out += text.substr(match->end);
    return done(std::move(out));
  }

  Result<Pattern> compile(const Frame& frame, std::string_view glob, Stars stars) {
    auto compiled = Pattern::compile(glob, stars);
    if (!compiled) {
      return fail(Code::dockerfile, "bad substitution: invalid pattern in " +
                                        snippet(frame.start, m_scanner.offset()) + ": " +
                                        compiled.error().message());
    }
    return compiled;
  }

  Result<Outcome> unsupported_modifier(const Frame& frame) {
    return fail(Code::dockerfile, "bad substitution: unsupported modifier \"" + frame.op_text +
                                      "\" in " + substitution_text(frame.start));
  }

  // processName: letters, digits and `_`; or a run of digits; or one special parameter.
  std::string process_name() {
    std::string name;
    while (m_scanner.peek() != k_eof) {
      const Rune ch = m_scanner.peek();
      if (name.empty() && detail::is_digit(ch)) {
        while (m_scanner.peek() != k_eof && detail::is_digit(m_scanner.peek())) {
          append_rune(name, m_scanner.next());
        }
        return name;
      }
      if (name.empty() && is_special_parameter(ch)) {
        append_rune(name, m_scanner.next());
        return name;
      }
      if (!detail::is_letter(ch) && !detail::is_digit(ch) && ch != '_') {
        break;
      }
      append_rune(name, m_scanner.next());
    }
    return name;
  }

  std::optional<std::string_view> lookup(const std::string& name) {
    const auto value = m_env.get(name);
    (value ? m_matched : m_unmatched).insert(name);
    return value;
  }

  /// The ${...} that starts at `start`, up to its closing brace when that is near: "${a=b}".
  std::string substitution_text(std::size_t start) const {
    std::size_t end = m_scanner.offset();
    if (end > start && m_source[end - 1] != '}') {
      const std::size_t brace = m_source.find('}', end);
      if (brace != std::string_view::npos && brace - start < k_snippet_limit) {
        end = brace + 1;
      }
    }
    return snippet(start, end);
  }

  /// The source from `from` to `to`, cut at a character boundary when long.
  std::string snippet(std::size_t from, std::size_t to) const {
    std::string_view text = m_source.substr(from, to - from);
    if (text.size() <= k_snippet_limit) {
      return std::string(text);
    }
    std::size_t cut = k_snippet_limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) {
      --cut;
    }
    return std::string(text.substr(0, cut)) + "...";
  }

  std::string_view m_source;
  RuneScanner m_scanner;
  const Environment& m_env;
  Rune m_escape;
  ShellLexerOptions m_options;
  WordSplitter* m_words;
  std::vector<Frame> m_stack;
  std::set<std::string> m_matched;
  std::set<std::string> m_unmatched;
};

} // namespace

Result<Expansion> ShellLexer::process_word(std::string_view word, const Environment& env) const {
  Expander expander(word, env, m_escape, m_options, nullptr);
  MB_TRY_ASSIGN(std::string expanded, expander.run());
  return Expansion{std::move(expanded), expander.take_matched(), expander.take_unmatched()};
}

Result<WordsExpansion> ShellLexer::process_words(std::string_view word,
                                                 const Environment& env) const {
  WordSplitter splitter;
  Expander expander(word, env, m_escape, m_options, &splitter);
  MB_TRY(expander.run());
  return WordsExpansion{splitter.finish(), expander.take_matched(), expander.take_unmatched()};
}

} // namespace minibuild::dockerfile
