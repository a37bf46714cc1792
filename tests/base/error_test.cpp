#include <minibuild/base/error.hpp>

#include <catch2/catch.hpp>

#include <cerrno>

using namespace minibuild;

namespace {

Result<int> inner_failure() {
  return fail(Code::io, "open \"/x\": No such file");
}

Result<int> middle() {
  MB_TRY_CONTEXT(inner_failure(), "read config");
  return 1;
}

Result<int> outer() {
  MB_TRY_ASSIGN(int value, middle());
  return value + 1;
}

} // namespace

TEST_CASE("errors gain context on the way up, outermost first") {
  auto result = outer();
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::io);
  CHECK(result.error().context() == std::vector<std::string>{"read config"});
  CHECK(result.error().what() == "read config: open \"/x\": No such file");
}

TEST_CASE("a source location is printed first and the innermost one wins") {
  Error error(Code::dockerfile, "unknown instruction \"RUNN\"");
  error.at({"Dockerfile", 12, 1, 12}).at({"other", 3, 0, 3});
  error.wrap("parse");
  CHECK(error.what() == "Dockerfile:12:1: parse: unknown instruction \"RUNN\"");
}

TEST_CASE("from_errno names the cause and maps ENOENT to not_found") {
  auto missing = Error::from_errno(ENOENT, "open \"/nope\"");
  CHECK(missing.code() == Code::not_found);
  CHECK(missing.sys_errno() == ENOENT);
  CHECK(missing.message() == "open \"/nope\": No such file or directory");
  CHECK(Error::from_errno(EACCES, "open").code() == Code::io);
}

TEST_CASE("a tag marks the cause for callers and survives context, location and code changes") {
  constexpr std::string_view k_refused = "test.refused";
  Error error = Error(Code::sandbox, "mount: Operation not permitted").tagged(k_refused);
  error.wrap("run step").at({"Dockerfile", 4, 1, 4});
  Error recoded = std::move(error).with_code(Code::build_failed);
  CHECK(recoded.has_tag(k_refused));
  CHECK_FALSE(recoded.has_tag("test.other"));
  // The tag is not part of the text people read.
  CHECK(recoded.what() == "Dockerfile:4:1: run step: mount: Operation not permitted");
  CHECK_FALSE(Error(Code::sandbox, "test.refused").has_tag(k_refused));
  CHECK_FALSE(Error(Code::sandbox, "x").has_tag(""));
}
