#include "documents.hpp"

#include <minibuild/oci/media_types.hpp>

#include <nlohmann/json.hpp>

namespace minibuild::store {

DocumentKind kind_of(std::string_view media_type) {
  if (oci::is_manifest(media_type)) {
    return DocumentKind::manifest;
  }
  if (oci::is_index(media_type)) {
    return DocumentKind::index;
  }
  if (oci::is_config(media_type)) {
    return DocumentKind::config;
  }
  return DocumentKind::other;
}

DocumentKind sniff_kind(std::string_view text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return DocumentKind::other;
  }
  const auto media_type = json.find("mediaType");
  if (media_type != json.end() && media_type->is_string()) {
    const DocumentKind kind = kind_of(media_type->get_ref<const std::string&>());
    if (kind != DocumentKind::other) {
      return kind;
    }
  }
  if (json.contains("manifests")) {
    return DocumentKind::index;
  }
  if (json.contains("config") && json.contains("layers")) {
    return DocumentKind::manifest;
  }
  if (json.contains("rootfs")) {
    return DocumentKind::config;
  }
  return DocumentKind::other;
}

} // namespace minibuild::store
