// The store with the real layer module: export a tree into a BlobWriter (a layer::ByteSink),
// then unpack the stored blob with layer::apply_layer.
#include "store/store_test_support.hpp"

#include <minibuild/layer/export.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

struct Exported {
  layer::ExportResult result;
  oci::Descriptor blob;
};

Exported export_tree(Store& store, const std::string& tree) {
  auto writer = store.blobs().open_writer({});
  REQUIRE(writer);
  layer::ExportOptions options;
  options.threads = 1;
  auto exported = layer::export_layer(tree, options, **writer);
  if (!exported) {
    FAIL(exported.error().what());
  }
  auto committed = (*writer)->commit();
  REQUIRE(committed);
  CHECK(committed->digest == exported->digest);
  CHECK(committed->size == exported->size);
  oci::Descriptor blob;
  blob.media_type = exported->media_type;
  blob.digest = committed->digest;
  blob.size = static_cast<std::int64_t>(committed->size);
  return Exported{*exported, blob};
}

} // namespace

TEST_CASE("a layer exported into the store unpacks back to the same files", "[store][layer]") {
  TempDir dir;
  auto store = open_store(dir.path() + "/root");
  const std::string tree = dir / "tree";
  REQUIRE(write_files({{"etc/os-release", "ID=minibuild\n"}, {"app/main", "payload"}})(tree));
  const Exported exported = export_tree(*store, tree);

  layer::ApplyOptions options;
  options.owners = layer::Owners::ignore;
  auto info =
      store->layers().unpack_blob(exported.result.diff_id, store->blobs(), exported.blob, options);
  if (!info) {
    FAIL(info.error().what());
  }
  CHECK(info->source_blob == exported.blob.digest);
  const std::string lower = store->layers().lower_dir(exported.result.diff_id);
  CHECK(slurp(lower + "/etc/os-release") == "ID=minibuild\n");
  CHECK(slurp(lower + "/app/main") == "payload");
}

TEST_CASE("unpacking a blob under the wrong diffID fails and leaves nothing", "[store][layer]") {
  TempDir dir;
  auto store = open_store(dir.path() + "/root");
  const std::string tree = dir / "tree";
  REQUIRE(write_files({{"file", "content"}})(tree));
  const Exported exported = export_tree(*store, tree);
  const oci::Digest wrong = oci::sha256_of("some other tar");
  layer::ApplyOptions options;
  options.owners = layer::Owners::ignore;
  auto info = store->layers().unpack_blob(wrong, store->blobs(), exported.blob, options);
  REQUIRE_FALSE(info);
  CHECK(info.error().code() == Code::corrupt);
  CHECK_THAT(info.error().what(), Catch::Contains(exported.result.diff_id.to_string()));
  auto stat = store->layers().stat(wrong);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
  CHECK(temp_files(dir.path() + "/root") == 0);
}

TEST_CASE("unpacking a corrupted layer blob fails with Code::corrupt", "[store][layer]") {
  TempDir dir;
  auto store = open_store(dir.path() + "/root");
  const std::string tree = dir / "tree";
  REQUIRE(write_files({{"file", std::string(10000, 'z')}})(tree));
  const Exported exported = export_tree(*store, tree);
  const std::string path = dir / ("root/blobs/sha256/" + exported.blob.digest.hex());
  std::string bytes = slurp(path);
  bytes.resize(bytes.size() - 4); // lose the gzip trailer's last bytes
  spit(path, bytes);
  layer::ApplyOptions options;
  options.owners = layer::Owners::ignore;
  auto info =
      store->layers().unpack_blob(exported.result.diff_id, store->blobs(), exported.blob, options);
  REQUIRE_FALSE(info);
  CHECK(info.error().code() == Code::corrupt);
  auto stat = store->layers().stat(exported.result.diff_id);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
}
