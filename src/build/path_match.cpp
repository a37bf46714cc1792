#include <minibuild/build/path_match.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace minibuild::build {

namespace {

constexpr char32_t k_rune_error = 0xFFFD;

// Go's utf8.DecodeRuneInString: an invalid or truncated sequence decodes as U+FFFD of width 1.
std::pair<char32_t, std::size_t> decode_rune(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char first = byte(at);
  if (first < 0x80) {
    return {first, 1};
  }
  std::size_t width = 0;
  char32_t rune = 0;
  char32_t min = 0;
  if ((first & 0xE0) == 0xC0) {
    width = 2;
    rune = first & 0x1F;
    min = 0x80;
  } else if ((first & 0xF0) == 0xE0) {
    width = 3;
    rune = first & 0x0F;
    min = 0x800;
  } else if ((first & 0xF8) == 0xF0) {
    width = 4;
    rune = first & 0x07;
    min = 0x10000;
  } else {
    return {k_rune_error, 1};
  }
  if (at + width > text.size()) {
    return {k_rune_error, 1};
  }
  for (std::size_t i = 1; i < width; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) {
      return {k_rune_error, 1};
    }
    rune = (rune << 6) | (byte(at + i) & 0x3F);
  }
  if (rune < min || rune > 0x10FFFF || (rune >= 0xD800 && rune <= 0xDFFF)) {
    return {k_rune_error, 1};
  }
  return {rune, width};
}

struct Range {
  char32_t lo;
  char32_t hi;
};

struct Token {
  enum class Kind { literal, any, star, class_ };

  static Token of(Kind kind, char byte = 0) {
    Token token;
    token.kind = kind;
    token.byte = byte;
    return token;
  }

  Kind kind = Kind::literal;
  char byte = 0;             // literal
  bool negated = false;      // class_
  std::vector<Range> ranges; // class_
};

tl::unexpected<Error> bad_pattern(std::string_view pattern, std::string_view why) {
  return fail(Code::dockerfile,
              "bad wildcard pattern \"" + std::string(pattern) + "\": " + std::string(why));
}

// getEsc from Go's filepath: one class member, possibly escaped; '-' and ']' may not start it,
// and the class must not end right after it.
Result<char32_t> class_member(std::string_view pattern, std::size_t& at) {
  if (at >= pattern.size() || pattern[at] == '-' || pattern[at] == ']') {
    return bad_pattern(pattern, "malformed character class");
  }
  if (pattern[at] == '\\') {
    ++at;
    if (at >= pattern.size()) {
      return bad_pattern(pattern, "trailing backslash in character class");
    }
  }
  auto [rune, width] = decode_rune(pattern, at);
  if (rune == k_rune_error && width == 1) {
    return bad_pattern(pattern, "invalid UTF-8 in character class");
  }
  at += width;
  if (at >= pattern.size()) {
    return bad_pattern(pattern, "unterminated character class");
  }
  return rune;
}

Result<std::vector<Token>> compile(std::string_view pattern) {
  std::vector<Token> tokens;
  std::size_t at = 0;
  while (at < pattern.size()) {
    const char c = pattern[at];
    if (c == '*') {
      tokens.push_back(Token::of(Token::Kind::star));
      ++at;
    } else if (c == '?') {
      tokens.push_back(Token::of(Token::Kind::any));
      ++at;
    } else if (c == '\\') {
      if (at + 1 >= pattern.size()) {
        return bad_pattern(pattern, "trailing backslash");
      }
      tokens.push_back(Token::of(Token::Kind::literal, pattern[at + 1]));
      at += 2;
    } else if (c == '[') {
      Token token = Token::of(Token::Kind::class_);
      ++at;
      if (at < pattern.size() && pattern[at] == '^') {
        token.negated = true;
        ++at;
      }
      while (true) {
        if (at < pattern.size() && pattern[at] == ']' && !token.ranges.empty()) {
          ++at;
          break;
        }
        MB_TRY_ASSIGN(char32_t lo, class_member(pattern, at));
        char32_t hi = lo;
        if (pattern[at] == '-') {
          ++at;
          MB_TRY_ASSIGN(hi, class_member(pattern, at));
        }
        token.ranges.push_back({lo, hi});
      }
      tokens.push_back(std::move(token));
    } else {
      tokens.push_back(Token::of(Token::Kind::literal, c));
      ++at;
    }
  }
  return tokens;
}

} // namespace

Result<bool> path_match(std::string_view pattern, std::string_view name) {
  MB_TRY_ASSIGN(const auto tokens, compile(pattern));
  // reachable[j]: the tokens consumed so far can match name[0, j). Go's matcher backtracks over
  // stars; a table over (token, byte offset) gives the same answers without the worst case.
  const std::size_t n = name.size();
  std::vector<bool> reachable(n + 1, false);
  reachable[0] = true;
  for (const Token& token : tokens) {
    std::vector<bool> next(n + 1, false);
    for (std::size_t j = 0; j <= n; ++j) {
      if (!reachable[j]) {
        continue;
      }
      switch (token.kind) {
      case Token::Kind::star:
        // Go's star consumes bytes one at a time, up to a separator.
        next[j] = true;
        for (std::size_t k = j; k < n && name[k] != '/'; ++k) {
          next[k + 1] = true;
        }
        break;
      case Token::Kind::literal:
        if (j < n && name[j] == token.byte) {
          next[j + 1] = true;
        }
        break;
      case Token::Kind::any:
        if (j < n && name[j] != '/') {
          next[j + decode_rune(name, j).second] = true;
        }
        break;
      case Token::Kind::class_:
        if (j < n) {
          auto [rune, width] = decode_rune(name, j);
          bool in_class = false;
          for (const Range& range : token.ranges) {
            in_class = in_class || (range.lo <= rune && rune <= range.hi);
          }
          if (in_class != token.negated) {
            next[j + width] = true;
          }
        }
        break;
      }
    }
    reachable = std::move(next);
  }
  return static_cast<bool>(reachable[n]);
}

bool has_wildcards(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '*' || text[i] == '?' || text[i] == '[') {
      return true;
    }
  }
  return false;
}

} // namespace minibuild::build
