// Go's unicode, utf8, strings and strconv helpers (src/dockerfile/go_unicode.hpp): spot checks of
// the Unicode 15.0 tables (characters new in 15.0 must behave as Go 1.21+ says), ASCII edges,
// and utf8.DecodeRune's treatment of invalid, truncated, overlong and surrogate sequences.
#include "dockerfile/go_unicode.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using namespace minibuild::dockerfile::detail;

namespace {

std::string encode(Rune rune) {
  std::string out;
  append_rune(out, rune);
  return out;
}

} // namespace

TEST_CASE("go_unicode: ASCII classification edges", "[dockerfile][go_unicode]") {
  CHECK_FALSE(is_print(0x1F));
  CHECK(is_print(' '));
  CHECK(is_print('~'));
  CHECK_FALSE(is_print(0x7F));
  CHECK_FALSE(is_print('\t'));

  for (const Rune r : {'@', '[', '`', '{', '_', '0'}) {
    CHECK_FALSE(is_letter(r));
  }
  for (const Rune r : {'A', 'Z', 'a', 'z'}) {
    CHECK(is_letter(r));
  }
  CHECK(is_digit('0'));
  CHECK(is_digit('9'));
  CHECK_FALSE(is_digit('/'));
  CHECK_FALSE(is_digit(':'));

  CHECK(to_lower('A') == 'a');
  CHECK(to_lower('Z') == 'z');
  CHECK(to_lower('@') == '@');
  CHECK(to_lower('[') == '[');
  CHECK(to_lower('a') == 'a');

  // k_eof is no character at all.
  CHECK_FALSE(is_letter(k_eof));
  CHECK_FALSE(is_digit(k_eof));
  CHECK_FALSE(is_print(k_eof));
  CHECK_FALSE(is_space(k_eof));
  CHECK(to_lower(k_eof) == k_eof);
}

TEST_CASE("go_unicode: non-ASCII classification", "[dockerfile][go_unicode]") {
  CHECK(is_letter(0xE9));        // é
  CHECK(is_letter(0xD55C));      // 한
  CHECK_FALSE(is_letter(0xD7));  // ×
  CHECK(is_digit(0x0663));       // ARABIC-INDIC DIGIT THREE
  CHECK_FALSE(is_digit(0x00B2)); // superscript two is No, not Nd
  CHECK_FALSE(is_digit(0x2167)); // ROMAN NUMERAL EIGHT is Nl

  CHECK_FALSE(is_print(0xA0));   // NO-BREAK SPACE: Go prints only U+0020 of the spaces
  CHECK_FALSE(is_print(0xAD));   // SOFT HYPHEN (Cf)
  CHECK_FALSE(is_print(0xE000)); // private use
  CHECK_FALSE(is_print(0xD800)); // surrogate
  CHECK(is_print(0xA1));
  CHECK(is_print(0x0301)); // combining acute (Mn)

  for (const Rune r :
       {0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    CHECK(is_space(r));
  }
  CHECK_FALSE(is_space(0x200B)); // ZERO WIDTH SPACE
  CHECK_FALSE(is_space(0x180E)); // MONGOLIAN VOWEL SEPARATOR, no longer a space since 6.3
  CHECK_FALSE(is_space(0xFEFF));
  CHECK(is_space_byte('\x85'));
  CHECK(is_space_byte('\xA0'));
  CHECK_FALSE(is_space_byte('\xC2'));

  CHECK(to_lower(0xC0) == 0xE0);
  CHECK(to_lower(0xD7) == 0xD7);     // × has no case
  CHECK(to_lower(0x0130) == 'i');    // simple mapping, not SpecialCasing's "i̇"
  CHECK(to_lower(0x01C5) == 0x01C6); // title case Dž
  CHECK(to_lower(0x0100) == 0x0101); // a stride-2 run...
  CHECK(to_lower(0x0101) == 0x0101); // ...whose odd members are already lower case
  CHECK(to_lower(0x212A) == 'k');    // KELVIN SIGN
  CHECK(to_lower(0x10400) == 0x10428);
  CHECK(to_lower(0x1E921) == 0x1E943); // last run in the table
}

TEST_CASE("go_unicode: characters added in Unicode 15.0", "[dockerfile][go_unicode]") {
  CHECK(is_letter(0x11F04)); // KAWI LETTER A
  CHECK(is_digit(0x11F50));  // KAWI DIGIT ZERO
  CHECK(is_letter(0x1E4D0)); // NAG MUNDARI LETTER O
  CHECK(is_digit(0x1E4F9));  // NAG MUNDARI DIGIT NINE
  CHECK(is_letter(0x31350)); // first of CJK Unified Ideographs Extension H
  CHECK(is_letter(0x323AF)); // last of Extension H
  CHECK_FALSE(is_letter(0x323B0));
  CHECK(is_letter(0x1DF25)); // LATIN SMALL LETTER D WITH MID-HEIGHT LEFT HOOK
  CHECK(is_letter(0x1E030)); // MODIFIER LETTER CYRILLIC SMALL A (Lm)
  CHECK(is_print(0x1FA77));  // PINK HEART (So)
  CHECK_FALSE(is_letter(0x1FA77));
  CHECK(is_print(0x1D2C0));       // KAKTOVIK NUMERAL ZERO is No: printable...
  CHECK_FALSE(is_digit(0x1D2C0)); // ...but not a decimal digit
  CHECK(is_print(0x10EFD));       // ARABIC SMALL LOW WORD SAKTA (Mn)
  CHECK_FALSE(is_print(0x13439)); // EGYPTIAN HIEROGLYPH INSERT AT MIDDLE (Cf)
  CHECK(to_lower(0x11F04) == 0x11F04);

  // Go 1.21+ prints such characters as they are in %q.
  CHECK(go_quote(encode(0x11F04)) == "\"" + encode(0x11F04) + "\"");
  CHECK(go_quote(encode(0x13439)) == "\"\\U00013439\"");
}

TEST_CASE("go_unicode: decode_rune of valid UTF-8", "[dockerfile][go_unicode]") {
  const auto check = [](std::string_view text, Rune rune, std::size_t size) {
    INFO("text size " << text.size());
    const DecodedRune d = decode_rune(text, 0);
    CHECK(d.rune == rune);
    CHECK(d.size == size);
  };
  check("A", 'A', 1);
  check(std::string_view("\0", 1), 0, 1);
  check("\x7F", 0x7F, 1);
  check("\xC2\x80", 0x80, 2);
  check("\xDF\xBF", 0x7FF, 2);
  check("\xE0\xA0\x80", 0x800, 3);
  check("\xED\x9F\xBF", 0xD7FF, 3);
  check("\xEE\x80\x80", 0xE000, 3);
  check("\xEF\xBF\xBD", k_rune_error, 3); // a real U+FFFD: width 3 tells it from an error
  check("\xF0\x90\x80\x80", 0x10000, 4);
  check("\xF4\x8F\xBF\xBF", 0x10FFFF, 4);

  const DecodedRune mid = decode_rune("a\xE2\x82\xACz", 1);
  CHECK(mid.rune == 0x20AC);
  CHECK(mid.size == 3);
}

TEST_CASE("go_unicode: decode_rune of invalid UTF-8 consumes one byte",
          "[dockerfile][go_unicode]") {
  const auto check = [](std::string_view text) {
    INFO("first byte " << static_cast<int>(static_cast<unsigned char>(text[0])) << ", size "
                       << text.size());
    const DecodedRune d = decode_rune(text, 0);
    CHECK(d.rune == k_rune_error);
    CHECK(d.size == 1);
  };
  check("\x80"); // lone continuation byte
  check("\xBF");
  check("\xFF");             // never valid
  check("\xF5\x80\x80\x80"); // lead byte beyond U+10FFFF
  // Overlong forms.
  check("\xC0\x80");
  check("\xC1\xBF");
  check("\xE0\x80\x80");
  check("\xE0\x9F\xBF");
  check("\xF0\x80\x80\x80");
  check("\xF0\x8F\xBF\xBF");
  // Surrogates and code points past U+10FFFF.
  check("\xED\xA0\x80");
  check("\xED\xBF\xBF");
  check("\xF4\x90\x80\x80");
  // Truncated or interrupted sequences.
  check("\xC3");
  check("\xC3"
        "A");
  check("\xE2\x82");
  check("\xE2\x82"
        "A");
  check("\xF0\x9F\x98");

  // The byte after an invalid one decodes on its own.
  const std::string_view text = "\xE2\x82"
                                "A";
  CHECK(decode_rune(text, 1).rune == k_rune_error);
  CHECK(decode_rune(text, 2).rune == 'A');
}

TEST_CASE("go_unicode: append_rune encodes scalars and replaces the rest",
          "[dockerfile][go_unicode]") {
  CHECK(encode(0x7F) == "\x7F");
  CHECK(encode(0x80) == "\xC2\x80");
  CHECK(encode(0x7FF) == "\xDF\xBF");
  CHECK(encode(0x800) == "\xE0\xA0\x80");
  CHECK(encode(0xFFFF) == "\xEF\xBF\xBF");
  CHECK(encode(0x10000) == "\xF0\x90\x80\x80");
  CHECK(encode(0x10FFFF) == "\xF4\x8F\xBF\xBF");
  const std::string replacement = "\xEF\xBF\xBD";
  CHECK(encode(k_eof) == replacement);
  CHECK(encode(0xD800) == replacement);
  CHECK(encode(0xDFFF) == replacement);
  CHECK(encode(0x110000) == replacement);

  // Every scalar value round-trips through append_rune and decode_rune.
  std::size_t mismatches = 0;
  for (Rune r = 0; r <= 0x10FFFF; ++r) {
    if (r == 0xD800) {
      r = 0xE000;
    }
    const std::string bytes = encode(r);
    const DecodedRune d = decode_rune(bytes, 0);
    if (d.rune != r || d.size != bytes.size()) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("go_unicode: strings and strconv helpers", "[dockerfile][go_unicode]") {
  CHECK(go_quote("") == "\"\"");
  CHECK(go_quote("a\"\\\n\t\x01\x7F") == "\"a\\\"\\\\\\n\\t\\x01\\x7f\"");
  CHECK(go_quote("\xFF"
                 "a") == "\"\\xffa\"");
  CHECK(go_quote("\xC2\xA0") == "\"\\u00a0\"");
  CHECK(go_quote("\xF3\xA0\x80\x81") == "\"\\U000e0001\""); // LANGUAGE TAG (Cf)
  CHECK(go_quote("\xC3\xA9") == "\"\xC3\xA9\"");

  CHECK(go_to_lower("FROM") == "from");
  CHECK(go_to_lower("FR\xC3\x96M") == "fr\xC3\xB6m");
  CHECK(go_to_lower("\xC4\xB0") == "i");
  CHECK(go_to_lower("A\xFF") == "a\xEF\xBF\xBD"); // non-ASCII text is re-encoded rune by rune

  CHECK(trim_space("\xC2\x85 x y\xE3\x80\x80\t") == "x y");
  CHECK(trim_space("\x85") == "\x85"); // an invalid byte is U+FFFD, not NEL
  CHECK(trim_left_space("  a ") == "a ");
  CHECK(trim_right_space("  a ") == "  a");
  CHECK(trim_space(" \t\n") == "");
}
