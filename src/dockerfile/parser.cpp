// Dockerfile parser: bytes → ParsedDockerfile, following BuildKit's frontend/dockerfile/parser
// rule for rule (see ../shared/conformance/buildkit-parser/README.md for the rules and the
// vectors). Where BuildKit's behaviour is odd but observable, it is kept and the comment says so;
// the few deliberate differences are listed in docs/parse-json.md ("Differences from BuildKit").
#include "go_unicode.hpp"
#include "parser_json.hpp"
#include "parser_shell_words.hpp"

#include <minibuild/dockerfile/parser.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::dockerfile {
namespace {

using detail::decode_rune;
using detail::DecodedRune;
using detail::go_quote;
using detail::is_space;
using detail::is_space_byte;
using detail::Rune;
using detail::trim_left_space;
using detail::trim_space;

/// BuildKit reads the file with a bufio.Scanner whose token limit is 64 KiB, so a physical line
/// (without its '\n') longer than this makes `docker build` fail. We fail the same way.
constexpr std::size_t k_max_line_bytes = 64 * 1024 - 1;

/// ONBUILD wraps a whole instruction, so `ONBUILD ONBUILD ...` nests. BuildKit accepts any depth
/// here (its instruction layer rejects even one level); we stop at this depth so that a hostile
/// file cannot exhaust the stack in the parser, the dumps or Node's destructor, nor multiply its
/// memory (each level keeps its own copy of the rest of the line).
constexpr int k_max_onbuild_depth = 16;

constexpr std::string_view k_bom = "\xEF\xBB\xBF";

Error dockerfile_error(std::string message, SourceRange where) {
  return Error(Code::dockerfile, std::move(message)).at(std::move(where));
}

/// Splits the text into physical lines the way bufio.Scanner with BuildKit's scanLines does:
/// each line keeps its '\n'; a last line without one still counts.
class LineReader {
public:
  LineReader(std::string_view text, const std::string& file) : m_text(text), m_file(file) {}

  /// The next physical line (with its line ending) in `line`; false at the end of the text.
  Result<bool> next(std::string_view& line) {
    if (m_pos >= m_text.size()) {
      return false;
    }
    const std::size_t newline = m_text.find('\n', m_pos);
    const std::size_t end = newline == std::string_view::npos ? m_text.size() : newline + 1;
    const std::size_t content = (newline == std::string_view::npos ? end : newline) - m_pos;
    ++m_line;
    if (content > k_max_line_bytes) {
      return fail(dockerfile_error("line " + std::to_string(m_line) + " is " +
                                       std::to_string(content) + " bytes long; BuildKit accepts " +
                                       "at most " + std::to_string(k_max_line_bytes) +
                                       " bytes per Dockerfile line",
                                   {m_file, m_line, 0, m_line}));
    }
    line = m_text.substr(m_pos, end - m_pos);
    m_pos = end;
    return true;
  }

  /// 1-based number of the line last returned by next() (0 before the first).
  int line_number() const { return m_line; }

private:
  std::string_view m_text;
  const std::string& m_file;
  std::size_t m_pos = 0;
  int m_line = 0;
};

/// bytes.TrimRight(line, "\r\n").
std::string_view trim_newline(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  return line;
}

/// BuildKit's isComment: the first character after leading (Unicode) whitespace is '#'.
bool is_comment(std::string_view line) {
  const std::string_view rest = trim_left_space(line);
  return !rest.empty() && rest.front() == '#';
}

/// Go regexp's `\s` (RE2 Perl class): ASCII space, \t, \n, \f, \r — not \v.
bool is_re_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/// reWhitespace / tokenWhitespace: `[\t\v\f\r ]`.
bool is_token_ws(char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/// The line-continuation rule: `([^E])E[ \t]*$|^E[ \t]*$`. Returns the line without the escape
/// and the blanks after it, and whether the line ends the instruction. Because the pattern looks
/// at one character only, `\\\` at the end (an escaped escape, then a real one) does not
/// continue either; BuildKit documents that quirk and we keep it.
std::pair<std::string_view, bool> trim_continuation(std::string_view line, char escape) {
  std::size_t end = line.size();
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) {
    --end;
  }
  if (end == 0 || line[end - 1] != escape) {
    return {line, true};
  }
  const std::size_t escape_pos = end - 1;
  if (escape_pos > 0 && line[escape_pos - 1] == escape) {
    return {line, true};
  }
  return {line.substr(0, escape_pos), false};
}

/// regexp.MustCompile(`[\t\v\f\r ]+`).Split(s, n), including Go's empty first/last pieces when
/// `s` starts or ends with whitespace (callers pass trimmed text, so they do not occur).
std::vector<std::string> split_whitespace(std::string_view s, int limit) {
  if (s.empty()) {
    return {std::string()};
  }
  std::vector<std::string> pieces;
  std::size_t begin = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t match = pos;
    while (match < s.size() && !is_token_ws(s[match])) {
      ++match;
    }
    if (match == s.size()) {
      break;
    }
    std::size_t match_end = match;
    while (match_end < s.size() && is_token_ws(s[match_end])) {
      ++match_end;
    }
    if (limit > 0 && static_cast<int>(pieces.size()) == limit - 1) {
      break;
    }
    pieces.emplace_back(s.substr(begin, match - begin));
    begin = match_end;
    pos = match_end;
  }
  // Go appends the remainder unless the last match started at the very end, which a non-empty
  // match cannot.
  pieces.emplace_back(s.substr(begin));
  return pieces;
}

/// BuildKit's extractBuilderFlags: leading `--name[=value]` words. It walks bytes, not runes, so
/// the bytes 0x85 and 0xA0 separate words, and every byte >= 0x80 of a flag is re-encoded as the
/// UTF-8 of the code point with that value (Go's `string(rune(b))`). Quotes are removed and '\'
/// (always '\', whatever `# escape=` says) escapes the next byte. Returns the rest of the line
/// (untrimmed) and the flags.
std::pair<std::string_view, std::vector<std::string>> extract_flags(std::string_view line) {
  enum class Phase { spaces, word, quote };
  std::vector<std::string> flags;
  Phase phase = Phase::spaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  char ch = 0;
  const std::size_t n = line.size();
  for (std::size_t pos = 0; pos <= n; ++pos) {
    if (pos != n) {
      ch = line[pos];
    }
    if (phase == Phase::spaces) {
      if (pos == n) {
        break;
      }
      if (is_space_byte(ch)) {
        continue;
      }
      if (ch != '-' || pos + 1 == n || line[pos + 1] != '-') {
        return {line.substr(pos), std::move(flags)};
      }
      phase = Phase::word;
    }
    if (pos == n) {
      if (word != "--" && (blank_ok || !word.empty())) {
        flags.push_back(std::move(word));
      }
      break;
    }
    if (phase == Phase::word) {
      if (is_space_byte(ch)) {
        phase = Phase::spaces;
        if (word == "--") {
          return {line.substr(pos), std::move(flags)};
        }
        if (blank_ok || !word.empty()) {
          flags.push_back(word);
        }
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = Phase::quote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == n) {
          continue;
        }
        ch = line[++pos];
      }
      detail::append_rune(word, static_cast<unsigned char>(ch));
      continue;
    }
    // Phase::quote
    if (ch == quote) {
      phase = Phase::word;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == n) {
        phase = Phase::word;
        continue;
      }
      ch = line[++pos];
    }
    detail::append_rune(word, static_cast<unsigned char>(ch));
  }
  return {std::string_view(), std::move(flags)};
}

/// BuildKit's parseWords (ENV, LABEL, ARG): splits on Unicode whitespace outside quotes and keeps
/// quotes and escapes in the words. Decodes runes, so invalid bytes become U+FFFD.
std::vector<std::string> parse_words(std::string_view rest, char escape) {
  enum class Phase { spaces, word, quote };
  std::vector<std::string> words;
  Phase phase = Phase::spaces;
  std::string word;
  Rune quote = 0;
  bool blank_ok = false;
  Rune ch = 0;
  std::size_t width = 0;
  const std::size_t n = rest.size();
  const auto esc = static_cast<Rune>(static_cast<unsigned char>(escape));
  for (std::size_t pos = 0; pos <= n; pos += width) {
    if (pos != n) {
      const DecodedRune d = decode_rune(rest, pos);
      ch = d.rune;
      width = d.size;
    }
    if (phase == Phase::spaces) {
      if (pos == n) {
        break;
      }
      if (is_space(ch)) {
        continue;
      }
      phase = Phase::word;
    }
    if (pos == n) {
      if (blank_ok || !word.empty()) {
        words.push_back(std::move(word));
      }
      break;
    }
    if (phase == Phase::word) {
      if (is_space(ch)) {
        phase = Phase::spaces;
        if (blank_ok || !word.empty()) {
          words.push_back(word);
        }
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = Phase::quote;
      }
      if (ch == esc) {
        if (pos + width == n) {
          continue; // a lone escape at the very end is dropped
        }
        detail::append_rune(word, ch);
        pos += width;
        const DecodedRune d = decode_rune(rest, pos);
        ch = d.rune;
        width = d.size;
      }
      detail::append_rune(word, ch);
      continue;
    }
    // Phase::quote
    if (ch == quote) {
      phase = Phase::word;
    }
    if (ch == esc && quote != '\'') {
      if (pos + width == n) {
        phase = Phase::word;
        continue;
      }
      pos += width;
      detail::append_rune(word, ch);
      const DecodedRune d = decode_rune(rest, pos);
      ch = d.rune;
      width = d.size;
    }
    detail::append_rune(word, ch);
  }
  return words;
}

std::string ascii_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - ('a' - 'A'));
    }
  }
  return out;
}

/// How each instruction's arguments are shaped (BuildKit's dispatch table).
enum class Rule {
  maybe_json,         ///< RUN CMD ENTRYPOINT SHELL: JSON array, else the text as one argument
  maybe_json_to_list, ///< ADD COPY VOLUME: JSON array, else whitespace-separated words
  whitespace,         ///< FROM EXPOSE: whitespace-separated words
  name_val,           ///< ENV LABEL: (key, value, "=" | "") triples
  name_or_name_val,   ///< ARG: words
  string,             ///< MAINTAINER USER WORKDIR STOPSIGNAL: the text as one argument
  health,             ///< HEALTHCHECK: type word, then like CMD
  sub_command,        ///< ONBUILD: a nested instruction
  ignore,             ///< anything else: one empty argument
};

Rule rule_for(std::string_view keyword) {
  struct Entry {
    std::string_view keyword;
    Rule rule;
  };
  static constexpr std::array<Entry, 18> k_table{{
      {"add", Rule::maybe_json_to_list},
      {"arg", Rule::name_or_name_val},
      {"cmd", Rule::maybe_json},
      {"copy", Rule::maybe_json_to_list},
      {"entrypoint", Rule::maybe_json},
      {"env", Rule::name_val},
      {"expose", Rule::whitespace},
      {"from", Rule::whitespace},
      {"healthcheck", Rule::health},
      {"label", Rule::name_val},
      {"maintainer", Rule::string},
      {"onbuild", Rule::sub_command},
      {"run", Rule::maybe_json},
      {"shell", Rule::maybe_json},
      {"stopsignal", Rule::string},
      {"user", Rule::string},
      {"volume", Rule::maybe_json_to_list},
      {"workdir", Rule::string},
  }};
  for (const Entry& entry : k_table) {
    if (entry.keyword == keyword) {
      return entry.rule;
    }
  }
  return Rule::ignore;
}

/// A heredoc found on an instruction line, before its body is read.
struct HeredocSpec {
  std::string name;
  std::optional<int> fd;
  bool expand = true;
  bool chomp = false;
};

std::size_t count_quotes(std::string_view word) {
  return static_cast<std::size_t>(
      std::count_if(word.begin(), word.end(), [](char c) { return c == '\'' || c == '"'; }));
}

class Parser {
public:
  Parser(std::string_view text, std::string file)
      : m_file(std::move(file)), m_reader(text, m_file) {}

  Result<ParsedDockerfile> run() {
    ParsedDockerfile parsed;
    parsed.file = m_file;
    std::string_view raw;
    while (true) {
      MB_TRY_ASSIGN(const bool got, m_reader.next(raw));
      if (!got) {
        break;
      }
      const int start_line = m_reader.line_number();
      std::string_view bytes = raw;
      if (start_line == 1 && bytes.substr(0, k_bom.size()) == k_bom) {
        bytes.remove_prefix(k_bom.size());
      }
      bytes = trim_newline(bytes);
      const std::string_view token = trim_left_space(bytes);
      const int column = static_cast<int>(raw.size() - trim_left_space(raw).size()) + 1;
      MB_TRY(directive(token, start_line, column));
      if (is_comment(token)) {
        layer_boundary(token);
      }
      auto [first, end_of_instruction] =
          trim_continuation(is_comment(token) ? std::string_view() : token, escape());
      if (end_of_instruction && first.empty()) {
        continue;
      }

      std::string joined(first);
      int empty_line = 0;
      while (!end_of_instruction) {
        MB_TRY_ASSIGN(const bool more, m_reader.next(raw));
        if (!more) {
          break; // a continuation at the end of the file simply ends the instruction
        }
        const std::string_view line = trim_newline(raw);
        if (is_comment(raw)) {
          continue;
        }
        if (trim_left_space(line).empty()) {
          if (empty_line == 0) {
            empty_line = m_reader.line_number();
          }
          continue;
        }
        auto [part, last] = trim_continuation(line, escape());
        joined += part;
        end_of_instruction = last;
      }
      const int end_line = m_reader.line_number();
      const SourceRange where{m_file, start_line, 0, end_line};

      if (empty_line != 0) {
        m_warnings.push_back(
            {"empty continuation line " + std::to_string(empty_line) +
                 " inside the instruction that starts on line " + std::to_string(start_line) +
                 "; empty continuation lines will become errors in a future release",
             {m_file, empty_line, 0, empty_line}});
      }

      MB_TRY_ASSIGN(Node node, node_from_line(joined, 0, where));
      if (can_contain_heredoc(node) && joined.find("<<") != std::string::npos) {
        MB_TRY_ASSIGN(auto specs, heredocs_from_line(joined, where));
        for (HeredocSpec& spec : specs) {
          MB_TRY_ASSIGN(Heredoc heredoc, read_heredoc(std::move(spec), where));
          node.heredocs.push_back(std::move(heredoc));
        }
      }
      if (node.keyword == "from") {
        m_squash_group = 0; // a run of squashed instructions never crosses a stage boundary
      }
      node.squash_group = m_squash_group;
      parsed.instructions.push_back(std::move(node));
    }

    if (parsed.instructions.empty()) {
      return fail(dockerfile_error("file with no instructions", {m_file, 0, 0, 0}));
    }
    parsed.directives = m_directives;
    parsed.warnings = std::move(m_warnings);
    return parsed;
  }

private:
  char escape() const { return m_directives.escape; }

  /// minibuild's layer-boundary comments (docs/squash.md): `# minibuild:squash` opens a new run
  /// of instructions that fold into one layer, `# minibuild:layer` closes it. Only whole
  /// comment lines between instructions count (a comment inside a continuation is dropped by
  /// BuildKit's rules before it could mean anything); any other comment is just a comment.
  void layer_boundary(std::string_view comment) {
    comment.remove_prefix(1); // the '#'
    while (!comment.empty() && is_re_space(comment.front())) {
      comment.remove_prefix(1);
    }
    while (!comment.empty() && is_re_space(comment.back())) {
      comment.remove_suffix(1);
    }
    if (comment == "minibuild:squash") {
      m_squash_group = ++m_squash_groups;
    } else if (comment == "minibuild:layer") {
      m_squash_group = 0;
    }
  }

  /// One possible parser directive (`# key=value`) at the top of the file. Directive scanning
  /// stops for good at the first line that is not a known directive.
  Result<void> directive(std::string_view token, int line, int column) {
    if (m_directives_done) {
      return {};
    }
    // `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, by hand.
    std::size_t pos = 0;
    const auto ascii_alpha = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    };
    const auto ascii_alnum = [&](char c) { return ascii_alpha(c) || (c >= '0' && c <= '9'); };
    if (token.empty() || token[0] != '#') {
      m_directives_done = true;
      return {};
    }
    ++pos;
    while (pos < token.size() && is_re_space(token[pos])) {
      ++pos;
    }
    const std::size_t key_start = pos;
    if (pos < token.size() && ascii_alpha(token[pos])) {
      ++pos;
      while (pos < token.size() && ascii_alnum(token[pos])) {
        ++pos;
      }
    }
    const std::string_view key_text = token.substr(key_start, pos - key_start);
    while (pos < token.size() && is_re_space(token[pos])) {
      ++pos;
    }
    if (key_text.empty() || pos >= token.size() || token[pos] != '=' || pos + 1 >= token.size()) {
      m_directives_done = true;
      return {};
    }
    std::string_view value = token.substr(pos + 1);
    // `\s*(.+?)\s*$`: the value is trimmed, but an all-blank value keeps its last character.
    std::size_t lead = 0;
    while (lead < value.size() && is_re_space(value[lead])) {
      ++lead;
    }
    if (lead == value.size()) {
      value = value.substr(value.size() - 1);
    } else {
      value.remove_prefix(lead);
      while (is_re_space(value.back())) {
        value.remove_suffix(1);
      }
    }

    std::string key(key_text);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
    int* seen = nullptr;
    if (key == "escape") {
      seen = &m_escape_line;
    } else if (key == "syntax") {
      seen = &m_syntax_line;
    } else if (key == "check") {
      seen = &m_check_line;
    } else {
      m_directives_done = true;
      return {};
    }
    const SourceRange where{m_file, line, column, line};
    if (*seen != 0) {
      return fail(dockerfile_error("only one " + key + " parser directive can be used (the first " +
                                       "is on line " + std::to_string(*seen) + ")",
                                   where));
    }
    *seen = line;
    if (key == "escape") {
      if (value != "`" && value != "\\") {
        return fail(dockerfile_error("invalid escape token " + go_quote(value) +
                                         " in the escape parser directive: it must be ` or \\",
                                     where));
      }
      m_directives.escape = value[0];
    } else if (key == "syntax") {
      m_directives.syntax = std::string(value);
    } else {
      m_directives.check = std::string(value);
    }
    return {};
  }

  void warn_invalid_json(std::string_view keyword, const std::string& reason,
                         const SourceRange& where) {
    m_warnings.push_back({ascii_upper(keyword) +
                              " looks like a JSON exec form but is not valid JSON: " + reason +
                              "; treating it as shell form",
                          where});
  }

  /// JSON form if `rest` (after leading whitespace) starts with '[' and decodes; sets args and
  /// returns true. Returns false for the fallbacks, after warning when it looked like JSON.
  Result<bool> try_json(std::string_view rest, Node& node, const SourceRange& where) {
    const std::string_view text = trim_left_space(rest);
    if (text.empty() || text.front() != '[') {
      return false;
    }
    detail::JsonArray array = detail::decode_json_array(text);
    switch (array.kind) {
    case detail::JsonArray::Kind::strings:
      node.args = std::move(array.items);
      node.json_form = true;
      return true;
    case detail::JsonArray::Kind::non_string:
      return fail(dockerfile_error(
          "when using JSON array syntax, arrays must be comprised of strings only", where));
    case detail::JsonArray::Kind::invalid:
      warn_invalid_json(node.keyword, array.reason, where);
      return false;
    }
    return false;
  }

  Result<void> parse_maybe_json(std::string_view rest, Node& node, const SourceRange& where) {
    if (rest.empty()) {
      return {};
    }
    MB_TRY_ASSIGN(const bool json, try_json(rest, node, where));
    if (!json) {
      node.args.emplace_back(rest);
    }
    return {};
  }

  Result<void> parse_maybe_json_to_list(std::string_view rest, Node& node,
                                        const SourceRange& where) {
    MB_TRY_ASSIGN(const bool json, try_json(rest, node, where));
    if (!json && !rest.empty()) {
      node.args = split_whitespace(rest, -1);
    }
    return {};
  }

  Result<void> parse_name_val(std::string_view rest, Node& node, const SourceRange& where) {
    const std::vector<std::string> words = parse_words(rest, escape());
    if (words.empty()) {
      return {};
    }
    const std::string key = ascii_upper(node.keyword);
    if (words[0].find('=') == std::string::npos) {
      // Legacy `KEY name value...`: the value is the raw rest of the line.
      std::vector<std::string> parts = split_whitespace(rest, 2);
      if (parts.size() < 2) {
        return fail(dockerfile_error(key + " must have two arguments", where));
      }
      node.args = {std::move(parts[0]), std::move(parts[1]), ""};
      return {};
    }
    for (const std::string& word : words) {
      const std::size_t eq = word.find('=');
      if (eq == std::string::npos) {
        return fail(dockerfile_error("Syntax error - can't find = in " + go_quote(word) +
                                         ". Must be of the form: name=value",
                                     where));
      }
      node.args.push_back(word.substr(0, eq));
      node.args.push_back(word.substr(eq + 1));
      node.args.emplace_back("=");
    }
    return {};
  }

  Result<void> parse_health(std::string_view rest, Node& node, const SourceRange& where) {
    // Byte-wise, like BuildKit (so 0x85 and 0xA0 bytes also end the type word).
    std::size_t sep = 0;
    while (sep < rest.size() && !is_space_byte(rest[sep])) {
      ++sep;
    }
    std::size_t next = sep;
    while (next < rest.size() && is_space_byte(rest[next])) {
      ++next;
    }
    if (sep == 0) {
      return {};
    }
    Node command;
    command.keyword = node.keyword;
    MB_TRY(parse_maybe_json(rest.substr(next), command, where));
    node.args.emplace_back(rest.substr(0, sep));
    node.args.insert(node.args.end(), std::make_move_iterator(command.args.begin()),
                     std::make_move_iterator(command.args.end()));
    node.json_form = command.json_form;
    return {};
  }

  /// BuildKit's newNodeFromLine: keyword, flags, then the per-instruction argument rule.
  Result<Node> node_from_line(std::string_view line, int depth, const SourceRange& where) {
    Node node;
    node.original = std::string(line);
    node.start_line = where.line;
    node.end_line = where.end_line;

    const std::string_view text = trim_space(line);
    std::size_t split = 0;
    while (split < text.size() && !is_token_ws(text[split])) {
      ++split;
    }
    node.keyword = detail::go_to_lower(text.substr(0, split));
    std::string_view rest;
    if (split < text.size()) {
      std::size_t after = split;
      while (after < text.size() && is_token_ws(text[after])) {
        ++after;
      }
      auto [remainder, flags] = extract_flags(text.substr(after));
      node.flags = std::move(flags);
      rest = trim_space(remainder);
    }

    switch (rule_for(node.keyword)) {
    case Rule::maybe_json:
      MB_TRY(parse_maybe_json(rest, node, where));
      break;
    case Rule::maybe_json_to_list:
      MB_TRY(parse_maybe_json_to_list(rest, node, where));
      break;
    case Rule::whitespace:
      if (!rest.empty()) {
        node.args = split_whitespace(rest, -1);
      }
      break;
    case Rule::name_val:
      MB_TRY(parse_name_val(rest, node, where));
      break;
    case Rule::name_or_name_val:
      node.args = parse_words(rest, escape());
      break;
    case Rule::string:
      if (!rest.empty()) {
        node.args.emplace_back(rest);
      }
      break;
    case Rule::health:
      MB_TRY(parse_health(rest, node, where));
      break;
    case Rule::sub_command:
      if (!rest.empty()) {
        if (depth + 1 > k_max_onbuild_depth) {
          return fail(dockerfile_error("ONBUILD is nested more than " +
                                           std::to_string(k_max_onbuild_depth) + " levels deep",
                                       where));
        }
        MB_TRY_ASSIGN(Node child, node_from_line(rest, depth + 1, where));
        node.nested.push_back(std::move(child));
      }
      break;
    case Rule::ignore:
      // Unknown instructions keep their keyword and one empty argument; the instruction layer
      // reports them.
      node.args.emplace_back();
      break;
    }
    return node;
  }

  /// Only RUN, COPY and ADD in shell form carry heredocs, also when wrapped in ONBUILD (one
  /// level, as BuildKit checks).
  static bool can_contain_heredoc(const Node& node) {
    const Node* target = &node;
    if (node.keyword == "onbuild" && !node.nested.empty()) {
      target = &node.nested.front();
    }
    const std::string& keyword = target->keyword;
    return (keyword == "run" || keyword == "copy" || keyword == "add") && !target->json_form;
  }

  /// BuildKit's ParseHeredoc: `^(\d*)<<(-?)\s*([^<]*)$`, then the delimiter is lexed twice (with
  /// and without quotes) to find its name and whether any part of it was quoted.
  Result<std::optional<HeredocSpec>> parse_heredoc(std::string_view word,
                                                   const SourceRange& where) {
    std::size_t pos = 0;
    while (pos < word.size() && word[pos] >= '0' && word[pos] <= '9') {
      ++pos;
    }
    const std::string_view digits = word.substr(0, pos);
    if (word.substr(pos, 2) != "<<") {
      return std::optional<HeredocSpec>();
    }
    pos += 2;
    HeredocSpec spec;
    if (pos < word.size() && word[pos] == '-') {
      spec.chomp = true;
      ++pos;
    }
    while (pos < word.size() && is_re_space(word[pos])) {
      ++pos;
    }
    const std::string_view rest = word.substr(pos);
    if (rest.empty() || rest.find('<') != std::string_view::npos) {
      return std::optional<HeredocSpec>();
    }
    if (!digits.empty()) {
      int fd = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
      if (ec == std::errc() && end == digits.data() + digits.size()) {
        spec.fd = fd;
      }
    }

    auto [words, error] = detail::ShellWords(rest, {false, false}).words();
    if (error) {
      return fail(
          dockerfile_error("invalid heredoc delimiter " + go_quote(word) + ": " + *error, where));
    }
    if (words.size() != 1) {
      return std::optional<HeredocSpec>();
    }
    auto [raw_words, raw_error] = detail::ShellWords(rest, {true, false}).words();
    if (raw_error) {
      return fail(dockerfile_error(
          "invalid heredoc delimiter " + go_quote(word) + ": " + *raw_error, where));
    }
    if (raw_words.size() != words.size()) {
      return fail(dockerfile_error(
          "internal lexing of heredoc produced inconsistent results: " + std::string(rest), where));
    }
    spec.expand = count_quotes(words[0]) == count_quotes(raw_words[0]);
    spec.name = std::move(words[0]);
    return std::optional<HeredocSpec>(std::move(spec));
  }

  /// Every heredoc start on the line, in order. BuildKit lexes the whole line (keyword and flags
  /// included) keeping quotes and escapes, and treats a lexing error as "no heredocs".
  Result<std::vector<HeredocSpec>> heredocs_from_line(std::string_view line,
                                                      const SourceRange& where) {
    auto [words, error] = detail::ShellWords(line, {true, true}).words();
    std::vector<HeredocSpec> specs;
    if (error) {
      return specs;
    }
    for (const std::string& word : words) {
      MB_TRY_ASSIGN(auto spec, parse_heredoc(word, where));
      if (spec) {
        specs.push_back(std::move(*spec));
      }
    }
    return specs;
  }

  static std::string_view trim_leading_tabs(std::string_view text) {
    while (!text.empty() && text.front() == '\t') {
      text.remove_prefix(1);
    }
    return text;
  }

  /// Reads one heredoc body: every following line up to the one equal to the delimiter (after
  /// removing leading tabs for `<<-`). Body lines keep their line endings.
  Result<Heredoc> read_heredoc(HeredocSpec spec, const SourceRange& where) {
    Heredoc heredoc;
    heredoc.name = std::move(spec.name);
    heredoc.expand = spec.expand;
    heredoc.chomp = spec.chomp;
    heredoc.fd = spec.fd;
    heredoc.start_line = m_reader.line_number() + 1;
    std::string_view raw;
    while (true) {
      MB_TRY_ASSIGN(const bool got, m_reader.next(raw));
      if (!got) {
        break;
      }
      std::string_view candidate = trim_newline(raw);
      if (heredoc.chomp) {
        candidate = trim_leading_tabs(candidate);
      }
      if (candidate == heredoc.name) {
        heredoc.end_line = m_reader.line_number();
        return heredoc;
      }
      heredoc.content += heredoc.chomp ? trim_leading_tabs(raw) : raw;
    }
    return fail(dockerfile_error("unterminated heredoc " + go_quote(heredoc.name) +
                                     " started on line " + std::to_string(where.line) +
                                     ": the file ends before a line " + go_quote(heredoc.name),
                                 {m_file, where.line, 0, m_reader.line_number()}));
  }

  std::string m_file;
  LineReader m_reader;
  Directives m_directives;
  bool m_directives_done = false;
  int m_squash_group = 0;  // the run the next instruction belongs to (0: none)
  int m_squash_groups = 0; // `# minibuild:squash` lines seen so far
  int m_escape_line = 0;
  int m_syntax_line = 0;
  int m_check_line = 0;
  std::vector<Warning> m_warnings;
};

} // namespace

Result<ParsedDockerfile> parse_dockerfile(std::string_view text, std::string file_name) {
  return Parser(text, std::move(file_name)).run();
}

} // namespace minibuild::dockerfile
