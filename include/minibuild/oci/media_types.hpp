// Media types of the OCI image spec (media-types.md) and of Docker's image manifest v2,
// schema 2 (distribution docs/spec/manifest-v2-2.md), with the helpers that classify them.
//
// Helpers compare the exact string: callers strip Content-Type parameters ("; charset=…")
// before asking. Docker and OCI types are interchangeable in content (the JSON shapes match),
// so the is_* helpers accept both families.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace minibuild::oci {

// OCI (application/vnd.oci.*)
inline constexpr std::string_view k_oci_descriptor = "application/vnd.oci.descriptor.v1+json";
inline constexpr std::string_view k_oci_layout_header = "application/vnd.oci.layout.header.v1+json";
inline constexpr std::string_view k_oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view k_oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view k_oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view k_oci_layer_tar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view k_oci_layer_tar_gzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view k_oci_layer_tar_zstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
/// Non-distributable layers are deprecated by the spec: read them, never write new ones.
inline constexpr std::string_view k_oci_layer_nondistributable_tar =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view k_oci_layer_nondistributable_tar_gzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view k_oci_layer_nondistributable_tar_zstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// The empty JSON blob "{}" (2 bytes, sha256:44136fa3…) used as config of artifacts.
inline constexpr std::string_view k_oci_empty_json = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view k_oci_empty_json_digest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

// Docker image manifest v2, schema 2 (application/vnd.docker.*)
inline constexpr std::string_view k_docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view k_docker_manifest_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view k_docker_config =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view k_docker_layer_tar =
    "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view k_docker_layer_tar_gzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// "Foreign" layers (Windows base layers) are fetched from the descriptor's urls, never pushed.
inline constexpr std::string_view k_docker_foreign_layer_tar =
    "application/vnd.docker.image.rootfs.foreign.diff.tar";
inline constexpr std::string_view k_docker_foreign_layer_tar_gzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 (signed) manifests: recognised only to refuse them with a clear message.
inline constexpr std::string_view k_docker_schema1_manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view k_docker_schema1_signed_manifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Which family of media types to write.
enum class MediaTypeFamily { oci, docker };

/// How a layer blob is compressed.
enum class Compression { none, gzip, zstd };

/// An image manifest: OCI manifest or Docker schema 2 manifest.
bool is_manifest(std::string_view media_type);
/// An index of manifests: OCI image index or Docker manifest list.
bool is_index(std::string_view media_type);
/// An image config: OCI config or Docker container config.
bool is_config(std::string_view media_type);
/// Any filesystem layer type of either family, distributable or not.
bool is_layer(std::string_view media_type);
/// A layer that registries may refuse to store (OCI nondistributable, Docker foreign).
bool is_nondistributable_layer(std::string_view media_type);

/// The media type a JSON document announces in its `mediaType` field, or else what its shape
/// says: "manifests" → the OCI index type, "config" and "layers" → the OCI manifest type (OCI
/// documents may omit mediaType; Docker's always carry it). nullopt when the text is not a JSON
/// object; an empty string when it is one without either clue.
std::optional<std::string> sniff_media_type(std::string_view json_text);

/// The compression of a layer media type; nullopt when `media_type` is not a layer type.
std::optional<Compression> layer_compression(std::string_view media_type);

/// The (distributable) layer media type for a compression in a family. Docker schema 2 has no
/// zstd layer type, so {zstd, docker} gives nullopt.
std::optional<std::string_view> layer_media_type(Compression compression, MediaTypeFamily family);

/// The OCI equivalent of a Docker media type (manifest, list, config, layers); any other type,
/// including OCI types, is returned unchanged.
std::string_view to_oci(std::string_view media_type);
/// The Docker equivalent of an OCI media type; nullopt when Docker has none (zstd layers, the
/// empty JSON, artifacts). Docker types are returned unchanged.
std::optional<std::string_view> to_docker(std::string_view media_type);

/// Name of a compression as used in media type suffixes and logs: "none", "gzip", "zstd".
std::string_view compression_name(Compression compression);

} // namespace minibuild::oci
