#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/fsck.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

using Kind = FsckProblem::Kind;

std::vector<Kind> kinds_of(const FsckReport& report) {
  std::vector<Kind> kinds;
  for (const auto& problem : report.problems) {
    kinds.push_back(problem.kind);
  }
  return kinds;
}

const FsckProblem* find(const FsckReport& report, Kind kind) {
  for (const auto& problem : report.problems) {
    if (problem.kind == kind) {
      return &problem;
    }
  }
  return nullptr;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<Store> store = open_store(dir.path());
  TestImage image = put_image(*store, {"base layer"});
  oci::Digest diff_id = image.diff_ids[0];

  Fixture() {
    REQUIRE(store->names().tag("app:1", image.manifest.digest, oci::k_oci_manifest));
    REQUIRE(store->layers().unpack(diff_id, image.layers[0].digest,
                                   write_files({{"etc/motd", "hello\n"}, {"bin/sh", "ELF"}})));
  }
};

} // namespace

TEST_CASE("fsck of a healthy store finds nothing", "[store][fsck]") {
  Fixture f;
  // A multi-platform index of which only one manifest was pulled is healthy.
  oci::ImageIndex index;
  index.media_type = std::string(oci::k_oci_index);
  index.manifests = {f.image.manifest, descriptor_of(oci::k_oci_manifest, "{\"arm64\":1}")};
  const std::string index_text = oci::serialize(index);
  put_text(*f.store, index_text);
  REQUIRE(f.store->names().tag("multi:1", oci::sha256_of(index_text), oci::k_oci_index));

  auto report = fsck(*f.store, Repair::no);
  REQUIRE(report);
  CHECK(report->problems.empty());
  CHECK(report->clean());
  CHECK(report->blobs_checked == 4);
  CHECK(report->layers_checked == 1);
  CHECK(report->names_checked == 2);
}

TEST_CASE("fsck finds a corrupted blob and a tampered layer; repair removes them",
          "[store][fsck]") {
  Fixture f;
  const std::string layer_blob = f.dir / ("blobs/sha256/" + f.image.layers[0].digest.hex());
  std::string bytes = slurp(layer_blob);
  bytes[0] = static_cast<char>(bytes[0] ^ 0x20);
  spit(layer_blob, bytes);
  spit(f.store->layers().lower_dir(f.diff_id) + "/etc/motd", "HELLO\n"); // same size

  auto report = fsck(*f.store, Repair::no);
  REQUIRE(report);
  CHECK(kinds_of(*report) == std::vector<Kind>{Kind::corrupt_blob, Kind::corrupt_layer});
  CHECK_FALSE(report->clean());
  const FsckProblem* blob = find(*report, Kind::corrupt_blob);
  REQUIRE(blob);
  CHECK(blob->subject == f.image.layers[0].digest.to_string());
  CHECK_FALSE(blob->repaired);
  const FsckProblem* layer = find(*report, Kind::corrupt_layer);
  REQUIRE(layer);
  CHECK(layer->subject == f.diff_id.to_string());
  CHECK_THAT(layer->detail, Catch::Contains("content changed"));
  // Without repair nothing changed.
  CHECK(slurp(layer_blob) == bytes);

  auto repaired = fsck(*f.store, Repair::yes);
  REQUIRE(repaired);
  // Removing the corrupt layer blob leaves the image without it: reported, not "repaired" (a
  // pull brings it back).
  CHECK(kinds_of(*repaired) ==
        std::vector<Kind>{Kind::corrupt_blob, Kind::corrupt_layer, Kind::missing_blob});
  CHECK(repaired->problems[0].repaired);
  CHECK(repaired->problems[1].repaired);
  CHECK_FALSE(repaired->problems[2].repaired);
  auto blob_stat = f.store->blobs().stat(f.image.layers[0].digest);
  REQUIRE(blob_stat);
  CHECK_FALSE(*blob_stat);
  auto layer_stat = f.store->layers().stat(f.diff_id);
  REQUIRE(layer_stat);
  CHECK_FALSE(*layer_stat);

  auto after = fsck(*f.store, Repair::no);
  REQUIRE(after);
  CHECK(kinds_of(*after) == std::vector<Kind>{Kind::missing_blob});
}

TEST_CASE("fsck notices other kinds of layer tampering", "[store][fsck]") {
  Fixture f;
  const std::string lower = f.store->layers().lower_dir(f.diff_id);
  SECTION("a file added") {
    spit(lower + "/etc/new", "");
  }
  SECTION("a mode changed") {
    REQUIRE(::chmod((lower + "/bin/sh").c_str(), 04755) == 0);
  }
  SECTION("the metadata removed") {
    REQUIRE(::unlink((f.dir / ("layers/sha256/" + f.diff_id.hex() + "/layer.json")).c_str()) == 0);
  }
  auto report = fsck(*f.store, Repair::no);
  REQUIRE(report);
  CHECK(kinds_of(*report) == std::vector<Kind>{Kind::corrupt_layer});
}

TEST_CASE("fsck reports a name whose manifest is corrupt, and keeps the name", "[store][fsck]") {
  Fixture f;
  spit(f.dir / ("blobs/sha256/" + f.image.manifest.digest.hex()), "{}");
  auto repaired = fsck(*f.store, Repair::yes);
  REQUIRE(repaired);
  CHECK(kinds_of(*repaired) == std::vector<Kind>{Kind::corrupt_blob, Kind::dangling_name});
  const FsckProblem* dangling = find(*repaired, Kind::dangling_name);
  REQUIRE(dangling);
  CHECK(dangling->subject == "app:1");
  CHECK_FALSE(dangling->repaired);
  CHECK_FALSE(repaired->clean());
  auto name = f.store->names().resolve("app:1");
  REQUIRE(name);
  CHECK(*name);
}

TEST_CASE("fsck reports stray entries and repair removes them with stale temp files",
          "[store][fsck]") {
  Fixture f;
  spit(f.dir / "blobs/sha256/not-a-digest", "junk");
  spit(f.dir / "layers/sha256/README", "junk");
  REQUIRE(::mkdir((f.dir / "tmp/12345-deadbeef").c_str(), 0755) == 0);
  spit(f.dir / "tmp/12345-deadbeef/blob-1", "half a blob");

  auto report = fsck(*f.store, Repair::no);
  REQUIRE(report);
  CHECK(kinds_of(*report) == std::vector<Kind>{Kind::stray_blob_entry, Kind::stray_layer_entry});

  auto repaired = fsck(*f.store, Repair::yes);
  REQUIRE(repaired);
  CHECK(repaired->clean());
  CHECK(repaired->temp_entries_removed == 1);
  for (const auto& entry : entries_of(f.dir / "tmp")) {
    CHECK(entry != "12345-deadbeef"); // only this process's own session remains
  }
  CHECK(entries_of(f.dir / "layers/sha256") == std::vector<std::string>{f.diff_id.hex()});
  auto clean = fsck(*f.store, Repair::no);
  REQUIRE(clean);
  CHECK(clean->problems.empty());
}

TEST_CASE("problem kinds have printable names", "[store][fsck]") {
  CHECK(kind_name(Kind::corrupt_blob) == "corrupt-blob");
  CHECK(kind_name(Kind::dangling_name) == "dangling-name");
  CHECK(kind_name(Kind::unreadable_document) == "unreadable-document");
}
