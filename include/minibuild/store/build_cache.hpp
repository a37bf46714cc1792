// The local build cache: cache key → the result of one build step (docs/cache.md, "Storage").
//
// A key is an oci::Digest (sha256) computed by build/cache_key.hpp; this file only stores what
// the executor hands it. Each entry is one small JSON file:
//
//   <root>/cache/entries/sha256/<hex of key>.json
//   {"version":1,"key":"sha256:…","kind":"run","layer":{descriptor}|null,"diffID":"sha256:…",
//    "created":"2024-01-02T03:04:05Z","createdBy":"RUN make","lastUsed":1700000000,"size":1234}
//
// Entries are written like names.json (docs/store.md, "write steps"): a temporary file in this
// process's temporary area, fsync, rename over the entry, fsync of the entries directory. A
// reader therefore sees the old entry, the new one, or none; never half of one.
//
// The layer blob an entry names is kept alive by the store's GC (gc.hpp: every readable entry's
// layer blob and diffID are roots), so a cache hit never finds its layer collected by a plain
// `minibuild prune`. An entry whose blob is missing anyway (a hand-deleted file) is reported by
// fsck, which removes it with --repair; the executor treats it as a miss.
//
// Locking follows docs/store.md: put() and touch() are called by builds holding the store lock
// shared; prune() is called with the store lock held exclusively (gc.hpp's prune() does that).
// Like NameStore, a BuildCache belongs to one thread.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {

class TempArea;

/// The stored result of one build step.
struct CacheEntry {
  oci::Digest key;  ///< the cache key (sha256); names the file
  std::string kind; ///< the instruction kind: "run", "copy", "workdir", "from", …
  std::optional<oci::Descriptor> layer; ///< the layer blob it made; nullopt: the step made none
  oci::Digest diff_id;                  ///< the layer's diffID (empty without a layer)
  std::string created;    ///< RFC 3339 time of the history entry, reused on a hit (same digests)
  std::string created_by; ///< the history entry's created_by
  std::int64_t last_used = 0; ///< seconds since the epoch of the last put or touch
  std::uint64_t size = 0;     ///< compressed layer size (layer->size), 0 without a layer

  bool operator==(const CacheEntry&) const = default;
};

/// A file under cache/entries/ that is not a readable entry.
struct BrokenCacheEntry {
  std::string path;   ///< relative to the store root ("cache/entries/sha256/ab….json")
  oci::Digest key;    ///< the key its name gives, empty when the name is not a key
  std::string detail; ///< why it is broken
};

/// Everything under cache/entries/: the readable entries (sorted by key) and the rest.
struct CacheScan {
  std::vector<CacheEntry> entries;
  std::vector<BrokenCacheEntry> broken;
};

/// What BuildCache::prune keeps.
struct CachePrunePolicy {
  /// Remove every entry (`-a`); the other fields are then ignored.
  bool all = false;
  /// Remove entries not used for longer than this many seconds (--keep-duration).
  std::optional<std::int64_t> keep_duration;
  /// Then remove the least recently used entries until their layers total at most this many
  /// bytes (--keep-storage). A layer shared by several entries counts once.
  std::optional<std::uint64_t> keep_storage;
};

/// What BuildCache::prune removed.
struct CachePruneResult {
  std::vector<CacheEntry> removed; ///< in the order removed (oldest first)
  std::size_t broken_removed = 0;  ///< unreadable entry files removed
};

/// The cache part of a store (Store::cache()). Not thread-safe (one thread, like NameStore).
class BuildCache {
public:
  BuildCache(StoreFs& fs, TempArea& temp) : m_fs(fs), m_temp(temp) {}

  /// The entry for `key`, or nullopt. A file that does not parse, names another key or lacks a
  /// field is Code::corrupt naming the file (callers building an image treat that as a miss;
  /// put() replaces it); a newer "version" is Code::unsupported.
  Result<std::optional<CacheEntry>> get(const oci::Digest& key);

  /// Stores `entry` under entry.key, replacing what was there (last writer wins). Atomic: after
  /// a failure or a kill at any step, the old entry (or none) is in place. Idempotent. Fails
  /// with Code::usage for an empty or non-sha256 key, or a layer without a diffID.
  Result<void> put(const CacheEntry& entry);

  /// Records a use: sets last_used to `now`, rewriting the entry atomically as put() does. To
  /// keep cached rebuilds cheap, an entry used less than k_touch_resolution seconds before is
  /// not rewritten. Returns false (and writes nothing) when there is no entry; a broken entry is
  /// Code::corrupt, as in get().
  Result<bool> touch(const oci::Digest& key, std::int64_t now);

  /// All readable entries, sorted by key. Fails (Code::corrupt) on the first broken file; use
  /// scan() to see both.
  Result<std::vector<CacheEntry>> list();

  /// Every file under cache/entries/, split into readable entries and broken ones. Fails only
  /// on I/O errors. Used by GC, fsck and prune, which must go on past a broken file.
  Result<CacheScan> scan();

  /// Removes the entry for `key` (one unlink); returns whether it existed. Idempotent. The layer
  /// stays until the store's GC.
  Result<bool> remove(const oci::Digest& key);

  /// Applies `policy` at time `now` (seconds since the epoch): with `all`, removes every entry;
  /// else removes the entries unused for longer than keep_duration, then the least recently
  /// used ones (ties: by key) until the remaining layers total at most keep_storage. Broken
  /// entry files are always removed. Layers are left to the GC. The caller holds the store lock
  /// exclusively (gc.hpp's prune does).
  Result<CachePruneResult> prune(const CachePrunePolicy& policy, std::int64_t now);

  /// Removes every `RUN --mount=type=cache` directory (cache/mounts/*, docs/run.md); each is
  /// first renamed into the temporary area, so it is whole or gone. Returns how many were
  /// removed and, best effort, their total file size. The caller holds the store lock
  /// exclusively, so no step is using them.
  struct MountsRemoved {
    std::size_t count = 0;
    std::uint64_t bytes = 0;
  };
  Result<MountsRemoved> remove_mounts();

  /// The entries directory and the cache-mount directory, relative to the root.
  static constexpr std::string_view k_entries_dir = "cache/entries/sha256";
  static constexpr std::string_view k_mounts_dir = "cache/mounts";
  /// The entry-file version this minibuild writes and reads.
  static constexpr int k_version = 1;
  /// touch() granularity, in seconds.
  static constexpr std::int64_t k_touch_resolution = 60;

  /// The relative path of the entry for `key`.
  static std::string path_of(const oci::Digest& key);

private:
  Result<void> write_entry(const CacheEntry& entry);

  StoreFs& m_fs;
  TempArea& m_temp;
};

} // namespace minibuild::store
