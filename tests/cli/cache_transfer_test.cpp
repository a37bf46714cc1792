// --cache-to / --cache-from: option parsing, entry selection, the config format and the
// artifact manifest (cli/cache_transfer.hpp).
#include "cli/cache_transfer.hpp"

#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <set>

using namespace minibuild;
using namespace minibuild::cli;

namespace {

oci::Digest digest_of(std::string_view text) {
  return oci::sha256_of(text);
}

store::CacheEntry entry(std::string_view name, bool with_layer) {
  store::CacheEntry e;
  e.key = digest_of(std::string("key ") + std::string(name));
  e.kind = with_layer ? "run" : "workdir";
  if (with_layer) {
    e.layer = oci::make_descriptor(std::string(oci::k_oci_layer_tar_gzip),
                                   std::string("layer ") + std::string(name));
    e.diff_id = digest_of(std::string("diff ") + std::string(name));
    e.size = static_cast<std::uint64_t>(e.layer->size);
  }
  e.created = "2024-01-02T03:04:05Z";
  e.created_by = "RUN make " + std::string(name);
  return e;
}

} // namespace

TEST_CASE("cache specs parse", "[cli][cache-transfer]") {
  auto to =
      parse_cache_spec("type=registry,ref=localhost:5000/c/app:bc,mode=max", CacheDirection::to);
  REQUIRE(to);
  CHECK(to->type == CacheType::registry);
  CHECK(to->ref == "localhost:5000/c/app:bc");
  CHECK(to->mode == CacheMode::max);

  auto local = parse_cache_spec("dest=/tmp/c,type=local", CacheDirection::to);
  REQUIRE(local);
  CHECK(local->type == CacheType::local);
  CHECK(local->dir == "/tmp/c");
  CHECK(local->tag == "latest");
  CHECK(local->mode == CacheMode::min);

  auto from = parse_cache_spec("type=local,src=/tmp/c,tag=v2", CacheDirection::from);
  REQUIRE(from);
  CHECK(from->dir == "/tmp/c");
  CHECK(from->tag == "v2");

  for (std::string_view bad :
       {"ref=x", "type=s3,ref=x", "type=registry", "type=registry,ref=a,ref=b",
        "type=registry,ref=a,mode=all", "type=registry,ref=a,colour=red", "type=local",
        "type=local,src=/tmp/c", "type=registry,ref"}) {
    CAPTURE(bad);
    auto parsed = parse_cache_spec(bad, CacheDirection::to);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::usage);
  }
  // mode= and dest= belong to --cache-to only.
  CHECK_FALSE(parse_cache_spec("type=registry,ref=a,mode=max", CacheDirection::from));
  CHECK_FALSE(parse_cache_spec("type=local,dest=/tmp/c", CacheDirection::from));
}

TEST_CASE("cache-mounts= on --cache-to", "[cli][cache-transfer]") {
  auto on = parse_cache_spec("type=registry,ref=r/c:x,cache-mounts=true", CacheDirection::to);
  REQUIRE(on);
  CHECK(on->cache_mounts);
  auto off = parse_cache_spec("type=local,dest=/c,cache-mounts=false", CacheDirection::to);
  REQUIRE(off);
  CHECK_FALSE(off->cache_mounts);
  auto unset = parse_cache_spec("type=registry,ref=r/c:x", CacheDirection::to);
  REQUIRE(unset);
  CHECK_FALSE(unset->cache_mounts);

  for (std::string_view bad :
       {"type=registry,ref=r,cache-mounts=yes",
        "type=registry,ref=r,cache-mounts=", "type=registry,ref=r,cache-mounts",
        "type=registry,ref=r,cache-mounts=true,cache-mounts=true"}) {
    CAPTURE(bad);
    auto parsed = parse_cache_spec(bad, CacheDirection::to);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::usage);
    CHECK_THAT(parsed.error().what(),
               Catch::Contains("--cache-to") && Catch::Contains("cache-mounts"));
  }
  // Import brings whatever mounts the artifact has: the key is --cache-to's only.
  auto from = parse_cache_spec("type=registry,ref=r,cache-mounts=true", CacheDirection::from);
  REQUIRE_FALSE(from);
  CHECK_THAT(from.error().what(), Catch::Contains("unknown key \"cache-mounts\""));
}

TEST_CASE("cache gc targets", "[cli][cache-gc]") {
  auto plain = parse_cache_gc_target("localhost:5000/c/app:bc");
  REQUIRE(plain);
  CHECK(plain->type == CacheType::registry);
  CHECK(plain->ref == "localhost:5000/c/app:bc");

  auto registry = parse_cache_gc_target("type=registry,ref=localhost:5000/c/app:bc");
  REQUIRE(registry);
  CHECK(*registry == *plain);

  auto local = parse_cache_gc_target("type=local,src=/ci/cache,tag=v2");
  REQUIRE(local);
  CHECK(local->type == CacheType::local);
  CHECK(local->dir == "/ci/cache");
  CHECK(local->tag == "v2");

  for (std::string_view bad : {"", "type=local,dest=/c", "type=registry,ref=r,mode=max",
                               "type=registry,ref=r,cache-mounts=true", "type=local", "ref=r"}) {
    CAPTURE(bad);
    auto parsed = parse_cache_gc_target(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::usage);
    CHECK_THAT(parsed.error().what(), Catch::Contains("cache gc"));
  }
}

TEST_CASE("cache export selects by mode and dedupes by key", "[cli][cache-transfer]") {
  const auto a = entry("a", true);
  const auto b = entry("b", false);
  const auto c = entry("c", true);
  std::vector<build::BuildResult::UsedEntry> used = {{c, true}, {b, false}, {a, true}, {c, true}};

  auto min = select_cache_entries(used, CacheMode::min);
  REQUIRE(min.size() == 2);
  CHECK(min[0].key.to_string() < min[1].key.to_string());
  CHECK(std::count(min.begin(), min.end(), a) == 1);
  CHECK(std::count(min.begin(), min.end(), c) == 1);

  auto max = select_cache_entries(used, CacheMode::max);
  REQUIRE(max.size() == 3);
  CHECK(std::count(max.begin(), max.end(), b) == 1);
}

TEST_CASE("cache config round trip", "[cli][cache-transfer]") {
  auto a = entry("a", true);
  a.last_used = 1700000000;         // the export time: written, for cache gc
  const auto b = entry("b", false); // last_used 0: undated, nothing written
  const std::string text = serialize_cache_config({a, b, a});

  auto json = nlohmann::json::parse(text);
  CHECK(json["version"] == 1);
  REQUIRE(json["entries"].size() == 2);
  CHECK(json["entries"][0]["key"].get<std::string>() <
        json["entries"][1]["key"].get<std::string>());
  for (const auto& item : json["entries"]) {
    if (item["kind"] == "run") {
      CHECK(item["lastUsed"] == 1700000000);
    } else {
      CHECK_FALSE(item.contains("lastUsed"));
    }
    CHECK_FALSE(item.contains("size"));
  }
  // Canonical: the same entries in another order give the same bytes.
  CHECK(serialize_cache_config({b, a}) == text);

  auto parsed = parse_cache_config(text, "REF");
  REQUIRE(parsed);
  std::vector<store::CacheEntry> expected = {a, b};
  std::sort(expected.begin(), expected.end(),
            [](const auto& x, const auto& y) { return x.key.to_string() < y.key.to_string(); });
  CHECK(*parsed == expected);
}

TEST_CASE("cache config errors", "[cli][cache-transfer]") {
  const auto a = entry("a", true);
  auto valid = nlohmann::json::parse(serialize_cache_config({a}));
  auto with = [&](auto change) {
    auto copy = valid;
    change(copy);
    return copy.dump();
  };
  for (const std::string& bad : {
           std::string("{"),
           std::string("[]"),
           std::string(R"({"version":1})"),
           with([](auto& j) { j["entries"][0].erase("kind"); }),
           with([](auto& j) { j["entries"][0]["key"] = "sha256:zz"; }),
           with([](auto& j) { j["entries"][0]["diffID"] = ""; }),
           with([](auto& j) { j["entries"][0]["layer"] = "layer"; }),
           with([](auto& j) { j["entries"][0]["created"] = 5; }),
           with([](auto& j) { j["entries"][0]["lastUsed"] = -1; }),
           with([](auto& j) { j["entries"][0]["lastUsed"] = "yesterday"; }),
           with([](auto& j) { j["entries"][0]["lastUsed"] = 1.5; }),
           with([](auto& j) { j["entries"].push_back(j["entries"][0]); }),
       }) {
    CAPTURE(bad);
    auto parsed = parse_cache_config(bad, "localhost:5000/c:x");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::corrupt);
    CHECK_THAT(parsed.error().what(), Catch::Contains("localhost:5000/c:x"));
  }
  auto newer = parse_cache_config(with([](auto& j) { j["version"] = 2; }), "R");
  REQUIRE_FALSE(newer);
  CHECK(newer.error().code() == Code::unsupported);
}

TEST_CASE("cache artifact manifest", "[cli][cache-transfer]") {
  auto a = entry("a", true);
  auto b = entry("b", false);
  auto c = entry("c", true);
  c.layer = a.layer; // two steps, one layer: listed once
  c.diff_id = a.diff_id;
  const auto artifact = make_cache_artifact({a, b, c});
  CHECK(artifact.entries == 3);
  CHECK(artifact.layers == 1);
  CHECK(artifact.config_descriptor.digest == oci::sha256_of(artifact.config));
  CHECK(artifact.manifest_descriptor.digest == oci::sha256_of(artifact.manifest));
  CHECK(artifact.manifest_descriptor.media_type == oci::k_oci_manifest);

  auto manifest = oci::parse<oci::ImageManifest>(artifact.manifest);
  REQUIRE(manifest);
  CHECK(manifest->artifact_type == k_cache_artifact_type);
  CHECK(manifest->config.media_type == k_cache_config_media_type);
  REQUIRE(manifest->layers.size() == 1);
  CHECK(manifest->layers[0] == *a.layer);
  // Deterministic: the same entries give the same manifest.
  CHECK(make_cache_artifact({c, b, a}).manifest == artifact.manifest);
}

namespace {

CacheMountLayer mount_of(std::string_view id, std::int64_t last_used) {
  CacheMountLayer m;
  m.id = std::string(id);
  m.dir = cache_mount_dir(id);
  m.mode = 0700;
  m.uid = 1000;
  m.gid = 100;
  m.last_used = last_used;
  m.layer = oci::make_descriptor(std::string(oci::k_oci_layer_tar_gzip),
                                 std::string("mount ") + std::string(id));
  return m;
}

} // namespace

TEST_CASE("cache mount layers carry their directory in annotations", "[cli][cache-transfer]") {
  const auto m = mount_of("/var/cache/apt", 1700000000);
  CHECK(m.dir == oci::sha256_of("/var/cache/apt").hex());
  const oci::Descriptor layer = mount_layer_descriptor(m);
  CHECK(layer.digest == m.layer.digest);
  CHECK(layer.annotations.at(std::string(k_mount_dir_annotation)) == m.dir);
  CHECK(layer.annotations.at(std::string(k_mount_id_annotation)) == "/var/cache/apt");
  CHECK(layer.annotations.at(std::string(k_mount_mode_annotation)) == "0700");
  CHECK(layer.annotations.at(std::string(k_mount_uid_annotation)) == "1000");
  CHECK(layer.annotations.at(std::string(k_mount_gid_annotation)) == "100");
  CHECK(layer.annotations.at(std::string(k_mount_last_used_annotation)) == "1700000000");

  auto parsed = parse_mount_layer(layer);
  REQUIRE(parsed);
  REQUIRE(*parsed);
  CHECK(**parsed == m);

  // An entry's layer has no dir annotation.
  auto plain = parse_mount_layer(m.layer);
  REQUIRE(plain);
  CHECK_FALSE(*plain);

  // Without an id (exported from a store listing) and without a time.
  auto anonymous = m;
  anonymous.id.clear();
  anonymous.last_used = 0;
  const auto anonymous_layer = mount_layer_descriptor(anonymous);
  CHECK(anonymous_layer.annotations.count(std::string(k_mount_id_annotation)) == 0);
  CHECK(anonymous_layer.annotations.count(std::string(k_mount_last_used_annotation)) == 0);
  auto reparsed = parse_mount_layer(anonymous_layer);
  REQUIRE(reparsed);
  REQUIRE(*reparsed);
  CHECK(**reparsed == anonymous);
  CHECK((*reparsed)->display() == "dir " + m.dir.substr(0, 12));
}

TEST_CASE("malformed cache mount annotations are corrupt", "[cli][cache-transfer]") {
  const oci::Descriptor valid = mount_layer_descriptor(mount_of("/cache", 5));
  auto with = [&](std::string_view key, std::string value) {
    auto copy = valid;
    copy.annotations[std::string(key)] = std::move(value);
    return copy;
  };
  for (const auto& bad : {
           with(k_mount_dir_annotation, "abc"),
           with(k_mount_dir_annotation, std::string(64, 'A')),
           with(k_mount_dir_annotation, "../" + std::string(61, 'a')),
           with(k_mount_id_annotation, "/other"),
           with(k_mount_mode_annotation, "0789"),
           with(k_mount_mode_annotation, "17777"),
           with(k_mount_mode_annotation, ""),
           with(k_mount_uid_annotation, "-1"),
           with(k_mount_gid_annotation, "4294967296"),
           with(k_mount_last_used_annotation, "soon"),
       }) {
    CAPTURE(bad.annotations);
    auto parsed = parse_mount_layer(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::corrupt);
    CHECK_THAT(parsed.error().what(), Catch::Contains("org.minibuild.cache.mount."));
  }
}

TEST_CASE("cache artifact with mounts: entry layers first, then one layer per mount",
          "[cli][cache-transfer]") {
  const auto a = entry("a", true);
  const auto b = entry("b", false);
  const auto without = make_cache_artifact({a, b});
  CHECK(without.mounts == 0);
  auto plain_manifest = oci::parse<oci::ImageManifest>(without.manifest);
  REQUIRE(plain_manifest);
  REQUIRE(plain_manifest->layers.size() == 1);
  CHECK(plain_manifest->layers[0].annotations.empty());

  const auto x = mount_of("/x", 10);
  const auto y = mount_of("/y", 20);
  const auto artifact = make_cache_artifact({a, b}, {y, x, y});
  CHECK(artifact.entries == 2);
  CHECK(artifact.layers == 1);
  CHECK(artifact.mounts == 2);
  // The config only lists entries: the same with or without mounts.
  CHECK(artifact.config == without.config);
  auto manifest = oci::parse<oci::ImageManifest>(artifact.manifest);
  REQUIRE(manifest);
  REQUIRE(manifest->layers.size() == 3);
  CHECK(manifest->layers[0] == *a.layer);
  const auto& first = x.dir < y.dir ? x : y;
  const auto& second = x.dir < y.dir ? y : x;
  CHECK(manifest->layers[1] == mount_layer_descriptor(first));
  CHECK(manifest->layers[2] == mount_layer_descriptor(second));
  CHECK(make_cache_artifact({b, a}, {x, y}).manifest == artifact.manifest);
}

TEST_CASE("cache gc selects by last use and keeps shared layers", "[cli][cache-gc]") {
  constexpr std::int64_t now = 1'700'000'000;
  constexpr std::int64_t day = 86'400;
  auto old_a = entry("a", true);
  old_a.last_used = now - 3 * day;
  auto old_shared = entry("shared-old", true);
  old_shared.last_used = now - 3 * day;
  auto fresh = entry("fresh", true);
  fresh.last_used = now - 60;
  fresh.layer = old_shared.layer; // one layer, two steps: kept for the fresh one
  fresh.diff_id = old_shared.diff_id;
  auto undated = entry("undated", true); // an artifact from before lastUsed
  auto edge = entry("edge", false);
  edge.last_used = now - day; // exactly the bound: kept, as cache prune keeps it
  auto old_mount = mount_of("/old", now - 2 * day);
  auto new_mount = mount_of("/new", now - 10);

  const auto selection =
      select_cache_gc({old_a, old_shared, fresh, undated, edge}, {old_mount, new_mount}, day, now);
  auto keys = [](const std::vector<store::CacheEntry>& list) {
    std::set<std::string> out;
    for (const auto& e : list) {
      out.insert(e.created_by);
    }
    return out;
  };
  CHECK(keys(selection.removed) == std::set<std::string>{"RUN make a", "RUN make shared-old"});
  CHECK(keys(selection.kept) ==
        std::set<std::string>{"RUN make fresh", "RUN make undated", "RUN make edge"});
  REQUIRE(selection.removed_mounts.size() == 1);
  CHECK(selection.removed_mounts[0] == old_mount);
  REQUIRE(selection.kept_mounts.size() == 1);
  CHECK(selection.kept_mounts[0] == new_mount);
  CHECK(selection.undated == 1);
  // old_shared's layer stays (fresh names it); a's layer and the old mount's go.
  REQUIRE(selection.removed_layers.size() == 2);
  std::set<oci::Digest> gone;
  for (const auto& layer : selection.removed_layers) {
    gone.insert(layer.digest);
  }
  CHECK(gone == std::set<oci::Digest>{old_a.layer->digest, old_mount.layer.digest});
  CHECK(selection.removed_bytes ==
        static_cast<std::uint64_t>(old_a.layer->size + old_mount.layer.size));

  // 0s removes everything dated before now; nothing is dated in the future.
  const auto all = select_cache_gc({old_a, fresh, undated}, {new_mount}, 0, now);
  CHECK(all.kept.size() == 1);
  CHECK(all.removed.size() == 2);
  CHECK(all.removed_mounts.size() == 1);
  // A long bound removes nothing.
  const auto none = select_cache_gc({old_a, fresh}, {old_mount}, 30 * day, now);
  CHECK(none.removed.empty());
  CHECK(none.removed_mounts.empty());
  CHECK(none.removed_layers.empty());
  CHECK(none.removed_bytes == 0);
}
