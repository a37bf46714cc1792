#include "store/store_test_support.hpp"

#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

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
