// `minibuild cache`: duration and size parsing, the prune policy, and the ls table.
#include "cli/command_cache.hpp"
#include "cli/command_store.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace minibuild;
using namespace minibuild::cli;

TEST_CASE("cache prune durations", "[cli]") {
  struct Case {
    std::string_view text;
    std::int64_t seconds;
  };
  for (const Case& c : {Case{"168h", 168 * 3600}, Case{"30m", 1800}, Case{"7d", 7 * 86400},
                        Case{"90s", 90}, Case{"1h30m", 5400}, Case{"1.5h", 5400},
                        Case{"2w", 14 * 86400}, Case{"0s", 0}, Case{"24H", 86400}}) {
    CAPTURE(c.text);
    auto parsed = parse_duration(c.text);
    REQUIRE(parsed);
    CHECK(*parsed == c.seconds);
  }
  for (std::string_view bad : {"", "10", "h", "10x", "-5h", "1h 30m", "1..5h", "5hm"}) {
    CAPTURE(bad);
    auto parsed = parse_duration(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::usage);
    CHECK_THAT(parsed.error().what(), Catch::Contains("duration"));
  }
}

TEST_CASE("cache prune sizes", "[cli]") {
  struct Case {
    std::string_view text;
    std::uint64_t bytes;
  };
  for (const Case& c :
       {Case{"10GB", 10'000'000'000ULL}, Case{"500MB", 500'000'000ULL},
        Case{"1.5GiB", 1'610'612'736ULL}, Case{"0", 0}, Case{"1234", 1234}, Case{"12B", 12},
        Case{"2kb", 2000}, Case{"2KiB", 2048}, Case{"3M", 3'000'000}, Case{"1Ti", 1ULL << 40},
        Case{"1tb", 1'000'000'000'000ULL}}) {
    CAPTURE(c.text);
    auto parsed = parse_size(c.text);
    REQUIRE(parsed);
    CHECK(*parsed == c.bytes);
  }
  for (std::string_view bad : {"", "GB", "10 GB", "10XB", "-1GB", "1e9", "1.2.3MB"}) {
    CAPTURE(bad);
    auto parsed = parse_size(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code() == Code::usage);
  }
}

TEST_CASE("cache prune needs a bound or -a", "[cli]") {
  CachePruneCommandOptions options;
  auto policy = cache_prune_policy(options);
  REQUIRE_FALSE(policy);
  CHECK(policy.error().code() == Code::usage);

  options.keep_duration = "168h";
  options.keep_storage = "10GB";
  policy = cache_prune_policy(options);
  REQUIRE(policy);
  CHECK_FALSE(policy->all);
  CHECK(policy->keep_duration == 168 * 3600);
  CHECK(policy->keep_storage == 10'000'000'000ULL);

  options = CachePruneCommandOptions{};
  options.all = true;
  policy = cache_prune_policy(options);
  REQUIRE(policy);
  CHECK(policy->all);

  options.keep_storage = "lots";
  CHECK_FALSE(cache_prune_policy(options));
}

TEST_CASE("cache ls prints a table, most recently used first, or JSON lines", "[cli]") {
  constexpr std::int64_t now = 1'700'000'000;
  store::CacheEntry run;
  run.key = oci::sha256_of("run");
  run.kind = "run";
  run.layer = oci::make_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "layer");
  run.diff_id = oci::sha256_of("diff");
  run.created = "2023-11-14T22:13:20Z";
  run.created_by = "RUN /bin/sh -c apt-get update && apt-get install -y build-essential";
  run.last_used = now - 3 * 3600;
  run.size = 1'982'256;
  store::CacheEntry workdir;
  workdir.key = oci::sha256_of("workdir");
  workdir.kind = "workdir";
  workdir.created_by = "WORKDIR /src";
  workdir.last_used = now - 30;

  const std::string table = render_cache_ls({run, workdir}, CacheLsOptions{}, now);
  const std::string expected_header = "KEY            KIND      SIZE      LAST USED";
  CHECK(table.rfind(expected_header, 0) == 0);
  const auto first = table.find('\n') + 1;
  const auto second = table.find('\n', first) + 1;
  const std::string workdir_line = table.substr(first, second - first);
  const std::string run_line = table.substr(second);
  CHECK(workdir_line.rfind(workdir.key.hex().substr(0, 12), 0) == 0);
  CHECK_THAT(workdir_line, Catch::Contains("0B") && Catch::Contains("30 seconds ago") &&
                               Catch::Contains("WORKDIR /src"));
  CHECK(run_line.rfind(run.key.hex().substr(0, 12), 0) == 0);
  CHECK_THAT(run_line, Catch::Contains("1.98MB") && Catch::Contains("3 hours ago"));
  CHECK_THAT(run_line, Catch::Contains("RUN /bin/sh -c apt-get update && apt-get ins…"));

  CacheLsOptions json_options;
  json_options.format = "json";
  const std::string json = render_cache_ls({run, workdir}, json_options, now);
  const auto line = nlohmann::json::parse(json.substr(0, json.find('\n')));
  CHECK(line["Key"] == workdir.key.to_string());
  CHECK(line["Layer"].is_null());
  const auto line2 = nlohmann::json::parse(json.substr(json.find('\n') + 1));
  CHECK(line2["Layer"] == run.layer->digest.to_string());
  CHECK(line2["Size"] == 1'982'256);
  CHECK(line2["LastUsed"] == now - 3 * 3600);
}

TEST_CASE("prune output lists removed cache entries and mounts", "[cli]") {
  store::PruneReport report;
  store::CacheEntry entry;
  entry.key = oci::sha256_of("k");
  entry.kind = "run";
  entry.layer = oci::make_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "x");
  entry.size = 1234;
  report.removed_cache_entries.push_back(entry);
  report.cache_mounts_removed = 2;
  report.freed_bytes = 1234;
  const std::string out = render_prune(report);
  CHECK(out == "deleted cache entry " + entry.key.to_string() +
                   " (run, 1.23kB)\nremoved 2 cache mounts\nTotal reclaimed space: 1.23kB\n");
}
