// .dockerignore reading and matching: Docker's documented examples, the behaviours moby/
// patternmatcher's tests pin down (in cases of our own), the walk semantics BuildKit uses, and
// the places where Go regexp syntax leaks through the glob translation.
#include <minibuild/dockerfile/dockerignore.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::dockerfile;

namespace {

using Strings = std::vector<std::string>;

IgnoreMatcher matcher(const Strings& patterns) {
  auto result = IgnoreMatcher::create(patterns);
  if (!result) {
    FAIL("create failed: " << result.error().what());
  }
  return *result;
}

IgnoreMatcher from_file(std::string_view text) {
  auto result = IgnoreMatcher::from_dockerignore(text);
  if (!result) {
    FAIL("from_dockerignore failed: " << result.error().what());
  }
  return *result;
}

bool exact(const IgnoreMatcher& m, std::string_view path) {
  auto result = m.matches(path);
  INFO("path " << path);
  REQUIRE(result);
  return *result;
}

bool excluded(const IgnoreMatcher& m, std::string_view path) {
  auto result = m.matches_or_parent_matches(path);
  INFO("path " << path);
  REQUIRE(result);
  return *result;
}

/// The decision a top-down walk reaches for `path`, deciding each parent directory first.
bool walk_excluded(const IgnoreMatcher& m, std::string_view path) {
  IgnoreMatchInfo info;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    const std::string_view prefix = path.substr(0, slash);
    auto decision = m.matches_using_parent_results(prefix, info);
    INFO("path " << prefix);
    REQUIRE(decision);
    if (slash == std::string_view::npos) {
      return decision->excluded;
    }
    info = decision->info;
    start = slash + 1;
  }
}

} // namespace

TEST_CASE("parse_dockerignore reads lines as ignorefile.ReadAll does") {
  const std::string text = "\xEF\xBB\xBF"
                           "first\r\n"
                           "/rooted\n"
                           "/deep/path/here\n"
                           "\n"
                           "   \t\n"
                           "# a comment\n"
                           "  # not a comment\n"
                           "! /negated/abs\n"
                           "!\n"
                           "! \n"
                           "./a//b/../c/\n"
                           "/\n"
                           "../up\n"
                           "  padded  \n"
                           "last";
  const auto patterns = parse_dockerignore(text);
  REQUIRE(patterns);
  CHECK(*patterns == Strings{"first", "rooted", "deep/path/here", "# not a comment", "!negated/abs",
                             "!", "!", "a/c", "/", "../up", "padded", "last"});
  // A byte order mark counts only before the first line.
  CHECK(*parse_dockerignore("a\n\xEF\xBB\xBF"
                            "b") == Strings{"a", "\xEF\xBB\xBF"
                                                 "b"});
  CHECK(parse_dockerignore("")->empty());
}

TEST_CASE("a line of 64 KiB or more is an error naming the line, as in Docker") {
  const std::string fits = "a\n" + std::string(65535, 'x') + "\n";
  CHECK(parse_dockerignore(fits));
  const std::string too_long = "a\n" + std::string(65536, 'x') + "\nb\n";
  const auto result = parse_dockerignore(too_long);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::dockerfile);
  REQUIRE(result.error().location());
  CHECK(result.error().location()->line == 2);
  CHECK(result.error().location()->file == ".dockerignore");
}

TEST_CASE("Docker's documented .dockerignore examples") {
  SECTION("temp patterns at fixed depths") {
    const auto m = from_file("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
    CHECK(excluded(m, "somedir/temporary.txt"));
    CHECK(excluded(m, "somedir/temp"));
    CHECK(excluded(m, "somedir/temp/inside.txt")); // its parent directory matches
    CHECK(excluded(m, "somedir/subdir/temporary.txt"));
    CHECK(excluded(m, "tempa"));
    CHECK(excluded(m, "tempb"));
    CHECK_FALSE(excluded(m, "temp"));
    CHECK_FALSE(excluded(m, "temporary.txt"));
    CHECK_FALSE(excluded(m, "a/b/c/temporary.txt"));
    CHECK_FALSE(excluded(m, "# comment"));
  }
  SECTION("a leading slash changes nothing") {
    for (const char* line : {"/foo/bar\n", "foo/bar\n"}) {
      const auto m = from_file(line);
      CHECK(excluded(m, "foo/bar"));
      CHECK(excluded(m, "foo/bar/baz"));
      CHECK_FALSE(excluded(m, "foo"));
      CHECK_FALSE(excluded(m, "bar"));
      CHECK_FALSE(excluded(m, "x/foo/bar"));
    }
  }
  SECTION("** matches any number of directories, including none") {
    const auto m = from_file("**/*.go\n");
    CHECK(excluded(m, "main.go"));
    CHECK(excluded(m, "cmd/tool/main.go"));
    CHECK_FALSE(excluded(m, "main.go.txt"));
  }
  SECTION("exceptions, and the last matching line wins") {
    const auto readme = from_file("*.md\n!README.md\n");
    CHECK(excluded(readme, "CHANGES.md"));
    CHECK_FALSE(excluded(readme, "README.md"));
    CHECK_FALSE(excluded(readme, "docs/guide.md")); // `*` does not cross `/`

    const auto secret = from_file("*.md\n!README*.md\nREADME-secret.md\n");
    CHECK(excluded(secret, "README-secret.md"));
    CHECK_FALSE(excluded(secret, "README.md"));
    CHECK_FALSE(excluded(secret, "README-public.md"));
    CHECK(excluded(secret, "notes.md"));

    const auto all = from_file("*.md\nREADME-secret.md\n!README*.md\n");
    CHECK_FALSE(excluded(all, "README-secret.md"));
    CHECK_FALSE(excluded(all, "README.md"));
  }
  SECTION("exclude everything, then list what to send") {
    const auto m = from_file("*\n!src\n!Dockerfile\n");
    CHECK(excluded(m, "build"));
    CHECK(excluded(m, "build/out.o"));
    CHECK_FALSE(excluded(m, "Dockerfile"));
    CHECK_FALSE(excluded(m, "src"));
    CHECK_FALSE(excluded(m, "src/main.c"));
  }
}

TEST_CASE("match kinds: exact, prefix, suffix and translated globs") {
  struct Row {
    const char* pattern;
    const char* path;
    bool itself;    ///< matches(): the path itself
    bool or_parent; ///< matches_or_parent_matches()
  };
  const std::vector<Row> rows = {
      {"**", "anything", true, true},
      {"**", "a/b/", true, true},
      {"**/", "x", true, true},
      {"**/**", "a/b", true, true},
      {"lib/**", "lib/a", true, true},
      {"lib/**", "lib/a/b/", true, true},
      {"lib/**", "lib", false, false}, // the directory itself is not below itself
      {"**/lib", "lib", true, true},
      {"**/lib", "lib/x", false, true},
      {"**/lib/*", "src/lib/x", true, true},
      {"**/lib/*", "src/lib/x/", false, true},
      {"**/lib/**", "src/lib/a/b", true, true},
      {"**conf", "conf", true, true},
      {"**conf", "etc/myconf", true, true}, // a suffix match: no `/` needed
      {"**/conf", "etc/x/conf", true, true},
      {"**/conf*", "etc/x/conf.d", true, true},
      {"**/**/*.log", "var/log/app.log", true, true},
      {"**/**/*.log", "app.log", true, true},
      {"**/**/*.log", "app.logs", false, false},
      {"**.txt", "notes/todo.txt", true, true}, // `**` first: a suffix match, not a regexp
      {"logs**/*.gz", "logs/a.gz", true, true},
      {"logs**/*.gz", "logs/x/y/a.gz", true, true},
      {"logs/*.gz", "logs/x/a.gz", false, false},
      {"logs/*.gz**", "logs/a.gz", true, true},
      {"x[0-3]y", "x2y", true, true},
      {"x[0-3]y", "xy", false, false},
      {"x[0-3]y", "x7y", false, false},
      {"x[^0-3]y", "x7y", true, true},
      {".*", ".hidden", true, true},
      {".*", "visible", false, false},
      {"v1.2", "v1.2", true, true},
      {"v1.2", "v1x2", false, false}, // `.` is not a wildcard
      {"v1?2", "v1x2", true, true},
      {"v1?2", "v12", false, false},
      {"f(1)|{2}+$", "f(1)|{2}+$", true, true},
      {"pkg/tool-1.0+build.whl", "pkg/tool-1.0+build.whl", true, true},
      {"pkg/*.whl", "pkg/tool-1.0+build.whl", true, true},
      {R"(back\\slash)", R"(back\slash)", true, true},
      {R"(star\*)", "star*", true, true},
      {R"(star\*)", "starx", false, false},
      {"a*/b", "abc/b", true, true},
      {"a*/b", "a/c/b", false, false},
      {"a*", "ab/c", false, true},
      {"a?b",
       "a\xE2\x98\xBA"
       "b",
       true, true}, // ? is one character, not one byte
      {"a???b",
       "a\xE2\x98\xBA"
       "b",
       false, false},
      {"a?b", "a/b", false, false},
      {"[a-\xCE\xB6]*", "\xCE\xB1", true, true},
      {R"([\]x])", "]", true, true},
      {R"([\-z])", "-", true, true},
  };
  for (const Row& row : rows) {
    INFO("pattern " << row.pattern << " path " << row.path);
    const auto m = matcher({row.pattern});
    CHECK(exact(m, row.path) == row.itself);
    CHECK(excluded(m, row.path) == row.or_parent);
    CHECK(walk_excluded(m, row.path) == row.or_parent);
    const auto no_context = m.matches_using_parent_results(row.path, IgnoreMatchInfo{});
    REQUIRE(no_context);
    CHECK(no_context->excluded == row.or_parent);
  }
}

TEST_CASE("several patterns: order and exceptions") {
  CHECK_FALSE(excluded(matcher({"**", "!srv/app/web"}), "srv/app/web/index.html"));
  CHECK(excluded(matcher({"**", "!srv/app/web", "srv/app/web/index.html"}),
                 "srv/app/web/index.html"));
  CHECK_FALSE(excluded(matcher({"**", "!pkg/*.whl"}), "pkg/tool-1.0+build.whl"));
  CHECK(excluded(matcher({"!keep.go", "*.go"}), "keep.go")); // an exception before is too early
  CHECK_FALSE(excluded(matcher({"*.go", "!keep.go"}), "keep.go"));
  CHECK_FALSE(excluded(matcher({"docs", "!docs/README.md"}), "docs/README.md"));
  CHECK_FALSE(excluded(matcher({"docs/", "!docs/README.md"}), "docs/README.md"));
  CHECK_FALSE(excluded(matcher({"docs/*", "!docs/README.md"}), "docs/README.md"));
  CHECK(excluded(matcher({"docs/*", "!docs/README.md"}), "docs/other.md"));
  CHECK_FALSE(excluded(matcher({}), "anything"));
}

TEST_CASE("a walk decides children from the parent's per-pattern results, as BuildKit does") {
  // With `a`, `!a/x`, `a`, the last `a` did not count for directory "a" (it was already
  // excluded), so its children do not inherit it: the walk keeps "a/x", while a direct
  // parent-matching check excludes it.
  const auto m = matcher({"a", "!a/x", "a"});
  CHECK(excluded(m, "a/x"));
  CHECK_FALSE(walk_excluded(m, "a/x"));
  CHECK(walk_excluded(m, "a/y"));
  const auto bad = m.matches_using_parent_results("a/x", IgnoreMatchInfo{{true}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Code::internal);
}

TEST_CASE("patterns are trimmed and cleaned; empty ones are dropped") {
  const auto m = matcher({"  spaced  ", "", "a/../b/./c//", "!  x/y", "!./z"});
  REQUIRE(m.rules().size() == 4);
  CHECK(m.rules()[0].pattern == "spaced");
  CHECK(m.rules()[1].pattern == "b/c");
  CHECK(m.rules()[2].pattern == "  x/y"); // create() trims the line, not the text after `!`
  CHECK(m.rules()[2].exception);
  CHECK(m.rules()[3].pattern == "./z"); // nor cleans it: parse_dockerignore does both
  CHECK(m.has_exceptions());
  CHECK_FALSE(matcher({"a"}).has_exceptions());
  CHECK(from_file("!  ./x/../y\n").rules()[0].pattern == "y");
}

TEST_CASE("malformed patterns fail create() with filepath.Match's verdict") {
  for (const char* pattern :
       {"[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "[a-b-c]", "\\", "x*[", "!"}) {
    INFO(pattern);
    const auto result = IgnoreMatcher::create({pattern});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::dockerfile);
  }
  const auto located = IgnoreMatcher::from_dockerignore("ok\n# fine\n[bad\n");
  REQUIRE_FALSE(located);
  REQUIRE(located.error().location());
  CHECK(located.error().location()->line == 3);
  CHECK(located.error().what() == ".dockerignore:3: syntax error in pattern \"[bad\"");
}

TEST_CASE("a pattern Go's regexp refuses fails only when it is evaluated") {
  // `[Local-Only]` passes filepath.Match's check (l-O is an empty range there) but not Go's
  // regexp compiler.
  const auto m = matcher({"[Local-Only]/"});
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto result = m.matches_or_parent_matches("x");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::dockerfile);
    CHECK_THAT(result.error().message(), Catch::StartsWith("syntax error in pattern"));
  }
  // An exception that is never consulted never fails.
  const auto lazy = matcher({"a", "![z-a]*"});
  CHECK_FALSE(excluded(lazy, "b"));
  CHECK_FALSE(lazy.matches_or_parent_matches("a"));
  CHECK_FALSE(matcher({R"(a\q*)"}).matches("aq"));
  CHECK_FALSE(matcher({"\\\xC3\xA9*"}).matches("x")); // `\é` is not a Go escape
}

TEST_CASE("Go regexp syntax that leaks through the translation behaves as in Docker") {
  CHECK(exact(matcher({R"(file\d)"}), "file7"));
  CHECK_FALSE(exact(matcher({R"(file\d)"}), "filed"));
  CHECK(exact(matcher({R"(\x41*)"}), "Abc"));
  CHECK(exact(matcher({"[[:digit:]]x"}), "7x"));
  CHECK_FALSE(exact(matcher({"[[:digit:]]x"}), "ax"));
  CHECK(exact(matcher({"[[:^digit:]]x"}), "ax"));
  // `[*]` is `[` followed by the translation of `*`: a class of `[`, `^`, `/` repeated, then `]`.
  CHECK(exact(matcher({"[*]"}), "[]"));
  CHECK(exact(matcher({"[*]"}), "]"));
  CHECK_FALSE(exact(matcher({"[*]"}), "*"));
  // `\Q` quotes the rest, translation and final `$` included, so the end is not anchored.
  CHECK(exact(matcher({R"(\Qa*)"}), "a[^/]*$"));
  CHECK(exact(matcher({R"(\Qa*)"}), "a[^/]*$-and-more"));
  CHECK_FALSE(exact(matcher({R"(\Qa*)"}), "ab"));
  // `^` outside a class anchors at the start, so it only works first.
  CHECK(exact(matcher({"^x*"}), "xyz"));
  CHECK_FALSE(exact(matcher({"a^x*"}), "a^x"));
  // `\b` is a word boundary.
  CHECK(exact(matcher({R"(ab\b*)"}), "ab"));
  CHECK_FALSE(exact(matcher({R"(ab\b*)"}), "abc"));
  // `.` from `**` does not match a newline; `[^/]` from `*` does.
  CHECK_FALSE(exact(matcher({"**/x*"}), "a\nb/xy"));
  CHECK(exact(matcher({"**/x*"}), "ab/xy"));
  CHECK(exact(matcher({"a*"}), "a\nb"));
  // Unicode classes are refused up front instead of guessed.
  const auto unicode = IgnoreMatcher::create({R"(\pL*)"});
  REQUIRE_FALSE(unicode);
  CHECK(unicode.error().code() == Code::unsupported);
}

TEST_CASE("can_skip_directory follows fsutil: skip only when no exception can reach inside") {
  CHECK(matcher({"node_modules"}).can_skip_directory("node_modules"));
  const auto docs = matcher({"docs", "!docs/README.md"});
  CHECK_FALSE(docs.can_skip_directory("docs"));
  CHECK(docs.can_skip_directory("other"));
  CHECK_FALSE(matcher({"a", "!a/**"}).can_skip_directory("a"));
  CHECK_FALSE(matcher({"a", "!a/*"}).can_skip_directory("a"));
  CHECK(matcher({"a", "!b"}).can_skip_directory("a"));
  CHECK(matcher({"ab", "!a/x"}).can_skip_directory("ab")); // prefixes compare whole names
  CHECK_FALSE(matcher({"a/b", "!a/b/c/d"}).can_skip_directory("a/b"));
  // A wildcard in any exception means every directory must be walked.
  CHECK_FALSE(matcher({"a", "!*.md"}).can_skip_directory("a"));
  CHECK_FALSE(matcher({"a", "!a/*/keep"}).can_skip_directory("a"));
  CHECK_FALSE(matcher({"a", "!x/[ab]"}).can_skip_directory("a"));

  // Skipping is safe where it is allowed: nothing below an allowed directory is re-included.
  const auto m = matcher({"*", "!src", "!Dockerfile"});
  CHECK(m.can_skip_directory("build"));
  CHECK(walk_excluded(m, "build/deep/file"));
  CHECK_FALSE(m.can_skip_directory("src"));
}

TEST_CASE("deep paths") {
  // matches_or_parent_matches tries every parent prefix, so like Docker's it is quadratic in the
  // depth; a walk (matches_using_parent_results) does one match per entry.
  std::string path;
  for (int i = 0; i < 500; ++i) {
    path += "d/";
  }
  path += "target.log";
  const auto m = matcher({"**/*.log", "!**/keep/*.log"});
  CHECK(exact(m, path));
  CHECK(excluded(m, path));
  const auto deep = matcher({"d/d/*/x"});
  CHECK(excluded(deep, "d/d/q/x/" + path));
  CHECK(walk_excluded(deep, "d/d/q/x/" + path));
}
