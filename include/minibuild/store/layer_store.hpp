// Unpacked layers, keyed by diffID (the digest of the uncompressed layer tar), ready to be
// overlay lower directories.
//
//   layers/sha256/<diffid hex>/diff/        the layer's files (the overlay lower dir)
//   layers/sha256/<diffid hex>/layer.json   metadata (LayerInfo), written before the rename
//
// The tree and its metadata sit side by side in one directory so that a single rename makes
// both visible at once: a layer is complete (tree extracted, synced, metadata written) or it is
// absent. Nothing outside the store may write below diff/ (overlay mounts use it read-only as
// a lower dir); fsck notices changes through the recorded content listing.
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
  /// without readable metadata gives Code::corrupt (fsck --repair removes it).
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
  /// is not `diff_id` is refused (Code::corrupt) and leaves nothing behind.
  Result<LayerInfo> unpack_blob(const oci::Digest& diff_id, BlobStore& blobs,
                                const oci::Descriptor& blob,
                                const layer::ApplyOptions& options = {});

  /// Removes an unpacked layer; a missing one is success. The directory is first renamed into
  /// the temporary area (atomic), then deleted, so no half-deleted layer is ever visible.
  Result<void> remove(const oci::Digest& diff_id);

  /// The diffIDs of all unpacked layers, sorted. Directory names that are not digests are
  /// skipped (fsck reports them).
  Result<std::vector<oci::Digest>> list();

  /// Relative path of the layer directory ("layers/sha256/<hex>").
  static std::string path_of(const oci::Digest& diff_id);

private:
  StoreFs& m_fs;
  TempArea& m_temp;
};

} // namespace minibuild::store
