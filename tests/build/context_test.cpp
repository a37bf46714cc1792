#include "build_test_support.hpp"

#include <minibuild/build/context.hpp>

#include <cstdlib>

using namespace minibuild;
using namespace minibuild::build;
using namespace minibuild::build::testing;

TEST_CASE("BuildContext opens a directory and reports a missing one", "[build][context]") {
  TempDir dir;
  auto context = BuildContext::open(dir.path());
  REQUIRE(context);
  CHECK(context->path() == dir.path());
  CHECK(context->ignore_file().empty());
  CHECK_FALSE(context->ignore().has_value());

  auto missing = BuildContext::open(dir / "nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::not_found);
}

TEST_CASE("BuildContext picks openat2 or the fallback", "[build][context]") {
  TempDir dir;
  auto fallback =
      BuildContext::open(dir.path(), {"", IgnoreFiles::auto_detect, Resolution::fallback});
  REQUIRE(fallback);
  CHECK_FALSE(fallback->uses_openat2());

  ::setenv("MINIBUILD_NO_OPENAT2", "1", 1);
  auto forced = BuildContext::open(dir.path());
  ::unsetenv("MINIBUILD_NO_OPENAT2");
  REQUIRE(forced);
  CHECK_FALSE(forced->uses_openat2());
}

TEST_CASE(".dockerignore exclusions and exceptions decide visibility", "[build][context]") {
  TempDir dir;
  spit(dir / ".dockerignore", "# build junk\n*.log\nsecret\n!secret/keep.txt\nnode_modules\n");
  spit(dir / "app.log", "x");
  spit(dir / "main.c", "x");
  spit(dir / "sub/deep.log", "x"); // `*.log` only matches at the top
  spit(dir / "secret/key.pem", "x");
  spit(dir / "secret/keep.txt", "x");
  spit(dir / "node_modules/pkg/index.js", "x");
  auto context = BuildContext::open(dir.path());
  REQUIRE(context);
  CHECK(context->ignore_file() == dir / ".dockerignore");
  REQUIRE(context->ignore().has_value());

  CHECK_FALSE(*context->is_visible("app.log"));
  CHECK(*context->is_visible("main.c"));
  CHECK(*context->is_visible("sub/deep.log"));
  CHECK_FALSE(*context->is_visible("secret/key.pem"));
  CHECK(*context->is_visible("secret/keep.txt"));
  // An excluded directory stays, because an exception keeps something below it.
  CHECK(*context->is_visible("secret"));
  CHECK_FALSE(*context->is_visible("node_modules"));
  CHECK_FALSE(*context->is_visible("node_modules/pkg/index.js"));
  // The ignore file itself is excluded only when a pattern says so.
  CHECK(*context->is_visible(".dockerignore"));
  CHECK(context->is_visible("absent").error().code() == Code::not_found);
}

TEST_CASE("<Dockerfile>.dockerignore wins over the context's .dockerignore", "[build][context]") {
  TempDir context_dir;
  TempDir elsewhere;
  spit(context_dir / ".dockerignore", "a.txt\n");
  spit(context_dir / "a.txt", "a");
  spit(context_dir / "b.txt", "b");
  spit(elsewhere / "app.Dockerfile", "FROM scratch\n");
  spit(elsewhere / "app.Dockerfile.dockerignore", "b.txt\n");

  ContextOptions options;
  options.dockerfile_path = elsewhere / "app.Dockerfile";
  auto specific = BuildContext::open(context_dir.path(), options);
  REQUIRE(specific);
  CHECK(specific->ignore_file() == elsewhere / "app.Dockerfile.dockerignore");
  CHECK(*specific->is_visible("a.txt"));
  CHECK_FALSE(*specific->is_visible("b.txt"));

  // Without the specific file (or for a Dockerfile on stdin) the context's file applies.
  options.dockerfile_path = elsewhere / "other.Dockerfile";
  auto general = BuildContext::open(context_dir.path(), options);
  REQUIRE(general);
  CHECK_FALSE(*general->is_visible("a.txt"));
  CHECK(*general->is_visible("b.txt"));
  options.dockerfile_path = "-";
  auto from_stdin = BuildContext::open(context_dir.path(), options);
  REQUIRE(from_stdin);
  CHECK(from_stdin->ignore_file() == context_dir / ".dockerignore");

  // IgnoreFiles::none: a stage's filesystem for COPY --from.
  options.ignore = IgnoreFiles::none;
  auto none = BuildContext::open(context_dir.path(), options);
  REQUIRE(none);
  CHECK(*none->is_visible("a.txt"));
  CHECK(*none->is_visible("b.txt"));
}

TEST_CASE("A malformed .dockerignore names its file and line", "[build][context]") {
  TempDir dir;
  spit(dir / ".dockerignore", "ok\n[\n");
  auto context = BuildContext::open(dir.path());
  REQUIRE_FALSE(context);
  CHECK(context.error().code() == Code::dockerfile);
  REQUIRE(context.error().location());
  CHECK(context.error().location()->file == dir / ".dockerignore");
  CHECK(context.error().location()->line == 2);
}

TEST_CASE("A .dockerignore symlinked outside the context is read inside it", "[build][context]") {
  TempDir dir;
  TempDir outside;
  spit(outside / "patterns", "a.txt\n");
  make_symlink(outside / "patterns", dir / ".dockerignore");
  spit(dir / "a.txt", "a");
  auto context = BuildContext::open(dir.path());
  REQUIRE(context);
  // The link resolves inside the context, where there is no such file: no ignore file.
  CHECK(context->ignore_file().empty());
  CHECK(*context->is_visible("a.txt"));
}
