// Garbage collection: mark what names (and caller-supplied extra roots) reach, sweep the rest.
//
// Reachability, by media type (the walk reads documents with oci's parsers):
//   index    → every manifest it lists (and its subject);
//   manifest → its config, its layers (and its subject);
//   config   → the unpacked layers whose diffIDs it lists (rootfs.diff_ids);
//   anything else is a leaf.
// Index entries and subjects that are not stored are normal (a single-platform pull keeps one
// manifest of an index) and not issues; a missing manifest, config or layer is.
// An unpacked layer is also kept when the blob it was unpacked from is reachable, or its
// diffID is in PruneOptions::extra_layer_roots.
// Build cache entries (build_cache.hpp) are roots too: each readable entry's layer blob and
// diffID are kept, so `minibuild prune` leaves the cache usable. PruneOptions::cache prunes
// entries first, under the same exclusive lock (`prune -a`, `cache prune`).
//
// Clean never deletes a reachable blob: prune holds the store lock exclusively, which waits
// for (or, with Wait::no, refuses because of) every build and pull holding it shared — they may
// have written blobs that no name reaches yet. If a reachable manifest or index is present but
// unreadable (corrupt), prune refuses to sweep, since it cannot know what that document keeps
// alive; a name whose manifest is missing, or an unreadable config (whose only effect is on
// unpacked layers, which can be unpacked again from their kept blobs), only gives a warning.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/blob_store.hpp>
#include <minibuild/store/build_cache.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace minibuild::store {

class Store;

/// A document the walk could not follow.
struct WalkIssue {
  enum class Kind {
    missing,           ///< referenced but not stored
    unreadable,        ///< a manifest or index that is stored but corrupt or unparseable
    unreadable_config, ///< a config that is stored but unreadable: only diffIDs are unknown
  };
  Kind kind = Kind::missing;
  oci::Digest digest;   ///< the document
  std::string referrer; ///< who points at it: "name alpine:3.19", "manifest sha256:…"
  std::string detail;   ///< the error text, for unreadable
};

/// What a set of roots keeps alive.
struct Reachability {
  std::set<oci::Digest> blobs;    ///< every reachable blob digest (stored or not)
  std::set<oci::Digest> diff_ids; ///< diffIDs listed by reachable configs
  std::vector<WalkIssue> issues;
};

/// A root of the walk: a descriptor with digest and media type (empty: sniffed from the
/// content), and a label used in issues ("name app:1", "cache").
struct WalkRoot {
  oci::Digest digest;
  std::string media_type;
  std::string label;
};

/// Walks from `roots` through stored documents. Never fails because of content: missing and
/// unreadable documents become issues. Fails only on I/O errors.
Result<Reachability> find_reachable(BlobStore& blobs, const std::vector<WalkRoot>& roots);

/// Whether prune removes the `RUN --mount=type=cache` directories (cache/mounts/).
enum class CacheMounts { keep, remove };

struct PruneOptions {
  /// Extra blob roots beyond the names: the hook for the cache index ("prune" keeps cached
  /// build results by passing them here; "prune --all" passes nothing). Media type may be empty.
  std::vector<oci::Descriptor> extra_roots;
  /// Unpacked layers to keep whatever references them (e.g. a cache of build snapshots).
  std::vector<oci::Digest> extra_layer_roots;
  /// Wait for builds and pulls to finish (yes), or fail at once when one is running (no).
  Wait wait = Wait::yes;
  /// Applied to the build cache before marking (BuildCache::prune): nullopt keeps every entry
  /// (plain `prune`); CachePrunePolicy{.all = true} removes them all (`prune -a`). The entries
  /// left are roots.
  std::optional<CachePrunePolicy> cache;
  /// Whether to remove the cache-mount directories too (`prune -a`, `cache prune -a`).
  CacheMounts cache_mounts = CacheMounts::keep;
  /// "Now" for the cache policy, in seconds since the epoch; 0 means the system clock.
  std::int64_t now = 0;
};

struct PruneReport {
  std::vector<BlobInfo> removed_blobs;           ///< sorted by digest
  std::vector<oci::Digest> removed_layers;       ///< diffIDs, sorted
  std::uint64_t freed_bytes = 0;                 ///< blob sizes plus unpacked tree sizes
  std::size_t temp_entries_removed = 0;          ///< stale temporary files/dirs removed
  std::vector<std::string> warnings;             ///< e.g. names whose manifest is missing
  std::vector<CacheEntry> removed_cache_entries; ///< by PruneOptions::cache, oldest first
  std::size_t broken_cache_entries_removed = 0;  ///< unreadable entry files removed
  std::size_t cache_mounts_removed = 0;          ///< cache-mount directories removed
};

/// Takes the store lock exclusively (per options.wait), cleans stale temporary files, applies
/// options.cache and options.cache_mounts, marks from every name, every remaining cache entry
/// and the extra roots, and removes every unmarked blob and unpacked layer. freed_bytes counts
/// removed cache-mount files too (best effort).
/// The caller must not hold a store lock itself.
Result<PruneReport> prune(Store& store, const PruneOptions& options = {});

} // namespace minibuild::store
