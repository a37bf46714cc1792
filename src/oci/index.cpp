#include "json_read.hpp"

#include <minibuild/oci/index.hpp>
#include <minibuild/oci/media_types.hpp>

namespace minibuild::oci {

template <>
Result<ImageIndex> from_json<ImageIndex>(const nlohmann::json& json) {
  using namespace detail;
  MB_TRY(expect_object(json, "", "image index"));
  ImageIndex index;
  MB_TRY_ASSIGN(index.schema_version, read_schema_version(json));
  MB_TRY_ASSIGN(index.media_type, get_string(json, "mediaType", "", Presence::optional));
  if (!index.media_type.empty() && !is_index(index.media_type)) {
    return fail(
        field_error("mediaType", "\"" + index.media_type + "\" is not an image index media type"));
  }
  MB_TRY_ASSIGN(index.artifact_type, get_string(json, "artifactType", "", Presence::optional));
  MB_TRY_ASSIGN(index.manifests, read_descriptor_list(json, "manifests"));
  MB_TRY_ASSIGN(index.subject, read_subject(json));
  MB_TRY_ASSIGN(index.annotations, get_string_map(json, "annotations", ""));
  return index;
}

nlohmann::json to_json(const ImageIndex& index) {
  nlohmann::json out = nlohmann::json::object();
  detail::write_common(out, index.schema_version, index.media_type, index.artifact_type,
                       index.subject, index.annotations);
  out["manifests"] = nlohmann::json::array();
  for (const auto& manifest : index.manifests) {
    out["manifests"].push_back(to_json(manifest));
  }
  return out;
}

std::string serialize(const ImageIndex& index) {
  return detail::canonical_dump(to_json(index));
}

std::vector<Descriptor> find_manifests(const ImageIndex& index, const Platform& wanted) {
  std::vector<Descriptor> found;
  for (const auto& manifest : index.manifests) {
    if (manifest.platform && matches(wanted, *manifest.platform)) {
      found.push_back(manifest);
    }
  }
  return found;
}

} // namespace minibuild::oci
