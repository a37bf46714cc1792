// Helpers shared by the pull and push tests: a RegistryClient talking to a FakeRegistry, and
// real images (layers exported from small trees) stored in a local store.
#pragma once

#include "support/fake_registry.hpp"
#include "support/temp_dir.hpp"

#include <minibuild/layer/export.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/auth.hpp>
#include <minibuild/registry/client.hpp>
#include <minibuild/registry/reference.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace minibuild::registry_test {

using namespace minibuild;
using test::FakeRegistry;
using test::TempDir;

/// The host every test reference names ("registry.test/app:1").
inline constexpr const char* k_host = "registry.test";

/// A client for a FakeRegistry: anonymous, no waiting between retries.
struct Connection {
  explicit Connection(FakeRegistry& registry, registry::ClientOptions options = {})
      : auth(registry,
             [](std::string_view) -> Result<std::optional<registry::Credentials>> {
               return std::nullopt;
             }),
        client(registry, auth, host_settings(), k_host, with_test_defaults(std::move(options))) {}

  static registry::HostSettings host_settings() {
    registry::HostSettings host;
    host.host = k_host;
    return host;
  }
  static registry::ClientOptions with_test_defaults(registry::ClientOptions options) {
    options.sleep = [](std::chrono::milliseconds) {};
    options.random_unit = [] { return 0.0; };
    return options;
  }

  registry::Authenticator auth;
  registry::RegistryClient client;
};

template <typename T>
T require(Result<T> result) {
  if (!result) {
    FAIL(result.error().what());
  }
  return std::move(*result);
}

inline void require(Result<void> result) {
  if (!result) {
    FAIL(result.error().what());
  }
}

inline std::unique_ptr<store::Store> open_store(const std::string& root) {
  return require(store::Store::open(root));
}

inline registry::Reference reference(const std::string& text) {
  return require(registry::parse_reference(text));
}

/// Files of one layer: relative path → content (parent directories are created).
using LayerFiles = std::map<std::string, std::string>;

/// Deterministic bytes that do not compress (so a layer blob is as large as its content).
inline std::string noise(std::size_t size, std::uint32_t seed) {
  std::string bytes(size, '\0');
  std::uint32_t state = seed * 2654435761u + 1;
  for (auto& byte : bytes) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    byte = static_cast<char>(state & 0xff);
  }
  return bytes;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Every regular file below `root`: relative path → content.
inline LayerFiles files_below(const std::string& root) {
  LayerFiles files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      files[std::filesystem::relative(entry.path(), root).string()] =
          read_file(entry.path().string());
    }
  }
  return files;
}

/// An image stored in a local store.
struct StoredImage {
  oci::Descriptor manifest; ///< with the manifest's media type
  std::string manifest_bytes;
  oci::ImageManifest parsed;
  oci::ImageConfig config;
  std::vector<LayerFiles> layer_files;
};

/// Stores raw bytes as a blob.
inline oci::Descriptor store_blob(store::Store& store, std::string media_type,
                                  const std::string& bytes) {
  oci::StringSource source(bytes);
  require(store.blobs().put(source));
  return oci::make_descriptor(std::move(media_type), bytes);
}

struct ImageSpec {
  std::vector<LayerFiles> layers;
  std::string architecture = "amd64";
  std::string variant;
  oci::MediaTypeFamily family = oci::MediaTypeFamily::oci;
  oci::Compression compression = oci::Compression::gzip;
};

/// Exports each layer's files as a real layer blob into `store`, writes config and manifest.
inline StoredImage build_image(store::Store& store, const ImageSpec& spec) {
  StoredImage image;
  image.layer_files = spec.layers;
  image.config.architecture = spec.architecture;
  image.config.variant = spec.variant;
  image.config.os = "linux";
  image.config.created = "2024-05-06T07:08:09Z";
  image.config.config.cmd = {"/bin/sh"};
  const bool docker = spec.family == oci::MediaTypeFamily::docker;
  for (const auto& files : spec.layers) {
    TempDir tree("pull-layer");
    for (const auto& [path, content] : files) {
      const auto full = std::filesystem::path(tree.path()) / path;
      std::filesystem::create_directories(full.parent_path());
      std::ofstream(full, std::ios::binary) << content;
    }
    layer::ExportOptions options;
    options.compression = spec.compression;
    options.source_date_epoch = 0;
    options.threads = 1;
    auto writer = require(store.blobs().open_writer({}));
    const auto exported = require(layer::export_layer(tree.path(), options, *writer));
    require(writer->commit());
    oci::Descriptor descriptor;
    descriptor.media_type =
        docker ? std::string(*oci::to_docker(exported.media_type)) : exported.media_type;
    descriptor.digest = exported.digest;
    descriptor.size = static_cast<std::int64_t>(exported.size);
    image.parsed.layers.push_back(descriptor);
    image.config.rootfs.diff_ids.push_back(exported.diff_id);
    image.config.history.push_back({"2024-05-06T07:08:09Z", "COPY layer", "", "", false});
  }
  image.parsed.media_type = docker ? oci::k_docker_manifest : oci::k_oci_manifest;
  image.parsed.config =
      store_blob(store, docker ? std::string(oci::k_docker_config) : std::string(oci::k_oci_config),
                 oci::serialize(image.config));
  image.manifest_bytes = oci::serialize(image.parsed);
  image.manifest = store_blob(store, image.parsed.media_type, image.manifest_bytes);
  return image;
}

/// An index of stored manifests, each with its image's platform; stored too.
inline oci::Descriptor build_index(store::Store& store, const std::vector<StoredImage>& images) {
  oci::ImageIndex index;
  index.media_type = oci::k_oci_index;
  for (const auto& image : images) {
    oci::Descriptor entry = image.manifest;
    entry.platform =
        oci::make_platform(image.config.os, image.config.architecture, image.config.variant);
    index.manifests.push_back(entry);
  }
  return store_blob(store, std::string(oci::k_oci_index), oci::serialize(index));
}

/// A store that was never written to by the code under test, with a pushed image source.
struct TwoStores {
  TempDir source_dir{"pull-source"};
  TempDir target_dir{"pull-target"};
  std::unique_ptr<store::Store> source = open_store(source_dir.path());
  std::unique_ptr<store::Store> target = open_store(target_dir.path());
};

} // namespace minibuild::registry_test
