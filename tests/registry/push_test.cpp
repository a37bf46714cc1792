#include "registry/registry_test_support.hpp"

#include <minibuild/registry/pull.hpp>
#include <minibuild/registry/push.hpp>

#include <catch2/catch.hpp>

#include <mutex>

using namespace minibuild;
using namespace minibuild::registry_test;

namespace {

class RecordingProgress : public registry::PushProgress {
public:
  void blob_skipped(const oci::Descriptor&) override { add("skipped"); }
  void blob_mounted(const oci::Descriptor&, std::string_view from) override {
    add("mounted from " + std::string(from));
  }
  void blob_started(const oci::Descriptor&) override { add("started"); }
  void blob_done(const oci::Descriptor&) override { add("done"); }
  void manifest_pushed(const oci::Descriptor& manifest, std::string_view reference) override {
    add("manifest " + manifest.digest.to_string() + " as " + std::string(reference));
  }

  std::size_t count(const std::string& event) const {
    std::lock_guard lock(m_mutex);
    return static_cast<std::size_t>(std::count(m_events.begin(), m_events.end(), event));
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(m_mutex);
    return m_events;
  }

private:
  void add(std::string event) {
    std::lock_guard lock(m_mutex);
    m_events.push_back(std::move(event));
  }
  mutable std::mutex m_mutex;
  std::vector<std::string> m_events;
};

ImageSpec three_layers() {
  ImageSpec spec;
  spec.layers = {
      {{"etc/hostname", "pushed\n"}},
      {{"opt/blob.bin", noise(400 * 1024, 7)}},
      {{"etc/hostname", "again\n"}, {"srv/x", "x"}},
  };
  return spec;
}

std::uint64_t blob_bytes(const StoredImage& image) {
  std::uint64_t total = static_cast<std::uint64_t>(image.parsed.config.size);
  for (const auto& layer : image.parsed.layers) {
    total += static_cast<std::uint64_t>(layer.size);
  }
  return total;
}

registry::PullOptions pull_options(const std::string& architecture) {
  registry::PullOptions options;
  options.platform = oci::make_platform("linux", architecture);
  return options;
}

// Index of the request (method, path containing `part`) in the record; -1 when absent.
long position(const std::vector<FakeRegistry::Request>& requests, const std::string& method,
              const std::string& part) {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].method == method && requests[i].path.find(part) != std::string::npos) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

} // namespace

TEST_CASE("push sends blobs and manifest; a second push skips every blob; pull gets it back",
          "[push]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, three_layers());

  RecordingProgress progress;
  registry::PushOptions options;
  options.progress = &progress;
  const auto pushed =
      require(registry::push_image(connection.client, *stores.source, image.manifest,
                                   reference("registry.test/team/app:1"), options));
  CHECK(pushed.target == image.manifest);
  CHECK(pushed.uploaded_bytes == blob_bytes(image));
  CHECK(pushed.blobs_skipped == 0);
  CHECK(pushed.blobs_mounted == 0);
  CHECK(progress.count("started") == 4);
  CHECK(progress.count("done") == 4);
  CHECK(progress.count("manifest " + image.manifest.digest.to_string() + " as 1") == 1);
  for (const auto& layer : image.parsed.layers) {
    CHECK(registry.has_blob("team/app", layer.digest));
  }
  CHECK(registry.has_blob("team/app", image.parsed.config.digest));
  CHECK(registry.tag("team/app", "1") == image.manifest.digest);
  CHECK(registry.count("PUT", "/manifests/") == 1); // under the tag only
  const auto stored = registry.manifest("team/app", "1");
  REQUIRE(stored);
  CHECK(stored->first == image.manifest_bytes);
  CHECK(stored->second == oci::k_oci_manifest);

  SECTION("again: every blob is skipped, nothing uploaded") {
    registry.clear_requests();
    const auto again =
        require(registry::push_image(connection.client, *stores.source, image.manifest,
                                     reference("registry.test/team/app:1"), {}));
    CHECK(again.blobs_skipped == 4);
    CHECK(again.uploaded_bytes == 0);
    CHECK(registry.upload_requests() == 0);
    CHECK(registry.count("HEAD", "/blobs/") == 4);
  }

  SECTION("a fresh store pulls the same image") {
    const auto pulled =
        require(registry::pull_image(connection.client, *stores.target,
                                     reference("registry.test/team/app:1"), pull_options("amd64")));
    CHECK(pulled.manifest_digest == image.manifest.digest);
    CHECK(pulled.config == image.config);
    for (std::size_t i = 0; i < image.parsed.layers.size(); ++i) {
      CHECK(files_below(stores.target->layers().lower_dir(image.config.rootfs.diff_ids[i])) ==
            image.layer_files[i]);
    }
    const auto named = require(stores.target->names().resolve("registry.test/team/app:1"));
    REQUIRE(named);
    CHECK(named->digest == image.manifest.digest);
  }
}

TEST_CASE("push mounts blobs from another repository of the registry", "[push]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, three_layers());
  require(registry::push_image(connection.client, *stores.source, image.manifest,
                               reference("registry.test/base:1"), {}));
  registry.clear_requests();

  RecordingProgress progress;
  registry::PushOptions options;
  options.mount_from = {"nowhere", "base"};
  options.progress = &progress;
  const auto pushed =
      require(registry::push_image(connection.client, *stores.source, image.manifest,
                                   reference("registry.test/derived:2"), options));
  CHECK(pushed.blobs_mounted == 4);
  CHECK(pushed.uploaded_bytes == 0);
  CHECK(progress.count("mounted from base") == 4);
  CHECK(registry.upload_requests() == 0);
  CHECK(registry.has_blob("derived", image.parsed.layers[1].digest));
  CHECK(registry.tag("derived", "2") == image.manifest.digest);
}

TEST_CASE("push fails naming a blob neither the store nor the registry has", "[push]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  const StoredImage image = build_image(*stores.source, three_layers());
  const auto& lost = image.parsed.layers[2];
  require(stores.source->blobs().remove(lost.digest));

  const auto pushed = registry::push_image(connection.client, *stores.source, image.manifest,
                                           reference("registry.test/app:1"), {});
  REQUIRE_FALSE(pushed);
  CHECK(pushed.error().code() == Code::not_found);
  CHECK_THAT(pushed.error().what(), Catch::Contains(lost.digest.to_string()));
  CHECK_FALSE(registry.tag("app", "1"));
  CHECK(registry.count("PUT", "/manifests/") == 0);

  SECTION("but when another repository has it, it is mounted") {
    // The store no longer has the blob: rebuild it from the same files in another store.
    const StoredImage twin = build_image(*stores.target, three_layers());
    REQUIRE(twin.parsed.layers[2].digest == lost.digest);
    registry.put_blob("elsewhere", require(stores.target->blobs().read(lost.digest, 1 << 20)));
    registry::PushOptions options;
    options.mount_from = {"elsewhere"};
    const auto again =
        require(registry::push_image(connection.client, *stores.source, image.manifest,
                                     reference("registry.test/app:1"), options));
    CHECK(again.blobs_mounted == 1);
    CHECK(registry.tag("app", "1") == image.manifest.digest);
  }
}

TEST_CASE("push of an index sends its manifests by digest first, then the index", "[push]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec amd64;
  amd64.layers = {{{"arch", "amd64"}}, {{"common", "same"}}};
  ImageSpec arm64 = amd64;
  arm64.layers[0] = {{"arch", "arm64"}};
  arm64.architecture = "arm64";
  arm64.variant = "v8";
  const StoredImage amd = build_image(*stores.source, amd64);
  const StoredImage arm = build_image(*stores.source, arm64);
  REQUIRE(amd.parsed.layers[1] == arm.parsed.layers[1]); // shared, sent once
  const oci::Descriptor index = build_index(*stores.source, {amd, arm});

  RecordingProgress progress;
  registry::PushOptions options;
  options.progress = &progress;
  const auto pushed = require(registry::push_image(
      connection.client, *stores.source, index, reference("registry.test/multi:latest"), options));
  CHECK(pushed.target == index);
  CHECK(progress.count("started") == 5); // 2 configs, 2 own layers, 1 shared layer
  CHECK(registry.tag("multi", "latest") == index.digest);
  CHECK(registry.manifest("multi", amd.manifest.digest.to_string()));
  CHECK(registry.manifest("multi", arm.manifest.digest.to_string()));
  const auto requests = registry.requests();
  const long child = position(requests, "PUT", "/manifests/" + arm.manifest.digest.to_string());
  const long top = position(requests, "PUT", "/manifests/latest");
  CHECK(child >= 0);
  CHECK(top > child);
  CHECK(progress.count("manifest " + arm.manifest.digest.to_string() + " as " +
                       arm.manifest.digest.to_string()) == 1);

  SECTION("a pull of one platform, pushed back, needs only what the registry has") {
    const auto pulled = require(registry::pull_image(connection.client, *stores.target,
                                                     reference("registry.test/multi:latest"),
                                                     pull_options("arm64")));
    CHECK(pulled.target == index);
    CHECK_FALSE(require(stores.target->blobs().stat(amd.manifest.digest)));
    const auto again =
        require(registry::push_image(connection.client, *stores.target, pulled.target,
                                     reference("registry.test/multi:copy"), {}));
    CHECK(registry.tag("multi", "copy") == index.digest);
    CHECK(again.uploaded_bytes == 0);

    // In a repository that lacks the amd64 manifest, the index cannot be completed.
    const auto refused = registry::push_image(connection.client, *stores.target, pulled.target,
                                              reference("registry.test/fresh:1"), {});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code() == Code::not_found);
    CHECK_THAT(refused.error().what(), Catch::Contains(amd.manifest.digest.to_string()));
    CHECK_THAT(refused.error().what(), Catch::Contains("linux/amd64"));
    CHECK_FALSE(registry.tag("fresh", "1"));
  }
}

TEST_CASE("push to a digest reference checks the digest and sets no tag", "[push]") {
  TwoStores stores;
  FakeRegistry registry;
  Connection connection(registry);
  ImageSpec spec;
  spec.layers = {{{"x", "1"}}};
  spec.family = oci::MediaTypeFamily::docker;
  const StoredImage image = build_image(*stores.source, spec);

  const auto wrong = registry::push_image(
      connection.client, *stores.source, image.manifest,
      reference("registry.test/app@" + oci::sha256_of("other").to_string()), {});
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code() == Code::usage);
  CHECK(registry.requests().empty());

  const auto pushed = require(registry::push_image(
      connection.client, *stores.source, image.manifest,
      reference("registry.test/app@" + image.manifest.digest.to_string()), {}));
  CHECK(pushed.target.digest == image.manifest.digest);
  const auto stored = registry.manifest("app", image.manifest.digest.to_string());
  REQUIRE(stored);
  CHECK(stored->second == oci::k_docker_manifest);
  CHECK(registry.count("PUT", "/manifests/") == 1);
}

TEST_CASE("push uploads large blobs in chunks and one at a time when asked", "[push]") {
  TwoStores stores;
  FakeRegistry registry;
  registry::ClientOptions client_options;
  client_options.monolithic_limit = 64 * 1024;
  client_options.chunk_size = 100 * 1024;
  Connection connection(registry, client_options);
  const StoredImage image = build_image(*stores.source, three_layers());
  registry::PushOptions options;
  options.max_concurrent_uploads = 1;
  const auto pushed =
      require(registry::push_image(connection.client, *stores.source, image.manifest,
                                   reference("registry.test/app:1"), options));
  CHECK(pushed.uploaded_bytes == blob_bytes(image));
  CHECK(registry.count("PATCH", "/blobs/uploads/") >= 4); // the 400 KiB layer in 100 KiB chunks
  CHECK(registry.has_blob("app", image.parsed.layers[1].digest));
}
