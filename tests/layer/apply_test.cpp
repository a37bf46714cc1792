// apply_layer(): round trips through export_layer(), the OCI whiteout rules, replacement of
// existing entries, owners, xattrs and device policy.
#include "layer_test_support.hpp"

#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/export.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>

using namespace minibuild;
using namespace layer_test;

namespace {

bool is_root() {
  static const bool value = can_chown();
  return value;
}

// Everything a layer can carry, as far as this machine lets the test create it.
void make_full_tree(const TempDir& dir, bool& with_devices, bool& with_xattrs) {
  make_dir(dir / "bin");
  write_file(dir / "bin/tool", sample_bytes(3'000'000, 21), 0755);
  write_file(dir / "bin/suid", "suid", 04755);
  write_file(dir / "bin/sgid", "sgid", 02711);
  write_file(dir / "empty-file", "", 0600);
  make_dir(dir / "tmp", 01777);
  make_dir(dir / "empty-dir", 0700);
  make_dir(dir / "etc");
  write_file(dir / "etc/conf", "key=value\n", 0644);
  REQUIRE(::link((dir / "etc/conf").c_str(), (dir / "etc/conf.hard").c_str()) == 0);
  REQUIRE(::link((dir / "etc/conf").c_str(), (dir / "bin/conf.hard2").c_str()) == 0);
  REQUIRE(::symlink("conf", (dir / "etc/rel").c_str()) == 0);
  REQUIRE(::symlink("/etc/conf", (dir / "etc/abs").c_str()) == 0);
  REQUIRE(::symlink("missing/target", (dir / "etc/dangling").c_str()) == 0);
  std::string long_target = "../" + std::string(300, 'x');
  REQUIRE(::symlink(long_target.c_str(), (dir / "etc/longlink").c_str()) == 0);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0620) == 0);
  std::string long_dir = std::string(120, 'L');
  make_dir(dir / long_dir);
  make_dir(dir / (long_dir + "/" + std::string(120, 'M')));
  write_file(dir / (long_dir + "/" + std::string(120, 'M') + "/" + std::string(250, 'N')), "deep");
  write_file(dir / "caf\xc3\xa9", "utf8 name");
  with_devices = ::mknod((dir / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0 &&
                 ::mknod((dir / "sda").c_str(), S_IFBLK | 0660, makedev(8, 0)) == 0;
  with_xattrs = ::setxattr((dir / "etc/conf").c_str(), "user.comment", "hello", 5, 0) == 0 &&
                ::setxattr((dir / "etc").c_str(), "user.dir", "d", 1, 0) == 0;
  if (is_root()) {
    REQUIRE(::chown((dir / "bin/tool").c_str(), 1234, 5678) == 0);
    REQUIRE(::lchown((dir / "etc/rel").c_str(), 42, 43) == 0);
    REQUIRE(::chown((dir / "etc").c_str(), 7, 8) == 0);
    // chown cleared the setuid bit of nothing here, but restore modes to be sure.
    REQUIRE(::chmod((dir / "bin/suid").c_str(), 04755) == 0);
    std::string capability("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                           "\x00\x00\x00\x00",
                           20);
    REQUIRE(::setxattr((dir / "bin/tool").c_str(), "security.capability", capability.data(),
                       capability.size(), 0) == 0);
  }
  // Fixed mtimes everywhere (directories last, as adding children changes them).
  for (const char* path : {"bin/tool", "bin/suid", "bin/sgid", "empty-file", "etc/conf", "fifo",
                           "caf\xc3\xa9", "etc/rel", "etc/abs", "etc/dangling", "etc/longlink"}) {
    set_mtime(dir / path, 1'234'567'890);
  }
  for (const char* path : {"bin", "tmp", "empty-dir", "etc"}) {
    set_mtime(dir / path, 1'111'111'111);
  }
}

} // namespace

TEST_CASE("export then apply reproduces the tree", "[layer][apply]") {
  TempDir source;
  bool with_devices = false;
  bool with_xattrs = false;
  make_full_tree(source, with_devices, with_xattrs);
  if (!with_devices) {
    WARN("device nodes cannot be created here: the round trip runs without them");
  }
  if (!with_xattrs) {
    WARN("user xattrs are not supported here: the round trip runs without them");
  }
  if (!is_root()) {
    WARN("cannot chown here (not root, or a user namespace): owners are not compared");
  }
  auto expected = snapshot(source.path(), {true, is_root(), true});
  for (auto compression :
       {oci::Compression::gzip, oci::Compression::zstd, oci::Compression::none}) {
    layer::ExportOptions export_options;
    export_options.compression = compression;
    layer::StringSink sink;
    auto exported = layer::export_layer(source.path(), export_options, sink);
    REQUIRE(exported);
    TempDir target;
    layer::ApplyOptions options;
    options.device_nodes = layer::DeviceNodes::create_or_refuse;
    auto applied = apply_bytes(sink.bytes(), target.path(), options);
    INFO((applied ? std::string() : applied.error().what()));
    REQUIRE(applied);
    CHECK(applied->diff_id == exported->diff_id);
    CHECK(applied->compression == compression);
    CHECK(applied->entries == exported->entries);
    CHECK(applied->skipped_xattrs == 0);
    CHECK(applied->skipped_owners == 0);
    auto actual = snapshot(target.path(), {true, is_root(), true});
    INFO("expected:\n" << describe(expected) << "actual:\n" << describe(actual));
    CHECK(actual == expected);
  }
}

TEST_CASE("applying reads the source to its end, so a VerifiedSource confirms the blob",
          "[layer][apply]") {
  TempDir source;
  write_file(source / "f", "content");
  layer::StringSink sink;
  auto exported = layer::export_layer(source.path(), {}, sink);
  REQUIRE(exported);
  TempDir target;
  oci::VerifiedSource verified(std::make_unique<oci::StringSource>(sink.bytes()), exported->digest,
                               exported->size);
  auto applied = layer::apply_layer(verified, target.path());
  REQUIRE(applied);
  CHECK(verified.verified());

  // A blob that does not match its descriptor fails the apply with the verifier's error.
  TempDir other;
  oci::VerifiedSource wrong(std::make_unique<oci::StringSource>(sink.bytes()),
                            oci::sha256_of("something else"), exported->size);
  auto refused = layer::apply_layer(wrong, other.path());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::corrupt);
}

TEST_CASE("an opaque whiteout hides lower content but keeps this layer's, in any order",
          "[layer][apply][whiteout]") {
  // image-spec layer.md: a/b/c/bar in the base, a/b/c/foo in the next layer.
  auto base = TarBuilder().dir("a").dir("a/b").dir("a/b/c").file("a/b/c/bar", "bar").finish();
  auto first = TarBuilder()
                   .dir("a")
                   .file("a/.wh..wh..opq", "")
                   .dir("a/b")
                   .dir("a/b/c")
                   .file("a/b/c/foo", "foo")
                   .finish();
  auto last = TarBuilder()
                  .dir("a")
                  .dir("a/b")
                  .dir("a/b/c")
                  .file("a/b/c/foo", "foo")
                  .file("a/.wh..wh..opq", "")
                  .finish();
  for (const std::string* layer : {&first, &last}) {
    TempDir target;
    REQUIRE(apply_bytes(base, target.path()));
    auto applied = apply_bytes(*layer, target.path());
    REQUIRE(applied);
    CHECK(applied->whiteouts == 1);
    CHECK(exists(target / "a/b/c/foo"));
    CHECK_FALSE(exists(target / "a/b/c/bar"));
    CHECK_FALSE(exists(target / "a/.wh..wh..opq"));
  }
}

TEST_CASE("a whiteout removes lower files and directories, never this layer's",
          "[layer][apply][whiteout]") {
  TempDir target;
  auto base = TarBuilder()
                  .dir("etc")
                  .file("etc/old", "old")
                  .dir("etc/old.d")
                  .file("etc/old.d/x", "x")
                  .file("etc/keep", "keep")
                  .finish();
  REQUIRE(apply_bytes(base, target.path()));
  auto layer = TarBuilder()
                   .file("etc/.wh.old", "")
                   .file("etc/.wh.old.d", "")
                   .file("etc/mine", "mine")
                   .file("etc/.wh.mine", "") // same layer: has no effect
                   .file("etc/.wh.never-existed", "")
                   .file("etc/.wh..wh.plnk", "") // aufs metadata: skipped
                   .finish();
  auto applied = apply_bytes(layer, target.path());
  REQUIRE(applied);
  CHECK_FALSE(exists(target / "etc/old"));
  CHECK_FALSE(exists(target / "etc/old.d"));
  CHECK(exists(target / "etc/keep"));
  CHECK(read_file(target / "etc/mine") == "mine");
  CHECK(applied->whiteouts == 4);
  CHECK(applied->skipped_other == 1);
  CHECK(listing(TarBuilder().finish()).empty()); // sanity: an empty tar lists nothing
  for (const std::string& name : names_in(target / "etc")) {
    CHECK(name.rfind(".wh.", 0) == std::string::npos);
  }
}

TEST_CASE("an exported overlay upper dir applies onto its lower layer",
          "[layer][apply][whiteout]") {
  TempDir lower;
  make_dir(lower / "etc");
  write_file(lower / "etc/removed", "r");
  write_file(lower / "etc/kept", "k");
  make_dir(lower / "var");
  write_file(lower / "var/lower-only", "l");

  TempDir upper;
  make_dir(upper / "etc");
  if (::mknod((upper / "etc/removed").c_str(), S_IFCHR, 0) != 0) {
    WARN("cannot create a 0/0 character device (" << std::strerror(errno) << "): skipped");
    return;
  }
  make_dir(upper / "var");
  write_file(upper / "var/upper-only", "u");
  bool opaque = ::setxattr((upper / "var").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0 ||
                ::setxattr((upper / "var").c_str(), "user.overlay.opaque", "y", 1, 0) == 0;

  layer::ExportOptions options;
  options.kind = layer::TreeKind::overlay_upper;
  layer::StringSink diff;
  REQUIRE(layer::export_layer(upper.path(), options, diff));
  layer::StringSink base;
  REQUIRE(layer::export_layer(lower.path(), {}, base));

  TempDir target;
  REQUIRE(apply_bytes(base.bytes(), target.path()));
  REQUIRE(apply_bytes(diff.bytes(), target.path()));
  CHECK_FALSE(exists(target / "etc/removed"));
  CHECK(exists(target / "etc/kept"));
  CHECK(exists(target / "var/upper-only"));
  CHECK(exists(target / "var/lower-only") == !opaque);
}

TEST_CASE("entries replace what is there; a directory over a directory keeps its children",
          "[layer][apply]") {
  TempDir target;
  auto base = TarBuilder()
                  .dir("d", 0755)
                  .file("d/child", "c")
                  .file("was-file", "f")
                  .dir("was-dir")
                  .file("was-dir/x", "x")
                  .symlink("was-link", "/etc")
                  .finish();
  REQUIRE(apply_bytes(base, target.path()));
  auto layer = TarBuilder()
                   .dir("d", 0700)
                   .dir("was-file")
                   .file("was-dir", "now a file")
                   .file("was-link", "now a file too")
                   .finish();
  REQUIRE(apply_bytes(layer, target.path()));
  struct stat st {};
  REQUIRE(::lstat((target / "d").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(exists(target / "d/child"));
  REQUIRE(::lstat((target / "was-file").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(read_file(target / "was-dir") == "now a file");
  REQUIRE(::lstat((target / "was-link").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
}

TEST_CASE("read-only directories still receive their children", "[layer][apply]") {
  TempDir target;
  auto layer = TarBuilder().dir("ro", 0555).file("ro/f", "x", 0444).dir("ro/sub", 0500).finish();
  REQUIRE(apply_bytes(layer, target.path()));
  struct stat st {};
  REQUIRE(::lstat((target / "ro").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0555);
  CHECK(read_file(target / "ro/f") == "x");
  // The mtime given by the archive survives the children being added.
  CHECK(st.st_mtim.tv_sec == 1600000000);
  REQUIRE(::chmod((target / "ro/sub").c_str(), 0755) == 0);
  REQUIRE(::chmod((target / "ro").c_str(), 0755) == 0);
}

TEST_CASE("missing parent directories are created", "[layer][apply]") {
  TempDir target;
  REQUIRE(apply_bytes(TarBuilder().file("x/y/z/file", "deep").finish(), target.path()));
  CHECK(read_file(target / "x/y/z/file") == "deep");
}

TEST_CASE("owners are applied as root and ignored on request", "[layer][apply]") {
  if (!is_root()) {
    WARN("cannot chown here (not root, or a user namespace): owner tests skipped");
    return;
  }
  TempDir source;
  write_file(source / "f", "x");
  REQUIRE(::chown((source / "f").c_str(), 1000, 2000) == 0);
  std::string tar = export_tar(source.path());

  TempDir preserved;
  REQUIRE(apply_bytes(tar, preserved.path()));
  struct stat st {};
  REQUIRE(::lstat((preserved / "f").c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK(st.st_gid == 2000);

  TempDir ignored;
  layer::ApplyOptions options;
  options.owners = layer::Owners::ignore;
  REQUIRE(apply_bytes(tar, ignored.path(), options));
  REQUIRE(::lstat((ignored / "f").c_str(), &st) == 0);
  CHECK(st.st_uid == 0);

  TempDir mapped;
  options.owners = layer::Owners::auto_detect;
  options.id_map.uids = {{0, 100000, 65536}};
  options.id_map.gids = {{0, 200000, 65536}};
  REQUIRE(apply_bytes(tar, mapped.path(), options));
  REQUIRE(::lstat((mapped / "f").c_str(), &st) == 0);
  CHECK(st.st_uid == 101000);
  CHECK(st.st_gid == 202000);
}

TEST_CASE("overlay and SELinux xattrs in a layer are never applied", "[layer][apply]") {
  TempDir target;
  auto layer = TarBuilder()
                   .xattr("trusted.overlay.opaque", "y")
                   .xattr("user.overlay.redirect", "/elsewhere")
                   .xattr("user.fine", "ok")
                   .dir("d")
                   .finish();
  auto applied = apply_bytes(layer, target.path());
  REQUIRE(applied);
  auto xattrs = xattrs_of(target / "d");
  CHECK(xattrs.count("trusted.overlay.opaque") == 0);
  CHECK(xattrs.count("user.overlay.redirect") == 0);
  CHECK(applied->skipped_xattrs >= 2);
  CHECK_FALSE(applied->warnings.empty());
}

TEST_CASE("device entries follow the DeviceNodes policy", "[layer][apply][devices]") {
  auto layer = TarBuilder().device("dev/sda", false, 8, 0).file("after", "a").finish();
  SECTION("skip (the default) counts and goes on") {
    TempDir target;
    auto applied = apply_bytes(layer, target.path());
    REQUIRE(applied);
    CHECK(applied->skipped_devices == 1);
    CHECK_FALSE(exists(target / "dev/sda"));
    CHECK(exists(target / "after"));
  }
  SECTION("refuse fails naming the entry") {
    TempDir target;
    layer::ApplyOptions options;
    options.device_nodes = layer::DeviceNodes::refuse;
    auto applied = apply_bytes(layer, target.path(), options);
    REQUIRE_FALSE(applied);
    CHECK(applied.error().code() == Code::unsupported);
    CHECK_THAT(applied.error().what(), Catch::Contains("dev/sda"));
    CHECK_FALSE(exists(target / "dev/sda"));
  }
}

TEST_CASE("without CAP_MKNOD, device creation is skipped or refused as asked",
          "[layer][apply][devices]") {
  auto layer = TarBuilder().device("null", true, 1, 3).finish();
  // In a child process that drops CAP_MKNOD from its effective set (capset(2)), so the kernel
  // refuses mknod as it would for an unprivileged user.
  auto run = [&](layer::DeviceNodes policy, const std::string& target) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      struct {
        std::uint32_t version;
        int pid;
      } header{0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
      struct {
        std::uint32_t effective, permitted, inheritable;
      } data[2]{};
      ::syscall(SYS_capget, &header, data);
      data[0].effective &= ~(1u << 27 /* CAP_MKNOD */);
      ::syscall(SYS_capset, &header, data);
      layer::ApplyOptions options;
      options.device_nodes = policy;
      auto applied = apply_bytes(layer, target, options);
      if (!applied) {
        ::_exit(applied.error().code() == Code::unsupported ? 3 : 4);
      }
      ::_exit(applied->skipped_devices == 1 ? 0 : 5);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };
  TempDir skip;
  CHECK(run(layer::DeviceNodes::create_or_skip, skip.path()) == 0);
  CHECK_FALSE(exists(skip / "null"));
  TempDir refuse;
  CHECK(run(layer::DeviceNodes::create_or_refuse, refuse.path()) == 3);
  CHECK_FALSE(exists(refuse / "null"));
  if (can_mknod()) {
    TempDir created;
    layer::ApplyOptions options;
    options.device_nodes = layer::DeviceNodes::create_or_refuse;
    auto applied = apply_bytes(layer, created.path(), options);
    REQUIRE(applied);
    struct stat st {};
    REQUIRE(::lstat((created / "null").c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(1, 3));
  }
}

TEST_CASE("a malformed tar is corrupt and names the last good entry", "[layer][apply]") {
  std::string tar = TarBuilder().file("good", "g").file("second", std::string(2000, 's')).finish();
  // Damage the second header's checksum field.
  std::size_t second = tar.find("second");
  REQUIRE(second != std::string::npos);
  std::string broken = tar;
  broken[second + 148] = 'X';
  TempDir target;
  auto applied = apply_bytes(broken, target.path());
  REQUIRE_FALSE(applied);
  CHECK(applied.error().code() == Code::corrupt);
  CHECK_THAT(applied.error().what(), Catch::Contains("\"good\""));
  // Truncated in the middle of a file's data.
  TempDir other;
  auto truncated = apply_bytes(tar.substr(0, second + 512 + 100), other.path());
  REQUIRE_FALSE(truncated);
  CHECK(truncated.error().code() == Code::corrupt);
}

TEST_CASE("owners that cannot be set are recorded in an xattr, which export drops",
          "[layer][apply]") {
  TarBuilder tar;
  tar.owner(1000, 1001).dir("home");
  tar.owner(5, 6).file("home/f", "x");
  const std::string bytes = tar.finish();
  TempDir target;
  layer::ApplyOptions options;
  options.owners = layer::Owners::ignore; // what an unprivileged apply gets
  options.record_owners = true;
  REQUIRE(apply_bytes(bytes, target.path(), options));
  auto record_of = [&](const std::string& path) {
    char value[64] = {};
    const ssize_t size = ::lgetxattr(path.c_str(), layer::k_owner_xattr, value, sizeof value - 1);
    return size > 0 ? std::string(value, static_cast<std::size_t>(size)) : std::string();
  };
  if (record_of(target / "home").empty() &&
      ::getxattr(target.path().c_str(), "user.x", nullptr, 0) < 0 && errno == ENOTSUP) {
    WARN("this filesystem has no user xattrs: owner records skipped");
    return;
  }
  CHECK(record_of(target / "home") == "1000:1001");
  CHECK(record_of(target / "home/f") == "5:6");

  // The record is bookkeeping: an export of the tree never carries it.
  auto entries = listing(export_tar(target.path()));
  for (const auto& entry : entries) {
    CHECK(entry.xattrs.count(layer::k_owner_xattr) == 0);
  }

  // Without record_owners nothing is written.
  TempDir plain;
  options.record_owners = false;
  REQUIRE(apply_bytes(bytes, plain.path(), options));
  CHECK(record_of(plain / "home").empty());
}
