// An image manifest (manifest.md; Go specs.Manifest), which also reads Docker's image
// manifest v2 schema 2: the JSON shapes are the same, only the media types differ.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/json.hpp>

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace minibuild::oci {

/// One image (or artifact): a config blob and an ordered list of layers, bottom first.
struct ImageManifest {
  int schema_version = 2;            ///< "schemaVersion": always 2
  std::string media_type;            ///< "mediaType": k_oci_manifest or k_docker_manifest
  std::string artifact_type;         ///< "artifactType" (artifacts only)
  Descriptor config;                 ///< "config"
  std::vector<Descriptor> layers;    ///< "layers", base layer first
  std::optional<Descriptor> subject; ///< "subject": the manifest this one refers to
  Annotations annotations;           ///< "annotations"

  bool operator==(const ImageManifest&) const = default;
};

/// Reads a manifest. schemaVersion must be 2; config and layers are required; a mediaType, when
/// present, must be a manifest type (an index or anything else is refused: the spec added the
/// field to stop one document passing for another). Errors as in json.hpp.
template <>
Result<ImageManifest> from_json<ImageManifest>(const nlohmann::json& json);

/// mediaType, artifactType, subject and annotations are omitted when empty; layers is always
/// written (as [] when empty).
nlohmann::json to_json(const ImageManifest& manifest);

/// Canonical bytes (see json.hpp): the bytes to push and to hash.
std::string serialize(const ImageManifest& manifest);

} // namespace minibuild::oci
