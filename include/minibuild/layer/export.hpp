// Turning a directory tree into an OCI layer blob, in one pass.
//
// export_layer() walks a tree (a COPY result, or an overlay upper dir), writes a reproducible
// tar (docs/layers.md, "Format" and "Determinism"), compresses it on all cores and pushes the
// blob into a ByteSink, while hashing both streams: the result carries the diffID (sha256 of
// the tar), the blob digest and size, and the media type for the manifest.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/layer/id_map.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::layer {

/// What the exported directory is.
enum class TreeKind {
  /// A plain tree: every entry is written as it is.
  plain,
  /// An overlayfs upper dir: 0/0 character devices become `.wh.NAME` whiteouts, directories
  /// marked opaque (trusted.overlay.opaque=y or user.overlay.opaque=y) get a `.wh..wh..opq`
  /// entry, and redirect/metacopy xattrs are refused (Code::unsupported).
  overlay_upper,
};

struct ExportOptions {
  TreeKind kind = TreeKind::plain;
  oci::Compression compression = oci::Compression::gzip;
  /// gzip 1..9 (default 6, zlib's default), zstd 1..19 (default 3); ignored for none. Out of
  /// range is Code::usage.
  std::optional<int> level;
  /// Compression threads; 0 means the CPUs this process may run on. The blob is byte-identical
  /// for every thread count.
  unsigned threads = 0;
  /// SOURCE_DATE_EPOCH: when set, every mtime above it is lowered to it (min(mtime, epoch)).
  std::optional<std::int64_t> source_date_epoch;
  /// Maps host owners back to container owners (host -> container). Empty lists are identity;
  /// an owner outside a non-empty map fails the export (Code::unsupported), naming the file.
  IdMap id_map;
  /// Owners written instead of the files' own (COPY steps); wins over `id_map`.
  OwnerOverride owners;
};

/// What export_layer() produced: everything a manifest and a config need.
struct ExportResult {
  oci::Digest diff_id;    ///< sha256 of the uncompressed tar (config rootfs.diff_ids)
  oci::Digest digest;     ///< sha256 of the bytes written to the sink
  std::uint64_t size = 0; ///< bytes written to the sink
  std::string media_type; ///< OCI layer type: tar, tar+gzip or tar+zstd
  std::uint64_t uncompressed_size = 0;
  std::uint64_t entries = 0; ///< tar entries written, whiteouts included
  /// Entries that a tar cannot hold and were left out (sockets), one line each.
  std::vector<std::string> warnings;
};

/// Exports the tree at `root` (the root itself is not an entry) as a layer into `sink`.
///
/// Symlinks are never followed: every file is opened relative to its directory's descriptor
/// with O_NOFOLLOW. The tree must not change while it is exported; a file that does is an error.
/// On error the sink has received a partial blob, which the caller discards; export_layer()
/// writes nothing else anywhere. The sink is written only from the calling thread; tar
/// production and compression run on internal threads that are joined before it returns.
Result<ExportResult> export_layer(const std::string& root, const ExportOptions& options,
                                  ByteSink& sink);

/// Parses a SOURCE_DATE_EPOCH value (decimal seconds since the epoch, as
/// reproducible-builds.org defines it). An empty value means "not set" (nullopt); anything else
/// that is not a non-negative integer is Code::usage.
Result<std::optional<std::int64_t>> parse_source_date_epoch(std::string_view text);

} // namespace minibuild::layer
