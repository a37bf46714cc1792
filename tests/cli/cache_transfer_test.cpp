// --cache-to / --cache-from: option parsing, entry selection, the config format and the
// artifact manifest (cli/cache_transfer.hpp).
#include "cli/cache_transfer.hpp"

#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

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
  a.last_used = 1700000000; // local bookkeeping: not exported
  const auto b = entry("b", false);
  const std::string text = serialize_cache_config({a, b, a});

  auto json = nlohmann::json::parse(text);
  CHECK(json["version"] == 1);
  REQUIRE(json["entries"].size() == 2);
  CHECK(json["entries"][0]["key"].get<std::string>() <
        json["entries"][1]["key"].get<std::string>());
  CHECK_FALSE(json["entries"][0].contains("lastUsed"));
  // Canonical: the same entries in another order give the same bytes.
  CHECK(serialize_cache_config({b, a}) == text);

  auto parsed = parse_cache_config(text, "REF");
  REQUIRE(parsed);
  auto expected_a = a;
  expected_a.last_used = 0;
  std::vector<store::CacheEntry> expected = {expected_a, b};
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
