// Several minibuild processes share one store: forked children put the same blob, unpack the
// same layer and tag different names at the same time; nothing may be lost or half-written.
#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

constexpr int k_children = 4;
constexpr int k_names_per_child = 10;

std::string shared_content() {
  std::string bytes(512 * 1024, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(i * 7 % 256);
  }
  return bytes;
}

// The child's whole job; returns false on any failure.
bool child_work(const std::string& root, int index, const oci::Digest& manifest) {
  auto store = Store::open(root);
  if (!store) {
    return false;
  }
  auto lock = (*store)->lock(LockMode::shared, Wait::yes);
  if (!lock) {
    return false;
  }
  oci::StringSource source(shared_content());
  if (!(*store)->blobs().put(source)) {
    return false;
  }
  const oci::Digest diff_id = oci::sha256_of("shared layer");
  if (!(*store)->layers().unpack(diff_id, {}, write_files({{"data", shared_content()}}))) {
    return false;
  }
  for (int j = 0; j < k_names_per_child; ++j) {
    const std::string name = "child" + std::to_string(index) + ":" + std::to_string(j);
    if (!(*store)->names().tag(name, manifest, oci::k_oci_manifest)) {
      return false;
    }
  }
  return true;
}

} // namespace

TEST_CASE("concurrent processes put the same blob and tag different names",
          "[store][concurrency]") {
  TempDir dir;
  oci::Digest manifest;
  {
    auto store = open_store(dir.path());
    manifest = put_image(*store, {"base"}).manifest.digest;
  }
  int start[2];
  REQUIRE(::pipe(start) == 0);
  std::vector<pid_t> children;
  for (int i = 0; i < k_children; ++i) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(start[1]);
      char go = 0;
      // Everyone starts together when the parent closes the pipe.
      const bool started = ::read(start[0], &go, 1) == 0;
      bool ok = false;
      try {
        ok = started && child_work(dir.path(), i, manifest);
      } catch (...) {
        ok = false;
      }
      ::_exit(ok ? 0 : 1);
    }
    children.push_back(child);
  }
  ::close(start[0]);
  ::close(start[1]);
  for (const pid_t child : children) {
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  auto store = open_store(dir.path());
  auto names = store->names().list();
  REQUIRE(names);
  CHECK(names->size() == k_children * k_names_per_child);
  for (int i = 0; i < k_children; ++i) {
    for (int j = 0; j < k_names_per_child; ++j) {
      auto name = store->names().resolve("child" + std::to_string(i) + ":" + std::to_string(j));
      REQUIRE(name);
      CHECK(*name);
    }
  }
  auto read = store->blobs().read(oci::sha256_of(shared_content()), 1024 * 1024);
  REQUIRE(read);
  CHECK(*read == shared_content());
  const oci::Digest diff_id = oci::sha256_of("shared layer");
  auto layer = store->layers().stat(diff_id);
  REQUIRE(layer);
  REQUIRE(*layer);
  auto listing = list_content(store->layers().lower_dir(diff_id));
  REQUIRE(listing);
  CHECK(listing->digest == (*layer)->content_digest);
  // Every child cleaned up its own session; losers of the unpack race removed their trees.
  CHECK(temp_entries(dir.path()) == 0);
}

TEST_CASE("a shared lock excludes an exclusive one, across Store objects", "[store][concurrency]") {
  TempDir dir;
  auto builder = open_store(dir.path());
  auto pruner = open_store(dir.path());
  auto shared = builder->lock(LockMode::shared, Wait::yes);
  REQUIRE(shared);
  auto second_shared = pruner->lock(LockMode::shared, Wait::no);
  CHECK(second_shared); // builders run side by side
  second_shared->release();
  auto exclusive = pruner->lock(LockMode::exclusive, Wait::no);
  REQUIRE_FALSE(exclusive);
  CHECK(exclusive.error().sys_errno() == EWOULDBLOCK);
  CHECK_THAT(exclusive.error().what(), Catch::Contains("in use by another minibuild process"));
  shared->release();
  exclusive = pruner->lock(LockMode::exclusive, Wait::no);
  CHECK(exclusive);
}
