#include <minibuild/build/path_match.hpp>

#include <catch2/catch.hpp>

#include <string>

using minibuild::Code;
using minibuild::build::has_wildcards;
using minibuild::build::path_match;

namespace {

enum class Want { match, no_match, bad_pattern };

struct Case {
  const char* pattern;
  const char* name;
  Want want;
};

} // namespace

TEST_CASE("path_match follows Go's filepath.Match", "[build][path_match]") {
  // Cases written against the behaviour documented for Go's filepath.Match.
  const Case cases[] = {
      {"main.go", "main.go", Want::match},
      {"main.go", "main.c", Want::no_match},
      {"*", "anything", Want::match},
      {"*", "", Want::match},
      {"*", ".hidden", Want::match}, // no dotfile rule, unlike shells
      {"*.go", "main.go", Want::match},
      {"*.go", "main.go.bak", Want::no_match},
      {"m*n.go", "main.go", Want::match},
      {"*o*o*", "foo.go", Want::match},
      {"*x", "xxxx", Want::match},
      {"a*z", "a/z", Want::no_match}, // * never crosses a separator
      {"a?z", "a/z", Want::no_match},
      {"a*/z", "abc/z", Want::match},
      {"a*/z", "a/b/z", Want::no_match},
      {"?.txt", "a.txt", Want::match},
      {"?.txt", "ab.txt", Want::no_match},
      {"?", "\xc3\xa9", Want::match}, // one code point, two bytes
      {"??", "\xc3\xa9", Want::no_match},
      {"file[0-9].log", "file7.log", Want::match},
      {"file[0-9].log", "filex.log", Want::no_match},
      {"file[^0-9].log", "filex.log", Want::match},
      {"file[^0-9].log", "file7.log", Want::no_match},
      {"[abc]", "b", Want::match},
      {"[abc]", "d", Want::no_match},
      {"[a-c-]", "a", Want::bad_pattern}, // '-' may not start a member
      {"[\\]]", "]", Want::match},
      {"[\\-z]", "-", Want::match},
      {"[z\\-]", "-", Want::match},
      {"[\\-z]", "y", Want::no_match},
      {"[\xce\xb1-\xcf\x89]", "\xce\xbb", Want::match}, // Greek alpha..omega holds lambda
      {"x\\*y", "x*y", Want::match},
      {"x\\*y", "xzy", Want::no_match},
      {"\\[", "[", Want::match},
      {"[", "[", Want::bad_pattern},
      {"[]", "x", Want::bad_pattern},
      {"[]x]", "]", Want::bad_pattern},
      {"[-]", "-", Want::bad_pattern},
      {"[x-]", "x", Want::bad_pattern},
      {"[^", "x", Want::bad_pattern},
      {"ab[", "ab", Want::bad_pattern},
      {"abc\\", "abc", Want::bad_pattern},
      // A malformed tail is reported even when the start already fails to match.
      {"zz[", "ab", Want::bad_pattern},
      {"**", "a", Want::match}, // `**` is two stars here
      {"**", "a/b", Want::no_match},
  };
  for (const Case& c : cases) {
    INFO("pattern " << c.pattern << " name " << c.name);
    auto result = path_match(c.pattern, c.name);
    switch (c.want) {
    case Want::match:
      REQUIRE(result);
      CHECK(*result);
      break;
    case Want::no_match:
      REQUIRE(result);
      CHECK_FALSE(*result);
      break;
    case Want::bad_pattern:
      REQUIRE_FALSE(result);
      CHECK(result.error().code() == Code::dockerfile);
      CHECK(result.error().message().find("bad wildcard pattern") != std::string::npos);
      break;
    }
  }
}

TEST_CASE("has_wildcards finds unescaped wildcard characters", "[build][path_match]") {
  CHECK(has_wildcards("*.go"));
  CHECK(has_wildcards("src/?/x"));
  CHECK(has_wildcards("[ab]"));
  CHECK_FALSE(has_wildcards("plain/path.txt"));
  CHECK_FALSE(has_wildcards("a\\*b"));
  CHECK(has_wildcards("a\\*b*"));
}
