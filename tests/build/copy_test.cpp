#include "build_test_support.hpp"

#include <minibuild/build/copy.hpp>

using namespace minibuild;
using namespace minibuild::build;
using namespace minibuild::build::testing;

namespace {

// A small context used by the destination table.
void fill_basic_context(CopyFixture& f) {
  spit(f.ctx("a.txt"), "A");
  spit(f.ctx("b.txt"), "B");
  spit(f.ctx("dir/x"), "X");
  spit(f.ctx("dir/sub/y"), "Y");
}

struct DestCase {
  const char* name;
  std::vector<std::string> sources;
  std::string dest;
  std::string workdir;
  std::vector<std::string> base_dirs;
  std::vector<std::string> tree;
};

} // namespace

TEST_CASE("COPY destination rules", "[build][copy]") {
  const std::vector<DestCase> cases = {
      {"trailing slash makes a directory", {"a.txt"}, "/app/", "/", {}, {"app/", "app/a.txt"}},
      {"no trailing slash names the file", {"a.txt"}, "/app/b.txt", "/", {}, {"app/", "app/b.txt"}},
      {"a new path without slash is a file", {"a.txt"}, "/app", "/", {}, {"app"}},
      {"an existing base directory receives the file",
       {"a.txt"},
       "/app",
       "/",
       {"/app"},
       {"app/", "app/a.txt"}},
      {"relative to the WORKDIR", {"a.txt"}, "b.txt", "/work", {}, {"work/", "work/b.txt"}},
      {"dot is the WORKDIR", {"a.txt"}, ".", "/work", {}, {"work/", "work/a.txt"}},
      {"dir/. is a directory", {"a.txt"}, "sub/.", "/w", {}, {"w/", "w/sub/", "w/sub/a.txt"}},
      {".. cannot climb above the root", {"a.txt"}, "../../x", "/w", {}, {"x"}},
      {"several sources into a directory",
       {"a.txt", "b.txt"},
       "/app/",
       "/",
       {},
       {"app/", "app/a.txt", "app/b.txt"}},
      {"several sources into an existing base directory",
       {"a.txt", "b.txt"},
       "/app",
       "/",
       {"/app"},
       {"app/", "app/a.txt", "app/b.txt"}},
      {"a wildcard", {"*.txt"}, "/app/", "/", {}, {"app/", "app/a.txt", "app/b.txt"}},
      {"a wildcard matching one file names the file", {"a.*"}, "/f", "/", {}, {"f"}},
      {"a directory copies its contents",
       {"dir"},
       "/app",
       "/",
       {},
       {"app/", "app/sub/", "app/sub/y", "app/x"}},
      {"a directory into the root", {"dir/"}, "/", "/", {}, {"sub/", "sub/y", "x"}},
      {"an absolute source is relative to the context",
       {"/a.txt"},
       "/o/",
       "/",
       {},
       {"o/", "o/a.txt"}},
      {"a source cannot climb out", {"../../a.txt"}, "/o/", "/", {}, {"o/", "o/a.txt"}},
      {"a source is cleaned", {"dir/../a.txt"}, "/o/", "/", {}, {"o/", "o/a.txt"}},
      {"the context root",
       {"."},
       "/o/",
       "/",
       {},
       {"o/", "o/a.txt", "o/b.txt", "o/dir/", "o/dir/sub/", "o/dir/sub/y", "o/dir/x"}},
  };
  for (const DestCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      CopyFixture f;
      fill_basic_context(f);
      for (const std::string& dir : c.base_dirs) {
        f.base.directories.insert(dir);
      }
      auto result = f.run(copy_step(c.sources, c.dest, c.workdir));
      REQUIRE(result);
      CHECK(tree_of(f.staging_dir.path()) == c.tree);
      CHECK(result->owner == Owner{0, 0});
    }
  }
}

TEST_CASE("Base image directories on the destination path are reported", "[build][copy]") {
  CopyFixture f;
  fill_basic_context(f);
  f.base.directories.insert("/srv");
  auto result = f.run(copy_step({"a.txt"}, "/srv/app/conf/"));
  REQUIRE(result);
  // /srv keeps the base's metadata; app and conf are new.
  CHECK(result->base_directories == std::vector<std::string>{"/srv"});
  CHECK(result->directories == 3);

  CopyFixture g;
  fill_basic_context(g);
  g.base.directories.insert("/app");
  auto into_existing = g.run(copy_step({"dir"}, "/app"));
  REQUIRE(into_existing);
  CHECK(into_existing->base_directories == std::vector<std::string>{"/app"});
}

TEST_CASE("CopyStep is built from COPY and ADD instructions", "[build][copy]") {
  dockerfile::CopyInstruction copy;
  copy.sources = {"a", "b"};
  copy.dest = "/d/";
  copy.chown = "1:2";
  copy.chmod = "755";
  copy.link = true;
  copy.parents = true;
  copy.excludes = {"*.md"};
  CopyStep step = CopyStep::from(copy, "/work");
  CHECK(step.kind == CopyKind::copy);
  CHECK(step.sources == copy.sources);
  CHECK(step.workdir == "/work");
  CHECK(step.chown == "1:2");
  CHECK(step.link);
  CHECK(step.parents);
  CHECK(step.excludes == copy.excludes);

  dockerfile::AddInstruction add;
  add.sources = {"x.tar"};
  add.dest = "/opt/";
  add.checksum = "sha256:00";
  add.unpack = false;
  CopyStep add_step_ = CopyStep::from(add, "/");
  CHECK(add_step_.kind == CopyKind::add);
  CHECK(add_step_.checksum == "sha256:00");
  CHECK(add_step_.unpack == std::optional<bool>(false));
  CHECK_FALSE(add_step_.parents);
}

TEST_CASE("COPY file content and metadata come from the source", "[build][copy]") {
  CopyFixture f;
  spit(f.ctx("tool"), "#!/bin/sh\necho hi\n");
  ::chmod(f.ctx("tool").c_str(), 0751);
  set_mtime(f.ctx("tool"), 1500000000);
  spit(f.ctx("tree/inner/file"), "data");
  ::chmod(f.ctx("tree/inner").c_str(), 0750);
  set_mtime(f.ctx("tree/inner/file"), 1400000000);
  set_mtime(f.ctx("tree/inner"), 1300000000);
  set_mtime(f.ctx("tree"), 1200000000);

  SECTION("a file") {
    auto result = f.run(copy_step({"tool"}, "/usr/local/bin/"));
    REQUIRE(result);
    CHECK(slurp(f.staged("usr/local/bin/tool")) == "#!/bin/sh\necho hi\n");
    CHECK(mode_of(f.staged("usr/local/bin/tool")) == 0751);
    CHECK(lstat_of(f.staged("usr/local/bin/tool")).st_mtime == 1500000000);
    // Created parents are 0755.
    CHECK(mode_of(f.staged("usr")) == 0755);
    CHECK(mode_of(f.staged("usr/local/bin")) == 0755);
    CHECK(result->files == 1);
    CHECK(result->directories == 3);
    CHECK(result->bytes == 18);
  }
  SECTION("a directory without a trailing slash becomes the destination") {
    REQUIRE(f.run(copy_step({"tree"}, "/srv")));
    CHECK(lstat_of(f.staged("srv")).st_mtime == 1200000000);
    CHECK(mode_of(f.staged("srv/inner")) == 0750);
    CHECK(lstat_of(f.staged("srv/inner")).st_mtime == 1300000000);
    CHECK(lstat_of(f.staged("srv/inner/file")).st_mtime == 1400000000);
  }
  SECTION("with a trailing slash the destination is an implied directory") {
    REQUIRE(f.run(copy_step({"tree"}, "/srv/")));
    CHECK(mode_of(f.staged("srv")) == 0755);
    CHECK(lstat_of(f.staged("srv")).st_mtime != 1200000000);
    CHECK(lstat_of(f.staged("srv/inner")).st_mtime == 1300000000);
  }
}

TEST_CASE("COPY rejects several sources into a file", "[build][copy]") {
  CopyFixture f;
  fill_basic_context(f);
  for (const auto& sources :
       {std::vector<std::string>{"a.txt", "b.txt"}, std::vector<std::string>{"*.txt"}}) {
    auto result = f.run(copy_step(sources, "/app"));
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::build_failed);
    CHECK(result.error().message() ==
          "When using COPY with more than one source file, the destination must be a "
          "directory and end with a /");
  }
  CopyStep add = add_step({"a.txt", "b.txt"}, "/app");
  auto result = f.run(add);
  REQUIRE_FALSE(result);
  CHECK(result.error().message().find("When using ADD with more than one source file") == 0);
}

TEST_CASE("COPY reports missing sources", "[build][copy]") {
  CopyFixture f;
  fill_basic_context(f);

  auto missing = f.run(copy_step({"nope.txt"}, "/app/"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::build_failed);
  CHECK(missing.error().message() == "\"nope.txt\" not found in the build context");
  CHECK(missing.error().what() ==
        "COPY nope.txt /app/: \"nope.txt\" not found in the build context");

  auto below_file = f.run(copy_step({"a.txt/x"}, "/app/"));
  REQUIRE_FALSE(below_file);
  CHECK(below_file.error().code() == Code::build_failed);

  auto nothing = f.run(copy_step({"*.nope"}, "/app/"));
  REQUIRE_FALSE(nothing);
  CHECK(nothing.error().code() == Code::build_failed);
  CHECK(nothing.error().message() ==
        "no source files were specified (\"*.nope\" matched nothing in the build context)");

  // An optional file next to a required one: the instruction still copies something.
  auto optional = f.run(copy_step({"a.txt", "lock*.json"}, "/app/"));
  REQUIRE(optional);
  CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"app/", "app/a.txt"});

  auto bad = f.run(copy_step({"[a"}, "/app/"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Code::dockerfile);
}

TEST_CASE("Wildcards match per component in byte order", "[build][copy]") {
  CopyFixture f;
  spit(f.ctx("src/a/main.go"), "1");
  spit(f.ctx("src/b/main.go"), "2");
  spit(f.ctx("src/b/util.go"), "3");
  spit(f.ctx("src/c.go"), "4");
  spit(f.ctx("src/.hidden.go"), "5");
  auto result = f.run(copy_step({"src/*/main.go"}, "/out/"));
  REQUIRE(result);
  // Both are named main.go: the later match wins, as in BuildKit.
  CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"out/", "out/main.go"});
  CHECK(slurp(f.staged("out/main.go")) == "2");

  CopyFixture g;
  spit(g.ctx("src/c.go"), "4");
  spit(g.ctx("src/.hidden.go"), "5");
  spit(g.ctx("lib/d[1].go"), "6");
  spit(g.ctx("lib/d1.go"), "7");
  spit(g.ctx("lib/star*.go"), "8");
  // `[[]` is the way to name a `[` in a pattern; `\*` escapes inside a wildcard source.
  REQUIRE(g.run(copy_step({"src/*.go", "lib/d[[]1].go", "lib/st?r\\*.go"}, "/out/")));
  CHECK(tree_of(g.staging_dir.path()) == std::vector<std::string>{"out/", "out/.hidden.go",
                                                                  "out/c.go", "out/d[1].go",
                                                                  "out/star*.go"});
  // Without a wildcard, a backslash is part of the name, as in BuildKit.
  REQUIRE_FALSE(g.run(copy_step({"lib/d\\[1].go"}, "/out2/")));
}

TEST_CASE("Symlinks are copied as symlinks, and named ones are followed", "[build][copy]") {
  CopyFixture f;
  spit(f.ctx("dir/real.txt"), "real");
  make_symlink("/etc/passwd", f.ctx("dir/passwd"));
  make_symlink("real.txt", f.ctx("dir/rel"));
  make_symlink("dir/real.txt", f.ctx("named"));
  make_symlink("dir", f.ctx("dirlink"));

  SECTION("inside a copied directory") {
    auto result = f.run(copy_step({"dir"}, "/d/"));
    REQUIRE(result);
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"d/", "d/passwd -> /etc/passwd",
                                                                    "d/real.txt",
                                                                    "d/rel -> real.txt"});
    CHECK(result->symlinks == 2);
  }
  SECTION("a named symlink to a file copies the file under the link's name") {
    REQUIRE(f.run(copy_step({"named"}, "/d/")));
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"d/", "d/named"});
    CHECK(slurp(f.staged("d/named")) == "real");
  }
  SECTION("a named symlink to a directory copies the directory's contents") {
    REQUIRE(f.run(copy_step({"dirlink/"}, "/d/")));
    CHECK(exists(f.staged("d/real.txt")));
  }
  SECTION("a symlink in the middle of a source path is followed") {
    REQUIRE(f.run(copy_step({"dirlink/real.txt"}, "/d/")));
    CHECK(slurp(f.staged("d/real.txt")) == "real");
  }
}

TEST_CASE("Source paths cannot leave the context", "[build][copy][confinement]") {
  const Resolution resolution = GENERATE(Resolution::auto_detect, Resolution::fallback);
  CAPTURE(resolution == Resolution::fallback ? "fallback" : "auto");
  TempDir outside;
  spit(outside / "secret.txt", "SENTINEL");
  CopyFixture f;
  ContextOptions options;
  options.resolution = resolution;
  make_symlink(outside.path(), f.ctx("escape"));
  make_symlink("../../../../../../../../..", f.ctx("up"));
  make_symlink(outside / "secret.txt", f.ctx("direct"));

  {
    auto context = BuildContext::open(f.context_dir.path(), options);
    REQUIRE(context);
    if (resolution == Resolution::fallback) {
      CHECK_FALSE(context->uses_openat2());
    } else if (!context->uses_openat2()) {
      WARN("this kernel has no openat2: auto_detect ran the fallback too");
    }
  }

  SECTION("through a symlinked directory") {
    auto result = f.run(copy_step({"escape/secret.txt"}, "/x/"), options);
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::build_failed);
  }
  SECTION("through a symlink with ..") {
    const std::string rel = outside.path().substr(1) + "/secret.txt";
    auto result = f.run(copy_step({"up/" + rel}, "/x/"), options);
    REQUIRE_FALSE(result);
  }
  SECTION("a named symlink to an outside file") {
    REQUIRE_FALSE(f.run(copy_step({"direct"}, "/x/"), options));
  }
  SECTION("the link resolves inside the context, as if it were the root") {
    // Put a decoy where the in-root resolution lands: that is what gets copied.
    spit(f.ctx(outside.path().substr(1) + "/secret.txt"), "decoy");
    auto result = f.run(copy_step({"escape/secret.txt"}, "/x/"), options);
    REQUIRE(result);
    CHECK(slurp(f.staged("x/secret.txt")) == "decoy");
    REQUIRE(f.run(copy_step({"direct"}, "/y/"), options));
    CHECK(slurp(f.staged("y/direct")) == "decoy");
  }
  SECTION("copying the links themselves copies links, not targets") {
    REQUIRE(f.run(copy_step({"."}, "/all/"), options));
    CHECK(S_ISLNK(lstat_of(f.staged("all/escape")).st_mode));
    CHECK(tree_of(f.staging_dir.path()).size() == 4);
  }
}

TEST_CASE(".dockerignore hides files from COPY", "[build][copy][dockerignore]") {
  const Resolution resolution = GENERATE(Resolution::auto_detect, Resolution::fallback);
  ContextOptions options;
  options.resolution = resolution;
  CopyFixture f;
  spit(f.ctx(".dockerignore"), "*.log\nsecret\n!secret/keep.txt\nnode_modules\nDockerfile\n");
  spit(f.ctx("Dockerfile"), "FROM scratch\n");
  spit(f.ctx("main.c"), "c");
  spit(f.ctx("debug.log"), "log");
  spit(f.ctx("secret/key.pem"), "key");
  spit(f.ctx("secret/keep.txt"), "keep");
  spit(f.ctx("node_modules/pkg/index.js"), "js");
  make_symlink("secret/key.pem", f.ctx("keylink"));

  SECTION("a directory copy leaves excluded entries out") {
    REQUIRE(f.run(copy_step({"."}, "/app/"), options));
    CHECK(tree_of(f.staging_dir.path()) ==
          std::vector<std::string>{"app/", "app/.dockerignore", "app/keylink -> secret/key.pem",
                                   "app/main.c", "app/secret/", "app/secret/keep.txt"});
  }
  SECTION("an excluded file cannot be named") {
    for (const char* source :
         {"debug.log", "secret/key.pem", "node_modules/pkg/index.js", "Dockerfile", "keylink"}) {
      INFO(source);
      auto result = f.run(copy_step({source}, "/app/"), options);
      REQUIRE_FALSE(result);
      CHECK(result.error().code() == Code::build_failed);
      CHECK(result.error().message().find("excluded by \"" + f.ctx(".dockerignore") + "\"") !=
            std::string::npos);
    }
  }
  SECTION("an exception is visible, wildcards skip excluded names") {
    REQUIRE(f.run(copy_step({"secret/keep.txt", "*.c", "*.log"}, "/app/"), options));
    CHECK(tree_of(f.staging_dir.path()) ==
          std::vector<std::string>{"app/", "app/keep.txt", "app/main.c"});
  }
}

TEST_CASE("Dockerfile.dockerignore applies to COPY instead of .dockerignore",
          "[build][copy][dockerignore]") {
  CopyFixture f;
  TempDir dockerfile_dir;
  spit(f.ctx(".dockerignore"), "a.txt\n");
  spit(f.ctx("a.txt"), "a");
  spit(f.ctx("b.txt"), "b");
  spit(dockerfile_dir / "Dockerfile", "FROM scratch\n");
  spit(dockerfile_dir / "Dockerfile.dockerignore", "b.txt\n");
  ContextOptions options;
  options.dockerfile_path = dockerfile_dir / "Dockerfile";
  REQUIRE(f.run(copy_step({"a.txt"}, "/"), options));
  auto hidden = f.run(copy_step({"b.txt"}, "/"), options);
  REQUIRE_FALSE(hidden);
  CHECK(hidden.error().message().find("Dockerfile.dockerignore") != std::string::npos);
}

TEST_CASE("COPY --chmod applies to copied files and directories", "[build][copy][chmod]") {
  CopyFixture f;
  spit(f.ctx("d/run.sh"), "x");
  spit(f.ctx("d/data"), "x");
  spit(f.ctx("d/sub/more"), "x");
  ::chmod(f.ctx("d/run.sh").c_str(), 0744);
  ::chmod(f.ctx("d/data").c_str(), 0600);
  make_symlink("data", f.ctx("d/link"));

  SECTION("octal") {
    CopyStep step = copy_step({"d"}, "/app/");
    step.chmod = "640";
    REQUIRE(f.run(step));
    CHECK(mode_of(f.staged("app/run.sh")) == 0640);
    CHECK(mode_of(f.staged("app/data")) == 0640);
    CHECK(mode_of(f.staged("app/sub")) == 0640);
    CHECK(mode_of(f.staged("app")) == 0755); // an implied parent is not chmodded
    CHECK(S_ISLNK(lstat_of(f.staged("app/link")).st_mode));
  }
  SECTION("symbolic") {
    CopyStep step = copy_step({"d"}, "/app");
    step.chmod = "a+X,go-w";
    REQUIRE(f.run(step));
    CHECK(mode_of(f.staged("app/run.sh")) == 0755);
    CHECK(mode_of(f.staged("app/data")) == 0600);
    CHECK(mode_of(f.staged("app/sub")) == 0755);
    CHECK(mode_of(f.staged("app")) == 0755); // the copied directory itself
  }
  SECTION("an invalid value") {
    CopyStep step = copy_step({"d"}, "/app/");
    step.chmod = "999";
    auto result = f.run(step);
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::dockerfile);
  }
}

TEST_CASE("COPY --chown resolves the owner through the base image", "[build][copy][chown]") {
  CopyFixture f;
  spit(f.ctx("a.txt"), "a");
  f.base.files["/etc/passwd"] = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
  f.base.files["/etc/group"] = "root:x:0:\nstaff:x:50:\n";

  CopyStep step = copy_step({"a.txt"}, "/home/app/");
  step.chown = "app:staff";
  auto result = f.run(step);
  REQUIRE(result);
  CHECK(result->owner == Owner{1000, 50});
  CHECK(result->owner_exceptions.empty());
  CHECK(f.base.files_read == std::vector<std::string>{"/etc/passwd", "/etc/group"});

  step.chown = "ghost";
  auto unknown = f.run(step);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == Code::build_failed);
  CHECK(unknown.error().message().find("no user \"ghost\"") != std::string::npos);
}

TEST_CASE("COPY --exclude filters entries", "[build][copy][exclude]") {
  CopyFixture f;
  spit(f.ctx("proj/README.md"), "r");
  spit(f.ctx("proj/main.c"), "c");
  spit(f.ctx("proj/docs/guide.md"), "g");
  spit(f.ctx("proj/skip/x"), "x");
  spit(f.ctx("proj/keep/x"), "x");
  spit(f.ctx("home.txt"), "t");
  spit(f.ctx("home.md"), "m");

  SECTION("patterns relative to a directory source") {
    CopyStep step = copy_step({"proj"}, "/app/");
    step.excludes = {"*.md", "skip"};
    REQUIRE(f.run(step));
    CHECK(tree_of(f.staging_dir.path()) ==
          std::vector<std::string>{"app/", "app/docs/", "app/docs/guide.md", "app/keep/",
                                   "app/keep/x", "app/main.c"});
  }
  SECTION("** and exceptions") {
    CopyStep step = copy_step({"proj"}, "/app/");
    step.excludes = {"**/*.md", "!docs/guide.md"};
    REQUIRE(f.run(step));
    CHECK(exists(f.staged("app/docs/guide.md")));
    CHECK_FALSE(exists(f.staged("app/README.md")));
  }
  SECTION("files matched by a wildcard source") {
    CopyStep step = copy_step({"hom*"}, "/mydir/");
    step.excludes = {"*.txt"};
    REQUIRE(f.run(step));
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"mydir/", "mydir/home.md"});
  }
}

TEST_CASE("COPY --parents keeps source paths", "[build][copy][parents]") {
  CopyFixture f;
  spit(f.ctx("x/a.txt"), "xa");
  spit(f.ctx("y/a.txt"), "ya");
  spit(f.ctx("x/y/b.txt"), "xyb");
  spit(f.ctx("src/a.txt"), "1");
  spit(f.ctx("src/x/b.txt"), "2");
  spit(f.ctx("src/x/y/c.txt"), "3");
  spit(f.ctx("src/x/y/c.md"), "4");
  ::chmod(f.ctx("x").c_str(), 0750);

  SECTION("plain paths") {
    CopyStep step = copy_step({"./x/a.txt", "./y/a.txt"}, "/parents/");
    step.parents = true;
    REQUIRE(f.run(step));
    CHECK(tree_of(f.staging_dir.path()) == std::vector<std::string>{"parents/", "parents/x/",
                                                                    "parents/x/a.txt", "parents/y/",
                                                                    "parents/y/a.txt"});
    CHECK(mode_of(f.staged("parents/x")) == 0750); // parents come with their own metadata
  }
  SECTION("a /./ pivot") {
    CopyStep step = copy_step({"./x/./y/*.txt"}, "/parents/");
    step.parents = true;
    REQUIRE(f.run(step));
    CHECK(tree_of(f.staging_dir.path()) ==
          std::vector<std::string>{"parents/", "parents/y/", "parents/y/b.txt"});
  }
  SECTION("** matches any number of directories") {
    CopyStep step = copy_step({"./src/**/*.txt"}, "/parents/");
    step.parents = true;
    REQUIRE(f.run(step));
    CHECK(tree_of(f.staging_dir.path()) ==
          std::vector<std::string>{"parents/", "parents/src/", "parents/src/a.txt",
                                   "parents/src/x/", "parents/src/x/b.txt", "parents/src/x/y/",
                                   "parents/src/x/y/c.txt"});
  }
  SECTION("a directory keeps its path") {
    CopyStep step = copy_step({"src/x"}, "/p");
    step.parents = true;
    REQUIRE(f.run(step));
    CHECK(exists(f.staged("p/src/x/y/c.md")));
  }
  SECTION("a missing path") {
    CopyStep step = copy_step({"x/none.txt"}, "/p/");
    step.parents = true;
    auto result = f.run(step);
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::build_failed);
  }
}

TEST_CASE("Heredoc sources become files", "[build][copy][heredoc]") {
  CopyFixture f;
  CopyStep step = copy_step({}, "/etc/motd");
  step.inline_sources = {{"EOF", "hello\nworld\n", true}};
  auto result = f.run(step);
  REQUIRE(result);
  CHECK(slurp(f.staged("etc/motd")) == "hello\nworld\n");
  CHECK(mode_of(f.staged("etc/motd")) == 0644);

  CopyFixture g;
  CopyStep two = copy_step({}, "/scripts/");
  two.inline_sources = {{"one.sh", "echo 1\n", true}, {"two.sh", "echo 2\n", true}};
  two.chmod = "755";
  REQUIRE(g.run(two));
  CHECK(tree_of(g.staging_dir.path()) ==
        std::vector<std::string>{"scripts/", "scripts/one.sh", "scripts/two.sh"});
  CHECK(mode_of(g.staged("scripts/two.sh")) == 0755);

  CopyFixture h;
  CopyStep no_slash = copy_step({}, "/scripts");
  no_slash.inline_sources = two.inline_sources;
  REQUIRE_FALSE(h.run(no_slash));
}

TEST_CASE("Hard links within a source stay hard links", "[build][copy]") {
  CopyFixture f;
  spit(f.ctx("d/one"), "same");
  REQUIRE(::link(f.ctx("d/one").c_str(), f.ctx("d/two").c_str()) == 0);
  auto result = f.run(copy_step({"d"}, "/d/"));
  REQUIRE(result);
  CHECK(lstat_of(f.staged("d/one")).st_ino == lstat_of(f.staged("d/two")).st_ino);
  CHECK(result->bytes == 4);
  CHECK(result->files == 2);
}

TEST_CASE("The destination follows base image symlinks, except with --link", "[build][copy]") {
  CopyFixture f;
  spit(f.ctx("tool"), "t");
  f.base.directories = {"/", "/usr", "/usr/bin"};
  f.base.symlinks["/bin"] = "/usr/bin";

  auto result = f.run(copy_step({"tool"}, "/bin/"));
  REQUIRE(result);
  CHECK(tree_of(f.staging_dir.path()) ==
        std::vector<std::string>{"usr/", "usr/bin/", "usr/bin/tool"});
  CHECK(result->base_directories == std::vector<std::string>{"/usr", "/usr/bin"});
  CHECK_FALSE(result->link);

  CopyFixture g;
  spit(g.ctx("tool"), "t");
  g.base = f.base;
  CopyStep step = copy_step({"tool"}, "/bin/");
  step.link = true;
  auto linked = g.run(step);
  REQUIRE(linked);
  CHECK(tree_of(g.staging_dir.path()) == std::vector<std::string>{"bin/", "bin/tool"});
  CHECK(linked->base_directories.empty());
  CHECK(linked->link);
}

TEST_CASE("Writes never follow a symlink the step itself copied", "[build][copy]") {
  CopyFixture f;
  TempDir outside;
  make_symlink(outside.path(), f.ctx("d1/x"));
  spit(f.ctx("d2/x/planted"), "p");
  auto result = f.run(copy_step({"d1", "d2"}, "/out/"));
  REQUIRE_FALSE(result);
  CHECK(result.error().message().find("cannot copy to non-directory") != std::string::npos);
  CHECK(tree_of(outside.path()).empty());
}

TEST_CASE("COPY refuses remote sources and --checksum", "[build][copy]") {
  CopyFixture f;
  spit(f.ctx("a.txt"), "a");
  auto url = f.run(copy_step({"https://example.com/x.tar"}, "/"));
  REQUIRE_FALSE(url);
  CHECK(url.error().code() == Code::dockerfile);
  CHECK(url.error().message().find("source can't be a URL for COPY") == 0);

  auto git = f.run(copy_step({"git@github.com:moby/buildkit.git"}, "/"));
  REQUIRE_FALSE(git);
  CHECK(git.error().message().find("source can't be a git ref for COPY") == 0);

  CopyStep step = copy_step({"a.txt"}, "/");
  step.checksum = "sha256:0000";
  auto checksum = f.run(step);
  REQUIRE_FALSE(checksum);
  CHECK(checksum.error().message() == "checksum can't be specified for COPY");
}
