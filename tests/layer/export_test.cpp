// export_layer(): the tar format, entry order, determinism, SOURCE_DATE_EPOCH, id maps and the
// overlay upper dir conversion.
#include "layer_test_support.hpp"

#include <minibuild/layer/decompress.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <sys/socket.h>
#include <sys/un.h>

using namespace minibuild;
using namespace layer_test;

namespace {

std::vector<std::string> paths_of(const std::vector<TarEntry>& entries) {
  std::vector<std::string> paths;
  for (const TarEntry& entry : entries) {
    paths.push_back(entry.path);
  }
  return paths;
}

const TarEntry& find_entry(const std::vector<TarEntry>& entries, const std::string& path) {
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const TarEntry& entry) { return entry.path == path; });
  INFO(path);
  REQUIRE(it != entries.end());
  return *it;
}

layer::ExportResult export_to(const std::string& root, layer::ExportOptions options,
                              std::string& blob) {
  layer::StringSink sink;
  auto result = layer::export_layer(root, options, sink);
  INFO((result ? std::string() : result.error().what()));
  REQUIRE(result);
  blob = sink.take();
  return *result;
}

// A small tree with every kind of entry a plain user can make.
void make_tree(const TempDir& dir) {
  make_dir(dir / "b");
  make_dir(dir / "b/sub");
  write_file(dir / "b/sub/deep", "deep");
  write_file(dir / "a", "alpha", 0640);
  make_dir(dir / "a-dir");
  write_file(dir / "a-dir/x", "x");
  make_dir(dir / "empty", 0700);
  write_file(dir / "b/file", "bee", 04755);
  REQUIRE(::symlink("../a", (dir / "b/link").c_str()) == 0);
  REQUIRE(::link((dir / "a").c_str(), (dir / "b/hard").c_str()) == 0);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
}

} // namespace

TEST_CASE("entries are sorted by name per directory, parents first, without the root",
          "[layer][export]") {
  TempDir dir;
  make_tree(dir);
  auto entries = listing(export_tar(dir.path()));
  std::vector<std::string> expected = {"a",          "a-dir/", "a-dir/x", "b/",
                                       "b/file",     "b/hard", "b/link",  "b/sub/",
                                       "b/sub/deep", "empty/", "fifo"};
  CHECK(paths_of(entries) == expected);
  CHECK(find_entry(entries, "b/hard").hardlink);
  CHECK(find_entry(entries, "b/hard").link == "a");
  CHECK(find_entry(entries, "b/link").link == "../a");
  CHECK(find_entry(entries, "b/file").mode == 04755);
  CHECK(find_entry(entries, "a").mode == 0640);
  CHECK(find_entry(entries, "empty/").mode == 0700);
  CHECK(find_entry(entries, "fifo").type == 'p');
  for (const TarEntry& entry : entries) {
    INFO(entry.path);
    CHECK_FALSE(entry.has_uname); // numeric owners only
    CHECK_FALSE(entry.has_atime); // no atime or ctime
  }
}

TEST_CASE("the same tree gives the same digest, whatever the thread count or atime",
          "[layer][export]") {
  TempDir dir;
  make_tree(dir);
  write_file(dir / "big", sample_bytes(2'000'000, 4));
  for (auto compression :
       {oci::Compression::gzip, oci::Compression::zstd, oci::Compression::none}) {
    layer::ExportOptions options;
    options.compression = compression;
    options.threads = 1;
    std::string first_blob;
    auto first = export_to(dir.path(), options, first_blob);
    for (unsigned threads : {2u, 5u}) {
      options.threads = threads;
      std::string blob;
      auto again = export_to(dir.path(), options, blob);
      CHECK(again.digest == first.digest);
      CHECK(again.diff_id == first.diff_id);
      CHECK(blob == first_blob);
    }
    // Reading files and changing ctime (chmod to the same mode) change nothing in the layer.
    read_file(dir / "big");
    REQUIRE(::chmod((dir / "a").c_str(), 0640) == 0);
    std::string blob;
    CHECK(export_to(dir.path(), options, blob).digest == first.digest);
    CHECK(first.digest == oci::sha256_of(first_blob));
    CHECK(first.size == first_blob.size());
  }
}

TEST_CASE("the diffID is the sha256 of the decompressed blob, and media types follow",
          "[layer][export]") {
  TempDir dir;
  make_tree(dir);
  std::string tar = export_tar(dir.path());
  for (auto [compression, type] : {std::pair{oci::Compression::gzip, oci::k_oci_layer_tar_gzip},
                                   std::pair{oci::Compression::zstd, oci::k_oci_layer_tar_zstd},
                                   std::pair{oci::Compression::none, oci::k_oci_layer_tar}}) {
    layer::ExportOptions options;
    options.compression = compression;
    std::string blob;
    auto result = export_to(dir.path(), options, blob);
    oci::StringSource inner(blob);
    layer::DecompressingSource source(inner);
    auto decompressed = oci::read_all(source, 1u << 30);
    REQUIRE(decompressed);
    CHECK(*decompressed == tar);
    CHECK(result.diff_id == oci::sha256_of(*decompressed));
    CHECK(result.uncompressed_size == tar.size());
    CHECK(result.media_type == type);
  }
}

TEST_CASE("SOURCE_DATE_EPOCH clamps newer mtimes and keeps older ones", "[layer][export]") {
  TempDir dir;
  write_file(dir / "new", "n");
  write_file(dir / "old", "o");
  make_dir(dir / "d");
  set_mtime(dir / "new", 2'000'000'000);
  set_mtime(dir / "old", 1'000'000'000);
  set_mtime(dir / "d", 1'900'000'000);
  layer::ExportOptions options;
  options.source_date_epoch = 1'500'000'000;
  auto entries = listing(export_tar(dir.path(), options));
  CHECK(find_entry(entries, "new").mtime == 1'500'000'000);
  CHECK(find_entry(entries, "old").mtime == 1'000'000'000);
  CHECK(find_entry(entries, "d/").mtime == 1'500'000'000);

  // Two trees made at different times give the same layer once clamped.
  TempDir other;
  write_file(other / "new", "n");
  write_file(other / "old", "o");
  make_dir(other / "d");
  set_mtime(other / "new", 1'700'000'000);
  set_mtime(other / "old", 1'000'000'000);
  set_mtime(other / "d", 1'600'000'000);
  CHECK(export_tar(dir.path(), options) == export_tar(other.path(), options));
}

TEST_CASE("SOURCE_DATE_EPOCH values are parsed strictly", "[layer][export]") {
  CHECK(*layer::parse_source_date_epoch("1700000000") == 1700000000);
  CHECK_FALSE(layer::parse_source_date_epoch("")->has_value());
  CHECK(layer::parse_source_date_epoch("-1").error().code() == Code::usage);
  CHECK(layer::parse_source_date_epoch("12abc").error().code() == Code::usage);
  CHECK(layer::parse_source_date_epoch("+5").error().code() == Code::usage);
}

TEST_CASE("long names, long link targets and non-ASCII names survive", "[layer][export]") {
  TempDir dir;
  std::string long_dir(150, 'd');
  std::string long_name(200, 'n');
  make_dir(dir / long_dir);
  write_file(dir / (long_dir + "/" + long_name), "long");
  std::string long_target = "../" + std::string(180, 't');
  REQUIRE(::symlink(long_target.c_str(), (dir / "sym").c_str()) == 0);
  write_file(dir / "h\xc3\xa9llo", "utf8");
  write_file(dir / "raw\xff", "latin");
  auto entries = listing(export_tar(dir.path()));
  find_entry(entries, long_dir + "/" + long_name);
  CHECK(find_entry(entries, "sym").link == long_target);
  find_entry(entries, "h\xc3\xa9llo");
  find_entry(entries, "raw\xff");
}

TEST_CASE("xattrs are exported sorted, overlay and SELinux ones are not", "[layer][export]") {
  TempDir dir;
  write_file(dir / "f", "x");
  if (::setxattr((dir / "f").c_str(), "user.b", "2", 1, 0) != 0) {
    WARN("user xattrs are not supported on " << dir.path() << ": " << std::strerror(errno));
    return;
  }
  REQUIRE(::setxattr((dir / "f").c_str(), "user.a", "1", 1, 0) == 0);
  REQUIRE(::setxattr((dir / "f").c_str(), "user.overlay.origin", "x", 1, 0) == 0);
  auto entries = listing(export_tar(dir.path()));
  std::map<std::string, std::string> expected = {{"user.a", "1"}, {"user.b", "2"}};
  CHECK(find_entry(entries, "f").xattrs == expected);
  // security.capability is content (file capabilities), so it is kept.
  std::string capability("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                         "\x00\x00\x00\x00",
                         20);
  if (::setxattr((dir / "f").c_str(), "security.capability", capability.data(), capability.size(),
                 0) == 0) {
    auto with_caps = listing(export_tar(dir.path()));
    CHECK(find_entry(with_caps, "f").xattrs.at("security.capability") == capability);
  } else {
    WARN("cannot set security.capability here (" << std::strerror(errno) << ")");
  }
}

TEST_CASE("owners are numeric and mapped back through the id map", "[layer][export]") {
  if (!can_chown()) {
    WARN("cannot chown files here (not root, or a user namespace): owner mapping skipped");
    return;
  }
  TempDir dir;
  write_file(dir / "f", "x");
  REQUIRE(::chown((dir / "f").c_str(), 100005, 100033) == 0);
  layer::ExportOptions options;
  options.id_map.uids = {{0, 100000, 65536}};
  options.id_map.gids = {{0, 100000, 65536}};
  auto entries = listing(export_tar(dir.path(), options));
  CHECK(find_entry(entries, "f").uid == 5);
  CHECK(find_entry(entries, "f").gid == 33);

  // A file owned by an id outside the map cannot be given a container owner.
  REQUIRE(::chown((dir / "f").c_str(), 7, 7) == 0);
  layer::StringSink sink;
  auto result = layer::export_layer(dir.path(), options, sink);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::unsupported);
  CHECK_THAT(result.error().what(), Catch::Contains("\"f\"") && Catch::Contains("id map"));
}

TEST_CASE("an owner override replaces every owner, with exceptions by path", "[layer][export]") {
  // No chown needed: the files' own owners (this process) are never consulted, so this runs
  // the same as root and unprivileged.
  TempDir dir;
  make_dir(dir / "app");
  make_dir(dir / "app/etc");
  write_file(dir / "app/etc/conf", "x");
  write_file(dir / "app/bin", "y");
  layer::ExportOptions options;
  options.owners.all = layer::EntryOwner{1000, 1001};
  options.owners.by_path["app"] = layer::EntryOwner{0, 0};
  options.owners.by_path["app/etc/conf"] = layer::EntryOwner{5, 6};
  // An id map that covers nothing would fail the export if it were consulted.
  options.id_map.uids = {{0, 4000000000u, 1}};
  options.id_map.gids = {{0, 4000000000u, 1}};
  auto entries = listing(export_tar(dir.path(), options));
  CHECK(find_entry(entries, "app/").uid == 0);
  CHECK(find_entry(entries, "app/").gid == 0);
  CHECK(find_entry(entries, "app/etc/").uid == 1000);
  CHECK(find_entry(entries, "app/etc/").gid == 1001);
  CHECK(find_entry(entries, "app/etc/conf").uid == 5);
  CHECK(find_entry(entries, "app/etc/conf").gid == 6);
  CHECK(find_entry(entries, "app/bin").uid == 1000);
  CHECK(find_entry(entries, "app/bin").gid == 1001);
}

TEST_CASE("devices are exported with their numbers", "[layer][export]") {
  TempDir dir;
  if (::mknod((dir / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0 ||
      ::mknod((dir / "disk").c_str(), S_IFBLK | 0600, makedev(8, 1)) != 0) {
    WARN("cannot create device nodes here (" << std::strerror(errno) << "): skipped");
    return;
  }
  auto entries = listing(export_tar(dir.path()));
  CHECK(find_entry(entries, "null").type == 'c');
  CHECK(find_entry(entries, "disk").type == 'b');
}

TEST_CASE("sockets are skipped with a warning", "[layer][export]") {
  TempDir dir;
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  std::string path = dir / "sock";
  REQUIRE(path.size() < sizeof(address.sun_path));
  std::strcpy(address.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) == 0);
  ::close(fd);
  write_file(dir / "file", "x");
  layer::StringSink sink;
  auto result = layer::export_layer(dir.path(), {}, sink);
  REQUIRE(result);
  REQUIRE(result->warnings.size() == 1);
  CHECK_THAT(result->warnings[0], Catch::Contains("sock"));
  CHECK(result->entries == 1);
}

TEST_CASE("a plain tree may not hold names with the whiteout prefix", "[layer][export]") {
  TempDir dir;
  write_file(dir / ".wh.oops", "");
  layer::StringSink sink;
  auto result = layer::export_layer(dir.path(), {}, sink);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::unsupported);
  CHECK_THAT(result.error().what(), Catch::Contains(".wh.oops"));
}

TEST_CASE("export errors name the root", "[layer][export]") {
  layer::StringSink sink;
  auto missing = layer::export_layer("/nonexistent/minibuild", {}, sink);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::not_found);
  layer::ExportOptions options;
  options.level = 42;
  TempDir dir;
  auto level = layer::export_layer(dir.path(), options, sink);
  REQUIRE_FALSE(level);
  CHECK(level.error().code() == Code::usage);
}

TEST_CASE("an overlay upper dir becomes whiteouts and opaque markers", "[layer][export]") {
  TempDir upper;
  make_dir(upper / "etc");
  write_file(upper / "etc/new.conf", "new");
  bool have_device_whiteout = ::mknod((upper / "etc/gone").c_str(), S_IFCHR, 0) == 0;
  if (!have_device_whiteout) {
    WARN("cannot create a 0/0 character device (" << std::strerror(errno)
                                                  << "): the device-whiteout part is skipped");
  }
  make_dir(upper / "opq");
  write_file(upper / "opq/kept", "k");
  // Root writes trusted.overlay.*; an unprivileged overlay (userxattr) writes user.overlay.*.
  bool trusted = ::setxattr((upper / "opq").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0;
  bool user = ::setxattr((upper / "opq").c_str(), "user.overlay.opaque", "y", 1, 0) == 0;
  if (!trusted && !user) {
    WARN("neither trusted. nor user. xattrs can be set here: opaque part skipped");
  }
  make_dir(upper / "uopq");
  bool user_only = ::setxattr((upper / "uopq").c_str(), "user.overlay.opaque", "y", 1, 0) == 0;
  // A 0/0 device in a *plain* tree stays a device: only the overlay mode converts.
  layer::ExportOptions options;
  options.kind = layer::TreeKind::overlay_upper;
  auto entries = listing(export_tar(upper.path(), options));
  auto paths = paths_of(entries);
  INFO(Catch::Detail::stringify(paths));
  auto position = [&](const std::string& path) {
    return std::find(paths.begin(), paths.end(), path) - paths.begin();
  };
  if (have_device_whiteout) {
    // The whiteout comes before its siblings (image-spec layer.md).
    CHECK(position("etc/.wh.gone") < position("etc/new.conf"));
    CHECK(position("etc/") < position("etc/.wh.gone"));
    CHECK(find_entry(entries, "etc/.wh.gone").type == 'f');
    CHECK(std::find(paths.begin(), paths.end(), "etc/gone") == paths.end());
  }
  if (trusted || user) {
    CHECK(position("opq/.wh..wh..opq") == position("opq/") + 1);
    CHECK(position("opq/kept") > position("opq/.wh..wh..opq"));
    CHECK(find_entry(entries, "opq/").xattrs.empty()); // overlay xattrs never leak
  }
  if (user_only) {
    CHECK(position("uopq/.wh..wh..opq") == position("uopq/") + 1);
  } else {
    WARN("user.overlay.opaque cannot be set here: skipped");
  }
  // The same tree exported as plain keeps the device and has no markers.
  auto plain = paths_of(listing(export_tar(upper.path())));
  CHECK(std::find(plain.begin(), plain.end(), "opq/.wh..wh..opq") == plain.end());
  if (have_device_whiteout) {
    CHECK(std::find(plain.begin(), plain.end(), "etc/gone") != plain.end());
  }
}

TEST_CASE("overlay redirect and metacopy xattrs are refused with the mount hint",
          "[layer][export]") {
  TempDir upper;
  make_dir(upper / "moved");
  if (::setxattr((upper / "moved").c_str(), "user.overlay.redirect", "/old", 4, 0) != 0) {
    WARN("user xattrs not supported here: skipped");
    return;
  }
  layer::ExportOptions options;
  options.kind = layer::TreeKind::overlay_upper;
  layer::StringSink sink;
  auto result = layer::export_layer(upper.path(), options, sink);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::unsupported);
  CHECK_THAT(result.error().what(),
             Catch::Contains("moved") && Catch::Contains("redirect_dir=off"));

  TempDir meta;
  write_file(meta / "f", "");
  REQUIRE(::setxattr((meta / "f").c_str(), "user.overlay.metacopy", "", 0, 0) == 0);
  auto metacopy = layer::export_layer(meta.path(), options, sink);
  REQUIRE_FALSE(metacopy);
  CHECK_THAT(metacopy.error().what(), Catch::Contains("metacopy"));
}

TEST_CASE("hardlinked symlinks and FIFOs are written once and linked after", "[layer][export]") {
  TempDir dir;
  REQUIRE(::symlink("target", (dir / "s1").c_str()) == 0);
  REQUIRE(::link((dir / "s1").c_str(), (dir / "s2").c_str()) == 0); // links the symlink itself
  REQUIRE(::mkfifo((dir / "p1").c_str(), 0600) == 0);
  REQUIRE(::link((dir / "p1").c_str(), (dir / "p2").c_str()) == 0);
  std::string tar = export_tar(dir.path());
  auto entries = listing(tar);
  CHECK(find_entry(entries, "s1").type == 'l');
  CHECK(find_entry(entries, "s2").hardlink);
  CHECK(find_entry(entries, "s2").link == "s1");
  CHECK(find_entry(entries, "p1").type == 'p');
  CHECK(find_entry(entries, "p2").hardlink);
  TempDir target;
  auto applied = apply_bytes(tar, target.path());
  REQUIRE(applied);
  auto expected = snapshot(dir.path(), {false, false, false});
  auto actual = snapshot(target.path(), {false, false, false});
  INFO("expected:\n" << describe(expected) << "actual:\n" << describe(actual));
  CHECK(actual == expected);
}
