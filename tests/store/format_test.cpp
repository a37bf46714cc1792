#include "store/store_test_support.hpp"

#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

TEST_CASE("the first open creates the format file and the layout", "[store]") {
  TempDir dir;
  const std::string root = dir / "nested/store";
  {
    auto store = open_store(root);
    CHECK(store->format_version() == k_format_version);
  }
  CHECK(slurp(root + "/minibuild-store") == "minibuild-store\nversion 1\n");
  CHECK(entries_of(root) == std::vector<std::string>{"blobs", "layers", "lock", "minibuild-store",
                                                     "names.lock", "tmp"});
  CHECK(entries_of(root + "/blobs") == std::vector<std::string>{"sha256"});
  CHECK(entries_of(root + "/tmp").empty()); // the session directory left with its Store
  // Re-opening works and changes nothing.
  auto again = open_store(root);
  CHECK(again->format_version() == 1);
}

TEST_CASE("a store with a newer format version is refused with a clear message", "[store]") {
  TempDir dir;
  { open_store(dir.path()); }
  spit(dir / "minibuild-store", "minibuild-store\nversion 7\n");
  auto store = Store::open(dir.path());
  REQUIRE_FALSE(store);
  CHECK(store.error().code() == Code::unsupported);
  CHECK_THAT(store.error().what(), Catch::Contains("format version 7 is newer"));
  CHECK_THAT(store.error().what(), Catch::Contains("use a newer minibuild"));
  // Refusing touches nothing.
  CHECK(slurp(dir / "minibuild-store") == "minibuild-store\nversion 7\n");
}

TEST_CASE("a store older than the oldest supported version is refused", "[store]") {
  TempDir dir;
  { open_store(dir.path()); }
  spit(dir / "minibuild-store", "minibuild-store\nversion 0\n");
  auto store = Store::open(dir.path());
  REQUIRE_FALSE(store);
  CHECK(store.error().code() == Code::corrupt); // 0 is not a version any minibuild wrote
}

TEST_CASE("a format file without the signature, or a non-empty foreign directory, is refused",
          "[store]") {
  TempDir dir;
  SECTION("wrong signature") {
    { open_store(dir.path()); }
    spit(dir / "minibuild-store", "something-else\nversion 1\n");
    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store);
    CHECK(store.error().code() == Code::usage);
    CHECK_THAT(store.error().what(), Catch::Contains("not a minibuild store"));
  }
  SECTION("garbage version") {
    { open_store(dir.path()); }
    spit(dir / "minibuild-store", "minibuild-store\nversion one\n");
    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store);
    CHECK(store.error().code() == Code::corrupt);
  }
  SECTION("a directory that holds other files") {
    spit(dir / "notes.txt", "mine");
    auto store = Store::open(dir.path());
    REQUIRE_FALSE(store);
    CHECK(store.error().code() == Code::usage);
    CHECK_THAT(store.error().what(), Catch::Contains("notes.txt"));
    CHECK(entries_of(dir.path()) == std::vector<std::string>{"notes.txt"});
  }
}
