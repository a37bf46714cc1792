// The data behind `minibuild images`: one row per name.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace minibuild::store {

class Store;

struct ImageSummary {
  std::string repository;      ///< "docker.io/library/alpine"
  std::string tag;             ///< "3.19"
  oci::Digest manifest_digest; ///< what the name points at (a manifest or an index)
  std::string media_type;      ///< of that document
  /// The image ID: the config digest, as docker and podman show it. Empty for an index (it
  /// has one config per platform) and when the manifest cannot be read.
  oci::Digest image_id;
  /// The config's "created", RFC 3339 as stored; empty when absent or unknown.
  std::string created;
  /// Bytes the image occupies as blobs: manifest-listed config and layer sizes (compressed,
  /// as stored). For an index: over the child manifests that are stored, each blob counted
  /// once. Unpacked layer trees are not counted.
  std::uint64_t size = 0;
  /// Why the row is incomplete (missing or corrupt manifest); empty when all is well.
  std::string problem;
};

/// One row per name, sorted by name. A broken image yields a row with `problem` set instead of
/// failing the listing. Takes no lock: names and blobs are only ever replaced atomically.
Result<std::vector<ImageSummary>> list_images(Store& store);

} // namespace minibuild::store
