// An image index (image-index.md; Go specs.Index), which also reads Docker's manifest list:
// a list of manifests, each usually tagged with the platform it runs on.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/json.hpp>

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace minibuild::oci {

struct ImageIndex {
  int schema_version = 2;            ///< "schemaVersion": always 2
  std::string media_type;            ///< "mediaType": k_oci_index or k_docker_manifest_list
  std::string artifact_type;         ///< "artifactType"
  std::vector<Descriptor> manifests; ///< "manifests"; entries may carry a platform
  std::optional<Descriptor> subject; ///< "subject"
  Annotations annotations;           ///< "annotations"

  bool operator==(const ImageIndex&) const = default;
};

/// Reads an index. schemaVersion must be 2; manifests is required; a mediaType, when present,
/// must be an index type. Errors as in json.hpp.
template <>
Result<ImageIndex> from_json<ImageIndex>(const nlohmann::json& json);

/// mediaType, artifactType, subject and annotations are omitted when empty; manifests is
/// always written.
nlohmann::json to_json(const ImageIndex& index);

/// Canonical bytes (see json.hpp).
std::string serialize(const ImageIndex& index);

/// The entries of `index` whose platform matches `wanted` (platform.hpp matches()), in index
/// order. Entries without a platform never match.
std::vector<Descriptor> find_manifests(const ImageIndex& index, const Platform& wanted);

} // namespace minibuild::oci
