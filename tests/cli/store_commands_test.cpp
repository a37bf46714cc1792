// The store commands' output: docker-style sizes, ages and tables, and the renderers of images,
// history, prune and fsck. Pure functions: no store, a fixed "now".
#include "cli/command_store.hpp"
#include "cli/store_format.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace minibuild;
using namespace minibuild::cli;

namespace {

// 2023-11-14T22:13:20Z
constexpr std::int64_t k_epoch = 1700000000;

oci::Digest digest_of(std::string_view text) {
  return oci::sha256_of(text);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    REQUIRE(end != std::string::npos); // every line ends in '\n'
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

} // namespace

TEST_CASE("sizes print as docker prints them", "[cli][store-commands]") {
  CHECK(human_size(0) == "0B");
  CHECK(human_size(999) == "999B");
  CHECK(human_size(1234) == "1.23kB");
  CHECK(human_size(1982256) == "1.98MB");
  CHECK(human_size(5'000'000'000ULL) == "5GB");
}

TEST_CASE("ages print as docker prints them", "[cli][store-commands]") {
  CHECK(human_age(0) == "Less than a second ago");
  CHECK(human_age(1) == "1 second ago");
  CHECK(human_age(59) == "59 seconds ago");
  CHECK(human_age(60) == "About a minute ago");
  CHECK(human_age(45 * 60) == "45 minutes ago");
  CHECK(human_age(3600) == "About an hour ago");
  CHECK(human_age(47 * 3600) == "47 hours ago");
  CHECK(human_age(10 * 86400) == "10 days ago");
  CHECK(human_age(20 * 86400) == "2 weeks ago");
  CHECK(human_age(100 * 86400) == "3 months ago");
  CHECK(human_age(3 * 365 * 86400) == "3 years ago");
}

TEST_CASE("RFC 3339 times parse to epoch seconds", "[cli][store-commands]") {
  CHECK(parse_rfc3339("2023-11-14T22:13:20Z") == k_epoch);
  CHECK(parse_rfc3339("2023-11-14T22:13:20.123456789Z") == k_epoch);
  CHECK(parse_rfc3339("2023-11-15T00:13:20+02:00") == k_epoch);
  CHECK(parse_rfc3339("2023-11-14T21:13:20-01:00") == k_epoch);
  CHECK_FALSE(parse_rfc3339(""));
  CHECK_FALSE(parse_rfc3339("2023-11-14 22:13:20Z"));
  CHECK_FALSE(parse_rfc3339("2023-13-14T22:13:20Z"));
  CHECK_FALSE(parse_rfc3339("2023-11-14T22:13:20"));
  CHECK(created_column("2023-11-14T22:13:20Z", k_epoch + 7200) == "2 hours ago");
  CHECK(created_column("", k_epoch) == "N/A");
}

TEST_CASE("ids, ellipsis and tables follow docker's layout", "[cli][store-commands]") {
  CHECK(short_id("sha256:0123456789abcdef0123") == "0123456789ab");
  CHECK(ellipsis("COPY busybox /bin/busybox", 45) == "COPY busybox /bin/busybox");
  CHECK(ellipsis("a\tb\nc", 0) == "a b c");
  std::string long_text(60, 'x');
  std::string cut = ellipsis(long_text, 45);
  CHECK(cut == std::string(44, 'x') + "…");
  CHECK(format_table({{"A", "BB"}, {"long value", "x"}}) == "A            BB\n"
                                                            "long value   x\n");
  // Columns are at least 10 wide and padded by 3; width counts characters, not bytes.
  CHECK(format_table({{"…", "z"}}) == "…         z\n");
}

TEST_CASE("images renders a table, ids or JSON lines", "[cli][store-commands]") {
  store::ImageSummary app;
  app.repository = "app";
  app.tag = "1";
  app.manifest_digest = digest_of("manifest");
  app.media_type = "application/vnd.oci.image.manifest.v1+json";
  app.image_id = digest_of("config");
  app.created = "2023-11-14T22:13:20Z";
  app.size = 1982256;
  store::ImageSummary hub = app;
  hub.repository = "docker.io/library/alpine";
  hub.tag = "3.19";
  store::ImageSummary broken;
  broken.repository = "broken";
  broken.tag = "x";
  broken.manifest_digest = digest_of("gone");
  broken.problem = "manifest is missing";

  auto table = lines_of(render_images({app, hub, broken}, {}, k_epoch + 3 * 3600));
  REQUIRE(table.size() == 4);
  CHECK(table[0] == "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE");
  CHECK(table[1] ==
        "app          1         " + short_id(app.image_id.to_string()) + "   3 hours ago   1.98MB");
  CHECK(table[2].rfind("alpine       3.19      ", 0) == 0); // Docker Hub names shown familiar
  // A broken row still shows, with the manifest digest as its id.
  CHECK(table[3] == "broken       x         " + short_id(broken.manifest_digest.to_string()) +
                        "   N/A           N/A");

  ImagesOptions quiet;
  quiet.quiet = true;
  CHECK(lines_of(render_images({app, broken}, quiet, k_epoch)) ==
        std::vector<std::string>{short_id(app.image_id.to_string()),
                                 short_id(broken.manifest_digest.to_string())});

  ImagesOptions json;
  json.format = "json";
  auto json_lines = lines_of(render_images({app, broken}, json, k_epoch));
  REQUIRE(json_lines.size() == 2);
  auto first = nlohmann::json::parse(json_lines[0]);
  CHECK(first["Name"] == "app:1");
  CHECK(first["ID"] == app.image_id.to_string());
  CHECK(first["Digest"] == app.manifest_digest.to_string());
  CHECK(first["Size"] == 1982256);
  CHECK(first["CreatedAt"] == "2023-11-14T22:13:20Z");
  CHECK_FALSE(first.contains("Problem"));
  CHECK(nlohmann::json::parse(json_lines[1])["Problem"] == "manifest is missing");
}

TEST_CASE("history lists steps newest first with layer sizes", "[cli][store-commands]") {
  oci::ImageConfig config;
  config.history = {
      {"2023-11-14T22:13:20Z", "COPY busybox /bin/busybox # buildkit", "", "buildkit.dockerfile.v0",
       false},
      {"2023-11-14T22:13:20Z", "ENV A=1", "", "buildkit.dockerfile.v0", true},
      {"2023-11-14T22:13:20Z", "WORKDIR /srv/app/with/a/rather/long/path/that/goes/on", "", "",
       false},
  };
  oci::ImageManifest manifest;
  manifest.layers.resize(2);
  manifest.layers[0].size = 1031953;
  manifest.layers[1].size = 93;
  oci::Digest id = digest_of("config");

  auto lines = lines_of(render_history(config, manifest, id, false, k_epoch + 86400));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].rfind("IMAGE          CREATED        CREATED BY", 0) == 0);
  CHECK(lines[1].rfind(short_id(id.to_string()) + "   24 hours ago   WORKDIR /srv/app/with/a/",
                       0) == 0);
  CHECK_THAT(lines[1], Catch::Contains("…   93B"));
  CHECK(lines[2].rfind("<missing>      24 hours ago   ENV A=1 ", 0) == 0);
  CHECK_THAT(lines[2], Catch::Contains(" 0B "));
  CHECK_THAT(lines[3], Catch::Contains("1.03MB    buildkit.dockerfile.v0"));

  auto full = lines_of(render_history(config, manifest, id, true, k_epoch));
  CHECK(full[1].rfind(id.to_string(), 0) == 0);
  CHECK_THAT(full[1], Catch::Contains("/that/goes/on"));
}

TEST_CASE("prune and fsck reports", "[cli][store-commands]") {
  store::PruneReport prune;
  prune.removed_blobs = {{digest_of("a"), 1500}};
  prune.removed_layers = {digest_of("layer")};
  prune.freed_bytes = 2500;
  auto pruned = lines_of(render_prune(prune));
  REQUIRE(pruned.size() == 3);
  CHECK(pruned[0] == "deleted blob " + digest_of("a").to_string() + " (1.5kB)");
  CHECK(pruned[1] == "deleted unpacked layer " + digest_of("layer").to_string());
  CHECK(pruned[2] == "Total reclaimed space: 2.5kB");
  CHECK(render_prune({}) == "Total reclaimed space: 0B\n");

  store::FsckReport fsck;
  fsck.blobs_checked = 4;
  fsck.layers_checked = 1;
  fsck.names_checked = 2;
  CHECK(render_fsck(fsck) ==
        "checked 4 blobs, 1 unpacked layers, 2 names, 0 cache entries: no problems\n");
  fsck.problems.push_back(
      {store::FsckProblem::Kind::corrupt_blob, "sha256:ab", "digest mismatch", false});
  fsck.problems.push_back(
      {store::FsckProblem::Kind::stray_blob_entry, "blobs/sha256/x", "not a digest", true});
  auto report = lines_of(render_fsck(fsck));
  REQUIRE(report.size() == 3);
  CHECK(report[0] == "corrupt-blob sha256:ab: digest mismatch");
  CHECK(report[1] == "stray-blob-entry blobs/sha256/x: not a digest (repaired)");
  CHECK(report[2] ==
        "checked 4 blobs, 1 unpacked layers, 2 names, 0 cache entries: 2 problems, 1 repaired");
}
