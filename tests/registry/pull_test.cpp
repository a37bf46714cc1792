#include "registry/registry_test_support.hpp"

#include <minibuild/registry/pull.hpp>
#include <minibuild/store/fsck.hpp>

#include <catch2/catch.hpp>

#include <mutex>

using namespace minibuild;
using namespace minibuild::registry_test;

namespace {

const char* const k_repo = "app";

// Every progress event, in order, thread-safe as the contract asks.
class RecordingProgress : public registry::PullProgress {
public:
  void resolved(const registry::Reference&, const oci::Digest&, std::size_t layers,
                std::uint64_t total_bytes) override {
    std::lock_guard lock(m_mutex);
    m_layers = layers;
    m_total = total_bytes;
  }
  void layer_present(const oci::Descriptor& layer) override { add("present", layer); }
  void layer_started(const oci::Descriptor& layer) override { add("started", layer); }
  void layer_done(const oci::Descriptor& layer) override { add("done", layer); }
  void layer_retry(const oci::Descriptor& layer, std::string_view reason) override {
    add("retry", layer);
    std::lock_guard lock(m_mutex);
    m_reasons.emplace_back(reason);
  }
  void layer_progress(const oci::Descriptor&, std::uint64_t bytes) override {
    std::lock_guard lock(m_mutex);
    m_max_progress = std::max(m_max_progress, bytes);
  }

  std::size_t count(const std::string& kind) const {
    std::lock_guard lock(m_mutex);
    return static_cast<std::size_t>(std::count_if(
        m_events.begin(), m_events.end(), [&](const auto& event) { return event.first == kind; }));
  }
  std::size_t layers() const { return m_layers; }
  std::uint64_t total() const { return m_total; }
  std::uint64_t max_progress() const { return m_max_progress; }
  std::vector<std::string> reasons() const {
    std::lock_guard lock(m_mutex);
    return m_reasons;
  }

private:
  void add(const std::string& kind, const oci::Descriptor& layer) {
    std::lock_guard lock(m_mutex);
    m_events.emplace_back(kind, layer.digest);
  }

  mutable std::mutex m_mutex;
  std::vector<std::pair<std::string, oci::Digest>> m_events;
  std::vector<std::string> m_reasons;
  std::size_t m_layers = 0;
  std::uint64_t m_total = 0;
  std::uint64_t m_max_progress = 0;
};

// Puts an image's blobs and manifest straight into the fake (not through push, which has
// its own tests).
void seed(FakeRegistry& registry, store::Store& store, const StoredImage& image,
          const std::string& tag = {}) {
  registry.put_blob(k_repo, require(store.blobs().read(image.parsed.config.digest, 1 << 20)));
  for (const auto& layer : image.parsed.layers) {
    registry.put_blob(k_repo, require(store.blobs().read(layer.digest, 64 << 20)));
  }
  registry.put_manifest(k_repo, tag, image.manifest_bytes, image.manifest.media_type);
}

ImageSpec five_layers() {
  ImageSpec spec;
  spec.layers = {
      {{"etc/hostname", "box\n"}, {"etc/os-release", "ID=test\n"}},
      {{"usr/bin/tool", noise(300 * 1024, 1)}},
      // Larger than the download pipe (8 MiB), so the download waits for the extraction.
      {{"data/big.bin", noise(10 * 1024 * 1024, 2)}},
      {{"etc/hostname", "changed\n"}},
      {{"srv/a", "a"}, {"srv/b", noise(70 * 1024, 3)}},
  };
  return spec;
}

registry::PullOptions options_for(const std::string& platform,
                                  registry::PullProgress* progress = nullptr) {
  registry::PullOptions options;
  options.platform = require(oci::parse_platform(platform));
  options.progress = progress;
  return options;
}

std::uint64_t layer_bytes(const StoredImage& image) {
  std::uint64_t total = 0;
  for (const auto& layer : image.parsed.layers) {
    total += static_cast<std::uint64_t>(layer.size);
  }
  return total;
}

void require_clean(store::Store& store) {
  const auto report = require(store::fsck(store, store::Repair::no));
  std::string problems;
  for (const auto& problem : report.problems) {
    problems += std::string(store::kind_name(problem.kind)) + " " + problem.subject + ": " +
                problem.detail + "\n";
  }
  INFO(problems);
  CHECK(report.clean());
}

// The tree of each layer equals the files it was exported from.
void require_unpacked(store::Store& store, const StoredImage& image) {
  for (std::size_t i = 0; i < image.parsed.layers.size(); ++i) {
    const auto& diff_id = image.config.rootfs.diff_ids[i];
    const auto info = require(store.layers().stat(diff_id));
    REQUIRE(info);
    CHECK(info->source_blob == image.parsed.layers[i].digest);
    CHECK(files_below(store.layers().lower_dir(diff_id)) == image.layer_files[i]);
    CHECK(require(store.blobs().stat(image.parsed.layers[i].digest)));
  }
}

} // namespace

TEST_CASE("pull stores an image: layers streamed and unpacked, config, manifest, name", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, five_layers());
  seed(registry, *stores.source, image, "1");

  RecordingProgress progress;
  const auto pulled = require(registry::pull_image(connection.client, *stores.target,
                                                   reference("registry.test/app:1"),
                                                   options_for("linux/amd64", &progress)));
  CHECK(pulled.target == image.manifest);
  CHECK(pulled.manifest_digest == image.manifest.digest);
  CHECK(pulled.manifest == image.parsed);
  CHECK(pulled.config == image.config);
  CHECK(pulled.downloaded_bytes == layer_bytes(image));
  CHECK(pulled.layers_present == 0);

  const auto named = require(stores.target->names().resolve("registry.test/app:1"));
  REQUIRE(named);
  CHECK(named->digest == image.manifest.digest);
  CHECK(named->media_type == oci::k_oci_manifest);
  CHECK(require(stores.target->blobs().read(image.manifest.digest, 1 << 20)) ==
        image.manifest_bytes);
  CHECK(require(stores.target->blobs().read(image.parsed.config.digest, 1 << 20)) ==
        oci::serialize(image.config));
  require_unpacked(*stores.target, image);
  require_clean(*stores.target);

  CHECK(registry.blob_downloads() == 6); // config + 5 layers, each once
  CHECK(progress.layers() == 5);
  CHECK(progress.total() == layer_bytes(image));
  CHECK(progress.count("started") == 5);
  CHECK(progress.count("done") == 5);
  CHECK(progress.count("retry") == 0);
  CHECK(progress.max_progress() >= 10u * 1024 * 1024);

  SECTION("a second pull downloads nothing") {
    registry.clear_requests();
    RecordingProgress again;
    const auto second = require(registry::pull_image(connection.client, *stores.target,
                                                     reference("registry.test/app:1"),
                                                     options_for("linux/amd64", &again)));
    CHECK(registry.blob_downloads() == 0);
    CHECK(second.downloaded_bytes == 0);
    CHECK(second.layers_present == 5);
    CHECK(again.count("present") == 5);
    CHECK(again.count("started") == 0);
  }

  SECTION("a stored blob is unpacked, a missing blob of an unpacked layer fetched alone") {
    const auto& first = image.parsed.layers[0];
    const auto& second = image.parsed.layers[1];
    require(stores.target->layers().remove(image.config.rootfs.diff_ids[0]));
    require(stores.target->blobs().remove(second.digest));
    registry.clear_requests();
    const auto again =
        require(registry::pull_image(connection.client, *stores.target,
                                     reference("registry.test/app:1"), options_for("linux/amd64")));
    CHECK(registry.blob_downloads() == 1);
    CHECK(registry.count("GET", second.digest.to_string()) == 1);
    CHECK(registry.count("GET", first.digest.to_string()) == 0);
    CHECK(again.downloaded_bytes == static_cast<std::uint64_t>(second.size));
    require_unpacked(*stores.target, image);
    require_clean(*stores.target);
  }
}

TEST_CASE("pull with one download at a time gives the same store", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec spec;
  spec.layers = {{{"a", "1"}}, {{"b", noise(200 * 1024, 4)}}, {{"a", "3"}}};
  spec.compression = oci::Compression::zstd;
  const StoredImage image = build_image(*stores.source, spec);
  seed(registry, *stores.source, image, "zstd");
  auto options = options_for("linux/amd64");
  options.max_concurrent_downloads = 1;
  require(registry::pull_image(connection.client, *stores.target,
                               reference("registry.test/app:zstd"), options));
  require_unpacked(*stores.target, image);
  require_clean(*stores.target);
}

TEST_CASE("pull selects the platform from an index and names the index", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec amd64;
  amd64.layers = {{{"arch", "amd64"}}};
  ImageSpec arm64;
  arm64.layers = {{{"arch", "arm64"}}, {{"extra", "x"}}};
  arm64.architecture = "arm64";
  arm64.variant = "v8";
  const StoredImage amd = build_image(*stores.source, amd64);
  const StoredImage arm = build_image(*stores.source, arm64);
  const oci::Descriptor index = build_index(*stores.source, {amd, arm});
  seed(registry, *stores.source, amd);
  seed(registry, *stores.source, arm);
  const std::string index_bytes = require(stores.source->blobs().read(index.digest, 1 << 20));
  registry.put_manifest(k_repo, "multi", index_bytes, index.media_type);

  SECTION("linux/arm64 takes the arm64/v8 manifest") {
    const auto pulled = require(registry::pull_image(connection.client, *stores.target,
                                                     reference("registry.test/app:multi"),
                                                     options_for("linux/arm64")));
    CHECK(pulled.target.digest == index.digest);
    CHECK(pulled.target.media_type == oci::k_oci_index);
    CHECK(pulled.manifest_digest == arm.manifest.digest);
    CHECK(pulled.config.architecture == "arm64");
    const auto named = require(stores.target->names().resolve("registry.test/app:multi"));
    REQUIRE(named);
    CHECK(named->digest == index.digest);
    CHECK(named->media_type == oci::k_oci_index);
    CHECK(require(stores.target->blobs().read(index.digest, 1 << 20)) == index_bytes);
    // Only the chosen platform is stored.
    CHECK(require(stores.target->blobs().stat(arm.manifest.digest)));
    CHECK_FALSE(require(stores.target->blobs().stat(amd.manifest.digest)));
    CHECK_FALSE(require(stores.target->blobs().stat(amd.parsed.layers[0].digest)));
    require_unpacked(*stores.target, arm);
    require_clean(*stores.target);
  }

  SECTION("a platform the index lacks is not_found, listing what it offers") {
    const auto pulled =
        registry::pull_image(connection.client, *stores.target,
                             reference("registry.test/app:multi"), options_for("linux/s390x"));
    REQUIRE_FALSE(pulled);
    CHECK(pulled.error().code() == Code::not_found);
    const std::string text = pulled.error().what();
    CHECK_THAT(text, Catch::Contains("linux/s390x"));
    CHECK_THAT(text, Catch::Contains("linux/amd64, linux/arm64/v8"));
    CHECK(require(stores.target->names().list()).empty());
    CHECK(registry.blob_downloads() == 0);
  }

  SECTION("select_platform matches by containerd's rules") {
    const auto arm_v8 = require(
        registry::select_platform(index_bytes, require(oci::parse_platform("linux/arm64/v8"))));
    CHECK(arm_v8.digest == arm.manifest.digest);
    const auto aarch64 =
        require(registry::select_platform(index_bytes, oci::make_platform("linux", "aarch64")));
    CHECK(aarch64.digest == arm.manifest.digest);
    const auto x86 =
        require(registry::select_platform(index_bytes, oci::make_platform("linux", "x86_64")));
    CHECK(x86.digest == amd.manifest.digest);
    const auto windows =
        registry::select_platform(index_bytes, oci::make_platform("windows", "amd64"));
    REQUIRE_FALSE(windows);
    CHECK(windows.error().code() == Code::not_found);
  }
}

TEST_CASE("pull fetches a corrupt layer again and succeeds", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, five_layers());
  seed(registry, *stores.source, image, "1");
  const auto& bad = image.parsed.layers[2]; // the 10 MiB one, streamed through the pipe
  registry.corrupt_blob(bad.digest, 1);
  registry.corrupt_nth_blob_get(1); // the config, which comes first

  RecordingProgress progress;
  const auto pulled = require(registry::pull_image(connection.client, *stores.target,
                                                   reference("registry.test/app:1"),
                                                   options_for("linux/amd64", &progress)));
  CHECK(registry.count("GET", bad.digest.to_string()) == 2);
  CHECK(registry.count("GET", image.parsed.config.digest.to_string()) == 2);
  CHECK(progress.count("retry") == 1); // configs are not layers
  REQUIRE(progress.reasons().size() == 1);
  CHECK(pulled.downloaded_bytes > layer_bytes(image));
  require_unpacked(*stores.target, image);
  require_clean(*stores.target);
}

TEST_CASE("pull of a layer corrupt every time fails naming it and stores nothing corrupt",
          "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, five_layers());
  seed(registry, *stores.source, image, "1");
  const auto& bad = image.parsed.layers[1];
  registry.corrupt_blob(bad.digest, FakeRegistry::k_always);

  RecordingProgress progress;
  const auto pulled =
      registry::pull_image(connection.client, *stores.target, reference("registry.test/app:1"),
                           options_for("linux/amd64", &progress));
  REQUIRE_FALSE(pulled);
  CHECK(pulled.error().code() == Code::corrupt);
  CHECK_THAT(pulled.error().what(), Catch::Contains("layer " + bad.digest.to_string()));
  CHECK(registry.count("GET", bad.digest.to_string()) == 3);
  CHECK(progress.count("retry") == 2);
  CHECK_FALSE(require(stores.target->blobs().stat(bad.digest)));
  CHECK_FALSE(require(stores.target->layers().stat(image.config.rootfs.diff_ids[1])));
  CHECK_FALSE(require(stores.target->blobs().stat(image.manifest.digest)));
  CHECK(require(stores.target->names().list()).empty());
  require_clean(*stores.target);
}

TEST_CASE("pull stops at a layer the registry lacks and names it", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, five_layers());
  seed(registry, *stores.source, image, "1");
  const auto& missing = image.parsed.layers[3];
  registry.remove_blob(k_repo, missing.digest);

  const auto pulled =
      registry::pull_image(connection.client, *stores.target, reference("registry.test/app:1"),
                           options_for("linux/amd64"));
  REQUIRE_FALSE(pulled);
  CHECK(pulled.error().code() == Code::not_found);
  const std::string text = pulled.error().what();
  CHECK_THAT(text, Catch::Contains("layer " + missing.digest.to_string()));
  // The cause is the download's, not the extraction's that only saw the stream end.
  CHECK_THAT(text, Catch::Contains("BLOB_UNKNOWN"));
  CHECK_THAT(text, !Catch::Contains("apply layer"));
  CHECK(require(stores.target->names().list()).empty());
  CHECK_FALSE(require(stores.target->blobs().stat(image.manifest.digest)));
  require_clean(*stores.target);
}

TEST_CASE("pull checks the diffIDs and the config's layer count", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec spec;
  spec.layers = {{{"a", "1"}}, {{"b", "2"}}};
  StoredImage image = build_image(*stores.source, spec);
  seed(registry, *stores.source, image);

  const auto publish = [&](const oci::ImageConfig& config, const std::string& tag) {
    const std::string config_bytes = oci::serialize(config);
    oci::ImageManifest manifest = image.parsed;
    manifest.config = oci::make_descriptor(std::string(oci::k_oci_config), config_bytes);
    registry.put_blob(k_repo, config_bytes);
    registry.put_manifest(k_repo, tag, oci::serialize(manifest), std::string(oci::k_oci_manifest));
  };

  SECTION("a layer whose tar is not the config's diffID") {
    oci::ImageConfig config = image.config;
    config.rootfs.diff_ids[1] = oci::sha256_of("something else");
    publish(config, "wrong");
    const auto pulled =
        registry::pull_image(connection.client, *stores.target,
                             reference("registry.test/app:wrong"), options_for("linux/amd64"));
    REQUIRE_FALSE(pulled);
    CHECK(pulled.error().code() == Code::corrupt);
    CHECK_THAT(pulled.error().what(), Catch::Contains("diffID"));
    CHECK_THAT(pulled.error().what(),
               Catch::Contains("layer " + image.parsed.layers[1].digest.to_string()));
    CHECK_FALSE(require(stores.target->layers().stat(config.rootfs.diff_ids[1])));
    CHECK(require(stores.target->names().list()).empty());
  }

  SECTION("a config with fewer diffIDs than layers") {
    oci::ImageConfig config = image.config;
    config.rootfs.diff_ids.pop_back();
    publish(config, "short");
    const auto pulled =
        registry::pull_image(connection.client, *stores.target,
                             reference("registry.test/app:short"), options_for("linux/amd64"));
    REQUIRE_FALSE(pulled);
    CHECK(pulled.error().code() == Code::corrupt);
    CHECK_THAT(pulled.error().what(), Catch::Contains("1 diffIDs for 2 layers"));
    CHECK(registry.count("GET", image.parsed.layers[0].digest.to_string()) == 0);
  }
}

TEST_CASE("pull resumes a broken download, with or without Range support", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, five_layers());
  seed(registry, *stores.source, image, "1");
  const auto& big = image.parsed.layers[2];
  const bool ranges = GENERATE(true, false);
  registry.set_range_support(ranges);
  registry.break_blob_get(big.digest, 3 * 1024 * 1024 + 5);

  const auto pulled =
      require(registry::pull_image(connection.client, *stores.target,
                                   reference("registry.test/app:1"), options_for("linux/amd64")));
  CHECK(registry.count("GET", big.digest.to_string()) == 2);
  const auto requests = registry.requests();
  const bool asked_range =
      std::any_of(requests.begin(), requests.end(), [&](const FakeRegistry::Request& request) {
        return request.path.find(big.digest.to_string()) != std::string::npos &&
               !request.range.empty();
      });
  CHECK(asked_range);
  require_unpacked(*stores.target, image);
  require_clean(*stores.target);
  CHECK(pulled.manifest_digest == image.manifest.digest);
}

TEST_CASE("pull takes Docker media types and refuses foreign layers", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec spec;
  spec.layers = {{{"etc/issue", "docker\n"}}, {{"bin/x", noise(50 * 1024, 5)}}};
  spec.family = oci::MediaTypeFamily::docker;
  const StoredImage image = build_image(*stores.source, spec);
  seed(registry, *stores.source, image, "docker");

  const auto pulled = require(registry::pull_image(connection.client, *stores.target,
                                                   reference("registry.test/app:docker"),
                                                   options_for("linux/amd64")));
  CHECK(pulled.target.media_type == oci::k_docker_manifest);
  CHECK(pulled.manifest.layers[0].media_type == oci::k_docker_layer_tar_gzip);
  require_unpacked(*stores.target, image);

  oci::ImageManifest foreign = image.parsed;
  foreign.layers[0].media_type = oci::k_docker_foreign_layer_tar_gzip;
  foreign.layers[0].urls = {"https://example.com/layer.tar.gz"};
  registry.put_manifest(k_repo, "foreign", oci::serialize(foreign),
                        std::string(oci::k_docker_manifest));
  const auto refused =
      registry::pull_image(connection.client, *stores.target,
                           reference("registry.test/app:foreign"), options_for("linux/amd64"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::unsupported);
  CHECK_THAT(refused.error().what(), Catch::Contains(foreign.layers[0].digest.to_string()));
}

TEST_CASE("pull by digest records no name", "[pull]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec spec;
  spec.layers = {{{"x", "y"}}};
  const StoredImage image = build_image(*stores.source, spec);
  seed(registry, *stores.source, image, "1");

  const auto pulled = require(
      registry::pull_image(connection.client, *stores.target,
                           reference("registry.test/app@" + image.manifest.digest.to_string()),
                           options_for("linux/amd64")));
  CHECK(pulled.target.digest == image.manifest.digest);
  CHECK(require(stores.target->names().list()).empty());
  CHECK(require(stores.target->blobs().stat(image.manifest.digest)));

  SECTION("record_name false records none for a tag either") {
    auto options = options_for("linux/amd64");
    options.record_name = false;
    require(registry::pull_image(connection.client, *stores.target,
                                 reference("registry.test/app:1"), options));
    CHECK(require(stores.target->names().list()).empty());
  }
}
