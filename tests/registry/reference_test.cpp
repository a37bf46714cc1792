#include <minibuild/registry/reference.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::registry;

namespace {

const std::string k_hex = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";
const std::string k_digest = "sha256:" + k_hex;

struct ValidCase {
  std::string input;
  std::string canonical; ///< to_string()
  std::string domain;
  std::string path;
  std::string familiar; ///< familiar_string()
};

// Expected forms follow distribution/reference's normalize_test.go and Docker's behaviour.
const std::vector<ValidCase> k_valid = {
    {"alpine", "docker.io/library/alpine:latest", "docker.io", "library/alpine", "alpine:latest"},
    {"alpine:3.19", "docker.io/library/alpine:3.19", "docker.io", "library/alpine", "alpine:3.19"},
    {"library/alpine", "docker.io/library/alpine:latest", "docker.io", "library/alpine",
     "alpine:latest"},
    {"docker.io/alpine", "docker.io/library/alpine:latest", "docker.io", "library/alpine",
     "alpine:latest"},
    {"docker.io/library/alpine:latest", "docker.io/library/alpine:latest", "docker.io",
     "library/alpine", "alpine:latest"},
    {"index.docker.io/library/alpine", "docker.io/library/alpine:latest", "docker.io",
     "library/alpine", "alpine:latest"},
    {"index.docker.io/alpine", "docker.io/library/alpine:latest", "docker.io", "library/alpine",
     "alpine:latest"},
    {"user/app", "docker.io/user/app:latest", "docker.io", "user/app", "user/app:latest"},
    {"user/app:1", "docker.io/user/app:1", "docker.io", "user/app", "user/app:1"},
    {"library/foo/bar", "docker.io/library/foo/bar:latest", "docker.io", "library/foo/bar",
     "library/foo/bar:latest"},
    {"localhost/app", "localhost/app:latest", "localhost", "app", "localhost/app:latest"},
    {"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000", "app",
     "localhost:5000/app:latest"},
    {"127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", "127.0.0.1:5000", "a/b",
     "127.0.0.1:5000/a/b:t"},
    {"[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000", "app", "[::1]:5000/app:latest"},
    {"[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
     "[fc00:1:2:3:4:5:6:7]:5000", "library/debian",
     "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"},
    {"ghcr.io/org/app@" + k_digest, "ghcr.io/org/app@" + k_digest, "ghcr.io", "org/app",
     "ghcr.io/org/app@" + k_digest},
    {"app:tag@" + k_digest, "docker.io/library/app:tag@" + k_digest, "docker.io", "library/app",
     "app:tag@" + k_digest},
    {"test-com:8080/foo", "test-com:8080/foo:latest", "test-com:8080", "foo",
     "test-com:8080/foo:latest"},
    {"xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080", "foo",
     "xn--n3h.com:18080/foo:latest"},
    {"test_com/foo", "docker.io/test_com/foo:latest", "docker.io", "test_com/foo",
     "test_com/foo:latest"},
    {"dock__er/docker---rules", "docker.io/dock__er/docker---rules:latest", "docker.io",
     "dock__er/docker---rules", "dock__er/docker---rules:latest"},
    {"ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest", "docker.io",
     "library/ubuntu-12.04-base", "ubuntu-12.04-base:latest"},
    // An upper-case first component cannot be a path, so it names a registry host.
    {"Foo/bar", "Foo/bar:latest", "Foo", "bar", "Foo/bar:latest"},
    // No '/': "host:port" is an image on Docker Hub whose tag is the "port", as in Docker.
    {"localhost:5000", "docker.io/library/localhost:5000", "docker.io", "library/localhost",
     "localhost:5000"},
    {"192.168.0.1", "docker.io/library/192.168.0.1:latest", "docker.io", "library/192.168.0.1",
     "192.168.0.1:latest"},
    {"app:V1_x.y-Z", "docker.io/library/app:V1_x.y-Z", "docker.io", "library/app", "app:V1_x.y-Z"},
    // 63 hex characters is a name; only exactly 64 would be an image ID.
    {k_hex.substr(1), "docker.io/library/" + k_hex.substr(1) + ":latest", "docker.io",
     "library/" + k_hex.substr(1), k_hex.substr(1) + ":latest"},
    {"docker.io/" + k_hex, "docker.io/library/" + k_hex + ":latest", "docker.io",
     "library/" + k_hex, k_hex + ":latest"},
};

struct InvalidCase {
  std::string input;
  std::string message_part;
};

const std::vector<InvalidCase> k_invalid = {
    {"", "empty"},
    {"Upper", "must be lowercase"},
    {"user/App", "must be lowercase"},
    {"ghcr.io/Org/app", "must be lowercase"},
    {"app:", "invalid tag"},
    {":tag", "repository name is empty"},
    {"app:-x", "invalid tag"},
    {"app:" + std::string(129, 'a'), "invalid tag"},
    {"app:a/b", "invalid registry host \"app:a\""}, // a ':' before the last '/' is no tag
    {"app@sha256:abc", "invalid digest"},
    {"app@" + k_digest.substr(0, 70) + "X", "invalid digest"},
    {"app@", "invalid digest"},
    {"a//b", "empty path component"},
    {"docker///docker", "empty path component"},
    {"docker/", "empty path component"},
    {"-docker", "invalid path component"},
    {"docker-/docker", "invalid path component"},
    {"dock..er/docker", "invalid registry host"},
    {"dock_.er/docker", "invalid registry host"},
    {"____/____", "invalid path component"},
    {"a___b", "invalid path component"},
    {"user/dock..er", "invalid path component"},
    {"user/dock_.er", "invalid path component"},
    {"https://github.com/docker/docker", "invalid"},
    {"-docker.io/docker/docker", "invalid registry host"},
    {"fc00::1:5000/debian", "invalid registry host"},
    {"[fe80::1%eth0]:5000/debian", "invalid registry host"},
    {"[::1]:/app", "invalid registry host"},
    {"[::1]:5000", "invalid path component"},
    {"example.com/", "empty path component"},
    {"app name", "invalid path component"},
    {k_hex, "image ID"},
    {std::string(256, 'a'), "longer than 255"},
    {"ghcr.io/" + std::string(240, 'a') + "/" + std::string(10, 'b'), "longer than 255"},
};

} // namespace

TEST_CASE("valid references parse to their normalised forms", "[registry]") {
  for (const ValidCase& c : k_valid) {
    INFO("input: " << c.input);
    auto ref = parse_reference(c.input);
    REQUIRE(ref.has_value());
    CHECK(ref->to_string() == c.canonical);
    CHECK(ref->domain == c.domain);
    CHECK(ref->path == c.path);
    CHECK(ref->repository() == c.domain + "/" + c.path);
    CHECK(ref->familiar_string() == c.familiar);
    // The canonical text is a fixed point.
    auto again = parse_reference(ref->to_string());
    REQUIRE(again.has_value());
    CHECK(*again == *ref);
  }
}

TEST_CASE("invalid references are usage errors naming the input and the problem", "[registry]") {
  for (const InvalidCase& c : k_invalid) {
    INFO("input: " << c.input);
    auto ref = parse_reference(c.input);
    REQUIRE_FALSE(ref.has_value());
    CHECK(ref.error().code() == Code::usage);
    CHECK_THAT(ref.error().message(), Catch::Contains(c.message_part));
    if (c.input.size() < 100) {
      CHECK_THAT(ref.error().message(), Catch::Contains("\"" + c.input + "\""));
    }
  }
}

TEST_CASE("name length limit counts the canonical name, domain included", "[registry]") {
  // "docker.io/" + path of 245 = 255: allowed; one more character is refused.
  const std::string path_245 = "u/" + std::string(243, 'a');
  CHECK(parse_reference(path_245).has_value());
  CHECK_FALSE(parse_reference(path_245 + "a").has_value());
  // "docker.io/library/" adds 18: a single component of 237 fits, 238 does not.
  CHECK(parse_reference(std::string(237, 'a')).has_value());
  CHECK_FALSE(parse_reference(std::string(238, 'a')).has_value());
}

TEST_CASE("tag and digest: default tag only when neither is given", "[registry]") {
  auto digested = parse_reference("alpine@" + k_digest);
  REQUIRE(digested.has_value());
  CHECK_FALSE(digested->tag.has_value());
  REQUIRE(digested->digest.has_value());
  CHECK(digested->digest->to_string() == k_digest);
  CHECK(digested->to_string() == "docker.io/library/alpine@" + k_digest);

  auto both = parse_reference("localhost:5000/app:1@" + k_digest);
  REQUIRE(both.has_value());
  CHECK(both->tag == "1");
  CHECK(both->digest->hex() == k_hex);

  auto plain = parse_reference("alpine");
  REQUIRE(plain.has_value());
  CHECK(plain->tag == std::string(k_default_tag));
  CHECK_FALSE(plain->digest.has_value());
}

TEST_CASE("a well-formed digest of an unverifiable algorithm is unsupported", "[registry]") {
  auto ref = parse_reference("app@sha384:" + std::string(96, 'a'));
  REQUIRE_FALSE(ref.has_value());
  CHECK(ref.error().code() == Code::unsupported);
  CHECK_THAT(ref.error().what(), Catch::Contains("app@sha384"));
}

TEST_CASE("familiar name drops docker.io and a lone library/ prefix", "[registry]") {
  CHECK(parse_reference("alpine")->familiar_name() == "alpine");
  CHECK(parse_reference("docker.io/user/app:1")->familiar_name() == "user/app");
  CHECK(parse_reference("docker.io/library/foo/bar")->familiar_name() == "library/foo/bar");
  CHECK(parse_reference("ghcr.io/library/app")->familiar_name() == "ghcr.io/library/app");
  CHECK(parse_reference("user/app:1")->familiar_string() == "user/app:1");
}

TEST_CASE("docker.io is served at registry-1.docker.io; other hosts as written", "[registry]") {
  CHECK(parse_reference("alpine")->api_host() == "registry-1.docker.io");
  CHECK(parse_reference("index.docker.io/user/app")->api_host() == "registry-1.docker.io");
  CHECK(parse_reference("ghcr.io/org/app")->api_host() == "ghcr.io");
  CHECK(parse_reference("localhost:5000/app")->api_host() == "localhost:5000");
  CHECK(parse_reference("[::1]:5000/app")->api_host() == "[::1]:5000");
}

TEST_CASE("plain HTTP by default only for loopback registries", "[registry]") {
  for (const char* loopback : {"localhost/app", "localhost:5000/app", "127.0.0.1:5000/app",
                               "127.1.2.3/app", "[::1]:5000/app", "[::1]/app"}) {
    INFO(loopback);
    CHECK(parse_reference(loopback)->is_insecure_by_default());
  }
  for (const char* remote :
       {"alpine", "ghcr.io/org/app", "128.0.0.1:5000/app", "127.0.0.1.example.com/app",
        "localhost.localdomain/app", "[fc00::1]:5000/app", "127.0.0.256/app", "127.0.0/app"}) {
    INFO(remote);
    CHECK_FALSE(parse_reference(remote)->is_insecure_by_default());
  }
}
