#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

TEST_CASE("split_name separates repository and tag at the last colon after the last slash",
          "[store]") {
  struct Case {
    std::string_view name;
    std::string_view repository;
    std::string_view tag;
  };
  for (const Case& c :
       {Case{"alpine:3.19", "alpine", "3.19"},
        Case{"docker.io/library/alpine:latest", "docker.io/library/alpine", "latest"},
        Case{"localhost:5000/app:1", "localhost:5000/app", "1"}, Case{"a:b:c", "a:b", "c"}}) {
    auto split = split_name(c.name);
    REQUIRE(split);
    CHECK(split->first == c.repository);
    CHECK(split->second == c.tag);
  }
  for (std::string_view bad :
       {"alpine", "localhost:5000/app", ":tag", "app:", "a b:c", "app:\n1", ""}) {
    auto split = split_name(bad);
    REQUIRE_FALSE(split);
    CHECK(split.error().code() == Code::usage);
  }
}

TEST_CASE("tag, resolve, list and untag", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage one = put_image(*store, {"layer-a"});
  const TestImage two = put_image(*store, {"layer-b"});
  NameStore& names = store->names();

  REQUIRE(names.tag("app:1", one.manifest.digest, oci::k_oci_manifest));
  REQUIRE(names.tag("app:2", two.manifest.digest, oci::k_oci_manifest));
  auto resolved = names.resolve("app:1");
  REQUIRE(resolved);
  REQUIRE(*resolved);
  CHECK((*resolved)->digest == one.manifest.digest);
  CHECK((*resolved)->media_type == oci::k_oci_manifest);

  // Re-tagging moves the name.
  REQUIRE(names.tag("app:1", two.manifest.digest, oci::k_oci_manifest));
  resolved = names.resolve("app:1");
  REQUIRE(resolved);
  CHECK((*resolved)->digest == two.manifest.digest);

  auto listed = names.list();
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].name == "app:1");
  CHECK((*listed)[1].name == "app:2");

  auto removed = names.untag("app:1");
  REQUIRE(removed);
  CHECK(*removed);
  removed = names.untag("app:1");
  REQUIRE(removed);
  CHECK_FALSE(*removed);
  resolved = names.resolve("app:1");
  REQUIRE(resolved);
  CHECK_FALSE(*resolved);
  // untag leaves blobs alone
  auto blob = store->blobs().stat(one.manifest.digest);
  REQUIRE(blob);
  CHECK(*blob);

  // The file on disk is the documented, versioned JSON.
  const std::string text = slurp(dir / "names.json");
  CHECK_THAT(text, Catch::Contains("\"version\": 1"));
  CHECK_THAT(text, Catch::Contains("\"app:2\""));
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("tag refuses missing blobs, non-manifest media types and bad names", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage image = put_image(*store, {"layer"});
  auto missing = store->names().tag("app:1", oci::sha256_of("absent"), oci::k_oci_manifest);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::not_found);
  auto config = store->names().tag("app:1", image.config.digest, oci::k_oci_config);
  REQUIRE_FALSE(config);
  CHECK(config.error().code() == Code::unsupported);
  auto bad = store->names().tag("no-tag", image.manifest.digest, oci::k_oci_manifest);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Code::usage);
  auto listed = store->names().list();
  REQUIRE(listed);
  CHECK(listed->empty());
}

TEST_CASE("a damaged or newer names file is reported and never overwritten", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const TestImage image = put_image(*store, {"layer"});
  SECTION("not JSON") {
    spit(dir / "names.json", "{ not json");
    auto tagged = store->names().tag("app:1", image.manifest.digest, oci::k_oci_manifest);
    REQUIRE_FALSE(tagged);
    CHECK(tagged.error().code() == Code::corrupt);
    CHECK_THAT(tagged.error().what(), Catch::Contains("names.json"));
    CHECK(slurp(dir / "names.json") == "{ not json");
  }
  SECTION("a newer version") {
    const std::string newer = R"({"version":2,"names":{}})";
    spit(dir / "names.json", newer);
    auto listed = store->names().list();
    REQUIRE_FALSE(listed);
    CHECK(listed.error().code() == Code::unsupported);
    auto tagged = store->names().tag("app:1", image.manifest.digest, oci::k_oci_manifest);
    REQUIRE_FALSE(tagged);
    CHECK(slurp(dir / "names.json") == newer);
  }
}
