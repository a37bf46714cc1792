#include "json_read.hpp"

#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

namespace minibuild::oci {

namespace detail {

// schemaVersion is 2 for OCI, Docker schema 2 and Docker manifest lists alike; 1 is Docker's
// signed schema 1, which minibuild does not read.
Result<int> read_schema_version(const json& value) {
  MB_TRY_ASSIGN(auto version, get_int64(value, "schemaVersion", "", Presence::required));
  if (version != 2) {
    Error error = field_error("schemaVersion", "unsupported schema version " +
                                                   std::to_string(version) + " (expected 2)");
    return fail(version == 1 ? std::move(error).with_code(Code::unsupported) : std::move(error));
  }
  return 2;
}

Result<std::vector<Descriptor>> read_descriptor_list(const json& value, std::string_view key) {
  MB_TRY_ASSIGN(const json* list, member(value, key, "", Presence::required));
  if (!list->is_array()) {
    return fail(field_error(key, "expected an array, found " + std::string(type_name(*list))));
  }
  std::vector<Descriptor> out;
  out.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    MB_TRY_ASSIGN(auto descriptor, read_descriptor((*list)[i], path_index(key, i)));
    out.push_back(std::move(descriptor));
  }
  return out;
}

Result<std::optional<Descriptor>> read_subject(const json& value) {
  MB_TRY_ASSIGN(const json* subject, member(value, "subject", "", Presence::optional));
  if (subject == nullptr) {
    return std::optional<Descriptor>();
  }
  MB_TRY_ASSIGN(auto descriptor, read_descriptor(*subject, "subject"));
  return std::optional<Descriptor>(std::move(descriptor));
}

void write_common(json& out, int schema_version, const std::string& media_type,
                  const std::string& artifact_type, const std::optional<Descriptor>& subject,
                  const Annotations& annotations) {
  out["schemaVersion"] = schema_version;
  if (!media_type.empty()) {
    out["mediaType"] = media_type;
  }
  if (!artifact_type.empty()) {
    out["artifactType"] = artifact_type;
  }
  if (subject) {
    out["subject"] = to_json(*subject);
  }
  if (!annotations.empty()) {
    out["annotations"] = annotations;
  }
}

} // namespace detail

template <>
Result<ImageManifest> from_json<ImageManifest>(const nlohmann::json& json) {
  using namespace detail;
  MB_TRY(expect_object(json, "", "image manifest"));
  ImageManifest manifest;
  MB_TRY_ASSIGN(manifest.schema_version, read_schema_version(json));
  MB_TRY_ASSIGN(manifest.media_type, get_string(json, "mediaType", "", Presence::optional));
  if (!manifest.media_type.empty() && !is_manifest(manifest.media_type)) {
    return fail(field_error("mediaType",
                            "\"" + manifest.media_type + "\" is not an image manifest media type"));
  }
  MB_TRY_ASSIGN(manifest.artifact_type, get_string(json, "artifactType", "", Presence::optional));
  MB_TRY_ASSIGN(const nlohmann::json* config, member(json, "config", "", Presence::required));
  MB_TRY_ASSIGN(manifest.config, read_descriptor(*config, "config"));
  MB_TRY_ASSIGN(manifest.layers, read_descriptor_list(json, "layers"));
  MB_TRY_ASSIGN(manifest.subject, read_subject(json));
  MB_TRY_ASSIGN(manifest.annotations, get_string_map(json, "annotations", ""));
  return manifest;
}

nlohmann::json to_json(const ImageManifest& manifest) {
  nlohmann::json out = nlohmann::json::object();
  detail::write_common(out, manifest.schema_version, manifest.media_type, manifest.artifact_type,
                       manifest.subject, manifest.annotations);
  out["config"] = to_json(manifest.config);
  out["layers"] = nlohmann::json::array();
  for (const auto& layer : manifest.layers) {
    out["layers"].push_back(to_json(layer));
  }
  return out;
}

std::string serialize(const ImageManifest& manifest) {
  return detail::canonical_dump(to_json(manifest));
}

} // namespace minibuild::oci
