#include "layer/layer_test_support.hpp"
#include "store/store_test_support.hpp"

#include <minibuild/store/fsck.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;
using layer_test::TarBuilder;

namespace {

bool is_whiteout(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool has_xattr(const std::string& path, const char* name) {
  return ::lgetxattr(path.c_str(), name, nullptr, 0) >= 0;
}

// Rewrites the version field of a layer's layer.json (as an older or newer minibuild wrote it).
void set_metadata_version(const std::string& root, const oci::Digest& diff_id, int version) {
  const std::string path = root + "/layers/sha256/" + diff_id.hex() + "/layer.json";
  std::string text = slurp(path);
  const std::string current = "\"version\":" + std::to_string(k_layer_metadata_version);
  const auto at = text.find(current);
  REQUIRE(at != std::string::npos);
  text.replace(at, current.size(), "\"version\":" + std::to_string(version));
  spit(path, text);
}

} // namespace

TEST_CASE("unpack builds the tree and its metadata, once", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest diff_id = oci::sha256_of("tar of layer one");
  const oci::Digest blob = oci::sha256_of("gzip of layer one");
  int calls = 0;
  const LayerExtractor extract = [&](const std::string& target) -> Result<void> {
    ++calls;
    return write_files({{"etc/hostname", "box\n"}, {"bin/tool", "#!/bin/sh\n"}})(target);
  };

  auto info = store->layers().unpack(diff_id, blob, extract);
  REQUIRE(info);
  CHECK(calls == 1);
  CHECK(info->diff_id == diff_id);
  CHECK(info->source_blob == blob);
  CHECK(info->size == 4 + 10);
  CHECK(info->created > 0);
  const std::string lower = store->layers().lower_dir(diff_id);
  CHECK(lower == dir / ("layers/sha256/" + diff_id.hex() + "/diff"));
  CHECK(slurp(lower + "/etc/hostname") == "box\n");
  CHECK(entries_of(dir / ("layers/sha256/" + diff_id.hex())) ==
        std::vector<std::string>{"diff", "layer.json"});

  auto again = store->layers().unpack(diff_id, blob, extract);
  REQUIRE(again);
  CHECK(calls == 1);
  CHECK(*again == *info);

  auto stat = store->layers().stat(diff_id);
  REQUIRE(stat);
  REQUIRE(*stat);
  CHECK(**stat == *info);
  auto listed = store->layers().list();
  REQUIRE(listed);
  CHECK(*listed == std::vector<oci::Digest>{diff_id});
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("a failing extractor leaves no layer and no temporary tree", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest diff_id = oci::sha256_of("broken");
  auto info = store->layers().unpack(diff_id, {}, [](const std::string& target) -> Result<void> {
    MB_TRY(write_files({{"half/written", "x"}})(target));
    return fail(Code::corrupt, "tar stream ended early");
  });
  REQUIRE_FALSE(info);
  CHECK(info.error().code() == Code::corrupt);
  CHECK_THAT(info.error().what(), Catch::Contains("unpack layer " + diff_id.to_string()));
  CHECK_THAT(info.error().what(), Catch::Contains("tar stream ended early"));
  auto stat = store->layers().stat(diff_id);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
  CHECK(temp_files(dir.path()) == 0);
  CHECK(entries_of(dir / "layers/sha256").empty());
}

TEST_CASE("remove deletes a layer, read-only directories included, idempotently", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest diff_id = oci::sha256_of("layer");
  auto info = store->layers().unpack(diff_id, {}, [](const std::string& target) -> Result<void> {
    MB_TRY(write_files({{"ro/file", "x"}})(target));
    if (::chmod((target + "/ro").c_str(), 0555) != 0) {
      return fail_errno(errno, "chmod");
    }
    return {};
  });
  REQUIRE(info);
  REQUIRE(store->layers().remove(diff_id));
  REQUIRE(store->layers().remove(diff_id));
  auto stat = store->layers().stat(diff_id);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
  CHECK(entries_of(dir / "layers/sha256").empty());
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("a layer directory without metadata is reported as corrupt", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest diff_id = oci::sha256_of("layer");
  REQUIRE(store->layers().unpack(diff_id, {}, write_files({{"a", "1"}})));
  REQUIRE(::unlink((dir / ("layers/sha256/" + diff_id.hex() + "/layer.json")).c_str()) == 0);
  auto stat = store->layers().stat(diff_id);
  REQUIRE_FALSE(stat);
  CHECK(stat.error().code() == Code::corrupt);
}

TEST_CASE("the content listing is stable and sees content, mode, names and links", "[store]") {
  TempDir dir;
  const std::string tree = dir / "tree";
  REQUIRE(write_files({{"etc/passwd", "root:x:0:0\n"}, {"usr/bin/app", "binary"}})(tree));
  REQUIRE(::symlink("app", (tree + "/usr/bin/link").c_str()) == 0);
  auto base = list_content(tree);
  REQUIRE(base);
  CHECK(base->entries == 6); // etc, passwd, usr, bin, app, link
  CHECK(base->size == 11 + 6);
  auto same = list_content(tree);
  REQUIRE(same);
  CHECK(same->digest == base->digest);

  const auto changed = [&](auto&& mutate, auto&& undo) {
    mutate();
    auto listing = list_content(tree);
    REQUIRE(listing);
    const bool differs = listing->digest != base->digest;
    undo();
    auto restored = list_content(tree);
    REQUIRE(restored);
    CHECK(restored->digest == base->digest);
    return differs;
  };
  CHECK(changed([&] { spit(tree + "/etc/passwd", "root:x:0:1\n"); },
                [&] { spit(tree + "/etc/passwd", "root:x:0:0\n"); }));
  CHECK(changed([&] { ::chmod((tree + "/usr/bin/app").c_str(), 0755); },
                [&] { ::chmod((tree + "/usr/bin/app").c_str(), 0644); }));
  CHECK(changed([&] { spit(tree + "/etc/extra", ""); },
                [&] { ::unlink((tree + "/etc/extra").c_str()); }));
  CHECK(changed(
      [&] {
        ::unlink((tree + "/usr/bin/link").c_str());
        REQUIRE(::symlink("elsewhere", (tree + "/usr/bin/link").c_str()) == 0);
      },
      [&] {
        ::unlink((tree + "/usr/bin/link").c_str());
        REQUIRE(::symlink("app", (tree + "/usr/bin/link").c_str()) == 0);
      }));
}

TEST_CASE("unpack_blob stores layers in the overlay form", "[store][layer][overlay]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::string tar = TarBuilder()
                              .dir("etc")
                              .file("etc/.wh.old", "")
                              .dir("opq")
                              .file("opq/.wh..wh..opq", "")
                              .file("opq/new", "new")
                              .finish();
  const BlobInfo blob = put_text(*store, tar);
  oci::Descriptor descriptor;
  descriptor.media_type = std::string(oci::k_oci_layer_tar);
  descriptor.digest = blob.digest;
  descriptor.size = static_cast<std::int64_t>(blob.size);
  layer::ApplyOptions options; // the apply style asked for: the store still records whiteouts
  options.owners = layer::Owners::ignore;
  const oci::Digest diff_id = oci::sha256_of(tar);
  auto info = store->layers().unpack_blob(diff_id, store->blobs(), descriptor, options);
  INFO((info ? std::string() : info.error().what()));
  REQUIRE(info);
  const std::string lower = store->layers().lower_dir(diff_id);
  CHECK(is_whiteout(lower + "/etc/old"));
  CHECK(has_xattr(lower + "/opq", layer::k_opaque_xattr));
  CHECK(slurp(lower + "/opq/new") == "new");
  auto listing = list_content(lower);
  REQUIRE(listing);
  CHECK(listing->digest == info->content_digest);
}

TEST_CASE("the content listing sees whiteout devices and the opaque xattr", "[store][overlay]") {
  TempDir dir;
  const std::string tree = dir / "tree";
  REQUIRE(write_files({{"opq/file", "x"}})(tree));
  if (::mknod((tree + "/gone").c_str(), S_IFCHR, makedev(0, 0)) != 0) {
    WARN("mknod of a 0/0 device refused (" << std::strerror(errno) << "): device part skipped");
    spit(tree + "/gone", "");
  }
  auto base = list_content(tree);
  REQUIRE(base);
  REQUIRE(::setxattr((tree + "/opq").c_str(), layer::k_opaque_xattr, "y", 1, 0) == 0);
  auto opaque = list_content(tree);
  REQUIRE(opaque);
  CHECK(opaque->digest != base->digest);
  REQUIRE(::removexattr((tree + "/opq").c_str(), layer::k_opaque_xattr) == 0);
  auto restored = list_content(tree);
  REQUIRE(restored);
  CHECK(restored->digest == base->digest);
  if (is_whiteout(tree + "/gone")) {
    REQUIRE(::unlink((tree + "/gone").c_str()) == 0);
    spit(tree + "/gone", "");
    auto file = list_content(tree);
    REQUIRE(file);
    CHECK(file->digest != base->digest);
  }
}

TEST_CASE("adopt moves a tree into the store as a layer", "[store][layer][overlay]") {
  TempDir dir;
  auto store = open_store(dir.path());
  auto work = store->layers().new_work_dir("run");
  REQUIRE(work);
  CHECK(work->rfind(dir / "tmp/", 0) == 0);
  const std::string upper = *work + "/upper";
  REQUIRE(write_files({{"app/main", "payload"}, {"opq/kept", "k"}, {"plain/f", "f"}})(upper));
  REQUIRE(::setxattr((upper + "/opq").c_str(), layer::k_opaque_xattr, "y", 1, 0) == 0);
  // overlayfs bookkeeping about the upper dir's own lower stack: must not survive.
  REQUIRE(::setxattr(upper.c_str(), "user.overlay.origin", "o", 1, 0) == 0);
  REQUIRE(::setxattr((upper + "/app").c_str(), "user.overlay.impure", "y", 1, 0) == 0);
  REQUIRE(::setxattr((upper + "/app/main").c_str(), "user.overlay.redirect", "/x", 2, 0) == 0);
  REQUIRE(::setxattr((upper + "/plain").c_str(), "user.overlay.opaque", "x", 1, 0) == 0);
  REQUIRE(::setxattr((upper + "/app/main").c_str(), "user.keep", "v", 1, 0) == 0);
  const bool trusted =
      ::setxattr((upper + "/plain").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0;
  const bool device = ::mknod((upper + "/deleted").c_str(), S_IFCHR, makedev(0, 0)) == 0;

  const oci::Digest diff_id = oci::sha256_of("exported upper");
  auto info = store->layers().adopt(diff_id, upper);
  INFO((info ? std::string() : info.error().what()));
  REQUIRE(info);
  CHECK(info->diff_id == diff_id);
  CHECK(info->source_blob.empty());
  CHECK(info->size == 7 + 1 + 1);
  CHECK_FALSE(::access(upper.c_str(), F_OK) == 0);
  const std::string lower = store->layers().lower_dir(diff_id);
  CHECK(slurp(lower + "/app/main") == "payload");
  CHECK(has_xattr(lower + "/opq", layer::k_opaque_xattr));
  CHECK(has_xattr(lower + "/app/main", "user.keep"));
  CHECK_FALSE(has_xattr(lower, "user.overlay.origin"));
  CHECK_FALSE(has_xattr(lower + "/app", "user.overlay.impure"));
  CHECK_FALSE(has_xattr(lower + "/app/main", "user.overlay.redirect"));
  if (trusted) {
    // A root overlay without userxattr marks opaque directories in trusted.*: translated.
    CHECK_FALSE(has_xattr(lower + "/plain", "trusted.overlay.opaque"));
    CHECK(has_xattr(lower + "/plain", layer::k_opaque_xattr));
  } else {
    CHECK_FALSE(has_xattr(lower + "/plain", layer::k_opaque_xattr)); // "x" is not opaque
  }
  if (device) {
    CHECK(is_whiteout(lower + "/deleted"));
  }
  auto stat = store->layers().stat(diff_id);
  REQUIRE(stat);
  REQUIRE(*stat);
  CHECK(**stat == *info);
  auto listing = list_content(lower);
  REQUIRE(listing);
  CHECK(listing->digest == info->content_digest);
  CHECK(temp_files(dir.path()) == 0);

  // The opaque marker is part of the fingerprint: fsck notices it going.
  auto clean = fsck(*store, Repair::no);
  REQUIRE(clean);
  CHECK(clean->problems.empty());
  REQUIRE(::removexattr((lower + "/opq").c_str(), layer::k_opaque_xattr) == 0);
  auto report = fsck(*store, Repair::no);
  REQUIRE(report);
  REQUIRE(report->problems.size() == 1);
  CHECK(report->problems[0].kind == FsckProblem::Kind::corrupt_layer);
  CHECK(report->problems[0].subject == diff_id.to_string());
}

TEST_CASE("adopt keeps an existing layer and deletes the given tree", "[store][layer][overlay]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest diff_id = oci::sha256_of("layer");
  auto first = store->layers().unpack(diff_id, {}, write_files({{"a", "first"}}));
  REQUIRE(first);
  auto work = store->layers().new_work_dir("run");
  REQUIRE(work);
  REQUIRE(write_files({{"a", "second"}})(*work + "/upper"));
  auto adopted = store->layers().adopt(diff_id, *work + "/upper/");
  REQUIRE(adopted);
  CHECK(*adopted == *first);
  CHECK(slurp(store->layers().lower_dir(diff_id) + "/a") == "first");
  CHECK_FALSE(::access((*work + "/upper").c_str(), F_OK) == 0);
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("adopt refuses a tree outside the temporary area and leaves it alone",
          "[store][layer][overlay]") {
  TempDir dir;
  auto store = open_store(dir.path() + "/root");
  const std::string outside = dir / "outside";
  REQUIRE(write_files({{"f", "x"}})(outside));
  const oci::Digest diff_id = oci::sha256_of("outside");
  for (const std::string& path :
       {outside, dir / "root/tmp/../layers", dir / "root/tmp/", dir / "root/tmp/missing"}) {
    auto adopted = store->layers().adopt(diff_id, path);
    REQUIRE_FALSE(adopted);
    CHECK(adopted.error().code() == Code::internal);
  }
  CHECK(slurp(outside + "/f") == "x");
  auto stat = store->layers().stat(diff_id);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
}

TEST_CASE("a layer of metadata version 1 is outdated: removed, then unpacked again",
          "[store][layer][overlay]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest diff_id = oci::sha256_of("old layer");
  REQUIRE(store->layers().unpack(diff_id, {}, write_files({{"f", "old"}})));
  set_metadata_version(dir.path(), diff_id, 1);

  SECTION("fsck does not call it damage") {
    auto report = fsck(*store, Repair::no);
    REQUIRE(report);
    CHECK(report->problems.empty());
    CHECK(entries_of(dir / "layers/sha256").empty());
  }
  auto stat = store->layers().stat(diff_id);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
  CHECK(entries_of(dir / "layers/sha256").empty());
  CHECK(temp_files(dir.path()) == 0);
  auto listed = store->layers().list();
  REQUIRE(listed);
  CHECK(listed->empty());

  int calls = 0;
  auto again = store->layers().unpack(diff_id, {}, [&](const std::string& target) {
    ++calls;
    return write_files({{"f", "new"}})(target);
  });
  REQUIRE(again);
  CHECK(calls == 1);
  CHECK(slurp(store->layers().lower_dir(diff_id) + "/f") == "new");
  CHECK(slurp(dir / ("layers/sha256/" + diff_id.hex() + "/layer.json")).find("\"version\":2") !=
        std::string::npos);

  // A newer minibuild's layer is left alone and refused.
  set_metadata_version(dir.path(), diff_id, k_layer_metadata_version + 1);
  auto newer = store->layers().stat(diff_id);
  REQUIRE_FALSE(newer);
  CHECK(newer.error().code() == Code::unsupported);
  CHECK(entries_of(dir / "layers/sha256") == std::vector<std::string>{diff_id.hex()});
}
