// Unpacked layers, keyed by diffID (the digest of the uncompressed layer tar), ready to be
// overlay lower directories: whiteouts are 0/0 character devices and opaque directories carry
// user.overlay.opaque = "y" (layer::WhiteoutStyle::overlay), the form overlayfs reads when
// mounted with `userxattr`.
//
//   layers/sha256/<diffid hex>/diff/        the layer's files (the overlay lower dir)
//   layers/sha256/<diffid hex>/layer.json   metadata (LayerInfo), written before the rename
//
// The tree and its metadata sit side by side in one directory so that a single rename makes
// both visible at once: a layer is complete (tree extracted, synced, metadata written) or it is
// absent. Nothing outside the store may write below diff/ (overlay mounts use it read-only as
// a lower dir); fsck notices changes through the recorded content listing.
//
// layer.json carries a version (k_layer_metadata_version). A layer written by an older version
// is in an outdated format (version 1: whiteouts carried out, not recorded, so the tree cannot
// be a lower dir): stat() removes it and reports it absent, so the next unpack re-creates it.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace minibuild::store {

class TempArea;
class BlobStore;

/// The layer.json version this minibuild writes. 2: trees in the overlay form (see above).
/// Layers of an older version are outdated and re-created (stat()).
inline constexpr int k_layer_metadata_version = 2;

/// What layer.json records about an unpacked layer.
struct LayerInfo {
  oci::Digest diff_id;        ///< the key: digest of the uncompressed tar
  oci::Digest source_blob;    ///< the blob it was unpacked from; empty when it came from a build
  std::uint64_t size = 0;     ///< sum of regular file sizes in the tree
  std::int64_t created = 0;   ///< when it was unpacked, seconds since the epoch (UTC)
  oci::Digest content_digest; ///< list_content() of the tree right after unpacking

  bool operator==(const LayerInfo&) const = default;
};

/// Fills the (empty, existing) directory given as an absolute path with a layer's files, e.g.
/// by calling layer::apply_layer on a verified blob reader. It must check that what it
/// extracted really has the diffID it was asked for (the store trusts the key it is given).
using LayerExtractor = std::function<Result<void>(const std::string& target_dir)>;

/// The unpacked-layer part of a store (Store::layers()). Callers hold the store lock shared
/// while they unpack or use layers; prune (exclusive) removes unreferenced ones.
class LayerStore {
public:
  LayerStore(StoreFs& fs, TempArea& temp) : m_fs(fs), m_temp(temp) {}

  /// Absolute path of the layer's tree (its overlay lower dir), whether or not it exists yet.
  std::string lower_dir(const oci::Digest& diff_id) const;

  /// The metadata of an unpacked layer; nullopt when it is not unpacked. A layer directory
  /// without readable metadata gives Code::corrupt (fsck --repair removes it); one whose
  /// metadata is older than k_layer_metadata_version is removed (atomically, as remove() does)
  /// and reported as nullopt; one that is newer gives Code::unsupported.
  Result<std::optional<LayerInfo>> stat(const oci::Digest& diff_id);

  /// Unpacks a layer, unless it is already there (then returns the existing metadata without
  /// calling `extract`). The tree is built in the temporary area, fingerprinted, flushed with
  /// syncfs, and renamed into place, so it is complete or absent after a crash at any point.
  /// When another process unpacks the same layer at the same time, one rename wins and both
  /// calls succeed with the winner's metadata. An extractor error removes the partial tree and
  /// is returned with context.
  Result<LayerInfo> unpack(const oci::Digest& diff_id, const oci::Digest& source_blob,
                           const LayerExtractor& extract);

  /// unpack() with layer::apply_layer as the extractor: the stored blob `blob` is read through
  /// the verifying reader (its size taken from the descriptor) and applied; a tar whose sha256
  /// is not `diff_id` is refused (Code::corrupt) and leaves nothing behind. `options.whiteouts`
  /// is ignored: stored layers are always applied in WhiteoutStyle::overlay.
  Result<LayerInfo> unpack_blob(const oci::Digest& diff_id, BlobStore& blobs,
                                const oci::Descriptor& blob,
                                const layer::ApplyOptions& options = {});

  /// Makes the directory tree `tree_dir` (an absolute path below the store's temporary area,
  /// e.g. made by new_work_dir(): an overlay upper dir after a RUN step, already exported so
  /// the caller knows its diffID) the unpacked layer `diff_id`, without copying: overlayfs
  /// bookkeeping xattrs other than user.overlay.opaque (user.overlay.origin, .impure,
  /// .redirect ..., and trusted.overlay.* where this process can see them; a
  /// trusted.overlay.opaque becomes user.overlay.opaque) are removed, since a lower dir would
  /// read them as metadata; then the tree is fingerprinted, flushed and renamed into place
  /// exactly as unpack() does (complete or absent after a crash; LayerInfo::source_blob is
  /// empty). If the layer already exists, or another process stores it first, the existing
  /// one is kept and its metadata returned. The tree is consumed: once the path is accepted,
  /// `tree_dir` is gone when adopt() returns, moved into the store or deleted. A path outside
  /// the temporary area gives Code::internal (a caller bug) and is left alone.
  Result<LayerInfo> adopt(const oci::Digest& diff_id, const std::string& tree_dir);

  /// Creates a fresh empty directory (0755) in this process's temporary area and returns its
  /// absolute path: the place for an overlay upper and work dir whose upper dir is later
  /// adopt()ed. The caller removes what it does not adopt; what is left when the Store closes
  /// (or the process dies) is removed with the temporary area. Thread-safe like unpack().
  Result<std::string> new_work_dir(std::string_view prefix);

  /// Removes an unpacked layer; a missing one is success. The directory is first renamed into
  /// the temporary area (atomic), then deleted, so no half-deleted layer is ever visible.
  Result<void> remove(const oci::Digest& diff_id);

  /// The diffIDs of all unpacked layers, sorted. Directory names that are not digests are
  /// skipped (fsck reports them).
  Result<std::vector<oci::Digest>> list();

  /// Relative path of the layer directory ("layers/sha256/<hex>").
  static std::string path_of(const oci::Digest& diff_id);

private:
  // The common tail of unpack() and adopt(): `temp` (relative, in the temporary area) holds the
  // finished tree as diff/; fingerprint, layer.json, syncfs, rename into place. Removes `temp`
  // on every path that does not rename it.
  Result<LayerInfo> commit(const oci::Digest& diff_id, const oci::Digest& source_blob,
                           const std::string& temp, const std::string& context);
  // Reads layer.json below the relative layer directory `dir`; the version comes back too.
  struct StoredInfo {
    int version = 0;
    LayerInfo info;
  };
  Result<std::optional<StoredInfo>> read_info(const std::string& dir, const oci::Digest& diff_id);
  // Moves an outdated layer directory out of the way (see stat()).
  Result<void> retire_outdated(const oci::Digest& diff_id);

  StoreFs& m_fs;
  TempArea& m_temp;
};

} // namespace minibuild::store
