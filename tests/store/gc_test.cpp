#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/gc.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <sys/wait.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

bool has_blob(Store& store, const oci::Digest& digest) {
  auto stat = store.blobs().stat(digest);
  REQUIRE(stat);
  return stat->has_value();
}

bool has_layer(Store& store, const oci::Digest& diff_id) {
  auto stat = store.layers().stat(diff_id);
  REQUIRE(stat);
  return stat->has_value();
}

void unpack(Store& store, const oci::Digest& diff_id, const oci::Digest& blob = {}) {
  REQUIRE(store.layers().unpack(diff_id, blob, write_files({{"f", diff_id.hex()}})));
}

oci::Descriptor put_index(Store& store, const std::vector<oci::Descriptor>& manifests) {
  oci::ImageIndex index;
  index.media_type = std::string(oci::k_oci_index);
  index.manifests = manifests;
  const std::string text = oci::serialize(index);
  put_text(store, text);
  return descriptor_of(oci::k_oci_index, text);
}

} // namespace

TEST_CASE("prune keeps what names reach and removes the rest", "[store][gc]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage kept = put_image(*store, {"shared", "kept-only"});
  const TestImage via_index = put_image(*store, {"shared", "index-only"});
  const TestImage dropped = put_image(*store, {"shared", "dropped-only"});
  // The second entry is not stored, as after a single-platform pull: not a problem.
  const oci::Descriptor index = put_index(
      *store, {via_index.manifest, descriptor_of(oci::k_oci_manifest, "{\"other\":\"arch\"}")});
  const BlobInfo loose = put_text(*store, "an unreferenced blob");
  REQUIRE(store->names().tag("kept:1", kept.manifest.digest, oci::k_oci_manifest));
  REQUIRE(store->names().tag("multi:1", index.digest, oci::k_oci_index));
  for (const auto& id : kept.diff_ids) {
    unpack(*store, id);
  }
  unpack(*store, dropped.diff_ids[1]);
  const oci::Digest orphan_layer = oci::sha256_of("orphan layer");
  unpack(*store, orphan_layer);
  // A layer is also kept by the blob it was unpacked from.
  const oci::Digest from_blob = oci::sha256_of("unpacked from a kept blob");
  unpack(*store, from_blob, via_index.layers[1].digest);

  auto report = prune(*store);
  REQUIRE(report);
  CHECK(report->warnings.empty());

  for (const auto& descriptor : {kept.manifest, kept.config, kept.layers[0], kept.layers[1], index,
                                 via_index.manifest, via_index.config, via_index.layers[1]}) {
    CHECK(has_blob(*store, descriptor.digest));
  }
  CHECK_FALSE(has_blob(*store, dropped.manifest.digest));
  CHECK_FALSE(has_blob(*store, dropped.config.digest));
  CHECK_FALSE(has_blob(*store, dropped.layers[1].digest));
  CHECK(has_blob(*store, dropped.layers[0].digest)); // "shared" is still used by kept images
  CHECK_FALSE(has_blob(*store, loose.digest));
  CHECK(report->removed_blobs.size() == 4);

  CHECK(has_layer(*store, kept.diff_ids[0]));
  CHECK(has_layer(*store, kept.diff_ids[1]));
  CHECK(has_layer(*store, from_blob));
  CHECK_FALSE(has_layer(*store, dropped.diff_ids[1]));
  CHECK_FALSE(has_layer(*store, orphan_layer));
  CHECK(report->removed_layers.size() == 2);
  CHECK(report->freed_bytes > 0);

  // A second prune has nothing to do.
  auto again = prune(*store);
  REQUIRE(again);
  CHECK(again->removed_blobs.empty());
  CHECK(again->removed_layers.empty());
}

TEST_CASE("extra roots keep blobs and layers no name reaches", "[store][gc]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage cached = put_image(*store, {"cached"});
  const BlobInfo raw = put_text(*store, "{\"not\":\"a manifest\"}");
  const oci::Digest kept_layer = oci::sha256_of("cache snapshot");
  unpack(*store, kept_layer);

  PruneOptions options;
  // Media type left empty: the walk finds out from the content that this is a manifest.
  oci::Descriptor cached_root;
  cached_root.digest = cached.manifest.digest;
  oci::Descriptor raw_root;
  raw_root.digest = raw.digest;
  options.extra_roots = {cached_root, raw_root};
  options.extra_layer_roots.push_back(kept_layer);
  auto report = prune(*store, options);
  REQUIRE(report);
  CHECK(report->removed_blobs.empty());
  CHECK(has_blob(*store, cached.config.digest));
  CHECK(has_blob(*store, cached.layers[0].digest));
  CHECK(has_layer(*store, kept_layer));

  // "prune --all": no extra roots, everything unnamed goes.
  auto all = prune(*store);
  REQUIRE(all);
  CHECK(all->removed_blobs.size() == 4);
  CHECK(all->removed_layers.size() == 1);
  auto listed = store->blobs().list();
  REQUIRE(listed);
  CHECK(listed->empty());
}

TEST_CASE("prune refuses to sweep when a named manifest is unreadable", "[store][gc]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage image = put_image(*store, {"layer"});
  const BlobInfo loose = put_text(*store, "loose");
  REQUIRE(store->names().tag("app:1", image.manifest.digest, oci::k_oci_manifest));
  spit(dir / ("blobs/sha256/" + image.manifest.digest.hex()), "{\"damaged\": true}");
  auto report = prune(*store);
  REQUIRE_FALSE(report);
  CHECK(report.error().code() == Code::corrupt);
  CHECK_THAT(report.error().what(), Catch::Contains("nothing was removed"));
  CHECK(has_blob(*store, loose.digest));
  CHECK(has_blob(*store, image.layers[0].digest));
}

TEST_CASE("prune warns about a name whose manifest is missing", "[store][gc]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage image = put_image(*store, {"layer"});
  REQUIRE(store->names().tag("app:1", image.manifest.digest, oci::k_oci_manifest));
  REQUIRE(store->blobs().remove(image.manifest.digest));
  auto report = prune(*store);
  REQUIRE(report);
  REQUIRE(report->warnings.size() == 1);
  CHECK_THAT(report->warnings[0], Catch::Contains("name app:1"));
}

TEST_CASE("prune does not remove blobs of a concurrent shared-lock holder", "[store][gc]") {
  TempDir dir;
  { open_store(dir.path()); }
  const std::string content = "written by a build, named only at its end";
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    bool ok = false;
    try {
      auto store = Store::open(dir.path());
      if (store) {
        auto lock = (*store)->lock(LockMode::shared, Wait::yes);
        oci::StringSource source(content);
        // Tell the parent the blob exists but is not named, then take our time and exit
        // without naming it (a build that failed at its last step).
        ok = lock && (*store)->blobs().put(source) && ::write(ready[1], "x", 1) == 1;
        ::usleep(300 * 1000);
      }
    } catch (...) {
      ok = false;
    }
    ::_exit(ok ? 0 : 1);
  }
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);

  auto store = open_store(dir.path());
  // While the build runs, a non-waiting prune is refused and removes nothing.
  PruneOptions no_wait;
  no_wait.wait = Wait::no;
  auto busy = prune(*store, no_wait);
  REQUIRE_FALSE(busy);
  CHECK(busy.error().sys_errno() == EWOULDBLOCK);
  CHECK_THAT(busy.error().what(), Catch::Contains("in use by another minibuild process"));
  CHECK(has_blob(*store, oci::sha256_of(content)));

  // A waiting prune blocks until the build has finished.
  const auto started = std::chrono::steady_clock::now();
  auto waited = prune(*store);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  REQUIRE(waited);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(elapsed >= std::chrono::milliseconds(100));
  // The build never named its blob, so once it was done, prune removed it.
  CHECK_FALSE(has_blob(*store, oci::sha256_of(content)));
}

TEST_CASE("prune keeps a blob a concurrent build names before it releases its lock",
          "[store][gc]") {
  TempDir dir;
  TestImage image;
  {
    auto store = open_store(dir.path());
    image = put_image(*store, {"built layer"});
  }
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    bool ok = false;
    try {
      auto store = Store::open(dir.path());
      if (store) {
        auto lock = (*store)->lock(LockMode::shared, Wait::yes);
        ok = lock && ::write(ready[1], "x", 1) == 1;
        ::usleep(300 * 1000);
        ok = ok && (*store)
                       ->names()
                       .tag("built:1", image.manifest.digest, oci::k_oci_manifest)
                       .has_value();
      }
    } catch (...) {
      ok = false;
    }
    ::_exit(ok ? 0 : 1);
  }
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  auto store = open_store(dir.path());
  auto report = prune(*store); // waits for the build
  REQUIRE(report);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(report->removed_blobs.empty());
  CHECK(has_blob(*store, image.manifest.digest));
  CHECK(has_blob(*store, image.layers[0].digest));
}
