#include <minibuild/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <utility>

namespace minibuild::oci {

namespace {

struct LayerType {
  std::string_view media_type;
  Compression compression;
  bool distributable;
};

constexpr std::array k_layer_types = {
    LayerType{k_oci_layer_tar, Compression::none, true},
    LayerType{k_oci_layer_tar_gzip, Compression::gzip, true},
    LayerType{k_oci_layer_tar_zstd, Compression::zstd, true},
    LayerType{k_oci_layer_nondistributable_tar, Compression::none, false},
    LayerType{k_oci_layer_nondistributable_tar_gzip, Compression::gzip, false},
    LayerType{k_oci_layer_nondistributable_tar_zstd, Compression::zstd, false},
    LayerType{k_docker_layer_tar, Compression::none, true},
    LayerType{k_docker_layer_tar_gzip, Compression::gzip, true},
    LayerType{k_docker_foreign_layer_tar, Compression::none, false},
    LayerType{k_docker_foreign_layer_tar_gzip, Compression::gzip, false},
};

// Docker type → OCI type. Docker's foreign layers are the ancestors of OCI's non-distributable
// ones (image-spec media-types.md, "Compatibility Matrix").
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> k_docker_to_oci = {{
    {k_docker_manifest, k_oci_manifest},
    {k_docker_manifest_list, k_oci_index},
    {k_docker_config, k_oci_config},
    {k_docker_layer_tar, k_oci_layer_tar},
    {k_docker_layer_tar_gzip, k_oci_layer_tar_gzip},
    {k_docker_foreign_layer_tar, k_oci_layer_nondistributable_tar},
    {k_docker_foreign_layer_tar_gzip, k_oci_layer_nondistributable_tar_gzip},
}};

const LayerType* find_layer(std::string_view media_type) {
  for (const auto& type : k_layer_types) {
    if (type.media_type == media_type) {
      return &type;
    }
  }
  return nullptr;
}

} // namespace

bool is_manifest(std::string_view media_type) {
  return media_type == k_oci_manifest || media_type == k_docker_manifest;
}

bool is_index(std::string_view media_type) {
  return media_type == k_oci_index || media_type == k_docker_manifest_list;
}

bool is_config(std::string_view media_type) {
  return media_type == k_oci_config || media_type == k_docker_config;
}

bool is_layer(std::string_view media_type) {
  return find_layer(media_type) != nullptr;
}

bool is_nondistributable_layer(std::string_view media_type) {
  const auto* type = find_layer(media_type);
  return type != nullptr && !type->distributable;
}

std::optional<Compression> layer_compression(std::string_view media_type) {
  if (const auto* type = find_layer(media_type)) {
    return type->compression;
  }
  return std::nullopt;
}

std::optional<std::string_view> layer_media_type(Compression compression, MediaTypeFamily family) {
  switch (family) {
  case MediaTypeFamily::oci:
    switch (compression) {
    case Compression::none:
      return k_oci_layer_tar;
    case Compression::gzip:
      return k_oci_layer_tar_gzip;
    case Compression::zstd:
      return k_oci_layer_tar_zstd;
    }
    break;
  case MediaTypeFamily::docker:
    switch (compression) {
    case Compression::none:
      return k_docker_layer_tar;
    case Compression::gzip:
      return k_docker_layer_tar_gzip;
    case Compression::zstd:
      return std::nullopt;
    }
    break;
  }
  return std::nullopt;
}

std::string_view to_oci(std::string_view media_type) {
  for (const auto& [docker, oci] : k_docker_to_oci) {
    if (media_type == docker) {
      return oci;
    }
  }
  return media_type;
}

std::optional<std::string_view> to_docker(std::string_view media_type) {
  for (const auto& [docker, oci] : k_docker_to_oci) {
    if (media_type == oci || media_type == docker) {
      return docker;
    }
  }
  return std::nullopt;
}

std::string_view compression_name(Compression compression) {
  switch (compression) {
  case Compression::none:
    return "none";
  case Compression::gzip:
    return "gzip";
  case Compression::zstd:
    return "zstd";
  }
  return "none";
}

std::optional<std::string> sniff_media_type(std::string_view json_text) {
  const auto json = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return std::nullopt;
  }
  if (const auto field = json.find("mediaType"); field != json.end() && field->is_string()) {
    return field->get<std::string>();
  }
  if (json.contains("manifests")) {
    return std::string(k_oci_index);
  }
  if (json.contains("config") && json.contains("layers")) {
    return std::string(k_oci_manifest);
  }
  return std::string();
}

} // namespace minibuild::oci
