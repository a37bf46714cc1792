// Private to the Dockerfile parser: decodes the exec form `["a", "b"]` exactly as BuildKit does
// with Go's `json.Unmarshal(rest, &[]any)`.
//
// Go's decoder differs from most JSON libraries in ways that decide whether an instruction is in
// exec or shell form, so this is a small dedicated scanner rather than nlohmann::json:
//   - the whole text must be one JSON value followed only by JSON whitespace (" \t\r\n");
//   - nesting deeper than 10000 is a syntax error ("exceeded max depth");
//   - raw bytes >= 0x80 inside strings are accepted even when they are not UTF-8; decoding turns
//     each invalid byte into U+FFFD, and an unpaired \uD800-\uDFFF escape into U+FFFD as well;
//   - a syntactically valid array with any non-string element is reported separately, because
//     BuildKit turns that (and only that) into an error.
// The scanner is iterative, so no input can exhaust the stack.
#pragma once

#include "go_unicode.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::dockerfile::detail {

struct JsonArray {
  enum class Kind {
    strings,    ///< a valid array of strings: `items` holds the decoded elements
    invalid,    ///< not valid JSON: `reason` says why, in Go's words
    non_string, ///< valid JSON, but an element is not a string
  };
  Kind kind = Kind::invalid;
  std::vector<std::string> items;
  std::string reason;
};

namespace json_detail {

inline constexpr std::size_t k_max_depth = 10000; // encoding/json's maxNestingDepth

inline bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/// Go's quoteChar: how encoding/json names an offending byte in its messages.
inline std::string quote_char(char c) {
  if (c == '\'') {
    return "'\\''";
  }
  if (c == '"') {
    return "'\"'";
  }
  std::string one;
  append_rune(one, static_cast<unsigned char>(c)); // Go converts the byte to a rune (Latin-1)
  const std::string quoted = go_quote(one);
  return "'" + quoted.substr(1, quoted.size() - 2) + "'";
}

inline int hex_value(char c) {
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

/// Go's getu4: the value of a `\uXXXX` escape at text[pos], or -1.
inline long read_u4(std::string_view text, std::size_t pos) {
  if (pos + 6 > text.size() || text[pos] != '\\' || text[pos + 1] != 'u') {
    return -1;
  }
  long value = 0;
  for (std::size_t i = pos + 2; i < pos + 6; ++i) {
    const int digit = hex_value(text[i]);
    if (digit < 0) {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

/// Decodes the body of a string literal that the scanner already validated (between the quotes).
inline std::string decode_string(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  for (std::size_t pos = 0; pos < body.size();) {
    const char c = body[pos];
    if (c == '\\') {
      const char e = body[pos + 1];
      switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        auto rune = static_cast<Rune>(read_u4(body, pos));
        pos += 6;
        if (rune >= 0xD800 && rune <= 0xDFFF) {
          // A high surrogate followed by a low one is one character; anything else is U+FFFD,
          // and the following escape is decoded on its own.
          const long low = read_u4(body, pos);
          if (rune < 0xDC00 && low >= 0xDC00 && low < 0xE000) {
            rune = 0x10000 + ((rune - 0xD800) << 10) + static_cast<Rune>(low - 0xDC00);
            pos += 6;
          } else {
            rune = k_rune_error;
          }
        }
        append_rune(out, rune);
        continue;
      }
      default: // '"', '\\', '/'
        out += e;
      }
      pos += 2;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x80) {
      out += c;
      ++pos;
      continue;
    }
    const DecodedRune d = decode_rune(body, pos);
    if (d.rune == k_rune_error && d.size == 1) {
      append_rune(out, k_rune_error);
    } else {
      out.append(body.substr(pos, d.size));
    }
    pos += d.size;
  }
  return out;
}

class Scanner {
public:
  explicit Scanner(std::string_view text) : m_text(text) {}

  JsonArray run() {
    JsonArray result;
    bool non_string = false;
    std::vector<char> stack; // '[' or '{' per open container
    skip_ws();
    while (true) {
      // Expecting a value.
      skip_ws();
      if (at_end()) {
        return invalid("unexpected end of JSON input");
      }
      const char c = m_text[m_pos];
      const bool top_element = stack.size() == 1 && stack.back() == '[';
      if (c == '[' || c == '{') {
        if (top_element) {
          non_string = true;
        }
        stack.push_back(c);
        if (stack.size() > k_max_depth) {
          return invalid("exceeded max depth");
        }
        ++m_pos;
        skip_ws();
        if (at_end()) {
          return invalid("unexpected end of JSON input");
        }
        if (m_text[m_pos] == (c == '[' ? ']' : '}')) {
          ++m_pos;
          stack.pop_back();
        } else if (c == '[') {
          continue;
        } else if (!scan_key()) {
          return invalid(m_reason);
        } else {
          continue;
        }
      } else if (c == '"') {
        const std::size_t start = m_pos + 1;
        if (!scan_string()) {
          return invalid(m_reason);
        }
        if (top_element) {
          result.items.push_back(decode_string(m_text.substr(start, m_pos - 1 - start)));
        }
      } else {
        if (top_element) {
          non_string = true;
        }
        if (!scan_scalar()) {
          return invalid(m_reason);
        }
      }
      // After a complete value: close containers or move to the next element.
      bool next_value = false;
      while (!next_value) {
        skip_ws();
        if (stack.empty()) {
          if (!at_end()) {
            return invalid("invalid character " + quote_char(m_text[m_pos]) +
                           " after top-level value");
          }
          if (non_string) {
            result.kind = JsonArray::Kind::non_string;
            result.items.clear();
          } else {
            result.kind = JsonArray::Kind::strings;
          }
          return result;
        }
        if (at_end()) {
          return invalid("unexpected end of JSON input");
        }
        const char d = m_text[m_pos];
        const bool in_array = stack.back() == '[';
        if (d == ',') {
          ++m_pos;
          if (!in_array && !scan_key()) {
            return invalid(m_reason);
          }
          next_value = true;
        } else if (d == (in_array ? ']' : '}')) {
          ++m_pos;
          stack.pop_back();
        } else {
          return invalid("invalid character " + quote_char(d) +
                         (in_array ? " after array element" : " after object key:value pair"));
        }
      }
    }
  }

private:
  bool at_end() const { return m_pos >= m_text.size(); }

  void skip_ws() {
    while (!at_end() && is_ws(m_text[m_pos])) {
      ++m_pos;
    }
  }

  JsonArray invalid(std::string reason) const {
    JsonArray result;
    result.kind = JsonArray::Kind::invalid;
    result.reason = std::move(reason);
    return result;
  }

  bool fail(std::string reason) {
    m_reason = std::move(reason);
    return false;
  }

  bool fail_at(std::string_view what) {
    if (at_end()) {
      return fail("unexpected end of JSON input");
    }
    return fail("invalid character " + quote_char(m_text[m_pos]) + " " + std::string(what));
  }

  /// An object key and its colon, starting at optional whitespace before the key.
  bool scan_key() {
    skip_ws();
    if (at_end() || m_text[m_pos] != '"') {
      return fail_at("looking for beginning of object key string");
    }
    if (!scan_string()) {
      return false;
    }
    skip_ws();
    if (at_end() || m_text[m_pos] != ':') {
      return fail_at("after object key");
    }
    ++m_pos;
    return true;
  }

  /// A string literal starting at the opening quote; leaves m_pos after the closing quote.
  bool scan_string() {
    ++m_pos;
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(m_text[m_pos]);
      if (c == '"') {
        ++m_pos;
        return true;
      }
      if (c < 0x20) {
        return fail_at("in string literal");
      }
      if (c == '\\') {
        ++m_pos;
        if (at_end()) {
          break;
        }
        const char e = m_text[m_pos];
        if (e == 'u') {
          ++m_pos;
          for (int i = 0; i < 4; ++i, ++m_pos) {
            if (at_end()) {
              return fail("unexpected end of JSON input");
            }
            if (hex_value(m_text[m_pos]) < 0) {
              return fail_at("in \\u hexadecimal character escape");
            }
          }
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't') {
          return fail_at("in string escape code");
        }
      }
      ++m_pos;
    }
    return fail("unexpected end of JSON input");
  }

  bool scan_literal(std::string_view word) {
    for (std::size_t i = 0; i < word.size(); ++i, ++m_pos) {
      if (at_end()) {
        return fail("unexpected end of JSON input");
      }
      if (m_text[m_pos] != word[i]) {
        return fail("invalid character " + quote_char(m_text[m_pos]) + " in literal " +
                    std::string(word) + " (expecting '" + std::string(1, word[i]) + "')");
      }
    }
    return true;
  }

  bool digit() const { return !at_end() && m_text[m_pos] >= '0' && m_text[m_pos] <= '9'; }

  /// A number or a literal; the character after it is checked by the caller.
  bool scan_scalar() {
    const char c = m_text[m_pos];
    if (c == 't') {
      return scan_literal("true");
    }
    if (c == 'f') {
      return scan_literal("false");
    }
    if (c == 'n') {
      return scan_literal("null");
    }
    if (c != '-' && (c < '0' || c > '9')) {
      return fail_at("looking for beginning of value");
    }
    if (c == '-') {
      ++m_pos;
      if (!digit()) {
        return fail_at("in numeric literal");
      }
    }
    if (m_text[m_pos] == '0') {
      ++m_pos;
    } else {
      while (digit()) {
        ++m_pos;
      }
    }
    if (!at_end() && m_text[m_pos] == '.') {
      ++m_pos;
      if (!digit()) {
        return fail_at("after decimal point in numeric literal");
      }
      while (digit()) {
        ++m_pos;
      }
    }
    if (!at_end() && (m_text[m_pos] == 'e' || m_text[m_pos] == 'E')) {
      ++m_pos;
      if (!at_end() && (m_text[m_pos] == '+' || m_text[m_pos] == '-')) {
        ++m_pos;
      }
      if (!digit()) {
        return fail_at("in exponent of numeric literal");
      }
      while (digit()) {
        ++m_pos;
      }
    }
    return true;
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
  std::string m_reason;
};

} // namespace json_detail

/// Decodes `text` (which starts with '[') the way Go's json.Unmarshal into []any would.
inline JsonArray decode_json_array(std::string_view text) {
  return json_detail::Scanner(text).run();
}

} // namespace minibuild::dockerfile::detail
