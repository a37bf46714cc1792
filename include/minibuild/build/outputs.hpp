// Image exporters: writing a stored image out of the store, for `--output` and `minibuild save`.
//
// Three formats (docs/outputs.md describes each in detail):
//   - type=oci:            an OCI image layout directory (image-spec image-layout.md): the file
//                          `oci-layout`, `index.json` and `blobs/sha256/<hex>`. Writing into an
//                          existing layout adds (or replaces) this image's tags and keeps every
//                          other index entry and blob, as `skopeo copy ... oci:DIR:TAG` does.
//   - type=oci-archive:    the same layout as one tar file (what `skopeo ... oci-archive:` and
//                          `podman load` read). Always a fresh layout: the file is replaced.
//   - type=docker-archive: the `docker save` format (`manifest.json`, `repositories`, the config
//                          as `<hex>.json`, each layer as an uncompressed `<diffid>/layer.tar`),
//                          what `docker load` and `skopeo ... docker-archive:` read.
//
// Naming. Each name "repository:tag" becomes, in an OCI layout, one index.json entry whose
// `org.opencontainers.image.ref.name` annotation is the *tag* ("1" for app:1) — the name
// `skopeo oci:DIR:1` and `umoci --image DIR:1` look up, and what BuildKit writes — plus
// `io.containerd.image.name` with the whole name. In a docker archive the names are RepoTags,
// written in Docker's familiar form ("app:1" for "docker.io/library/app:1").
//
// Safety. Every blob is read from the store through the verifying reader and is only renamed into
// place (layout) or accepted (archive) once its size and digest matched; a docker-archive layer
// is also checked against its diffID as it is decompressed. Every file is written to a temporary
// name in the destination directory, fsync'ed and renamed, so a destination is either left as it
// was or complete: an interrupted export never leaves a half-written archive, blob or index.json
// under its final name. The caller holds the store lock shared while exporting, so that prune
// cannot remove a blob being copied.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/blob_store.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::build {

/// The annotation that names an index.json entry for tools (image-spec annotations.md).
inline constexpr std::string_view k_ref_name_annotation = "org.opencontainers.image.ref.name";
/// The annotation containerd and BuildKit use for the full image name ("docker.io/library/app:1").
inline constexpr std::string_view k_image_name_annotation = "io.containerd.image.name";

enum class OutputType {
  oci_layout,     ///< "oci": a layout directory
  oci_archive,    ///< "oci-archive": a layout in a tar file
  docker_archive, ///< "docker-archive": `docker save` format tar file
};

/// The `type=` word of an output type ("oci", "oci-archive", "docker-archive").
std::string_view output_type_name(OutputType type);

/// One `--output` value.
struct OutputSpec {
  OutputType type = OutputType::oci_layout;
  /// Destination path. "-" (archives only) means standard output.
  std::string dest;

  bool operator==(const OutputSpec&) const = default;
};

/// Parses `type=oci|oci-archive|docker-archive,dest=PATH`. Fields are comma separated `key=value`
/// pairs, in any order; a field may be double-quoted as in CSV (`"dest=a,b"`, with `""` for a
/// quote) so paths can hold commas. Errors (Code::usage, quoting the value): a field without
/// '=', an unknown key (BuildKit's name=, tar=, compression=... are not supported), a repeated
/// key, a missing or unknown type, a missing or empty dest, and dest=- for type=oci (a
/// directory cannot go to standard output).
Result<OutputSpec> parse_output_spec(std::string_view value);

/// Parses every value of a repeated --output option; the first bad value fails the lot, and at
/// most one output may write to standard output.
Result<std::vector<OutputSpec>> parse_output_specs(const std::vector<std::string>& values);

/// What to export: a manifest (or an index) stored in the blob store, and its names.
struct ImageToExport {
  /// A manifest or index blob in the store.
  oci::Digest digest;
  /// Its media type, as the name store records it; empty means "read it from the document".
  std::string media_type;
  /// "repository:tag" names to record; may be empty (the layout entry is then unnamed and the
  /// docker archive has no RepoTags). Names without a tag are refused (store::split_name).
  std::vector<std::string> names;
};

struct OutputOptions {
  /// The modification time of every entry of the archives (seconds since the epoch). Fixed, so
  /// that the same image always gives the same archive bytes; a build passes SOURCE_DATE_EPOCH.
  std::int64_t archive_mtime = 0;
};

/// Writes (or updates) an OCI layout at `dir`, creating the directory and its parents when
/// missing. A non-empty directory that is not a layout (no `oci-layout` file) is refused with
/// Code::usage, so a mistyped dest never litters an unrelated directory; a layout of another
/// version is Code::unsupported. Blobs already in the layout with the right size are kept; every
/// index entry whose ref name is one of this image's tags is replaced, the others are kept in
/// their order and new entries are appended. index.json is replaced last, atomically.
///
/// For an index, the index and every child manifest stored in the store are copied; children
/// that the store does not hold (a single-platform pull) are left out, as in the store.
Result<void> write_oci_layout(store::BlobStore& blobs, const ImageToExport& image,
                              const std::string& dir);

/// Writes an oci-archive: the layout write_oci_layout would write into an empty directory, as a
/// tar with entries in a fixed order (blobs/, blobs/sha256/, the blobs by digest, index.json,
/// oci-layout), owner 0:0, mode 0644/0755 and `options.archive_mtime`. The same image and
/// options always give the same bytes. `file` "-" writes to standard output.
Result<void> write_oci_archive(store::BlobStore& blobs, const ImageToExport& image,
                               const std::string& file, const OutputOptions& options = {});

/// Writes a docker-archive (see the top of this file), entries in a fixed order: the config,
/// then each distinct layer (`<diffid>/`, `<diffid>/layer.tar`) bottom first, `manifest.json`,
/// `repositories` (only when there are names). Layers are decompressed (gzip, zstd or none) as
/// they are copied; a layer whose uncompressed digest is not the config's diffID fails with
/// Code::corrupt. An index is exported only when the store holds exactly one of its manifests
/// (Code::unsupported otherwise: the format holds one image per name). `file` "-" writes to
/// standard output (each layer is then decompressed twice: once to learn its size).
Result<void> write_docker_archive(store::BlobStore& blobs, const ImageToExport& image,
                                  const std::string& file, const OutputOptions& options = {});

/// Dispatches on `spec.type`. Errors carry the context "output type=...,dest=...".
Result<void> write_output(store::BlobStore& blobs, const ImageToExport& image,
                          const OutputSpec& spec, const OutputOptions& options = {});

/// The familiar form Docker shows and writes in RepoTags: "docker.io/library/app:1" → "app:1",
/// "docker.io/user/app:1" → "user/app:1"; other names are unchanged.
std::string familiar_name(std::string_view name);

} // namespace minibuild::build
