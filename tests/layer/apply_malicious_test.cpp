// Malicious layers: every case is refused (Code::corrupt naming the entry) or contained inside
// the target, and a sentinel directory next to the target is never touched. Each case runs
// with openat2, with the forced fallback (PathResolution::fallback) and with the environment
// switch MINIBUILD_NO_OPENAT2=1.
#include "layer_test_support.hpp"

#include <minibuild/layer/apply.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace minibuild;
using namespace layer_test;

namespace {

enum class Resolver { openat2, fallback_option, fallback_environment };

const char* resolver_name(Resolver resolver) {
  switch (resolver) {
  case Resolver::openat2:
    return "openat2";
  case Resolver::fallback_option:
    return "fallback (option)";
  case Resolver::fallback_environment:
    return "fallback (MINIBUILD_NO_OPENAT2=1)";
  }
  return "?";
}

// A base directory holding the target and a sentinel directory beside it:
//   base/target/         where layers are applied
//   base/outside/keep    must survive every case unchanged (content, link count)
class Arena {
public:
  explicit Arena(Resolver resolver) : m_resolver(resolver) {
    make_dir(m_base / "target");
    make_dir(m_base / "outside");
    write_file(m_base / "outside/keep", "precious");
  }
  ~Arena() { ::unsetenv("MINIBUILD_NO_OPENAT2"); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  std::string target() const { return m_base / "target"; }
  std::string outside() const { return m_base / "outside"; }

  Result<layer::ApplyResult> apply(const std::string& tar) {
    layer::ApplyOptions options;
    if (m_resolver == Resolver::fallback_option) {
      options.resolution = layer::PathResolution::fallback;
    }
    if (m_resolver == Resolver::fallback_environment) {
      ::setenv("MINIBUILD_NO_OPENAT2", "1", 1);
    }
    auto result = apply_bytes(tar, target(), options);
    ::unsetenv("MINIBUILD_NO_OPENAT2");
    if (result) {
      CHECK(result->used_openat2 == (m_resolver == Resolver::openat2));
    }
    return result;
  }

  // Nothing new next to the target, and the sentinel untouched.
  void check_contained() {
    CHECK(names_in(m_base.path()) == std::vector<std::string>{"outside", "target"});
    CHECK(names_in(outside()) == std::vector<std::string>{"keep"});
    struct stat st {};
    REQUIRE(::lstat((m_base / "outside/keep").c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(st.st_nlink == 1);
    CHECK(read_file(m_base / "outside/keep") == "precious");
  }

  void check_refused(const Result<layer::ApplyResult>& result, const std::string& entry) {
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
    CHECK_THAT(result.error().what(), Catch::Contains("\"" + entry + "\""));
    check_contained();
  }

private:
  TempDir m_base;
  Resolver m_resolver;
};

} // namespace

TEST_CASE("malicious layers are refused or contained", "[layer][apply][security]") {
  if (::getenv("MINIBUILD_NO_OPENAT2") != nullptr) {
    WARN("MINIBUILD_NO_OPENAT2 is set in the environment: every case uses the fallback");
  }
  Resolver resolver =
      GENERATE(Resolver::openat2, Resolver::fallback_option, Resolver::fallback_environment);
  if (resolver == Resolver::openat2 && ::getenv("MINIBUILD_NO_OPENAT2") != nullptr) {
    return;
  }
  INFO("resolver: " << resolver_name(resolver));

  SECTION("a ../ path is refused") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder().file("../outside/evil", "x").finish());
    arena.check_refused(result, "../outside/evil");
    CHECK_THAT(result.error().what(), Catch::Contains(".."));
  }
  SECTION("a ../ hidden inside the path is refused") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder().dir("a").file("a/../../outside/evil", "x").finish());
    arena.check_refused(result, "a/../../outside/evil");
  }
  SECTION("an absolute path is made relative to the target") {
    Arena arena(resolver);
    std::string absolute = arena.outside() + "/evil";
    auto result = arena.apply(TarBuilder().file(absolute, "x").finish());
    REQUIRE(result);
    CHECK(read_file(arena.target() + absolute) == "x");
    arena.check_contained();
  }
  SECTION("a symlink pointing out, then a file written through it, stays inside") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder()
                                  .symlink("abs", arena.outside())
                                  .file("abs/evil", "x")
                                  .symlink("rel", "../../../../../../../../outside")
                                  .file("rel/evil2", "y")
                                  .finish());
    REQUIRE(result);
    // The link itself is kept as written; what went through it landed inside the target.
    CHECK(read_file(arena.target() + arena.outside() + "/evil") == "x");
    CHECK(read_file(arena.target() + "/outside/evil2") == "y");
    arena.check_contained();
  }
  SECTION("a symlink planted by a lower layer is not followed out either") {
    Arena arena(resolver);
    REQUIRE(::symlink(arena.outside().c_str(), (arena.target() + "/lower-link").c_str()) == 0);
    auto result = arena.apply(TarBuilder().file("lower-link/evil", "x").finish());
    REQUIRE(result);
    CHECK(read_file(arena.target() + arena.outside() + "/evil") == "x");
    arena.check_contained();
  }
  SECTION("a file entry named like a symlink replaces the symlink, not its target") {
    Arena arena(resolver);
    auto result = arena.apply(
        TarBuilder().symlink("keep", arena.outside() + "/keep").file("keep", "replaced").finish());
    REQUIRE(result);
    CHECK(read_file(arena.target() + "/keep") == "replaced");
    arena.check_contained();
  }
  SECTION("a hardlink to a path outside is refused") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder().hardlink("hl", "../outside/keep").finish());
    arena.check_refused(result, "hl");
  }
  SECTION("an absolute hardlink target is looked up inside the target only") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder().hardlink("hl", arena.outside() + "/keep").finish());
    arena.check_refused(result, "hl");
    CHECK_THAT(result.error().what(), Catch::Contains("does not exist"));
  }
  SECTION("a hardlink through a symlink is refused") {
    Arena arena(resolver);
    auto result = arena.apply(
        TarBuilder().symlink("link", arena.outside()).hardlink("hl", "link/keep").finish());
    arena.check_refused(result, "hl");
    CHECK_THAT(result.error().what(), Catch::Contains("symlink"));
    CHECK_FALSE(exists(arena.target() + "/hl"));
  }
  SECTION("a hardlink through a relative symlink to an in-target file is refused too") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder()
                                  .dir("real")
                                  .file("real/f", "f")
                                  .symlink("alias", "real")
                                  .hardlink("hl", "alias/f")
                                  .finish());
    arena.check_refused(result, "hl");
  }
  SECTION("a hardlink to a symlink links the symlink itself") {
    Arena arena(resolver);
    auto result = arena.apply(
        TarBuilder().symlink("link", arena.outside() + "/keep").hardlink("hl", "link").finish());
    REQUIRE(result);
    struct stat st {};
    REQUIRE(::lstat((arena.target() + "/hl").c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    arena.check_contained();
  }
  SECTION("a symlink replaced by a directory, then written into, stays inside") {
    Arena arena(resolver);
    auto result = arena.apply(
        TarBuilder().symlink("x", arena.outside()).dir("x").file("x/evil", "x").finish());
    REQUIRE(result);
    struct stat st {};
    REQUIRE(::lstat((arena.target() + "/x").c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK(read_file(arena.target() + "/x/evil") == "x");
    arena.check_contained();
  }
  SECTION("a directory replaced by a symlink, then written through, stays inside") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder()
                                  .dir("d")
                                  .file("d/f", "f")
                                  .symlink("d", arena.outside())
                                  .file("d/evil", "x")
                                  .finish());
    REQUIRE(result);
    CHECK(read_file(arena.target() + arena.outside() + "/evil") == "x");
    arena.check_contained();
  }
  SECTION("a device node is not created unless permitted") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder().device("dev/mem", true, 1, 1).finish());
    REQUIRE(result); // skipped by default
    CHECK(result->skipped_devices == 1);
    CHECK_FALSE(exists(arena.target() + "/dev/mem"));
    arena.check_contained();
  }
  SECTION("a whiteout of .. or . is refused") {
    Arena arena(resolver);
    arena.check_refused(arena.apply(TarBuilder().file(".wh...", "").finish()), ".wh...");
    arena.check_refused(arena.apply(TarBuilder().file("a/.wh..", "").finish()), "a/.wh..");
    arena.check_refused(arena.apply(TarBuilder().file("a/.wh.", "").finish()), "a/.wh.");
  }
  SECTION("a whiteout with path traversal is refused") {
    Arena arena(resolver);
    arena.check_refused(arena.apply(TarBuilder().file("../outside/.wh.keep", "").finish()),
                        "../outside/.wh.keep");
    arena.check_refused(arena.apply(TarBuilder().file("x/../../outside/.wh.keep", "").finish()),
                        "x/../../outside/.wh.keep");
  }
  SECTION("whiteouts and opaque markers behind a symlink act inside the target") {
    Arena arena(resolver);
    auto result = arena.apply(TarBuilder()
                                  .symlink("link", arena.outside())
                                  .file("link/.wh.keep", "")
                                  .file("link/.wh..wh..opq", "")
                                  .symlink("up", "../outside")
                                  .file("up/.wh.keep", "")
                                  .file("up/.wh..wh..opq", "")
                                  .finish());
    REQUIRE(result);
    arena.check_contained();
  }
  SECTION("an entry below a whiteout-named directory is refused") {
    Arena arena(resolver);
    arena.check_refused(arena.apply(TarBuilder().file(".wh.x/file", "").finish()), ".wh.x/file");
  }
  SECTION("symlink loops fail cleanly") {
    Arena arena(resolver);
    auto result =
        arena.apply(TarBuilder().symlink("a", "b").symlink("b", "a").file("a/evil", "x").finish());
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error().what(), Catch::Contains("a/evil"));
    arena.check_contained();
  }
}
