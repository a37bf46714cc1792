// Word expansion: each form, BuildKit's quirks, options, both escape characters, errors, and
// inputs large or deep enough to break a recursive or quadratic implementation. Expected values
// follow BuildKit's lex.go and its TestProcessWithMatches table.
#include <minibuild/dockerfile/shell_lexer.hpp>

#include <catch2/catch.hpp>

#include <initializer_list>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace minibuild;
using namespace minibuild::dockerfile;

namespace {

using Names = std::set<std::string>;
using Words = std::vector<std::string>;

Environment make_env(std::initializer_list<std::pair<std::string, std::string>> entries) {
  Environment env;
  for (const auto& [name, value] : entries) {
    env.set(name, value);
  }
  return env;
}

std::string expand(std::string_view word, const Environment& env, const ShellLexer& lexer) {
  auto result = lexer.process_word(word, env);
  INFO("word: " << word);
  if (!result) {
    FAIL("unexpected error: " << result.error().what());
  }
  return result->word;
}

std::string expand(std::string_view word, const Environment& env) {
  return expand(word, env, ShellLexer('\\'));
}

/// The error of a word that must fail; checks the contract every error keeps.
Error expand_error(std::string_view word, const Environment& env,
                   const ShellLexer& lexer = ShellLexer('\\')) {
  auto result = lexer.process_word(word, env);
  INFO("word: " << word);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::dockerfile);
  CHECK_FALSE(result.error().location());
  return result.error();
}

Words split_words(std::string_view word, const Environment& env,
                  const ShellLexer& lexer = ShellLexer('\\')) {
  auto result = lexer.process_words(word, env);
  INFO("word: " << word);
  if (!result) {
    FAIL("unexpected error: " << result.error().what());
  }
  return result->words;
}

std::string repeat(std::string_view text, std::size_t count) {
  std::string out;
  out.reserve(text.size() * count);
  for (std::size_t i = 0; i < count; ++i) {
    out += text;
  }
  return out;
}

} // namespace

TEST_CASE("Environment replaces in place and keeps order") {
  Environment env;
  env.set("A", "1");
  env.set("B", "2");
  env.set("A", "3");
  CHECK(env.entries() == std::vector<std::pair<std::string, std::string>>{{"A", "3"}, {"B", "2"}});
  CHECK(env.get("A") == std::optional<std::string_view>("3"));
  CHECK(env.contains("B"));
  env.erase("A");
  CHECK_FALSE(env.contains("A"));
  CHECK(env.entries().size() == 1);
}

TEST_CASE("quotes and escapes with the default escape character") {
  const Environment env = make_env({{"A", "a"}});
  CHECK(expand("he'll'o", env) == "hello");
  CHECK(expand("a  b", env) == "a  b"); // process_word keeps whitespace
  CHECK(expand(R"(abc\tdef)", env) == "abctdef");
  CHECK(expand(R"("abc\tdef")", env) == R"(abc\tdef)");
  CHECK(expand(R"("a\"b\$A\\c")", env) == R"(a"b$A\c)");
  CHECK(expand(R"('a\b$A')", env) == R"(a\b$A)");
  CHECK(expand(R"("'$A'")", env) == "'a'");
  CHECK(expand(R"(hello\)", env) == "hello");
  CHECK(expand(R"(\$A\${A})", env) == "$A${A}");
  CHECK(expand(R"(a\ b)", env) == "a b");
}

TEST_CASE("the backtick escape character leaves backslashes alone") {
  const Environment env = make_env({{"A", "a"}, {"V", "*x"}, {"T", "`abc"}});
  const ShellLexer lexer('`');
  CHECK(expand(R"(C:\path\$A)", env, lexer) == R"(C:\path\a)");
  CHECK(expand("a`$A", env, lexer) == "a$A");
  CHECK(expand("a``b", env, lexer) == "a`b");
  CHECK(expand("abc`", env, lexer) == "abc");
  CHECK(expand(R"("C:\dir `"q`" `$A `x")", env, lexer) == R"(C:\dir "q" $A `x)");
  // Patterns always use `\` as their escape: with the backtick lexer `\*` still reaches the
  // pattern as an escaped star, and a backtick is an ordinary pattern character.
  CHECK(expand(R"(${V#\*})", env, lexer) == "x");
  CHECK(expand("${T#`*}", env, lexer) == "abc");
}

TEST_CASE("variables, names, positional and special parameters") {
  const Environment env =
      make_env({{"A", "a"}, {"AB", "ab"}, {"변수", "v"}, {"\u0663", "three"}, {"1", "one"}});
  CHECK(expand("$A.$AB-${A}B-$ABC", env) == "a.ab-aB-");
  CHECK(expand("$", env) == "$");
  CHECK(expand("$.x", env) == "$.x");
  CHECK(expand("a$", env) == "a$");
  CHECK(expand(R"("$")", env) == "$");
  CHECK(expand("$변수!", env) == "v!");       // names are Unicode letters
  CHECK(expand("$\u0663x", env) == "threex"); // and a run of Unicode digits
  CHECK(expand("$2x$22y", env) == "xy");
  CHECK(expand("$1 ${1} $10", env) == "one one "); // looked up like any name
  CHECK(expand("$@@@ $#$? $$ $!$-$*", env) == "@@   ");
}

TEST_CASE("default, alternative and required values") {
  const Environment env = make_env({{"A", "a"}, {"E", ""}});
  struct Row {
    const char* word;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {"${A:-w}", "a"},
      {"${E:-w}", "w"},
      {"${U:-w}", "w"},
      {"${A-w}", "a"},
      {"${E-w}", ""},
      {"${U-w}", "w"},
      {"${A:+w}", "w"},
      {"${E:+w}", ""},
      {"${U:+w}", ""},
      {"${A+w}", "w"},
      {"${E+w}", "w"},
      {"${U+w}", ""},
      {"${A:?m}", "a"},
      {"${A?m}", "a"},
      {"${E?m}", ""},
      {"${U:-}", ""},
      {"${U:-a b  c}", "a b  c"},
      {"${U:-${U:-${A}}}", "a"},
      {"${A:+x${A}y}", "xay"},
      {"${U:-'q}'}", "q}"},
      {R"(${U:-"$A"})", "a"},
      {R"(${U:-\}})", "}"},
      {"${A:-b}}", "a}"},
      {"${U:-b {c}", "b {c"},
  };
  for (const Row& row : rows) {
    INFO(row.word);
    CHECK(expand(row.word, env) == row.expected);
  }
}

TEST_CASE("required values fail with BuildKit's messages") {
  const Environment env = make_env({{"A", "a"}, {"E", ""}});
  CHECK(expand_error("${E:?m}", env).message() == "E: m");
  CHECK(expand_error("${U:?m}", env).message() == "U: m");
  CHECK(expand_error("${U?m}", env).message() == "U: m");
  CHECK(expand_error("${U?}", env).message() == "U: is not allowed to be unset");
  CHECK(expand_error("${U:?}", env).message() == "U: is not allowed to be unset");
  CHECK(expand_error("${E:?}", env).message() == "E: is not allowed to be empty");
  CHECK(expand_error("x${U:?message here$A}", env).message() == "U: message herea");
}

TEST_CASE("malformed substitutions and quotes are errors that name the problem") {
  const Environment env = make_env({{"A", "a"}});
  struct Row {
    const char* word;
    const char* message;
  };
  const std::vector<Row> rows = {
      {"${}", "bad substitution: ${}"},
      {"x${}y", "bad substitution: ${}"},
      {"${:}", "bad substitution: ${:}"},
      {"${:-b}", "bad substitution: ${:-b}"},
      {"${{A}", "bad substitution: ${{A}"},
      {"${.}", "bad substitution: unsupported modifier \".\" in ${.}"},
      {"${ A}", "bad substitution: unsupported modifier \" \" in ${ A}"},
      {"${A:=b}", "bad substitution: unsupported modifier \":=\" in ${A:=b}"},
      {"${A=b}", "bad substitution: unsupported modifier \"=\" in ${A=b}"},
      {"${A:1}", "bad substitution: unsupported modifier \":1\" in ${A:1}"},
      {"${A:#x}", "bad substitution: unsupported modifier \":#\" in ${A:#x}"},
      {"${A:%x}", "bad substitution: unsupported modifier \":%\" in ${A:%x}"},
      {"${#A}", "bad substitution: unsupported modifier \"A\" in ${#A}"},
      {"${", "bad substitution: missing '}' in ${"},
      {"${A", "bad substitution: missing '}' in ${A"},
      {"${A:-b", "bad substitution: missing '}' in ${A:-b"},
      {"${A:-b ${A}", "bad substitution: missing '}' in ${A:-b ${A}"},
      {"${A:", "bad substitution: missing '}' in ${A:"},
      {"${A/b", "bad substitution: missing '/' in ${A/b"},
      {"${A//}", "bad substitution: missing '/' in ${A//}"},
      {"${A/b/c", "bad substitution: missing '}' in ${A/b/c"},
      {"'abc", "unterminated quote: missing closing single quote (')"},
      {R"("abc\")", "unterminated quote: missing closing double quote (\")"},
      {"${U:-'x}", "unterminated quote: missing closing single quote (')"},
      {R"(${A#\x})", "bad substitution: invalid pattern in ${A#\\x}: invalid escape '\\x'"},
      {R"(${A/a\q/r})", "bad substitution: invalid pattern in ${A/a\\q/r}: invalid escape '\\q'"},
  };
  for (const Row& row : rows) {
    INFO(row.word);
    CHECK(expand_error(row.word, env).message() == row.message);
  }
  // A trailing `\` in a pattern that came from a variable is rejected too.
  const Environment slash = make_env({{"A", "a"}, {"P", "a\\"}});
  CHECK_THAT(expand_error("${A#$P}", slash).message(), Catch::Contains("invalid pattern"));
  CHECK_THAT(expand_error("${A%$P}", slash).message(), Catch::Contains("invalid pattern"));
  // A huge word is quoted only in part.
  const std::string huge = "${A:-" + std::string(100000, 'x');
  CHECK(expand_error(huge, env).message().size() < 200);
}

TEST_CASE("prefix and suffix removal: # ## % %% with BuildKit's globs") {
  const Environment env = make_env({{"F", "a.b.c"},
                                    {"K", "한국어"},
                                    {"B", "[ab]x"},
                                    {"S", "*x"},
                                    {"Q", "?-?z"},
                                    {"Q2", "a??z"},
                                    {"NL", "a\nb"},
                                    {"N", "\n"},
                                    {"P", "#*x"},
                                    {"X", "axbxc"},
                                    {"BR", "}x"},
                                    {"BS", "a\\"}});
  struct Row {
    const char* word;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {"${F#*.}", "b.c"},
      {"${F##*.}", "c"},
      {"${F%.*}", "a.b"},
      {"${F%%.*}", "a"},
      {"${F#?}", ".b.c"},
      {"${F%?}", "a.b."},
      {"${F#}", "a.b.c"},
      {"${F##}", "a.b.c"},
      {"${F%}", "a.b.c"},
      {"${F%%}", "a.b.c"},
      {"${F#*}", "a.b.c"}, // shortest: the empty prefix
      {"${F##*}", ""},     // longest: everything
      {"${F#b}", "a.b.c"}, // anchored at the start
      {"${F%b}", "a.b.c"}, // anchored at the end
      {"${F#a.b.c.d}", "a.b.c"},
      {"${U#x}", ""},
      {"${K#?}", "국어"}, // ? is one character, not one byte
      {"${K%?}", "한국"},
      {"${B#[ab]}", "x"}, // `[` is an ordinary character: no bracket expressions
      {"${X#[ab]}", "axbxc"},
      {R"(${S#\*})", "x"},
      {R"(${S#\?})", "*x"},
      {R"(${Q#?\?})", "?-?z"}, // `\?` is a literal question mark
      {R"(${Q2#?\?})", "?z"},
      {R"(${BR#\}})", "x"},
      {R"(${BS%\\})", "a"},
      {"${X#*x}", "bxc"},
      {"${X##*x}", "c"},
      {"${X#$P}", "c"}, // a `#` at the start of the expanded pattern makes it ##
      {"${X%x*}", "axb"},
      {"${X%%x*}", "a"},
      // `*` and `?` do not match a newline (they are Go regexp `.`); a literal newline does.
      {"${NL##*}", "\nb"},
      {"${NL%%*}", "a\n"},
      {"${NL#a?}", "a\nb"},
      {"${NL#a$N}", "b"},
  };
  for (const Row& row : rows) {
    INFO(row.word);
    CHECK(expand(row.word, env) == row.expected);
  }
}

TEST_CASE("replacement: / and // as Go's regexp replaces") {
  const Environment env = make_env({{"F", "aXbXc"},
                                    {"E", ""},
                                    {"K", "한a"},
                                    {"R", "[$0]"},
                                    {"R1", "<$1>"},
                                    {"R2", "$$"},
                                    {"R3", "<$x>"},
                                    {"R4", "$"},
                                    {"R5", "${0"},
                                    {"H", "#a"},
                                    {"T", "/usr/lib/x.so"}});
  struct Row {
    const char* word;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {"${F/X/-}", "a-bXc"},
      {"${F//X/-}", "a-b-c"},
      {"${F/b/B}", "aXBXc"}, // not anchored
      {"${F/X*X/-}", "a-c"}, // the longest match at the leftmost start
      {"${F//?/.}", "....."},
      {"${F/Y/-}", "aXbXc"},
      {"${F/X/}", "abXc"},
      {"${F/#a/Z}", "aXbXc"}, // `#` is not an anchor, just a character
      {"${H/#a/Z}", "Z"},
      {"${F/$E/ww}", "wwaXbXc"}, // an empty pattern matches the empty string at the start
      {"${F//$E/-}", "-a-X-b-X-c-"},
      {"${K//$E/-}", "-한-a-"},
      {"${F///}", "aXbXc"},
      {"${U///}", ""},
      {"${U/a/b}", ""},
      // Go's ReplaceAllString expands `$` in the replacement; the first-match form does not.
      {"${F//X/$R}", "a[X]b[X]c"},
      {"${F/X/$R}", "a[$0]bXc"},
      {"${F//X/$R1}", "a<>b<>c"},
      {"${F//X/$R2}", "a$b$c"},
      {"${F//X/$R3}", "a<>b<>c"},
      {"${F//X/$R4}", "a$b$c"},
      {"${F//X/$R5}", "a${0b${0c"},
      {"${F//X/$}", "a$b$c"},
      {R"(${T//\//\/})", R"(\/usr\/lib\/x.so)"}, // BuildKit: escaped separators
      {R"(${T/\/usr/})", "/lib/x.so"},
      {R"(${F/X/a\}b})", R"(aa\}bbXc)"}, // the replacement keeps its escapes
  };
  for (const Row& row : rows) {
    INFO(row.word);
    CHECK(expand(row.word, env) == row.expected);
  }
}

TEST_CASE("values that are not UTF-8 pass through, except where BuildKit decodes them") {
  const Environment env = make_env({{"F", "a\xff"
                                          "b"},
                                    {"E", ""}});
  CHECK(expand("$F", env) == "a\xff"
                             "b");
  CHECK(expand("${F#a}", env) == "\xff"
                                 "b");
  CHECK(expand("${F//$E/-}", env) == "-a-\xff-b-");
  CHECK(expand("${F%b}", env) == "a\xEF\xBF\xBD"); // % reverses by characters
  // In the word itself an invalid byte reads as U+FFFD, as Go's text/scanner reads it, and a
  // byte order mark at the very start is skipped.
  CHECK(expand("x\xffy", env) == "x\xEF\xBF\xBDy");
  CHECK(expand("\xEF\xBB\xBF"
               "abc",
               env) == "abc");
  CHECK(expand("a\xEF\xBB\xBF", env) == "a\xEF\xBB\xBF");
  // Word splitting decodes expansions, so there the byte becomes U+FFFD too.
  CHECK(split_words("$F", env) == Words{"a\xEF\xBF\xBD"
                                        "b"});
}

TEST_CASE("matched and unmatched names as BuildKit's ProcessWordWithMatches reports them") {
  struct Row {
    const char* word;
    Environment env;
    const char* expected;
    Names matched;
    Names unmatched;
  };
  const Environment three = make_env({{"HOST", "web"}, {"PORT", ""}});
  const std::vector<Row> rows = {
      {"plain", make_env({{"OTHER", "o"}}), "plain", {}, {}},
      {"a ${MISSING}", make_env({{"OTHER", "o"}}), "a ", {}, {"MISSING"}},
      {"a ${HOST}", three, "a web", {"HOST"}, {}},
      {"${HOST-1} ${PORT-2} ${USER-3}", three, "web  3", {"HOST", "PORT"}, {"USER"}},
      {"${HOST:-1} ${PORT:-2} ${USER:-3}", three, "web 2 3", {"HOST", "PORT"}, {"USER"}},
      {"${HOST+1} ${PORT+2} ${USER+3}", three, "1 2 ", {"HOST", "PORT"}, {"USER"}},
      {"${HOST:+1} ${PORT:+2} ${USER:+3}", three, "1  ", {"HOST", "PORT"}, {"USER"}},
      {"${HOST:-}", three, "web", {"HOST"}, {}},
      {"${USER:-}", three, "", {}, {"USER"}},
      {"${HOST?m} ${PORT?m}", three, "web ", {"HOST", "PORT"}, {}},
      {"${HOST:?m}", three, "web", {"HOST"}, {}},
      {R"(${V#[]()^$.\*\?+|{\}\\})", make_env({{"V", R"([]()^$.*?+|{}\rest)"}}), "rest", {"V"}, {}},
      {"${V#$P}", make_env({{"V", "aab"}, {"P", "a"}}), "ab", {"V", "P"}, {}},
      {"${V#$P}", make_env({{"V", "aab"}, {"P", ""}}), "aab", {"V", "P"}, {}},
      {"${U:-.}${V%b}${U:-.}", make_env({{"V", "aab"}}), ".aa.", {"V"}, {"U"}},
      {"${V/$N/$R} ${V//$N/$R}",
       make_env({{"V", "/x/y/x/z"}, {"N", "/?/"}, {"R", "-"}}),
       "-y/x/z -y-z",
       {"V", "N", "R"},
       {}},
      {"${V/$N/}", make_env({{"V", "ftp://host"}, {"N", "ftp://"}}), "host", {"V", "N"}, {}},
      {"$1 ${@:-x}", make_env({}), " x", {}, {"1", "@"}},
      {"pkg-${VER}-${OS}${VARIANT:+-${VARIANT}}.tgz",
       make_env({{"VER", "2.0"}, {"OS", "linux"}}),
       "pkg-2.0-linux.tgz",
       {"VER", "OS"},
       {"VARIANT"}},
      {"pkg-${VER}-${OS}${VARIANT:+-${VARIANT}}.tgz",
       make_env({{"VER", "2.0"}, {"OS", "linux"}, {"VARIANT", "v7"}}),
       "pkg-2.0-linux-v7.tgz",
       {"VER", "OS", "VARIANT"},
       {}},
  };
  const ShellLexer lexer('\\');
  for (const Row& row : rows) {
    INFO(row.word);
    const auto result = lexer.process_word(row.word, row.env);
    REQUIRE(result);
    CHECK(result->word == row.expected);
    CHECK(result->matched == row.matched);
    CHECK(result->unmatched == row.unmatched);
  }
  for (const char* word :
       {"${USER?m}", "${PORT:?m}", "${USER:?m}", "${USER:?}", "${HOST=x}", "${HOST=:x}", "${USER=}",
        "${HOST:#}", "${HOST:##}", "${HOST:%}", "${HOST:%%}", "${HOST//x}", "${HOST//}"}) {
    INFO(word);
    expand_error(word, three);
  }
}

TEST_CASE("raw_quotes keeps quotes, raw_escapes keeps escapes as BuildKit does") {
  const Environment env = make_env({{"A", "a"}});
  const ShellLexer quotes('\\', ShellLexerOptions{.raw_quotes = true});
  CHECK(expand(R"(he'll'o "x$A" '$A')", env, quotes) == R"(he'll'o "xa" '$A')");
  CHECK(split_words(R"(a "b c" 'd  e')", env, quotes) == Words{"a", R"("b c")", "'d  e'"});

  const ShellLexer escapes('\\', ShellLexerOptions{.raw_escapes = true});
  CHECK(expand(R"(a\ b\$A)", env, escapes) == R"(a\ b\$A)");
  CHECK(expand(R"(a\)", env, escapes) == R"(a\)");
  CHECK(expand(R"("a\"b\$A")", env, escapes) == R"(a\"b\$A)");
  // BuildKit writes an escape before an ordinary character twice inside double quotes.
  CHECK(expand(R"("a\tb")", env, escapes) == R"(a\\tb)");
  CHECK(split_words(R"(a\ b c)", env, escapes) == Words{R"(a\ b)", "c"});
  // The word of ${v:-w} drops its escapes even with raw_escapes (BuildKit resets the flag there).
  CHECK(expand(R"(${U:-\x})", env, escapes) == "x");
}

TEST_CASE("skip_unset leaves unset variables as written") {
  const Environment env = make_env({{"A", "a"}, {"E", ""}});
  const ShellLexer lexer('\\', ShellLexerOptions{.skip_unset = true});
  struct Row {
    const char* word;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {"$U-$A", "$U-a"},         {"${U}${A}", "${U}a"},
      {"${U:-x$A}", "${U:-xa}"}, {"${U-x}", "${U-x}"},
      {"${U:+x}", "${U:+x}"},    {"${U:?m}", "${U:?m}"}, // no error: the value may be set later
      {"${U#p}", "${U#p}"},      {"${U##p}", "${U##p}"},
      {"${U%%p}", "${U%%p}"},    {"${U/a/b}", "${U/a/b}"},
      {"${U//a/b}", "${U/a/b}"}, // BuildKit writes it back with one slash
      {"${E:-x}", "x"},          {"$1", "$1"},
  };
  for (const Row& row : rows) {
    INFO(row.word);
    CHECK(expand(row.word, env, lexer) == row.expected);
  }
  const ShellLexer heredoc('\\', ShellLexerOptions{.raw_quotes = true, .skip_unset = true});
  CHECK(expand(R"("$U" '$A' $A)", env, heredoc) == R"("$U" '$A' a)");
}

TEST_CASE("process_words splits on unquoted whitespace, including inside expansions") {
  const Environment env = make_env(
      {{"V", "x  y"}, {"L", "  ab c"}, {"W", "p\tq\nr"}, {"I", "m\u3000n\u00A0o"}, {"A", "a"}});
  CHECK(split_words(R"(a b\ c "d e" 'f g')", env) == Words{"a", "b c", "d e", "f g"});
  CHECK(split_words("  a \t b  ", env) == Words{"a", "b"});
  CHECK(split_words("a${V}b", env) == Words{"ax", "yb"});
  CHECK(split_words(R"(a"$V"b)", env) == Words{"ax  yb"});
  CHECK(split_words("a${L}", env) == Words{"a", "ab", "c"});
  CHECK(split_words("$W", env) == Words{"p", "q", "r"});
  CHECK(split_words("$I", env) == Words{"m", "n", "o"}); // Unicode spaces split too
  CHECK(split_words(R"('' a "")", env) == Words{"a"});
  CHECK(split_words("", env).empty());
  CHECK(split_words("a${U:-b c}d", env) == Words{"ab", "cd"});
  CHECK(split_words("a${U:-c}d", env) == Words{"acd"}); // see the header: no lost prefix
  CHECK(split_words(R"(a${U:-"b c"}d)", env) == Words{"ab", "cd"});

  const auto result = ShellLexer('\\').process_words("$A $U", env);
  REQUIRE(result);
  CHECK(result->matched == Names{"A"});
  CHECK(result->unmatched == Names{"U"});
  const auto error = ShellLexer('\\').process_words("a 'b", env);
  REQUIRE_FALSE(error);
  CHECK(error.error().code() == Code::dockerfile);
}

TEST_CASE("one-megabyte words and values expand in linear time") {
  constexpr std::size_t k_mib = std::size_t{1} << 20;
  const std::string big(k_mib, 'a');
  const Environment env = make_env({{"A", "a"}, {"BIG", big}, {"E", ""}});

  CHECK(expand(big, env) == big);
  CHECK(expand("'" + big + "'", env) == big);
  CHECK(expand("\"" + big + "\"", env) == big);
  const std::string many = repeat("$A ", k_mib / 3);
  CHECK(expand(many, env).size() == 2 * (k_mib / 3));
  CHECK(split_words(many, env).size() == k_mib / 3);

  CHECK(expand("${BIG##*}", env).empty());
  CHECK(expand("${BIG%%a*}", env).empty());
  CHECK(expand("${BIG#*a}", env).size() == k_mib - 1);
  CHECK(expand("${BIG%b*}", env) == big);
  CHECK(expand("${BIG//a/b}", env) == std::string(k_mib, 'b'));
  CHECK(expand("${BIG//?/}", env).empty());
  CHECK(expand("${BIG//*/x}", env) == "x");
  CHECK(expand("${BIG//$E/-}", env).size() == 2 * k_mib + 1);
  CHECK(expand("${BIG/*b/x}", env) == big);
  const std::string stars(k_mib, '*');
  CHECK(expand("${BIG#" + stars + "}", env) == big);
}

TEST_CASE("deeply nested expansions neither recurse nor fail") {
  const Environment env = make_env({{"A", "a"}});
  for (std::size_t depth : {std::size_t{10000}, std::size_t{100000}}) {
    INFO("depth " << depth);
    const std::string nested = repeat("${U:-", depth) + "x" + std::string(depth, '}');
    const auto result = ShellLexer('\\').process_word(nested, env);
    REQUIRE(result);
    CHECK(result->word == "x");
    CHECK(result->unmatched == Names{"U"});

    const std::string quoted = repeat("\"${U:-", depth) + "$A" + repeat("}\"", depth);
    CHECK(expand(quoted, env) == "a");

    const std::string unterminated = repeat("${U:-", depth) + "x";
    CHECK_THAT(expand_error(unterminated, env).message(), Catch::StartsWith("bad substitution"));
  }
  const std::string prefixed = repeat("${U:-y", 10000) + std::string(10000, '}');
  CHECK(expand(prefixed, env) == std::string(10000, 'y'));
}
