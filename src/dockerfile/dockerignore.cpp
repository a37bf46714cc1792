// .dockerignore, following moby/patternmatcher (ignorefile/ignorefile.go, patternmatcher.go) and
// the directory skipping of tonistiigi/fsutil (filter.go).
//
// patternmatcher turns each pattern into one of four match kinds: an exact string, a prefix
// ("dir/**"), a suffix ("**/name"), or a Go regexp built by translating the glob. The regexp is
// where the edge cases live (see the header), so this file translates the glob to the same regexp
// text and then runs that text through a small parser and NFA for the part of Go's RE2 syntax the
// translation can produce. Nothing here backtracks: matching is linear in the path length.
#include "go_unicode.hpp"
#include "nfa.hpp"

#include <minibuild/dockerfile/dockerignore.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::dockerfile {

namespace {

using detail::append_rune;
using detail::Assertion;
using detail::decode_rune;
using detail::k_eof;
using detail::k_rune_error;
using detail::Op;
using detail::Rune;
using detail::RuneClass;
using detail::RuneRange;
using detail::RuneScanner;
using detail::trim_space;

/// bufio.Scanner gives up on a line (newline included) longer than its 64 KiB buffer.
constexpr std::size_t k_max_line_bytes = 64 * 1024 - 1;
constexpr Rune k_max_rune = 0x10FFFF;

// ---------------------------------------------------------------------------------------------
// Go's strings and path/filepath helpers, Unix flavour.

/// filepath.Clean: the shortest equivalent path, purely lexically.
std::string clean_path(std::string_view path) {
  if (path.empty()) {
    return ".";
  }
  const bool rooted = path[0] == '/';
  const std::size_t n = path.size();
  std::string out;
  std::size_t r = 0;
  std::size_t dotdot = 0;
  if (rooted) {
    out.push_back('/');
    r = 1;
    dotdot = 1;
  }
  while (r < n) {
    if (path[r] == '/') {
      ++r;
    } else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
      ++r;
    } else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
      r += 2;
      if (out.size() > dotdot) {
        std::size_t w = out.size() - 1;
        while (w > dotdot && out[w] != '/') {
          --w;
        }
        out.resize(w);
      } else if (!rooted) {
        if (!out.empty()) {
          out.push_back('/');
        }
        out += "..";
        dotdot = out.size();
      }
    } else {
      if ((rooted && out.size() != 1) || (!rooted && !out.empty())) {
        out.push_back('/');
      }
      for (; r < n && path[r] != '/'; ++r) {
        out.push_back(path[r]);
      }
    }
  }
  return out.empty() ? std::string(".") : out;
}

/// filepath.Dir.
std::string dir_of(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return clean_path(slash == std::string_view::npos ? std::string_view()
                                                    : path.substr(0, slash + 1));
}

/// strings.Split(text, "/").
std::vector<std::string_view> split_slash(std::string_view text) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t slash = text.find('/');
    parts.push_back(text.substr(0, slash));
    if (slash == std::string_view::npos) {
      return parts;
    }
    text.remove_prefix(slash + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// filepath.Match's syntax check. patternmatcher.New calls Match(pattern, ".") only for its error;
// Match parses every chunk of the pattern even after a mismatch, so the error means exactly "some
// chunk is malformed".

/// getEsc: one class character, possibly escaped, that must be followed by more pattern.
bool class_char_ok(std::string_view& chunk) {
  if (chunk.empty() || chunk[0] == '-' || chunk[0] == ']') {
    return false;
  }
  if (chunk[0] == '\\') {
    chunk.remove_prefix(1);
    if (chunk.empty()) {
      return false;
    }
  }
  const auto decoded = decode_rune(chunk, 0);
  if (decoded.rune == k_rune_error && decoded.size == 1) {
    return false;
  }
  chunk.remove_prefix(decoded.size);
  return !chunk.empty();
}

bool chunk_syntax_ok(std::string_view chunk) {
  while (!chunk.empty()) {
    switch (chunk[0]) {
    case '[': {
      chunk.remove_prefix(1);
      if (!chunk.empty() && chunk[0] == '^') {
        chunk.remove_prefix(1);
      }
      for (int ranges = 0;; ++ranges) {
        if (!chunk.empty() && chunk[0] == ']' && ranges > 0) {
          chunk.remove_prefix(1);
          break;
        }
        if (!class_char_ok(chunk)) {
          return false;
        }
        if (chunk[0] == '-') {
          chunk.remove_prefix(1);
          if (!class_char_ok(chunk)) {
            return false;
          }
        }
      }
      break;
    }
    case '\\':
      chunk.remove_prefix(1);
      if (chunk.empty()) {
        return false;
      }
      chunk.remove_prefix(1);
      break;
    default:
      chunk.remove_prefix(1);
      break;
    }
  }
  return true;
}

bool glob_syntax_ok(std::string_view pattern) {
  while (!pattern.empty()) {
    // scanChunk: skip the stars, then take everything up to the next star outside [...].
    while (!pattern.empty() && pattern[0] == '*') {
      pattern.remove_prefix(1);
    }
    bool in_range = false;
    std::size_t i = 0;
    for (; i < pattern.size(); ++i) {
      const char c = pattern[i];
      if (c == '\\') {
        if (i + 1 < pattern.size()) {
          ++i;
        }
      } else if (c == '[') {
        in_range = true;
      } else if (c == ']') {
        in_range = false;
      } else if (c == '*' && !in_range) {
        break;
      }
    }
    if (!chunk_syntax_ok(pattern.substr(0, i))) {
      return false;
    }
    pattern.remove_prefix(i);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The Go regexp subset. Syntax as regexp/syntax parses it with the Perl flags regexp.Compile uses
// (ClassNL, OneLine, PerlX, UnicodeGroups): `^` and `$` match only at the ends of the text, `.`
// does not match a newline, `[^...]` does.

RuneClass normalized(RuneClass ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const RuneRange& a, const RuneRange& b) { return a.lo < b.lo; });
  RuneClass out;
  for (const RuneRange& range : ranges) {
    if (!out.empty() && range.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, range.hi);
    } else {
      out.push_back(range);
    }
  }
  return out;
}

RuneClass complement(const RuneClass& ranges) {
  RuneClass out;
  Rune next = 0;
  for (const RuneRange& range : normalized(ranges)) {
    if (range.lo > next) {
      out.push_back({next, range.lo - 1});
    }
    next = range.hi + 1;
  }
  if (next <= k_max_rune) {
    out.push_back({next, k_max_rune});
  }
  return out;
}

void append_all(RuneClass& to, const RuneClass& from) {
  to.insert(to.end(), from.begin(), from.end());
}

/// \d \s \w and their negations, ASCII only (regexp/syntax perl_groups.go).
std::optional<RuneClass> perl_class(char letter) {
  RuneClass positive;
  switch (letter) {
  case 'd':
  case 'D':
    positive = {{'0', '9'}};
    break;
  case 's':
  case 'S':
    positive = {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
    break;
  case 'w':
  case 'W':
    positive = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    break;
  default:
    return std::nullopt;
  }
  return letter >= 'a' ? positive : complement(positive);
}

/// [:alpha:] and friends, and their [:^alpha:] negations.
std::optional<RuneClass> posix_class(std::string_view name) {
  const bool negated = name.size() > 3 && name[2] == '^';
  const std::string_view base = name.substr(negated ? 3 : 2, name.size() - (negated ? 5 : 4));
  RuneClass positive;
  if (base == "alnum") {
    positive = {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}};
  } else if (base == "alpha") {
    positive = {{'A', 'Z'}, {'a', 'z'}};
  } else if (base == "ascii") {
    positive = {{0, 0x7F}};
  } else if (base == "blank") {
    positive = {{'\t', '\t'}, {' ', ' '}};
  } else if (base == "cntrl") {
    positive = {{0, 0x1F}, {0x7F, 0x7F}};
  } else if (base == "digit") {
    positive = {{'0', '9'}};
  } else if (base == "graph") {
    positive = {{'!', '~'}};
  } else if (base == "lower") {
    positive = {{'a', 'z'}};
  } else if (base == "print") {
    positive = {{' ', '~'}};
  } else if (base == "punct") {
    positive = {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}};
  } else if (base == "space") {
    positive = {{'\t', '\r'}, {' ', ' '}};
  } else if (base == "upper") {
    positive = {{'A', 'Z'}};
  } else if (base == "word") {
    positive = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  } else if (base == "xdigit") {
    positive = {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};
  } else {
    return std::nullopt;
  }
  return negated ? complement(positive) : positive;
}

int unhex(Rune c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

struct Node {
  enum class Kind : std::uint8_t {
    literal,
    any_but_newline,
    char_class,
    assertion,
    concat,
    star,
    plus,
    quest
  };
  Kind kind;
  Rune rune = 0;
  Assertion assertion = Assertion::begin_text;
  RuneClass ranges{};
  std::vector<Node> children{};
};

/// Why a regexp was refused: Go rejects it (the pattern fails when evaluated), or Go accepts it
/// and minibuild does not implement it (create() fails).
enum class RegexpFailure { invalid, unsupported };

struct RegexpError {
  RegexpFailure kind;
  std::string message;
};

template <typename T>
using RegexpResult = tl::expected<T, RegexpError>;

tl::unexpected<RegexpError> invalid(std::string message) {
  return tl::unexpected<RegexpError>(RegexpError{RegexpFailure::invalid, std::move(message)});
}
tl::unexpected<RegexpError> unsupported(std::string message) {
  return tl::unexpected<RegexpError>(RegexpError{RegexpFailure::unsupported, std::move(message)});
}

/// regexp/syntax's parser, for the operators a translated pattern can contain.
class RegexpParser {
public:
  explicit RegexpParser(std::string_view expr) : m_rest(expr) {}

  RegexpResult<Node> parse() {
    std::vector<std::vector<Node>> groups(1);
    bool last_was_repeat = false;
    while (!m_rest.empty()) {
      bool repeat = false;
      switch (m_rest[0]) {
      case '(':
        if (m_rest.size() >= 2 && m_rest[1] == '?') {
          return unsupported("group flags \"(?\"");
        }
        m_rest.remove_prefix(1);
        groups.emplace_back();
        break;
      case ')': {
        if (groups.size() == 1) {
          return invalid("unexpected )");
        }
        m_rest.remove_prefix(1);
        Node group = concat(std::move(groups.back()));
        groups.pop_back();
        groups.back().push_back(std::move(group));
        break;
      }
      case '|':
        return unsupported("alternation \"|\"");
      case '^':
        m_rest.remove_prefix(1);
        groups.back().push_back(assertion(Assertion::begin_text));
        break;
      case '$':
        m_rest.remove_prefix(1);
        groups.back().push_back(assertion(Assertion::end_text));
        break;
      case '.':
        m_rest.remove_prefix(1);
        groups.back().push_back(Node{.kind = Node::Kind::any_but_newline});
        break;
      case '[': {
        auto node = parse_class();
        if (!node) {
          return tl::unexpected(std::move(node).error());
        }
        groups.back().push_back(std::move(*node));
        break;
      }
      case '*':
      case '+':
      case '?': {
        const char op = m_rest[0];
        m_rest.remove_prefix(1);
        if (!m_rest.empty() && m_rest[0] == '?') {
          m_rest.remove_prefix(1); // non-greedy: the same language
        }
        if (last_was_repeat) {
          return invalid("invalid nested repetition operator");
        }
        auto& items = groups.back();
        if (items.empty()) {
          return invalid("missing argument to repetition operator");
        }
        const Node::Kind kind = op == '*'   ? Node::Kind::star
                                : op == '+' ? Node::Kind::plus
                                            : Node::Kind::quest;
        Node wrapped{.kind = kind};
        wrapped.children.push_back(std::move(items.back()));
        items.back() = std::move(wrapped);
        repeat = true;
        break;
      }
      case '\\': {
        auto ok = parse_backslash(groups.back());
        if (!ok) {
          return tl::unexpected(std::move(ok).error());
        }
        break;
      }
      default:
        groups.back().push_back(literal(next_rune()));
        break;
      }
      last_was_repeat = repeat;
    }
    if (groups.size() != 1) {
      return invalid("missing closing )");
    }
    return concat(std::move(groups.back()));
  }

private:
  static Node literal(Rune rune) { return Node{.kind = Node::Kind::literal, .rune = rune}; }
  static Node assertion(Assertion kind) {
    return Node{.kind = Node::Kind::assertion, .assertion = kind};
  }
  static Node class_node(RuneClass ranges) {
    return Node{.kind = Node::Kind::char_class, .ranges = normalized(std::move(ranges))};
  }
  static Node concat(std::vector<Node> items) {
    return Node{.kind = Node::Kind::concat, .children = std::move(items)};
  }

  Rune next_rune() {
    const auto decoded = decode_rune(m_rest, 0);
    m_rest.remove_prefix(decoded.size);
    return decoded.rune;
  }

  RegexpResult<void> parse_backslash(std::vector<Node>& items) {
    if (m_rest.size() >= 2) {
      switch (m_rest[1]) {
      case 'A':
        m_rest.remove_prefix(2);
        items.push_back(assertion(Assertion::begin_text));
        return {};
      case 'z':
        m_rest.remove_prefix(2);
        items.push_back(assertion(Assertion::end_text));
        return {};
      case 'b':
        m_rest.remove_prefix(2);
        items.push_back(assertion(Assertion::word_boundary));
        return {};
      case 'B':
        m_rest.remove_prefix(2);
        items.push_back(assertion(Assertion::not_word_boundary));
        return {};
      case 'C':
        return invalid("invalid escape sequence \\C");
      case 'Q': {
        // Everything up to \E (or the end, including what the translation appended) is literal.
        std::string_view text = m_rest.substr(2);
        const std::size_t end = text.find("\\E");
        m_rest = end == std::string_view::npos ? std::string_view() : text.substr(end + 2);
        text = text.substr(0, end);
        for (std::size_t pos = 0; pos < text.size();) {
          const auto decoded = decode_rune(text, pos);
          items.push_back(literal(decoded.rune));
          pos += decoded.size;
        }
        return {};
      }
      case 'p':
      case 'P':
        return unsupported("Unicode class \\" + std::string(1, m_rest[1]));
      default:
        if (auto perl = perl_class(m_rest[1])) {
          m_rest.remove_prefix(2);
          items.push_back(class_node(std::move(*perl)));
          return {};
        }
        break;
      }
    }
    auto rune = parse_escape();
    if (!rune) {
      return tl::unexpected(std::move(rune).error());
    }
    items.push_back(literal(*rune));
    return {};
  }

  /// parseEscape: `\` and one escaped character (octal, hex and C escapes, punctuation).
  RegexpResult<Rune> parse_escape() {
    const std::string_view start = m_rest;
    m_rest.remove_prefix(1);
    if (m_rest.empty()) {
      return invalid("trailing backslash at end of expression");
    }
    const Rune c = next_rune();
    const auto bad = [&] {
      return invalid("invalid escape sequence " +
                     std::string(start.substr(0, start.size() - m_rest.size())));
    };
    const auto is_octal = [&] { return !m_rest.empty() && m_rest[0] >= '0' && m_rest[0] <= '7'; };
    switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
      if (!is_octal()) {
        return bad(); // a backreference, which RE2 does not have
      }
      [[fallthrough]];
    case '0': {
      Rune value = c - '0';
      for (int i = 1; i < 3 && is_octal(); ++i) {
        value = value * 8 + (m_rest[0] - '0');
        m_rest.remove_prefix(1);
      }
      return value;
    }
    case 'x': {
      if (m_rest.empty()) {
        return bad();
      }
      Rune first = next_rune();
      if (first == '{') {
        Rune value = 0;
        int digits = 0;
        for (;;) {
          if (m_rest.empty()) {
            return bad();
          }
          const Rune digit = next_rune();
          if (digit == '}') {
            break;
          }
          const int v = unhex(digit);
          if (v < 0) {
            return bad();
          }
          value = value * 16 + v;
          if (value > k_max_rune) {
            return bad();
          }
          ++digits;
        }
        if (digits == 0) {
          return bad();
        }
        return value;
      }
      const Rune second = m_rest.empty() ? k_rune_error : next_rune();
      const int x = unhex(first);
      const int y = unhex(second);
      if (x < 0 || y < 0) {
        return bad();
      }
      return x * 16 + y;
    }
    case 'a':
      return 7;
    case 'f':
      return 12;
    case 'n':
      return 10;
    case 'r':
      return 13;
    case 't':
      return 9;
    case 'v':
      return 11;
    default: {
      const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (c < 0x80 && !alnum) {
        return c; // escaped punctuation is itself
      }
      return bad();
    }
    }
  }

  RegexpResult<Rune> parse_class_char() {
    if (m_rest.empty()) {
      return invalid("missing closing ]");
    }
    if (m_rest[0] == '\\') {
      return parse_escape();
    }
    return next_rune();
  }

  /// parseClass.
  RegexpResult<Node> parse_class() {
    m_rest.remove_prefix(1); // [
    bool negate = false;
    if (!m_rest.empty() && m_rest[0] == '^') {
      negate = true;
      m_rest.remove_prefix(1);
    }
    RuneClass ranges;
    bool first = true; // a `]` right after `[` or `[^` is a member
    while (m_rest.empty() || m_rest[0] != ']' || first) {
      first = false;
      if (m_rest.size() > 2 && m_rest[0] == '[' && m_rest[1] == ':') {
        // Go looks for the closing ":]" anywhere in the rest of the expression.
        const std::size_t close = m_rest.find(":]", 2);
        if (close != std::string_view::npos) {
          const std::string_view name = m_rest.substr(0, close + 2);
          auto members = posix_class(name);
          if (!members) {
            return invalid("invalid character class range " + std::string(name));
          }
          append_all(ranges, *members);
          m_rest.remove_prefix(close + 2);
          continue;
        }
      }
      if (m_rest.size() >= 2 && m_rest[0] == '\\') {
        if (m_rest[1] == 'p' || m_rest[1] == 'P') {
          return unsupported("Unicode class \\" + std::string(1, m_rest[1]));
        }
        if (auto perl = perl_class(m_rest[1])) {
          append_all(ranges, *perl);
          m_rest.remove_prefix(2);
          continue;
        }
      }
      auto lo = parse_class_char();
      if (!lo) {
        return tl::unexpected(std::move(lo).error());
      }
      Rune hi = *lo;
      if (m_rest.size() >= 2 && m_rest[0] == '-' && m_rest[1] != ']') {
        m_rest.remove_prefix(1);
        auto upper = parse_class_char();
        if (!upper) {
          return tl::unexpected(std::move(upper).error());
        }
        hi = *upper;
        if (hi < *lo) {
          return invalid("invalid character class range");
        }
      }
      ranges.push_back({*lo, hi});
    }
    m_rest.remove_prefix(1); // ]
    return class_node(negate ? complement(ranges) : std::move(ranges));
  }

  std::string_view m_rest;
};

/// A compiled regexp: a Thompson NFA program for the shared Pike VM (nfa.hpp).
class Regexp {
public:
  static RegexpResult<Regexp> compile(std::string_view expr) {
    auto tree = RegexpParser(expr).parse();
    if (!tree) {
      return tl::unexpected(std::move(tree).error());
    }
    Regexp re;
    re.emit(*tree);
    re.m_program.instructions.push_back({Op::match});
    return re;
  }

  /// Regexp.MatchString: is there a match anywhere in `text`?
  bool search(std::string_view text) const {
    detail::Matcher matcher;
    return matcher.find(m_program, text, 0, detail::Anchor::anywhere, detail::Want::any_match)
        .has_value();
  }

private:
  std::uint32_t here() const { return m_program.next_pc(); }

  void emit(const Node& node) {
    switch (node.kind) {
    case Node::Kind::literal:
      m_program.instructions.push_back({Op::rune, node.rune});
      break;
    case Node::Kind::any_but_newline:
      m_program.instructions.push_back({Op::any_but_newline});
      break;
    case Node::Kind::char_class:
      m_program.instructions.push_back(
          {Op::char_class, 0, static_cast<std::uint32_t>(m_program.classes.size())});
      m_program.classes.push_back(node.ranges);
      break;
    case Node::Kind::assertion:
      m_program.instructions.push_back({Op::assertion, 0, 0, 0, node.assertion});
      break;
    case Node::Kind::concat:
      for (const Node& child : node.children) {
        emit(child);
      }
      break;
    case Node::Kind::star: {
      const std::uint32_t split = here();
      m_program.instructions.push_back({Op::split});
      m_program.instructions[split].x = here();
      emit(node.children.front());
      m_program.instructions.push_back({Op::jump, 0, split});
      m_program.instructions[split].y = here();
      break;
    }
    case Node::Kind::plus: {
      const std::uint32_t begin = here();
      emit(node.children.front());
      m_program.instructions.push_back({Op::split, 0, begin, here() + 1});
      break;
    }
    case Node::Kind::quest: {
      const std::uint32_t split = here();
      m_program.instructions.push_back({Op::split});
      m_program.instructions[split].x = here();
      emit(node.children.front());
      m_program.instructions[split].y = here();
      break;
    }
    }
  }

  detail::Program m_program;
};

// ---------------------------------------------------------------------------------------------
// patternmatcher.Pattern.

enum class MatchKind { exact, prefix, suffix, regexp };

bool is_escaped_in_regexp(Rune ch) {
  switch (ch) {
  case '.':
  case '+':
  case '(':
  case ')':
  case '|':
  case '{':
  case '}':
  case '$':
    return true;
  default:
    return false;
  }
}

struct Translation {
  MatchKind kind;
  std::string regexp; ///< for MatchKind::regexp
};

/// Pattern.compile: the match kind and, for globs, the Go regexp text.
Translation translate(std::string_view pattern) {
  std::string regexp = "^";
  MatchKind kind = MatchKind::exact;
  RuneScanner scan(pattern);
  for (int i = 0; scan.peek() != k_eof; ++i) {
    const Rune ch = scan.next();
    if (ch == '*') {
      if (scan.peek() == '*') {
        scan.next();
        if (scan.peek() == '/') {
          scan.next(); // "**/" is "**"
        }
        if (scan.peek() == k_eof) {
          if (kind == MatchKind::exact) {
            kind = MatchKind::prefix;
          } else {
            regexp += ".*";
            kind = MatchKind::regexp;
          }
        } else {
          regexp += "(.*/)?";
          kind = MatchKind::regexp;
        }
        if (i == 0) {
          kind = MatchKind::suffix; // even when more follows, until a later wildcard
        }
      } else {
        regexp += "[^/]*";
        kind = MatchKind::regexp;
      }
    } else if (ch == '?') {
      regexp += "[^/]";
      kind = MatchKind::regexp;
    } else if (is_escaped_in_regexp(ch)) {
      regexp += '\\';
      append_rune(regexp, ch);
    } else if (ch == '\\') {
      if (scan.peek() != k_eof) {
        regexp += '\\';
        append_rune(regexp, scan.next()); // taken as is: `\d` stays a regexp escape
        kind = MatchKind::regexp;
      } else {
        regexp += '\\';
      }
    } else if (ch == '[' || ch == ']') {
      append_rune(regexp, ch);
      kind = MatchKind::regexp;
    } else {
      append_rune(regexp, ch);
    }
  }
  if (kind == MatchKind::regexp) {
    regexp += '$';
  }
  return {kind, std::move(regexp)};
}

struct CompiledPattern {
  IgnoreRule rule;
  MatchKind kind;
  std::optional<Regexp> regexp;
  std::string regexp_error; ///< a regexp Go refuses: every evaluation of this pattern fails
};

Result<bool> pattern_matches(const CompiledPattern& pattern, std::string_view path) {
  const std::string& text = pattern.rule.pattern;
  switch (pattern.kind) {
  case MatchKind::exact:
    return path == text;
  case MatchKind::prefix:
    return path.starts_with(std::string_view(text).substr(0, text.size() - 2)); // drop "**"
  case MatchKind::suffix: {
    const std::string_view suffix = std::string_view(text).substr(2); // drop "**"
    return path.ends_with(suffix) ||
           (!suffix.empty() && suffix[0] == '/' && path == suffix.substr(1)); // "**/a" is "a"
  }
  case MatchKind::regexp:
    if (!pattern.regexp) {
      return fail(Code::dockerfile,
                  "syntax error in pattern \"" + text + "\": " + pattern.regexp_error);
    }
    return pattern.regexp->search(path);
  }
  return fail(Code::internal, "dockerignore: unknown match kind");
}

/// A pattern that failed on the path itself already reported its error; on the parents Go
/// ignores errors (`match, _ = pattern.match(parent)`).
bool parent_matches(const CompiledPattern& pattern, const std::vector<std::string_view>& dirs) {
  std::string prefix;
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    if (i > 0) {
      prefix += '/';
    }
    prefix += dirs[i];
    const auto matched = pattern_matches(pattern, prefix);
    if (matched && *matched) {
      return true;
    }
  }
  return false;
}

/// fsutil's patternWithoutTrailingGlob.
std::string_view without_trailing_glob(std::string_view pattern) {
  if (pattern.ends_with("/**")) {
    pattern.remove_suffix(3);
  }
  if (pattern.ends_with("/*")) {
    pattern.remove_suffix(2);
  }
  return pattern;
}

struct Line {
  std::string pattern;
  int number;
};

/// ignorefile.ReadAll, keeping the line number of each pattern for messages.
Result<std::vector<Line>> read_lines(std::string_view text) {
  std::vector<Line> lines;
  int number = 0;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    std::string_view raw = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++number;
    if (raw.size() > k_max_line_bytes) {
      return fail(Error(Code::dockerfile, "line is longer than 64 KiB, which Docker cannot read "
                                          "either (bufio.Scanner: token too long)")
                      .at(SourceRange{".dockerignore", number, 0, number}));
    }
    if (raw.ends_with('\r')) {
      raw.remove_suffix(1);
    }
    if (number == 1 && raw.starts_with("\xEF\xBB\xBF")) {
      raw.remove_prefix(3);
    }
    if (raw.starts_with('#')) {
      continue; // a comment only in column 1
    }
    std::string_view pattern = trim_space(raw);
    if (pattern.empty()) {
      continue;
    }
    const bool exception = pattern[0] == '!';
    if (exception) {
      pattern = trim_space(pattern.substr(1));
    }
    std::string cleaned;
    if (!pattern.empty()) {
      cleaned = clean_path(pattern);
      if (cleaned.size() > 1 && cleaned[0] == '/') {
        cleaned.erase(0, 1);
      }
    }
    lines.push_back({exception ? "!" + cleaned : std::move(cleaned), number});
  }
  return lines;
}

} // namespace

struct IgnoreMatcher::Compiled {
  std::vector<CompiledPattern> patterns;
  std::vector<IgnoreRule> rules;
  bool exceptions = false;
  /// fsutil's onlyPrefixExcludeExceptions: no exception holds a wildcard once a trailing "/*" or
  /// "/**" is dropped, so comparing path prefixes is enough to decide whether to enter a directory.
  bool prefix_only_exceptions = true;
};

Result<std::vector<std::string>> parse_dockerignore(std::string_view text) {
  MB_TRY_ASSIGN(std::vector<Line> lines, read_lines(text));
  std::vector<std::string> patterns;
  patterns.reserve(lines.size());
  for (Line& line : lines) {
    patterns.push_back(std::move(line.pattern));
  }
  return patterns;
}

Result<IgnoreMatcher> IgnoreMatcher::create(const std::vector<std::string>& patterns) {
  auto compiled = std::make_shared<Compiled>();
  for (const std::string& original : patterns) {
    const std::string_view trimmed = trim_space(original);
    if (trimmed.empty()) {
      continue;
    }
    std::string pattern = clean_path(trimmed);
    bool exception = false;
    if (pattern[0] == '!') {
      if (pattern.size() == 1) {
        return fail(Code::dockerfile, "illegal exclusion pattern: \"!\"");
      }
      exception = true;
      pattern.erase(0, 1);
      compiled->exceptions = true;
    }
    if (!glob_syntax_ok(pattern)) {
      return fail(Code::dockerfile, "syntax error in pattern \"" + pattern + "\"");
    }
    Translation translation = translate(pattern);
    CompiledPattern entry{IgnoreRule{pattern, exception}, translation.kind, std::nullopt, {}};
    if (translation.kind == MatchKind::regexp) {
      auto regexp = Regexp::compile(translation.regexp);
      if (regexp) {
        entry.regexp = std::move(*regexp);
      } else if (regexp.error().kind == RegexpFailure::unsupported) {
        return fail(Code::unsupported, "pattern \"" + pattern + "\" uses a regular-expression " +
                                           "feature minibuild does not implement (" +
                                           regexp.error().message + ")");
      } else {
        entry.regexp_error = regexp.error().message;
      }
    }
    if (exception) {
      const std::string_view stem = without_trailing_glob(pattern);
      if (stem.find_first_of("*[]?^\\") != std::string_view::npos) {
        compiled->prefix_only_exceptions = false;
      }
    }
    compiled->rules.push_back(entry.rule);
    compiled->patterns.push_back(std::move(entry));
  }
  return IgnoreMatcher(std::move(compiled));
}

Result<IgnoreMatcher> IgnoreMatcher::from_dockerignore(std::string_view text) {
  MB_TRY_ASSIGN(std::vector<Line> lines, read_lines(text));
  for (const Line& line : lines) {
    // Compile line by line first so that an error names its line.
    auto single = create({line.pattern});
    if (!single) {
      return fail(
          std::move(single).error().at(SourceRange{".dockerignore", line.number, 0, line.number}));
    }
  }
  std::vector<std::string> patterns;
  patterns.reserve(lines.size());
  for (Line& line : lines) {
    patterns.push_back(std::move(line.pattern));
  }
  return create(patterns);
}

Result<bool> IgnoreMatcher::matches(std::string_view path) const {
  bool matched = false;
  for (const CompiledPattern& pattern : m_compiled->patterns) {
    // An inclusion cannot change a match, nor an exception a non-match.
    if (pattern.rule.exception != matched) {
      continue;
    }
    MB_TRY_ASSIGN(const bool hit, pattern_matches(pattern, path));
    if (hit) {
      matched = !pattern.rule.exception;
    }
  }
  return matched;
}

Result<bool> IgnoreMatcher::matches_or_parent_matches(std::string_view path) const {
  const std::string parent = dir_of(path);
  const std::vector<std::string_view> parent_dirs = split_slash(parent);
  bool matched = false;
  for (const CompiledPattern& pattern : m_compiled->patterns) {
    if (pattern.rule.exception != matched) {
      continue;
    }
    MB_TRY_ASSIGN(bool hit, pattern_matches(pattern, path));
    if (!hit && parent != ".") {
      hit = parent_matches(pattern, parent_dirs);
    }
    if (hit) {
      matched = !pattern.rule.exception;
    }
  }
  return matched;
}

Result<IgnoreDecision>
IgnoreMatcher::matches_using_parent_results(std::string_view path,
                                            const IgnoreMatchInfo& parent) const {
  const auto& patterns = m_compiled->patterns;
  const std::vector<bool>& parent_matched = parent.parent_matched;
  if (!parent_matched.empty() && parent_matched.size() != patterns.size()) {
    return fail(Code::internal, "dockerignore: match info has " +
                                    std::to_string(parent_matched.size()) + " entries for " +
                                    std::to_string(patterns.size()) + " patterns");
  }
  IgnoreDecision decision{false, IgnoreMatchInfo{std::vector<bool>(patterns.size(), false)}};
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    const CompiledPattern& pattern = patterns[i];
    // A pattern that matched the parent matches the child, whatever came before it.
    bool hit = !parent_matched.empty() && parent_matched[i];
    if (!hit) {
      if (pattern.rule.exception != decision.excluded) {
        continue; // recorded as "did not match", which the children inherit
      }
      MB_TRY_ASSIGN(hit, pattern_matches(pattern, path));
      if (!hit && parent_matched.empty()) {
        const std::string parent_path = dir_of(path);
        if (parent_path != ".") {
          hit = parent_matches(pattern, split_slash(parent_path));
        }
      }
    }
    decision.info.parent_matched[i] = hit;
    if (hit) {
      decision.excluded = !pattern.rule.exception;
    }
  }
  return decision;
}

bool IgnoreMatcher::can_skip_directory(std::string_view excluded_dir) const {
  if (!m_compiled->prefix_only_exceptions) {
    return false;
  }
  if (!m_compiled->exceptions) {
    return true;
  }
  const std::string dir_slash = std::string(excluded_dir) + "/";
  for (const CompiledPattern& pattern : m_compiled->patterns) {
    if (!pattern.rule.exception) {
      continue;
    }
    const std::string stem = std::string(without_trailing_glob(pattern.rule.pattern)) + "/";
    if (stem.starts_with(dir_slash)) {
      return false; // the exception names this directory or something below it
    }
  }
  return true;
}

bool IgnoreMatcher::has_exceptions() const {
  return m_compiled->exceptions;
}

const std::vector<IgnoreRule>& IgnoreMatcher::rules() const {
  return m_compiled->rules;
}

} // namespace minibuild::dockerfile
