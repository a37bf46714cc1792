#include "build_test_support.hpp"

#include <minibuild/build/copy.hpp>

using namespace minibuild;
using namespace minibuild::build;
using namespace minibuild::build::testing;

namespace {

std::vector<ArchiveEntry> sample_entries() {
  using Type = ArchiveEntry::Type;
  return {
      {"pkg/", Type::dir, "", 0750, 1500000000},
      {"pkg/bin/tool", Type::file, "#!/bin/sh\n", 0755, 1600000000, 1000, 1000},
      {"pkg/link", Type::symlink, "bin/tool", 0777, 1600000001},
      {"pkg/hard", Type::hardlink, "pkg/bin/tool", 0755, 1600000000, 1000, 1000},
      {"pkg/readme", Type::file, "read me", 0644, 1600000002},
  };
}

} // namespace

TEST_CASE("ADD extracts local archives, whatever their compression", "[build][add]") {
  const Filter filter =
      GENERATE(Filter::none, Filter::gzip, Filter::bzip2, Filter::xz, Filter::zstd);
  CAPTURE(static_cast<int>(filter));
  CopyFixture f;
  // The name says nothing: detection is by content.
  make_archive(f.ctx("bundle.bin"), sample_entries(), filter);
  auto result = f.run(add_step({"bundle.bin"}, "/opt"));
  REQUIRE(result);
  CHECK(tree_of(f.staging_dir.path()) ==
        std::vector<std::string>{"opt/", "opt/pkg/", "opt/pkg/bin/", "opt/pkg/bin/tool",
                                 "opt/pkg/hard", "opt/pkg/link -> bin/tool", "opt/pkg/readme"});
  CHECK(slurp(f.staged("opt/pkg/bin/tool")) == "#!/bin/sh\n");
  CHECK(mode_of(f.staged("opt/pkg/bin/tool")) == 0755);
  CHECK(lstat_of(f.staged("opt/pkg/bin/tool")).st_mtime == 1600000000);
  CHECK(lstat_of(f.staged("opt/pkg/link")).st_mtime == 1600000001);
  CHECK(mode_of(f.staged("opt/pkg")) == 0750);
  CHECK(lstat_of(f.staged("opt/pkg")).st_mtime == 1500000000);
  CHECK(mode_of(f.staged("opt/pkg/bin")) == 0755); // implied by the archive
  CHECK(lstat_of(f.staged("opt/pkg/hard")).st_ino == lstat_of(f.staged("opt/pkg/bin/tool")).st_ino);
  // Owners from the archive, where they differ from the step's 0:0.
  CHECK(result->owner == Owner{0, 0});
  CHECK(result->owner_exceptions == std::vector<OwnerException>{{"/opt/pkg/bin/tool", {1000, 1000}},
                                                                {"/opt/pkg/hard", {1000, 1000}}});
  CHECK(result->files == 3);
  CHECK(result->symlinks == 1);
}

TEST_CASE("ADD copies what is not an archive", "[build][add]") {
  CopyFixture f;
  spit(f.ctx("notes.tar.gz"), "just text, not gzip");
  make_archive(f.ctx("empty.tar"), {}, Filter::none);
  make_archive(f.ctx("real.tar"), sample_entries(), Filter::gzip);
  spit(f.ctx("plain.txt"), "plain");

  SECTION("a misleading name") {
    REQUIRE(f.run(add_step({"notes.tar.gz", "plain.txt"}, "/in/")));
    CHECK(slurp(f.staged("in/notes.tar.gz")) == "just text, not gzip");
    CHECK(slurp(f.staged("in/plain.txt")) == "plain");
  }
  SECTION("an empty tar has no first header") {
    REQUIRE(f.run(add_step({"empty.tar"}, "/in/")));
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"in/", "in/empty.tar"});
  }
  SECTION("--unpack=false") {
    CopyStep step = add_step({"real.tar"}, "/in/");
    step.unpack = false;
    REQUIRE(f.run(step));
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"in/", "in/real.tar"});
  }
  SECTION("COPY never extracts") {
    REQUIRE(f.run(copy_step({"real.tar"}, "/in/")));
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"in/", "in/real.tar"});
  }
}

TEST_CASE("ADD --chown overrides archive owners; --chmod does not apply", "[build][add]") {
  CopyFixture f;
  make_archive(f.ctx("a.tgz"), sample_entries(), Filter::gzip);
  CopyStep step = add_step({"a.tgz"}, "/opt/");
  step.chown = "5:6";
  step.chmod = "600";
  auto result = f.run(step);
  REQUIRE(result);
  CHECK(result->owner == Owner{5, 6});
  // Only the directory the archive implied keeps root (BuildKit's implied ids).
  CHECK(result->owner_exceptions == std::vector<OwnerException>{{"/opt/pkg/bin", {0, 0}}});
  CHECK(mode_of(f.staged("opt/pkg/bin/tool")) == 0755);
}

TEST_CASE("ADD keeps a malicious archive inside the destination", "[build][add][confinement]") {
  using Type = ArchiveEntry::Type;
  const Resolution resolution = GENERATE(Resolution::auto_detect, Resolution::fallback);
  ContextOptions options;
  options.resolution = resolution;
  TempDir parent;
  const std::string staging = parent / "staging";
  make_dir(staging);
  TempDir context_dir;

  const auto run = [&](const std::vector<ArchiveEntry>& entries) {
    make_archive(context_dir / "evil.tar", entries, Filter::none);
    auto context = BuildContext::open(context_dir.path(), options);
    REQUIRE(context);
    return stage_copy(*context, add_step({"evil.tar"}, "/dest/"), BaseImage{}, staging);
  };

  SECTION("symlinks are followed inside the destination only") {
    auto result = run({
        {"abs.txt", Type::file, "absolute name"},
        {"/rooted.txt", Type::file, "leading slash"},
        {"evil", Type::symlink, "/"},
        {"evil/etc/passwd", Type::file, "through an absolute link"},
        {"up", Type::symlink, "../../../../.."},
        {"up/outside.txt", Type::file, "through a relative link"},
        {"a/../b.txt", Type::file, "cleaned"},
    });
    REQUIRE(result);
    CHECK(tree_of(parent.path()) ==
          std::vector<std::string>{"staging/", "staging/dest/", "staging/dest/abs.txt",
                                   "staging/dest/b.txt", "staging/dest/etc/",
                                   "staging/dest/etc/passwd", "staging/dest/evil -> /",
                                   "staging/dest/outside.txt", "staging/dest/rooted.txt",
                                   "staging/dest/up -> ../../../../.."});
  }
  SECTION("a name that climbs out is refused") {
    auto result = run({{"ok.txt", Type::file, "fine"}, {"x/../../escape.txt", Type::file, "no"}});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
    CHECK(result.error().message().find("outside the destination") != std::string::npos);
    CHECK_FALSE(exists(parent / "escape.txt"));
  }
  SECTION("a hard link to a path outside is refused") {
    auto result = run({{"h", Type::hardlink, "../../etc/passwd"}});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
  }
  SECTION("a hard link through a symlink stays inside") {
    auto result = run({{"l", Type::symlink, "/"}, {"h", Type::hardlink, "l/missing"}});
    REQUIRE_FALSE(result); // resolves to dest/missing, which does not exist
    CHECK(tree_of(parent.path()) ==
          std::vector<std::string>{"staging/", "staging/dest/", "staging/dest/l -> /"});
  }
  SECTION("an entry replaces what an earlier one made") {
    auto result = run({{"x/", Type::dir},
                       {"x/inner", Type::file, "gone"},
                       {"x", Type::file, "now a file"},
                       {"y", Type::symlink, "/etc"},
                       {"y", Type::file, "replaces the link"}});
    REQUIRE(result);
    CHECK(slurp(staging + "/dest/x") == "now a file");
    CHECK(slurp(staging + "/dest/y") == "replaces the link");
  }
}

TEST_CASE("ADD refuses URLs and checksums for local files", "[build][add]") {
  CopyFixture f;
  spit(f.ctx("a.txt"), "a");
  auto url = f.run(add_step({"https://example.com/file.tar.gz"}, "/"));
  REQUIRE_FALSE(url);
  CHECK(url.error().code() == Code::unsupported);
  CHECK(url.error().message().find("not supported yet") != std::string::npos);

  auto git = f.run(add_step({"https://github.com/moby/buildkit.git#v0.12"}, "/"));
  REQUIRE_FALSE(git);
  CHECK(git.error().code() == Code::unsupported);
  CHECK(git.error().message().find("git source") == 0);

  CopyStep local = add_step({"a.txt"}, "/");
  local.checksum = "sha256:24d4b96f1e6d3f1f6bd2c7e1c3e4e8b6a1a9d6a7f0b3a7d7e3e1c8c2b1a0f9e8";
  auto checksum = f.run(local);
  REQUIRE_FALSE(checksum);
  CHECK(checksum.error().code() == Code::dockerfile);
  CHECK(checksum.error().message() == "checksum requires HTTP(S) or Git sources");

  CopyStep two = add_step({"a.txt", "https://example.com/x"}, "/d/");
  two.checksum = "sha256:00";
  auto multiple = f.run(two);
  REQUIRE_FALSE(multiple);
  CHECK(multiple.error().message() == "checksum can't be specified for multiple sources");
}
