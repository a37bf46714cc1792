#include "store/fault_injecting_fs.hpp"
#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/build_cache.hpp>
#include <minibuild/store/fsck.hpp>
#include <minibuild/store/gc.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

oci::Digest key_of(std::string_view name) {
  return oci::sha256_of("key:" + std::string(name));
}

// An entry whose layer blob is stored (blob "gzip:<content>", diffID sha256 of <content>).
CacheEntry layer_entry(Store& store, std::string_view name, std::string_view content,
                       std::int64_t last_used) {
  const std::string blob = "gzip:" + std::string(content);
  put_text(store, blob);
  CacheEntry entry;
  entry.key = key_of(name);
  entry.kind = "run";
  entry.layer = descriptor_of(oci::k_oci_layer_tar_gzip, blob);
  entry.diff_id = oci::sha256_of(content);
  entry.created = "2024-01-02T03:04:05Z";
  entry.created_by = "RUN " + std::string(name);
  entry.last_used = last_used;
  entry.size = blob.size();
  return entry;
}

CacheEntry empty_entry(std::string_view name, std::int64_t last_used) {
  CacheEntry entry;
  entry.key = key_of(name);
  entry.kind = "workdir";
  entry.created = "2024-01-02T03:04:05Z";
  entry.created_by = "WORKDIR /" + std::string(name);
  entry.last_used = last_used;
  return entry;
}

std::vector<std::string> created_by_of(const std::vector<CacheEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& entry : entries) {
    names.push_back(entry.created_by);
  }
  return names;
}

} // namespace

TEST_CASE("cache entries round-trip through put, get, list and remove", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  BuildCache& cache = store->cache();

  auto missing = cache.get(key_of("a"));
  REQUIRE(missing);
  CHECK_FALSE(*missing);
  auto none = cache.list();
  REQUIRE(none);
  CHECK(none->empty());

  const CacheEntry a = layer_entry(*store, "a", "layer-a", 1000);
  const CacheEntry b = empty_entry("b", 2000);
  REQUIRE(cache.put(a));
  REQUIRE(cache.put(b));
  REQUIRE(cache.put(a)); // idempotent
  CHECK(std::filesystem::exists(dir.path() + "/cache/entries/sha256/" + a.key.hex() + ".json"));

  auto got = cache.get(a.key);
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == a);
  got = cache.get(b.key);
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == b);
  CHECK_FALSE((*got)->layer);

  auto listed = cache.list();
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK(((*listed)[0].key < (*listed)[1].key));

  // Last writer wins.
  CacheEntry changed = a;
  changed.created_by = "RUN again";
  REQUIRE(cache.put(changed));
  got = cache.get(a.key);
  REQUIRE(got);
  CHECK((*got)->created_by == "RUN again");

  auto removed = cache.remove(a.key);
  REQUIRE(removed);
  CHECK(*removed);
  removed = cache.remove(a.key);
  REQUIRE(removed);
  CHECK_FALSE(*removed);
  got = cache.get(a.key);
  REQUIRE(got);
  CHECK_FALSE(*got);
  // No temporary files are left behind.
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("put refuses keys that are not sha256 and layers without a diffID", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  CacheEntry entry = empty_entry("x", 1);
  entry.key = oci::Digest();
  auto put = store->cache().put(entry);
  REQUIRE_FALSE(put);
  CHECK(put.error().code() == Code::usage);

  entry = layer_entry(*store, "y", "layer-y", 1);
  entry.diff_id = oci::Digest();
  put = store->cache().put(entry);
  REQUIRE_FALSE(put);
  CHECK(put.error().code() == Code::usage);
}

TEST_CASE("touch records use, but not more often than its resolution", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  BuildCache& cache = store->cache();
  const CacheEntry a = empty_entry("a", 1000);
  REQUIRE(cache.put(a));

  auto touched = cache.touch(a.key, 1000 + BuildCache::k_touch_resolution);
  REQUIRE(touched);
  CHECK(*touched);
  CHECK((*cache.get(a.key))->last_used == 1000); // within the resolution: not rewritten

  touched = cache.touch(a.key, 5000);
  REQUIRE(touched);
  CHECK((*cache.get(a.key))->last_used == 5000);

  touched = cache.touch(key_of("missing"), 5000);
  REQUIRE(touched);
  CHECK_FALSE(*touched);
  CHECK_FALSE(*cache.get(key_of("missing")));
}

TEST_CASE("a malformed cache entry is Code::corrupt naming the file", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  BuildCache& cache = store->cache();
  const CacheEntry a = empty_entry("a", 1);
  const CacheEntry b = empty_entry("b", 1);
  REQUIRE(cache.put(a));
  REQUIRE(cache.put(b));
  const std::string path = dir.path() + "/" + BuildCache::path_of(a.key);

  SECTION("not JSON") {
    spit(path, "{\"version\":1,");
  }
  SECTION("a missing field") {
    spit(path, R"({"version":1,"key":")" + a.key.to_string() + "\"}");
  }
  SECTION("another key's entry") {
    spit(path, slurp(dir.path() + "/" + BuildCache::path_of(b.key)));
  }
  auto got = cache.get(a.key);
  REQUIRE_FALSE(got);
  CHECK(got.error().code() == Code::corrupt);
  CHECK_THAT(got.error().what(), Catch::Contains(path));
  auto listed = cache.list();
  REQUIRE_FALSE(listed);
  CHECK(listed.error().code() == Code::corrupt);
  // scan() goes on past it; put() replaces it.
  auto scan = cache.scan();
  REQUIRE(scan);
  CHECK(scan->entries.size() == 1);
  REQUIRE(scan->broken.size() == 1);
  CHECK(scan->broken[0].key == a.key);
  REQUIRE(cache.put(a));
  got = cache.get(a.key);
  REQUIRE(got);
  CHECK(**got == a);
}

TEST_CASE("a newer cache entry version is refused as unsupported", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const CacheEntry a = empty_entry("a", 1);
  REQUIRE(store->cache().put(a));
  const std::string path = dir.path() + "/" + BuildCache::path_of(a.key);
  std::string text = slurp(path);
  text.replace(text.find("\"version\":1"), 11, "\"version\":9");
  spit(path, text);
  auto got = store->cache().get(a.key);
  REQUIRE_FALSE(got);
  CHECK(got.error().code() == Code::unsupported);
}

TEST_CASE("put is atomic: a failed or killed write leaves the old entry or none", "[store]") {
  using Mode = FaultInjectingFs::Mode;
  for (const Mode mode : {Mode::fail, Mode::crash}) {
    for (const bool replace : {false, true}) {
      std::size_t step = 0;
      for (;; ++step) {
        CAPTURE(mode == Mode::fail ? "fail" : "crash", replace, step);
        REQUIRE(step < 50);
        TempDir dir;
        const CacheEntry old_entry = empty_entry("a", 1000);
        CacheEntry new_entry = old_entry;
        new_entry.created_by = "WORKDIR /new";
        if (replace) {
          auto store = open_store(dir.path());
          REQUIRE(store->cache().put(old_entry));
        }
        auto real = RealStoreFs::open(dir.path(), RealStoreFs::Create::no);
        REQUIRE(real);
        auto fault = std::make_unique<FaultInjectingFs>(std::move(*real));
        FaultInjectingFs* fs = fault.get();
        auto opened = Store::open(std::move(fault));
        REQUIRE(opened);
        auto store = std::move(*opened);
        fs->reset();
        fs->arm(step, mode);
        const auto put = store->cache().put(new_entry);
        const bool triggered = fs->triggered();
        CHECK(put.has_value() == !triggered);
        store.reset();

        auto reopened = open_store(dir.path());
        auto got = reopened->cache().get(old_entry.key);
        REQUIRE(got); // never half an entry
        if (!triggered) {
          REQUIRE(*got);
          CHECK(**got == new_entry);
          break;
        }
        if (*got) {
          CHECK((**got == old_entry || **got == new_entry));
        } else {
          CHECK_FALSE(replace); // an existing entry never disappears
        }
        REQUIRE(reopened->clean_temp());
        CHECK(temp_entries(dir.path()) == 0);
      }
      CHECK(step >= 5); // create, write, fsync, rename, fsync-dir (plus mkdirs the first time)
    }
  }
}

TEST_CASE("cache prune removes entries by age, then least recently used by size", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  BuildCache& cache = store->cache();
  const std::int64_t now = 1'000'000;
  // Four entries, sizes 11..14 bytes ("gzip:layer-N"); c and d share one layer blob.
  CacheEntry a = layer_entry(*store, "a", "layer-1", now - 10 * 3600); // oldest
  CacheEntry b = layer_entry(*store, "b", "layer-2", now - 3 * 3600);
  CacheEntry c = layer_entry(*store, "c", "layer-3", now - 2 * 3600);
  CacheEntry d = layer_entry(*store, "d", "layer-3", now - 3600);
  CacheEntry e = empty_entry("e", now - 20 * 3600); // no layer, very old
  for (const auto* entry : {&a, &b, &c, &d, &e}) {
    REQUIRE(cache.put(*entry));
  }

  SECTION("nothing to do") {
    auto pruned = cache.prune(CachePrunePolicy{}, now);
    REQUIRE(pruned);
    CHECK(pruned->removed.empty());
    CHECK(cache.list()->size() == 5);
  }
  SECTION("by age") {
    CachePrunePolicy policy;
    policy.keep_duration = 5 * 3600;
    auto pruned = cache.prune(policy, now);
    REQUIRE(pruned);
    CHECK(created_by_of(pruned->removed) == std::vector<std::string>{"WORKDIR /e", "RUN a"});
    CHECK(cache.list()->size() == 3);
  }
  SECTION("by size, least recently used first; a shared layer counts once") {
    // Total: a 12 + b 12 + c/d 12 (shared) = 36 bytes.
    CachePrunePolicy policy;
    policy.keep_storage = 24;
    auto pruned = cache.prune(policy, now);
    REQUIRE(pruned);
    CHECK(created_by_of(pruned->removed) == std::vector<std::string>{"WORKDIR /e", "RUN a"});
    policy.keep_storage = 12;
    pruned = cache.prune(policy, now);
    REQUIRE(pruned);
    CHECK(created_by_of(pruned->removed) == std::vector<std::string>{"RUN b"});
    // Removing c alone frees nothing (d still uses the blob), so d goes too to reach 0.
    policy.keep_storage = 0;
    pruned = cache.prune(policy, now);
    REQUIRE(pruned);
    CHECK(created_by_of(pruned->removed) == std::vector<std::string>{"RUN c", "RUN d"});
    CHECK(cache.list()->empty());
  }
  SECTION("all, and broken files go too") {
    spit(dir.path() + "/cache/entries/sha256/junk", "x");
    CachePrunePolicy policy;
    policy.all = true;
    auto pruned = cache.prune(policy, now);
    REQUIRE(pruned);
    CHECK(pruned->removed.size() == 5);
    CHECK(pruned->broken_removed == 1);
    CHECK(entries_of(dir.path() + "/cache/entries/sha256").empty());
  }
  // Layers are the GC's business.
  CHECK(store->blobs().stat(a.layer->digest)->has_value());
}

TEST_CASE("gc keeps the layers of cache entries; prune with the all policy drops them", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const CacheEntry cached = layer_entry(*store, "a", "cached-layer", 100);
  REQUIRE(store->cache().put(cached));
  auto unpacked = store->layers().unpack(cached.diff_id, cached.layer->digest,
                                         write_files({{"file", "cached"}}));
  REQUIRE(unpacked);
  const BlobInfo loose = put_text(*store, "nobody uses this");
  std::filesystem::create_directories(dir.path() + "/cache/mounts/abc/sub");
  spit(dir.path() + "/cache/mounts/abc/sub/file", "12345");

  auto report = prune(*store);
  REQUIRE(report);
  REQUIRE(report->removed_blobs.size() == 1);
  CHECK(report->removed_blobs[0].digest == loose.digest);
  CHECK(report->removed_layers.empty());
  CHECK(store->blobs().stat(cached.layer->digest)->has_value());
  CHECK(store->layers().stat(cached.diff_id)->has_value());
  CHECK(store->cache().get(cached.key)->has_value());
  CHECK(std::filesystem::exists(dir.path() + "/cache/mounts/abc/sub/file"));

  PruneOptions all;
  all.cache = CachePrunePolicy{true, std::nullopt, std::nullopt};
  all.cache_mounts = CacheMounts::remove;
  report = prune(*store, all);
  REQUIRE(report);
  REQUIRE(report->removed_cache_entries.size() == 1);
  CHECK(report->removed_cache_entries[0].key == cached.key);
  CHECK(report->cache_mounts_removed == 1);
  REQUIRE(report->removed_blobs.size() == 1);
  CHECK(report->removed_blobs[0].digest == cached.layer->digest);
  CHECK(report->removed_layers == std::vector<oci::Digest>{cached.diff_id});
  CHECK(report->freed_bytes >= cached.size + 5);
  CHECK_FALSE(store->cache().get(cached.key)->has_value());
  CHECK(entries_of(dir.path() + "/cache/mounts").empty());
  CHECK(temp_entries(dir.path()) <= 1); // at most this process's own session directory
}

TEST_CASE("gc warns about a broken cache entry and keeps nothing for it", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const CacheEntry cached = layer_entry(*store, "a", "cached-layer", 100);
  REQUIRE(store->cache().put(cached));
  spit(dir.path() + "/" + BuildCache::path_of(cached.key), "garbage");
  auto report = prune(*store);
  REQUIRE(report);
  REQUIRE(report->warnings.size() == 1);
  CHECK_THAT(report->warnings[0], Catch::Contains("cache entry"));
  CHECK(report->removed_blobs.size() == 1);
}

TEST_CASE("fsck reports and repairs cache entries with a missing blob or a broken file",
          "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const CacheEntry good = layer_entry(*store, "good", "layer-good", 100);
  const CacheEntry dangling = layer_entry(*store, "dangling", "layer-gone", 100);
  const CacheEntry broken = empty_entry("broken", 100);
  for (const auto* entry : {&good, &dangling, &broken}) {
    REQUIRE(store->cache().put(*entry));
  }
  REQUIRE(store->cache().put(empty_entry("no-layer", 100)));
  REQUIRE(store->blobs().remove(dangling.layer->digest));
  spit(dir.path() + "/" + BuildCache::path_of(broken.key), "{}");

  auto report = fsck(*store, Repair::no);
  REQUIRE(report);
  CHECK(report->cache_entries_checked == 4);
  REQUIRE(report->problems.size() == 2);
  CHECK(report->problems[0].kind == FsckProblem::Kind::broken_cache_entry);
  CHECK_THAT(report->problems[0].subject, Catch::Contains(broken.key.hex()));
  CHECK(report->problems[1].kind == FsckProblem::Kind::dangling_cache_entry);
  CHECK(report->problems[1].subject == dangling.key.to_string());
  CHECK_FALSE(report->clean());
  CHECK(kind_name(FsckProblem::Kind::dangling_cache_entry) == "dangling-cache-entry");

  report = fsck(*store, Repair::yes);
  REQUIRE(report);
  CHECK(report->problems.size() == 2);
  CHECK(report->clean());
  auto listed = store->cache().list();
  REQUIRE(listed);
  CHECK(listed->size() == 2);
  CHECK(store->cache().get(good.key)->has_value());

  report = fsck(*store, Repair::no);
  REQUIRE(report);
  CHECK(report->problems.empty());
  CHECK(report->cache_entries_checked == 2);
}
