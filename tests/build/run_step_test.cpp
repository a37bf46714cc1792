// The plain-logic parts of a RUN step (src/build/run_step.hpp): users from passwd/group tables,
// files read from overlay-form layers on real temp dirs, environment, argv, history text,
// removal of the sandbox's mount stubs from an upper dir, and the output tail.
#include "build/run_step.hpp"
#include "build_test_support.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <vector>

using namespace minibuild;
using namespace minibuild::build;
using minibuild::build::testing::exists;
using minibuild::build::testing::make_dir;
using minibuild::build::testing::spit;
using minibuild::build::testing::TempDir;
using minibuild::build::testing::tree_of;

namespace {

const std::string k_passwd = "root:x:0:0:root:/root:/bin/sh\n"
                             "# a comment line\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "app:x:1000:1000:App:/home/app:/bin/sh\n"
                             "nohome:x:1500:1500:No home::/bin/sh\n";
const std::string k_group = "root:x:0:\n"
                            "daemon:x:1:\n"
                            "audio:x:29:daemon,app\n"
                            "video:x:44:app\n"
                            "staff:x:50:other\n"
                            "app:x:1000:\n"
                            "grp:x:2000:\n";

// A reader over an in-memory /etc, recording what was read.
struct TableReader {
  std::map<std::string, std::string> files;
  std::vector<std::string> reads;

  BaseFileReader reader() {
    return [this](const std::string& path) -> Result<std::optional<std::string>> {
      reads.push_back(path);
      const auto it = files.find(path);
      if (it == files.end()) {
        return std::optional<std::string>();
      }
      return std::optional<std::string>(it->second);
    };
  }
};

TableReader etc_tables() {
  TableReader tables;
  tables.files["/etc/passwd"] = k_passwd;
  tables.files["/etc/group"] = k_group;
  return tables;
}

RunUser must_resolve(std::string_view user, const BaseFileReader& reader) {
  auto resolved = resolve_run_user(user, reader);
  if (!resolved) {
    FAIL(resolved.error().what());
  }
  return *resolved;
}

using Groups = std::vector<std::uint32_t>;

// A 0/0 character device: overlayfs's whiteout. false when mknod is refused.
bool make_whiteout(const std::string& path) {
  return ::mknod(path.c_str(), S_IFCHR | 0000, makedev(0, 0)) == 0;
}

// Marks a directory opaque as overlay's userxattr mode does. false when the fs refuses.
bool make_opaque(const std::string& dir) {
  return ::setxattr(dir.c_str(), "user.overlay.opaque", "y", 1, 0) == 0;
}

std::optional<std::string> must_read(const std::vector<std::string>& lowers,
                                     std::string_view path) {
  auto read = read_file_from_layers(lowers, path);
  if (!read) {
    FAIL(read.error().what());
  }
  return *read;
}

dockerfile::CommandLine shell_form(std::string text) {
  dockerfile::CommandLine line;
  line.args = {std::move(text)};
  line.shell_form = true;
  return line;
}

} // namespace

// ---- resolve_run_user -----------------------------------------------------------------------

TEST_CASE("run step: resolve_run_user follows runc's rules for USER", "[build]") {
  auto tables = etc_tables();
  const auto reader = tables.reader();

  SECTION("empty USER is root, with root's home from passwd") {
    const RunUser user = must_resolve("", reader);
    CHECK(user.uid == 0);
    CHECK(user.gid == 0);
    CHECK(user.home == "/root");
    CHECK(user.groups == Groups{0});
    CHECK(tables.reads == std::vector<std::string>{"/etc/passwd", "/etc/group"});
  }
  SECTION("a name takes uid, gid and home from passwd and its groups from group") {
    const RunUser user = must_resolve("app", reader);
    CHECK(user.uid == 1000);
    CHECK(user.gid == 1000);
    CHECK(user.home == "/home/app");
    CHECK(user.groups == Groups{1000, 29, 44});
  }
  SECTION("a numeric uid present in passwd is that entry, supplementary groups included") {
    const RunUser user = must_resolve("1000", reader);
    CHECK(user.uid == 1000);
    CHECK(user.gid == 1000);
    CHECK(user.home == "/home/app");
    CHECK(user.groups == Groups{1000, 29, 44});
  }
  SECTION("a numeric uid missing from passwd runs with gid 0 and home /") {
    const RunUser user = must_resolve("4242", reader);
    CHECK(user.uid == 4242);
    CHECK(user.gid == 0);
    CHECK(user.home == "/");
    CHECK(user.groups == Groups{0});
  }
  SECTION("an empty home field becomes /") {
    const RunUser user = must_resolve("nohome", reader);
    CHECK(user.uid == 1500);
    CHECK(user.home == "/");
  }
  SECTION("name:group gives exactly that group, no supplementary ones") {
    const RunUser user = must_resolve("app:grp", reader);
    CHECK(user.uid == 1000);
    CHECK(user.gid == 2000);
    CHECK(user.home == "/home/app");
    CHECK(user.groups == Groups{2000});
  }
  SECTION("uid:gid needs no tables") {
    const RunUser user = must_resolve("4242:4343", reader);
    CHECK(user.uid == 4242);
    CHECK(user.gid == 4343);
    CHECK(user.home == "/");
    CHECK(user.groups == Groups{4343});
  }
  SECTION("uid:gid of a known user keeps its home but not its groups") {
    const RunUser user = must_resolve("1000:2000", reader);
    CHECK(user.uid == 1000);
    CHECK(user.gid == 2000);
    CHECK(user.home == "/home/app");
    CHECK(user.groups == Groups{2000});
  }
  SECTION("a user name passwd does not know fails the build") {
    auto resolved = resolve_run_user("nobody", reader);
    REQUIRE_FALSE(resolved);
    CHECK(resolved.error().code() == Code::build_failed);
    CHECK(resolved.error().message() ==
          "unable to find user nobody: no matching entries in passwd file");
  }
  SECTION("a group name group does not know fails the build") {
    auto resolved = resolve_run_user("app:wheel", reader);
    REQUIRE_FALSE(resolved);
    CHECK(resolved.error().code() == Code::build_failed);
    CHECK(resolved.error().message() ==
          "unable to find group wheel: no matching entries in group file");
  }
  SECTION("malformed USER values are Dockerfile errors") {
    for (const char* bad : {"a:b:c", ":grp"}) {
      auto resolved = resolve_run_user(bad, reader);
      REQUIRE_FALSE(resolved);
      CHECK(resolved.error().code() == Code::dockerfile);
    }
  }
}

TEST_CASE("run step: resolve_run_user without /etc/passwd", "[build]") {
  TableReader empty;
  const RunUser root = must_resolve("", empty.reader());
  CHECK(root.uid == 0);
  CHECK(root.gid == 0);
  CHECK(root.home == "/");
  CHECK(root.groups == Groups{0});

  // No reader at all (FROM scratch with nothing to read) behaves the same.
  const RunUser numeric = must_resolve("12:34", BaseFileReader());
  CHECK(numeric.uid == 12);
  CHECK(numeric.gid == 34);
  CHECK(numeric.home == "/");

  auto named = resolve_run_user("app", empty.reader());
  REQUIRE_FALSE(named);
  CHECK(named.error().code() == Code::build_failed);

  // A failing reader's error is passed on, not mistaken for a missing file.
  const BaseFileReader broken = [](const std::string&) -> Result<std::optional<std::string>> {
    return fail(Code::io, "read broke");
  };
  auto failed = resolve_run_user("app", broken);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == Code::io);
}

// ---- read_file_from_layers ------------------------------------------------------------------

TEST_CASE("run step: read_file_from_layers reads through overlay-form layers", "[build]") {
  TempDir dir("run-layers");
  const std::string top = dir / "top";
  const std::string middle = dir / "middle";
  const std::string bottom = dir / "bottom";
  const std::vector<std::string> lowers = {top, middle, bottom}; // top first
  spit(bottom + "/etc/passwd", "bottom passwd\n");
  spit(bottom + "/etc/shadowed", "old\n");
  spit(middle + "/etc/shadowed", "new\n");
  make_dir(top + "/etc");
  REQUIRE(::symlink("passwd", (top + "/etc/link").c_str()) == 0);
  spit(bottom + "/etc/link-target", "x");

  SECTION("a file of a lower layer shows through layers without it") {
    CHECK(must_read(lowers, "/etc/passwd") == std::optional<std::string>("bottom passwd\n"));
    CHECK(must_read(lowers, "etc/./passwd") == std::optional<std::string>("bottom passwd\n"));
  }
  SECTION("an upper layer's file shadows a lower one") {
    CHECK(must_read(lowers, "/etc/shadowed") == std::optional<std::string>("new\n"));
  }
  SECTION("symlinks, directories and missing paths read as absent") {
    CHECK(must_read(lowers, "/etc/link") == std::nullopt);
    CHECK(must_read(lowers, "/etc") == std::nullopt);
    CHECK(must_read(lowers, "/etc/missing") == std::nullopt);
    CHECK(must_read(lowers, "/") == std::nullopt);
    CHECK(must_read({}, "/etc/passwd") == std::nullopt);
  }
  SECTION("a file in place of a directory ends the path") {
    spit(middle + "/opt", "a file");
    spit(bottom + "/opt/config", "hidden");
    CHECK(must_read(lowers, "/opt/config") == std::nullopt);
  }
  SECTION("a whiteout hides the file and a whole directory below it") {
    spit(bottom + "/etc/gone", "gone");
    spit(bottom + "/srv/data/file", "gone too");
    make_dir(middle + "/srv");
    if (!make_whiteout(middle + "/etc/gone") || !make_whiteout(middle + "/srv/data")) {
      WARN("skipped: mknod of a 0/0 character device refused: " << std::strerror(errno));
      return;
    }
    CHECK(must_read(lowers, "/etc/gone") == std::nullopt);
    CHECK(must_read(lowers, "/srv/data/file") == std::nullopt);
    // A file re-created above the whiteout is read again.
    spit(top + "/etc/gone", "back");
    CHECK(must_read(lowers, "/etc/gone") == std::optional<std::string>("back"));
  }
  SECTION("an opaque directory hides what lower layers have in it") {
    spit(bottom + "/etc/group", "bottom group\n");
    spit(bottom + "/var/lib/deep/file", "deep");
    spit(middle + "/var/kept", "kept");
    make_dir(top + "/var");
    if (!make_opaque(middle + "/etc") || !make_opaque(middle + "/var")) {
      WARN("skipped: the filesystem refuses user xattrs: " << std::strerror(errno));
      return;
    }
    CHECK(must_read(lowers, "/etc/group") == std::nullopt);
    CHECK(must_read(lowers, "/etc/shadowed") == std::optional<std::string>("new\n"));
    CHECK(must_read(lowers, "/var/kept") == std::optional<std::string>("kept"));
    // Deeper than the opaque directory: the missing /var/lib of the opaque layer must not let
    // the bottom layer's /var/lib show through.
    CHECK(must_read(lowers, "/var/lib/deep/file") == std::nullopt);
  }
  SECTION("a layer directory that cannot be opened is an error") {
    auto read = read_file_from_layers({dir / "no-such-layer"}, "/etc/passwd");
    REQUIRE_FALSE(read);
    CHECK(read.error().sys_errno() == ENOENT);
  }
}

// ---- run_environment, command_argv, run_created_by ------------------------------------------

TEST_CASE("run step: run_environment puts the image's Env first and fills PATH and HOME",
          "[build]") {
  dockerfile::Environment args;
  args.set("A", "from-arg");
  args.set("B", "b");
  args.set("PATH", "/arg/bin");
  args.set("C", "c");

  // "CD=1" does not set C: names match whole.
  const auto env = run_environment({"PATH=/img/bin", "A=from-image", "CD=1"}, args, "/home/app");
  CHECK(env == std::vector<std::string>{"PATH=/img/bin", "A=from-image", "CD=1", "B=b", "C=c",
                                        "HOME=/home/app"});

  const auto defaults = run_environment({}, dockerfile::Environment(), "/");
  CHECK(defaults ==
        std::vector<std::string>{
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"});

  // An image HOME is kept; an arg named PATH fills PATH when the image has none.
  dockerfile::Environment path_arg;
  path_arg.set("PATH", "/arg/bin");
  CHECK(run_environment({"HOME=/srv"}, path_arg, "/root") ==
        std::vector<std::string>{"HOME=/srv", "PATH=/arg/bin"});
}

TEST_CASE("run step: command_argv for shell form, exec form and a lone heredoc", "[build]") {
  CHECK(command_argv(shell_form("make && make install"), {}) ==
        std::vector<std::string>{"/bin/sh", "-c", "make && make install"});
  CHECK(command_argv(shell_form("echo $A"), {"/bin/bash", "-eo", "pipefail", "-c"}) ==
        std::vector<std::string>{"/bin/bash", "-eo", "pipefail", "-c", "echo $A"});

  dockerfile::CommandLine exec;
  exec.shell_form = false;
  exec.args = {"/bin/echo", "a b", "$A"};
  CHECK(command_argv(exec, {"/bin/bash", "-c"}) == exec.args);

  dockerfile::CommandLine heredoc = shell_form("<<EOF");
  dockerfile::Heredoc body;
  body.name = "EOF";
  body.content = "echo one\necho two\n";
  heredoc.heredocs.push_back(body);
  CHECK(command_argv(heredoc, {}) ==
        std::vector<std::string>{"/bin/sh", "-c", "echo one\necho two\n"});
  heredoc.args = {"<<-'EOF'"};
  CHECK(command_argv(heredoc, {}).back() == "echo one\necho two\n");

  // A heredoc with a command, or with words after it, goes to the shell whole (BuildKit's
  // "reconstituted" heredoc): the body is the command's stdin.
  heredoc.args = {"cat <<EOF > /out"};
  CHECK(command_argv(heredoc, {}) ==
        std::vector<std::string>{"/bin/sh", "-c", "cat <<EOF > /out\necho one\necho two\nEOF"});
  heredoc.args = {"<<EOF bash -e"};
  CHECK(command_argv(heredoc, {}).back() == "<<EOF bash -e\necho one\necho two\nEOF");

  dockerfile::CommandLine two = shell_form("cat <<A - <<B");
  dockerfile::Heredoc a;
  a.name = "A";
  a.content = "first\n";
  dockerfile::Heredoc b;
  b.name = "B";
  b.content = "second\n";
  two.heredocs = {a, b};
  CHECK(command_argv(two, {}).back() == "cat <<A - <<B\nfirst\nA\nsecond\nB");
}

TEST_CASE("run step: run_created_by is BuildKit's history text", "[build]") {
  const std::vector<std::string> argv = {"/bin/sh", "-c", "make"};
  CHECK(run_created_by(argv, dockerfile::Environment()) == "RUN /bin/sh -c make");
  dockerfile::Environment args;
  args.set("A", "1");
  args.set("B", "2");
  CHECK(run_created_by(argv, args) == "RUN |2 A=1 B=2 /bin/sh -c make");
  CHECK(run_created_by({"/bin/echo", "hi"}, dockerfile::Environment()) == "RUN /bin/echo hi");
}

// ---- remove_mount_stubs ---------------------------------------------------------------------

TEST_CASE("run step: remove_mount_stubs takes the sandbox's mount points out of the upper dir",
          "[build]") {
  TempDir dir("run-stubs");
  const std::string upper = dir / "upper";
  make_dir(upper);

  SECTION("empty stubs go, deepest first, with the directories made to hold them") {
    spit(upper + "/etc/hosts", "");
    spit(upper + "/etc/resolv.conf", "");
    make_dir(upper + "/proc");
    make_dir(upper + "/dev");
    make_dir(upper + "/mnt/a/b");
    REQUIRE(remove_mount_stubs(upper, "proc\ndev\netc/hosts\netc/resolv.conf\nmnt/a/b\n"));
    CHECK(tree_of(upper).empty());
  }
  SECTION("a stub the step wrote into stays, and so does its directory") {
    spit(upper + "/etc/hosts", "10.0.0.1 db\n");
    spit(upper + "/etc/resolv.conf", "");
    REQUIRE(remove_mount_stubs(upper, "etc/hosts\netc/resolv.conf\n"));
    CHECK(tree_of(upper) == std::vector<std::string>{"etc/", "etc/hosts"});
  }
  SECTION("a directory with other files stays") {
    spit(upper + "/etc/hosts", "");
    spit(upper + "/etc/motd", "hello");
    make_dir(upper + "/proc/self");
    spit(upper + "/proc/self/written", "x");
    REQUIRE(remove_mount_stubs(upper, "etc/hosts\nproc\n"));
    CHECK(tree_of(upper) ==
          std::vector<std::string>{"etc/", "etc/motd", "proc/", "proc/self/", "proc/self/written"});
  }
  SECTION("an opaque parent stays: it hides the lower layers' directory") {
    spit(upper + "/etc/hosts", "");
    if (!make_opaque(upper + "/etc")) {
      WARN("skipped: the filesystem refuses user xattrs: " << std::strerror(errno));
      return;
    }
    REQUIRE(remove_mount_stubs(upper, "etc/hosts\n"));
    CHECK(tree_of(upper) == std::vector<std::string>{"etc/"});
  }
  SECTION("paths with .. are ignored and missing stubs are no error") {
    spit(dir / "outside", "");
    REQUIRE(remove_mount_stubs(upper, "../outside\nnot/there\n\n"));
    CHECK(exists(dir / "outside"));
  }
  SECTION("a missing upper dir is an error") {
    auto removed = remove_mount_stubs(dir / "nope", "etc/hosts\n");
    REQUIRE_FALSE(removed);
    CHECK(removed.error().sys_errno() == ENOENT);
  }
}

// ---- OutputTail -----------------------------------------------------------------------------

TEST_CASE("run step: OutputTail splits lines across chunks and keeps the last ones", "[build]") {
  OutputTail tail(3);
  std::vector<std::string> seen;
  const auto on_line = [&seen](std::string_view line) { seen.emplace_back(line); };
  tail.feed("one\ntw", on_line);
  CHECK(seen == std::vector<std::string>{"one"});
  tail.feed("o\n\nthr", on_line);
  tail.feed("ee\nfour\nfi", on_line);
  CHECK(seen == std::vector<std::string>{"one", "two", "", "three", "four"});
  CHECK(std::vector<std::string>(tail.lines().begin(), tail.lines().end()) ==
        std::vector<std::string>{"", "three", "four"});
  tail.finish(on_line);
  CHECK(seen.back() == "fi");
  CHECK(std::vector<std::string>(tail.lines().begin(), tail.lines().end()) ==
        std::vector<std::string>{"three", "four", "fi"});
  // finish with nothing pending adds nothing.
  tail.finish(on_line);
  CHECK(seen.size() == 6);
}
