#include <minibuild/build/file_mode.hpp>

#include <catch2/catch.hpp>

#include <string>

using minibuild::Code;
using minibuild::build::ModeChange;

namespace {

std::uint32_t apply(const char* text, std::uint32_t mode, bool is_dir = false) {
  auto change = ModeChange::parse(text);
  REQUIRE(change);
  return change->apply(mode, is_dir);
}

} // namespace

TEST_CASE("chmod: octal values set the exact mode", "[build][chmod]") {
  CHECK(apply("755", 0600) == 0755);
  CHECK(apply("0644", 0777, true) == 0644);
  CHECK(apply("4755", 0600) == 04755);
  CHECK(apply("0", 0777) == 0);
  CHECK(apply("7777", 0) == 07777);
  auto parsed = ModeChange::parse("0750");
  REQUIRE(parsed);
  CHECK(parsed->is_absolute());
}

TEST_CASE("chmod: rejects values that are not modes", "[build][chmod]") {
  for (const char* text : {"10000", "789", "0x1ed", "9", "77777"}) {
    INFO(text);
    auto parsed = ModeChange::parse(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::dockerfile);
    // BuildKit's wording for anything that starts like a number.
    CHECK(parsed.error().message() == "invalid chmod parameter: '" + std::string(text) +
                                          "'. it should be octal string and between 0 and 07777");
  }
  for (const char* text : {"", "u", "u+x,", "u+xq", "q+x", "+7", "u*x"}) {
    INFO(text);
    auto parsed = ModeChange::parse(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::dockerfile);
    CHECK(parsed.error().message().find("invalid chmod parameter") != std::string::npos);
  }
}

TEST_CASE("chmod: symbolic modes follow BSD setmode", "[build][chmod]") {
  CHECK(apply("u+x", 0644) == 0744);
  CHECK(apply("a+x", 0644) == 0755);
  CHECK(apply("go-w", 0666) == 0644);
  CHECK(apply("u=rw,go=r", 0777) == 0644);
  CHECK(apply("a=", 0755) == 0);
  CHECK(apply("o=", 0757) == 0750);
  CHECK(apply("u+r-w", 0200) == 0400); // several operators in one clause
  // Without `who`, the umask (022 in minibuild) masks what is added.
  CHECK(apply("+w", 0444) == 0644);
  CHECK(apply("+x", 0644) == 0755);
  CHECK(apply("=rw", 0755) == 0644);
  // X: only for `+`, only where the entry is a directory or already executable.
  CHECK(apply("a+X", 0644) == 0644);
  CHECK(apply("a+X", 0744) == 0755);
  CHECK(apply("a+X", 0700, true) == 0711);
  CHECK(apply("a-X", 0755) == 0755);
  // Special bits.
  CHECK(apply("u+s", 0755) == 04755);
  CHECK(apply("g+s", 0755) == 02755);
  CHECK(apply("o+s", 0755) == 0755); // set-id bits need u or g
  CHECK(apply("+t", 0755, true) == 01755);
  CHECK(apply("o+t", 0755, true) == 0755);
  // Copying one class's bits to others.
  CHECK(apply("go=u", 0700) == 0777);
  CHECK(apply("go=u-w", 0640) == 0644);
  CHECK(apply("g+u", 0604) == 0664);
  CHECK(apply("o-g", 0757) == 0752);
}
