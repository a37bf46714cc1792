#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/images.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

TEST_CASE("list_images gives name, tag, image id, created and size", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage app = put_image(*store, {"one", "two"}, "2024-05-06T07:08:09Z");
  const TestImage other = put_image(*store, {"one", "three"}, "2023-01-01T00:00:00Z");
  oci::ImageIndex index;
  index.media_type = std::string(oci::k_oci_index);
  index.manifests = {app.manifest, other.manifest,
                     descriptor_of(oci::k_oci_manifest, "{\"not\":\"stored\"}")};
  const std::string index_text = oci::serialize(index);
  put_text(*store, index_text);
  const oci::Digest index_digest = oci::sha256_of(index_text);

  REQUIRE(store->names().tag("localhost:5000/app:1.0", app.manifest.digest, oci::k_oci_manifest));
  REQUIRE(store->names().tag("multi:latest", index_digest, oci::k_oci_index));
  REQUIRE(store->names().tag("broken:1", index_digest, oci::k_oci_index));
  auto rows = list_images(*store);
  REQUIRE(rows);
  REQUIRE(rows->size() == 3);

  const ImageSummary& first = (*rows)[1]; // sorted by name: broken, localhost…, multi
  CHECK(first.repository == "localhost:5000/app");
  CHECK(first.tag == "1.0");
  CHECK(first.manifest_digest == app.manifest.digest);
  CHECK(first.image_id == app.config.digest);
  CHECK(first.created == "2024-05-06T07:08:09Z");
  CHECK(first.size ==
        static_cast<std::uint64_t>(app.config.size + app.layers[0].size + app.layers[1].size));
  CHECK(first.problem.empty());

  const ImageSummary& multi = (*rows)[2];
  CHECK(multi.repository == "multi");
  CHECK(multi.image_id.empty());
  // The shared "one" layer is counted once; the child that is not stored is skipped.
  CHECK(multi.size ==
        static_cast<std::uint64_t>(app.config.size + app.layers[0].size + app.layers[1].size +
                                   other.config.size + other.layers[1].size));

  // A name whose manifest is gone gives a row with a problem, not a failed listing.
  REQUIRE(store->blobs().remove(index_digest));
  rows = list_images(*store);
  REQUIRE(rows);
  CHECK((*rows)[0].repository == "broken");
  CHECK_FALSE((*rows)[0].problem.empty());
  CHECK((*rows)[1].problem.empty());
}
