// Applying a layer blob onto a directory: the OCI "applying changesets" rules (image-spec
// layer.md), hardened against malicious archives. The safety rules are listed in
// docs/layers.md ("Extraction safety"); in short, nothing is ever created, changed or removed
// outside `target`, whatever the archive or the symlinks already in `target` say.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/in_root.hpp>
#include <minibuild/layer/id_map.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace minibuild::layer {

/// What to do with character and block device entries.
enum class DeviceNodes {
  skip,             ///< never create them; count each one in ApplyResult::skipped_devices
  refuse,           ///< the first device entry fails the apply (Code::unsupported)
  create_or_skip,   ///< mknod; when the kernel refuses (no CAP_MKNOD), skip and count
  create_or_refuse, ///< mknod; when the kernel refuses, fail (Code::unsupported, with a hint)
};

/// Whether to give entries the owners the archive names.
enum class Owners {
  auto_detect, ///< chown when running as uid 0 (root, or root of a user namespace); an id the
               ///< namespace cannot hold (EINVAL/EPERM) is skipped and counted
  preserve,    ///< always chown; any failure fails the apply
  ignore,      ///< never chown: files belong to the caller
};

/// What `.wh.` whiteout entries turn into.
enum class WhiteoutStyle {
  /// Remove what they hide from `target` (OCI "applying changesets"): for a root filesystem
  /// that has its lower layers applied below it.
  apply,
  /// Record them the way overlayfs reads a lower dir mounted with `userxattr`: `.wh.NAME`
  /// becomes NAME as a character device 0/0, `.wh..wh..opq` the xattr k_opaque_xattr = "y" on
  /// its directory. For a fresh, empty `target` that becomes one layer of an overlay stack.
  overlay,
};

/// The xattr that marks an opaque directory for overlayfs mounted with `userxattr` (Linux 5.11+,
/// Documentation/filesystems/overlayfs.rst "Permission model" and "whiteouts and opaque
/// directories").
inline constexpr const char* k_opaque_xattr = "user.overlay.opaque";

/// How parent directories are resolved inside the target: openat2(RESOLVE_IN_ROOT) or the
/// component-by-component fallback (see base/in_root.hpp; MINIBUILD_NO_OPENAT2=1 forces it).
using PathResolution = minibuild::Resolution;

/// The xattr in which apply_layer() records an archive owner it could not set ("uid:gid"),
/// when ApplyOptions::record_owners asks for it. Never exported into a layer.
inline constexpr const char* k_owner_xattr = "user.minibuild.owner";

struct ApplyOptions {
  DeviceNodes device_nodes = DeviceNodes::skip;
  Owners owners = Owners::auto_detect;
  /// Record in k_owner_xattr the owner of each directory and regular file whose chown was
  /// skipped (unprivileged apply), so the owners of a materialised root filesystem stay known.
  bool record_owners = false;
  /// Container -> host mapping applied to owners before chown (empty lists are identity). An
  /// owner outside a non-empty map is skipped and counted like a refused chown.
  IdMap id_map;
  PathResolution resolution = PathResolution::auto_detect;
  /// How whiteouts are applied (see WhiteoutStyle and apply_layer()).
  WhiteoutStyle whiteouts = WhiteoutStyle::apply;
};

/// What apply_layer() did.
struct ApplyResult {
  oci::Digest diff_id; ///< sha256 of the uncompressed tar, read to its end
  oci::Compression compression = oci::Compression::none; ///< detected from the magic
  std::uint64_t uncompressed_size = 0;
  std::uint64_t entries = 0;         ///< tar entries read (whiteouts included)
  std::uint64_t whiteouts = 0;       ///< `.wh.NAME` and `.wh..wh..opq` entries applied
                                     ///< (removed or recorded, no-ops included)
  std::uint64_t skipped_xattrs = 0;  ///< xattrs the filesystem or kernel refused, or unsafe ones
  std::uint64_t skipped_owners = 0;  ///< chowns refused or not mappable
  std::uint64_t skipped_devices = 0; ///< device entries not created (DeviceNodes)
  std::uint64_t skipped_other = 0;   ///< aufs metadata (`.wh..wh.plnk` ...) and the like
  /// One line per kind of skip, with the first path it happened to (not one per entry).
  std::vector<std::string> warnings;
  /// True when parent directories were resolved with openat2 (false: the fallback).
  bool used_openat2 = false;
};

/// Applies the layer read from `source` (gzip, zstd or plain tar, detected from the magic,
/// streamed: no temporary file) onto the existing directory `target`.
///
/// - Entries replace what is there (a directory over a directory only updates its attributes);
///   whiteouts never hide what this layer itself added ("can only be hidden by whiteout files
///   in subsequent layers"). WhiteoutStyle::apply: `.wh.NAME` removes NAME of lower layers,
///   `.wh..wh..opq` empties its directory of lower content; overlay xattrs in the archive are
///   ignored and counted in skipped_xattrs.
/// - WhiteoutStyle::overlay: `.wh.NAME` creates NAME as a character device 0/0 (mknod without
///   CAP_MKNOD needs Linux 5.8+; an older kernel's EPERM gives Code::unsupported); when this
///   layer only holds entries below a directory NAME, that directory is marked opaque
///   instead, which hides the same lower content. `.wh..wh..opq` sets k_opaque_xattr on its
///   directory. Missing parents of a whiteout are created 0755, like other parents. A later
///   entry of the layer at (or below) a whiteout device replaces it; a directory that replaces
///   one is opaque (the lower one was removed first). An entry that carries overlayfs xattrs
///   (trusted.overlay.*, user.overlay.*) is refused (Code::corrupt): they would be read as
///   whiteouts or redirects. A character device 0/0 entry, which would read as a whiteout, is
///   skipped and counted in skipped_devices whatever DeviceNodes says.
/// - Paths: a leading `/` is dropped, `.` components are ignored, a `..` component is refused
///   (Code::corrupt naming the entry). Parent directories are resolved inside `target` (a
///   symlink component is followed as if `target` were `/`), missing ones are created 0755.
/// - Hardlink targets must already exist inside `target`, reached without any symlink.
/// - Symlinks are created as they are; their targets are never followed by the extraction.
/// - The source is read to its end, so a VerifiedSource gets to check size and digest; the
///   returned diff_id lets the caller check the config's rootfs.diff_ids.
/// On error, `target` holds the entries applied so far (callers apply into a fresh directory
/// and discard it on failure). Not thread-safe with respect to other writers of `target`.
Result<ApplyResult> apply_layer(oci::ByteSource& source, const std::string& target,
                                const ApplyOptions& options = {});

} // namespace minibuild::layer
