// Helpers shared by the store tests: a temporary directory, raw file access for tampering,
// and small image builders.
#pragma once

#include "support/temp_dir.hpp"

#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace minibuild::store::testing {

using TempDir = minibuild::test::TempDir;

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void spit(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE(out.good());
}

/// Everything in the directory (names only); empty when it does not exist.
inline std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Number of files and directories below tmp/ (session directories included).
inline std::size_t temp_entries(const std::string& root) {
  std::size_t count = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root + "/tmp", error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    ++count;
  }
  return count;
}

/// Number of regular files below tmp/ (temporary blobs, names, layer files).
inline std::size_t temp_files(const std::string& root) {
  std::size_t count = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root + "/tmp", error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error)) {
      ++count;
    }
  }
  return count;
}

inline std::unique_ptr<Store> open_store(const std::string& root) {
  auto store = Store::open(root);
  if (!store) {
    FAIL(store.error().what());
  }
  return std::move(*store);
}

inline BlobInfo put_text(Store& store, std::string_view text) {
  oci::StringSource source{std::string(text)};
  auto info = store.blobs().put(source);
  if (!info) {
    FAIL(info.error().what());
  }
  return *info;
}

inline oci::Descriptor descriptor_of(std::string_view media_type, std::string_view content) {
  return oci::make_descriptor(std::string(media_type), content);
}

/// A stored single-platform image: config + layers + manifest.
struct TestImage {
  oci::Descriptor manifest;
  oci::Descriptor config;
  std::vector<oci::Descriptor> layers;
  std::vector<oci::Digest> diff_ids;
};

/// Stores an image whose layer blobs hold `layer_contents` (the diffIDs are the sha256 of the
/// same strings: the store does not look inside layers).
inline TestImage put_image(Store& store, const std::vector<std::string>& layer_contents,
                           std::string created = "2024-01-02T03:04:05Z") {
  TestImage image;
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.created = std::move(created);
  for (const auto& content : layer_contents) {
    const std::string blob = "gzip:" + content;
    image.layers.push_back(descriptor_of(oci::k_oci_layer_tar_gzip, blob));
    put_text(store, blob);
    image.diff_ids.push_back(oci::sha256_of(content));
    config.rootfs.diff_ids.push_back(oci::sha256_of(content));
  }
  const std::string config_text = oci::serialize(config);
  image.config = descriptor_of(oci::k_oci_config, config_text);
  put_text(store, config_text);
  oci::ImageManifest manifest;
  manifest.media_type = std::string(oci::k_oci_manifest);
  manifest.config = image.config;
  manifest.layers = image.layers;
  const std::string manifest_text = oci::serialize(manifest);
  image.manifest = descriptor_of(oci::k_oci_manifest, manifest_text);
  put_text(store, manifest_text);
  return image;
}

/// An extractor that writes `files` (path → content) into the target directory.
inline LayerExtractor write_files(std::vector<std::pair<std::string, std::string>> files) {
  return [files = std::move(files)](const std::string& dir) -> Result<void> {
    for (const auto& [path, content] : files) {
      const std::filesystem::path target = std::filesystem::path(dir) / path;
      std::error_code error;
      std::filesystem::create_directories(target.parent_path(), error);
      std::ofstream out(target, std::ios::binary);
      out << content;
      if (!out.good()) {
        return fail(Code::io, "test extractor: write " + target.string());
      }
    }
    return {};
  };
}

} // namespace minibuild::store::testing
