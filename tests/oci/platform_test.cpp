#include <minibuild/oci/platform.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::oci;

TEST_CASE("parse_platform: specifiers as containerd reads them", "[oci]") {
  struct Case {
    std::string specifier;
    std::string os, architecture, variant, os_version;
  };
  const std::vector<Case> cases = {
      {"linux/amd64", "linux", "amd64", "", ""},
      {"linux/arm64", "linux", "arm64", "", ""},
      {"linux/arm64/v8", "linux", "arm64", "v8", ""},
      {"linux/aarch64", "linux", "arm64", "", ""},
      {"linux/x86_64", "linux", "amd64", "", ""},
      {"linux/x86-64/v1", "linux", "amd64", "", ""},
      {"linux/amd64/v3", "linux", "amd64", "v3", ""},
      {"linux/arm", "linux", "arm", "", ""},
      {"linux/arm/7", "linux", "arm", "v7", ""},
      {"linux/arm/v6", "linux", "arm", "v6", ""},
      {"linux/armhf", "linux", "arm", "", ""}, // v7, implied as for "linux/arm"
      {"linux/armel", "linux", "arm", "v6", ""},
      {"linux/i386", "linux", "386", "", ""},
      {"Linux/AMD64", "linux", "amd64", "", ""},
      {"macos/arm64", "darwin", "arm64", "", ""},
      {"linux/riscv64", "linux", "riscv64", "", ""},
      {"windows(10.0.17763)/amd64", "windows", "amd64", "", "10.0.17763"},
  };
  for (const auto& c : cases) {
    INFO(c.specifier);
    auto platform = parse_platform(c.specifier);
    REQUIRE(platform);
    CHECK(platform->os == c.os);
    CHECK(platform->architecture == c.architecture);
    CHECK(platform->variant == c.variant);
    CHECK(platform->os_version == c.os_version);
  }
}

TEST_CASE("parse_platform refuses incomplete or malformed specifiers", "[oci]") {
  for (const std::string specifier :
       {"", "linux", "amd64", "linux/", "/amd64", "linux/amd64/", "linux/amd64/v1/x", "linux/*",
        "linux/am d64", "windows(10.0/amd64", "li nux/amd64"}) {
    INFO(specifier);
    auto platform = parse_platform(specifier);
    REQUIRE_FALSE(platform);
    CHECK(platform.error().code() == Code::usage);
    CHECK(platform.error().message().find("invalid platform") != std::string::npos);
  }
}

TEST_CASE("to_string is the inverse of parse_platform", "[oci]") {
  for (const std::string specifier : {"linux/amd64", "linux/arm64/v8", "linux/arm/v6", "linux/arm",
                                      "windows(10.0.17763)/amd64"}) {
    CHECK(to_string(parse_platform(specifier).value()) == specifier);
  }
  CHECK(to_string(Platform{}) == "unknown");
}

TEST_CASE("normalize follows containerd's table", "[oci]") {
  struct Case {
    std::string architecture, variant, want_architecture, want_variant;
  };
  const std::vector<Case> cases = {
      {"aarch64", "", "arm64", ""},   {"arm64", "v8", "arm64", ""},
      {"arm64", "8", "arm64", ""},    {"arm64", "v8.0", "arm64", ""},
      {"arm64", "9", "arm64", "v9"},  {"ARM64", "V8.2", "arm64", "v8.2"},
      {"x86_64", "", "amd64", ""},    {"amd64", "v1", "amd64", ""},
      {"amd64", "v2", "amd64", "v2"}, {"arm", "", "arm", "v7"},
      {"arm", "7", "arm", "v7"},      {"arm", "6", "arm", "v6"},
      {"armhf", "", "arm", "v7"},     {"armel", "", "arm", "v6"},
      {"i386", "", "386", ""},        {"ppc64le", "", "ppc64le", ""},
      {"s390x", "", "s390x", ""},
  };
  for (const auto& c : cases) {
    INFO(c.architecture << "/" << c.variant);
    auto normal = normalize(Platform{"Linux", c.architecture, c.variant, "", {}});
    CHECK(normal.os == "linux");
    CHECK(normal.architecture == c.want_architecture);
    CHECK(normal.variant == c.want_variant);
  }
}

TEST_CASE("matches: equal after normalisation", "[oci]") {
  auto p = [](const char* specifier) { return parse_platform(specifier).value(); };
  struct Case {
    Platform wanted, candidate;
    bool expected;
  };
  const std::vector<Case> cases = {
      {p("linux/amd64"), p("linux/amd64"), true},
      {p("linux/amd64"), p("linux/arm64"), false},
      {p("linux/amd64"), p("windows/amd64"), false},
      {p("linux/arm64"), p("linux/arm64/v8"), true},
      {p("linux/arm64/v8"), Platform{"linux", "aarch64", "", "", {}}, true},
      {p("linux/arm64"), p("linux/arm64/v9"), false},
      {p("linux/arm"), p("linux/arm/v7"), true},
      {p("linux/arm/v7"), Platform{"linux", "arm", "", "", {}}, true},
      {p("linux/arm"), p("linux/arm/v6"), false},
      {p("linux/arm/v6"), p("linux/arm/v7"), false},
      {p("linux/amd64"), Platform{"linux", "x86_64", "", "", {}}, true},
      {p("linux/amd64/v3"), p("linux/amd64"), false},
      {p("windows(10.0.17763)/amd64"), Platform{"windows", "amd64", "", "10.0.17763.1040", {}},
       true},
      {p("windows(10.0.17763)/amd64"), Platform{"windows", "amd64", "", "10.0.20348.1", {}}, false},
      {p("windows/amd64"), Platform{"windows", "amd64", "", "10.0.20348.1", {}}, true},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << ": " << to_string(cases[i].wanted) << " vs "
                 << to_string(cases[i].candidate));
    CHECK(matches(cases[i].wanted, cases[i].candidate) == cases[i].expected);
  }
}

TEST_CASE("platform JSON: required fields, omitempty, round trip", "[oci]") {
  Platform platform{"windows", "amd64", "", "10.0.17763.1040", {"win32k"}};
  CHECK(
      serialize(platform) ==
      R"({"architecture":"amd64","os":"windows","os.features":["win32k"],"os.version":"10.0.17763.1040"})");
  auto back = parse<Platform>(serialize(platform));
  REQUIRE(back);
  CHECK(*back == platform);
  CHECK(serialize(Platform{"linux", "arm64", "v8", "", {}}) ==
        R"({"architecture":"arm64","os":"linux","variant":"v8"})");

  auto missing = parse<Platform>(R"({"os":"linux"})");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::corrupt);
  CHECK(missing.error().message() == "architecture: required field is missing");
  auto wrong = parse<Platform>(R"({"os":"linux","architecture":"amd64","variant":7})");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().message() == "variant: expected a string, found number");
}
