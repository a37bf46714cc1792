// Squash: folding a run of layers into one layer that holds exactly their final visible
// difference from the layers below them (docs/squash.md).
//
// Every layer involved is read from its unpacked tree in the store (overlay form: whiteouts are
// 0/0 character devices, opaque directories carry user.overlay.opaque = "y"), never from its
// blob. The folded trees are merged top first, the way overlayfs looks a path up, so a file
// that a lower folded layer created and a higher one deleted is never copied at all.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {
class Store;
}

namespace minibuild::build {

/// What a path is in a stack of overlay-form layers.
enum class LayerLookup {
  absent,    ///< no layer shows it: never there, under a whiteout, or below an opaque directory
  directory, ///< the topmost layer that shows it has a directory there
  other,     ///< a regular file, symlink, device, fifo or socket
};

/// Looks `path` (relative or absolute; `.` components and empty ones ignored, "" is the root,
/// always a directory) up through `lowers`, unpacked layers in overlay form, TOP FIRST, as
/// overlayfs would: the topmost layer that has the path decides; a whiteout hides it; an opaque
/// directory on the way hides everything below it in lower layers; a non-directory on the way
/// ends the path. Symlinks are never followed, neither in the path nor at its end. An empty
/// stack has only the root. Reads only; errors name the layer and the path.
Result<LayerLookup> lookup_in_layers(const std::vector<std::string>& lowers, std::string_view path);

/// What fold_layer_trees() wrote.
struct FoldStats {
  std::uint64_t entries = 0;     ///< entries created in the target (whiteouts included)
  std::uint64_t whiteouts = 0;   ///< whiteouts kept: base paths that are gone at the end
  std::uint64_t opaque_dirs = 0; ///< directories marked opaque: base directories replaced
  std::uint64_t hardlinks = 0;   ///< entries made as hard links to an earlier copy
  /// Extended attributes the target refused (e.g. trusted.* without CAP_SYS_ADMIN), one line.
  std::vector<std::string> warnings;
};

/// Writes into the empty directory `target`, in overlay form, the difference that the layers
/// `folded` (unpacked trees, TOP FIRST) make on top of `base` (unpacked trees, TOP FIRST; empty
/// for a FROM scratch image or a whole-image squash): every entry visible through `folded`,
/// taken from the topmost folded layer that has it (data, mode, owners, mtime, xattrs;
/// hard-link groups of a layer stay hard links; symlinks are copied, never followed); a
/// whiteout only where a folded layer deleted a path that `base` shows; user.overlay.opaque
/// only on a directory that hides a directory `base` shows (it was removed and made again, or
/// replaced a file of a lower folded layer). An entry below a directory of the result that is
/// already opaque never gets a whiteout or an opaque mark of its own (it would hide nothing).
/// Regular file data is copied (reflink or copy_file_range where the filesystem allows), never
/// hard-linked to the source, so the source trees and their fsck fingerprints stay untouched.
/// Owners that differ from the caller's are set with chown, which needs the privileges the
/// store's unpack had (root, or root of the build's user namespace); a refusal fails. Devices
/// are created with mknod (whiteouts need Linux 5.8+ without CAP_MKNOD). On error `target`
/// holds a partial tree, which the caller removes.
Result<FoldStats> fold_layer_trees(const std::vector<std::string>& folded,
                                   const std::vector<std::string>& base, const std::string& target);

/// What squash_layers() produced.
struct SquashResult {
  oci::Descriptor layer;     ///< the blob, committed to store.blobs(), for the manifest
  oci::Digest diff_id;       ///< for the config's rootfs.diff_ids; also unpacked in the store
  std::uint64_t entries = 0; ///< tar entries: 0 means the layers made no difference at all
                             ///< (the caller may leave the empty layer out, as BuildKit does
                             ///< for a RUN that changes nothing)
  std::uint64_t uncompressed_size = 0;
  FoldStats fold;                    ///< what the merged tree holds
  std::vector<std::string> warnings; ///< from the merge and the export, one line each
};

/// Folds `layers` (with their `diff_ids`, parallel, BOTTOM FIRST; unpacked first when they are
/// not) into one layer on top of `base_lowers` (the unpacked trees of the layers that stay, TOP
/// FIRST: lower_dir() of each, or unpacked_lower_dirs()). The merged tree (fold_layer_trees())
/// is built in the store's temporary area, exported with `options` (its `kind` is forced to
/// TreeKind::overlay_upper; compression, level, SOURCE_DATE_EPOCH and id map are the caller's),
/// the blob committed to store.blobs() and the tree adopted as the unpacked layer of the new
/// diffID, so the next step or an overlay mount can use it at once. Applying the result on the
/// base gives the same files as applying all `layers` on it; a base file that a folded layer
/// rewrote unchanged stays in the result (the comparison is not worth reading both copies).
/// The blob is atomic (absent on error) and the temporary tree is removed on every path. The
/// caller holds the store lock shared, as for a build. `layers` empty is Code::internal.
Result<SquashResult> squash_layers(store::Store& store, const std::vector<std::string>& base_lowers,
                                   const std::vector<oci::Descriptor>& layers,
                                   const std::vector<oci::Digest>& diff_ids,
                                   const layer::ExportOptions& options);

} // namespace minibuild::build
