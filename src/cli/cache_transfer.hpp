// Sharing the build cache (`build --cache-to` / `--cache-from`; docs/cache.md, "Sharing the
// cache"): the cache entries a build used or made, written as an OCI artifact into a registry
// or an OCI layout directory, and read back by another store so that its build reuses them.
//
// The artifact is an OCI image manifest with artifactType k_cache_artifact_type whose config
// (media type k_cache_config_media_type) lists the entries, and whose layers are the distinct
// layer blobs those entries name, so that a registry keeps them alive:
//
//   {"version":1,"entries":[{"key":"sha256:…","kind":"run","layer":{descriptor}|null,
//    "diffID":"sha256:…"|"","created":"…","createdBy":"RUN make","lastUsed":1700000000}, …]}
//
// Entries are sorted by key and unique; the bytes are canonical (keys sorted, no whitespace),
// so the same entries (with the same times) always give the same config and manifest digests.
// "lastUsed" is the export time (every exported entry was used by the exporting build); `cache
// gc` drops entries by it. Artifacts written before it existed lack it: such entries are
// "undated" (last_used 0) and gc keeps them.
//
// With `cache-mounts=true` the manifest also lists, after the entry layers, one layer per
// `RUN --mount=type=cache` directory: a plain tar of the directory's contents, whose
// annotations (k_mount_*_annotation) name the directory and give its root's mode and owner
// and the export time. The config does not mention them.
//
// Import reads the manifest and the config only; a layer blob is downloaded (or copied from the
// directory) when the executor uses an entry, through the store's verifying writer. Cache-mount
// layers are the exception: they are extracted at import (before the build), into the mounts
// that are absent or empty locally.
#pragma once

#include "registry_access.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/store/build_cache.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {
class Store;
}

namespace minibuild::cli {

inline constexpr std::string_view k_cache_artifact_type = "application/vnd.minibuild.cache.v1";
inline constexpr std::string_view k_cache_config_media_type =
    "application/vnd.minibuild.cache.config.v1+json";
/// The config "version" this minibuild writes; a newer one is refused (Code::unsupported).
/// ("lastUsed" was added without a bump: older readers ignore it, and its absence means
/// "undated".)
inline constexpr int k_cache_config_version = 1;

/// Annotations of a cache-mount layer. `dir` (required) is the directory's name under the
/// store's cache/mounts/: the sha256 hex of the mount id. `id` is the id itself (an artifact
/// may lack it: imports then name the mount by `dir`). `mode` (octal), `uid` and `gid` are those of
/// the directory itself (the layer holds only what is below it); `last-used` is the export time in
/// seconds since the epoch.
inline constexpr std::string_view k_mount_dir_annotation = "org.minibuild.cache.mount.dir";
inline constexpr std::string_view k_mount_id_annotation = "org.minibuild.cache.mount.id";
inline constexpr std::string_view k_mount_mode_annotation = "org.minibuild.cache.mount.mode";
inline constexpr std::string_view k_mount_uid_annotation = "org.minibuild.cache.mount.uid";
inline constexpr std::string_view k_mount_gid_annotation = "org.minibuild.cache.mount.gid";
inline constexpr std::string_view k_mount_last_used_annotation =
    "org.minibuild.cache.mount.last-used";

/// Which entries --cache-to exports.
enum class CacheMode {
  min, ///< those of the target stage (the default, as in BuildKit)
  max, ///< those of every stage
};

/// Where a shared cache lives.
enum class CacheType {
  registry, ///< ref=REGISTRY/REPOSITORY[:TAG|@DIGEST]
  local,    ///< an OCI layout directory (dest= for --cache-to, src= for --cache-from)
};

/// Which option a spec came from: the keys allowed differ. `gc` (the target of `cache gc`)
/// takes the keys of `from`.
enum class CacheDirection { to, from, gc };

/// One --cache-to or --cache-from value.
struct CacheSpec {
  CacheType type = CacheType::registry;
  std::string ref; ///< type=registry: the reference as given
  std::string dir; ///< type=local: the layout directory
  std::string tag; ///< type=local: the index.json ref name ("latest" unless tag= is given)
  CacheMode mode = CacheMode::min;
  /// --cache-to ...,cache-mounts=true: also export the RUN --mount=type=cache directories.
  bool cache_mounts = false;

  /// How messages name it: the ref, or the directory.
  std::string display() const { return type == CacheType::registry ? ref : dir; }
  bool operator==(const CacheSpec&) const = default;
};

/// Parses `type=registry,ref=REF[,mode=min|max][,cache-mounts=true|false]` or
/// `type=local,dest=DIR[,tag=T][,mode=…][,cache-mounts=…]` (--cache-to), `type=registry,ref=REF`
/// or `type=local,src=DIR[,tag=T]` (--cache-from, cache gc). Fields are comma-separated
/// key=value pairs in any order. Errors are Code::usage quoting the value: a field without '=',
/// an unknown or repeated key, a missing type/ref/dest/src, mode= or cache-mounts= on
/// --cache-from, a mode other than min|max, a cache-mounts other than true|false.
Result<CacheSpec> parse_cache_spec(std::string_view value, CacheDirection direction);

/// The target of `cache gc`: a plain registry reference (`REG/REPO[:TAG]`; it holds no '='), or
/// a spec as --cache-from takes it. Code::usage as parse_cache_spec, and for an empty value.
Result<CacheSpec> parse_cache_gc_target(std::string_view value);

/// The entries --cache-to exports from a build's used entries: with CacheMode::min only those
/// flagged target_stage, with max all; one per key (the first seen), sorted by key.
std::vector<store::CacheEntry>
select_cache_entries(const std::vector<build::BuildResult::UsedEntry>& used, CacheMode mode);

/// The config blob's canonical bytes for `entries` (which are sorted by key and deduplicated
/// first). last_used is written as "lastUsed" when it is not 0; size is not written (it is the
/// layer's).
std::string serialize_cache_config(std::vector<store::CacheEntry> entries);

/// Reads a config blob. Entries come back sorted by key, one per key, with size = the layer's
/// size and last_used = "lastUsed" (0 when absent: undated). Malformed JSON, a missing or
/// mistyped field, a bad digest, a layer without a diffID, a negative lastUsed or a duplicate
/// key fail with Code::corrupt naming `origin` and the entry; a newer version is
/// Code::unsupported.
Result<std::vector<store::CacheEntry>> parse_cache_config(std::string_view text,
                                                          std::string_view origin);

/// One RUN --mount=type=cache directory in an artifact (see k_mount_dir_annotation).
struct CacheMountLayer {
  std::string dir;            ///< its name under cache/mounts/ (64 hex digits)
  std::string id;             ///< the mount id; empty when the export did not know it
  std::uint32_t mode = 0755;  ///< permission bits of the directory itself
  std::uint32_t uid = 0;      ///< owner of the directory itself
  std::uint32_t gid = 0;      ///< group of the directory itself
  std::int64_t last_used = 0; ///< export time, seconds since the epoch; 0: undated
  oci::Descriptor layer;      ///< the tar blob (media type, digest, size; no annotations)

  /// How messages name it: the id, or the start of the directory name.
  std::string display() const { return id.empty() ? "dir " + dir.substr(0, 12) : id; }
  bool operator==(const CacheMountLayer&) const = default;
};

/// The manifest layer of `mount`: mount.layer with the k_mount_* annotations.
oci::Descriptor mount_layer_descriptor(const CacheMountLayer& mount);

/// Reads a manifest layer: nullopt when it has no k_mount_dir_annotation (an entry's layer).
/// Code::corrupt naming the annotation: a dir that is not 64 lowercase hex digits, an id whose
/// sha256 is not the dir, a mode that is not octal up to 07777, a uid, gid or last-used that is
/// not a decimal number.
Result<std::optional<CacheMountLayer>> parse_mount_layer(const oci::Descriptor& layer);

/// The artifact for a set of entries and cache mounts: its config and manifest bytes and
/// descriptors.
struct CacheArtifact {
  std::string config;
  oci::Descriptor config_descriptor;
  std::string manifest;
  oci::Descriptor manifest_descriptor;
  std::size_t entries = 0;
  std::size_t layers = 0; ///< distinct layer blobs the entries name
  std::size_t mounts = 0; ///< cache-mount layers
};

/// Builds the artifact for `entries` and `mounts` (see the top of this file): the entries'
/// distinct layers sorted by digest, then the mounts' layers sorted by dir (one per dir, the
/// first given). Without mounts the manifest is what it was before cache mounts existed. Pure.
CacheArtifact make_cache_artifact(std::vector<store::CacheEntry> entries,
                                  std::vector<CacheMountLayer> mounts = {});

/// What `cache gc` keeps and drops of an artifact.
struct CacheGcSelection {
  std::vector<store::CacheEntry> kept;      ///< sorted by key
  std::vector<store::CacheEntry> removed;   ///< sorted by key
  std::vector<CacheMountLayer> kept_mounts; ///< in the given order
  std::vector<CacheMountLayer> removed_mounts;
  /// Blobs the manifest no longer lists (no kept entry or mount names them), by digest.
  std::vector<oci::Descriptor> removed_layers;
  std::uint64_t removed_bytes = 0; ///< sum of removed_layers' sizes
  std::size_t undated = 0;         ///< kept entries and mounts without a time
};

/// Splits an artifact's entries and mounts at time `now`: what was last used more than
/// `keep_duration` seconds before is removed (the rule of `cache prune --keep-duration`), the
/// rest and everything undated (last_used 0) is kept. Pure.
CacheGcSelection select_cache_gc(std::vector<store::CacheEntry> entries,
                                 std::vector<CacheMountLayer> mounts, std::int64_t keep_duration,
                                 std::int64_t now);

/// Gives the registry plumbing; created on first use by the caller (command_build.cpp).
using RegistryAccessor = std::function<Result<RegistryAccess*>()>;

/// Writes the artifact of result.cache_entries (filtered by spec.mode), with spec.cache_mounts
/// the non-empty cache mounts among result.cache_mounts, into the store, then pushes it to
/// spec.ref or writes it into spec.dir as an OCI layout (atomic per file; other entries of an
/// existing layout are kept). Entries are dated with the current time. Prints "exported N cache
/// entries (M layers) to REF" on `log` ("… (M layers) and K cache mounts (SIZE) to REF" with
/// spec.cache_mounts). The caller holds the store lock shared.
Result<void> export_cache(const CacheSpec& spec, const build::BuildResult& result,
                          store::Store& store, const RegistryAccessor& registries, std::FILE* log);

/// The name under the store's cache/mounts/ of the mount with id `id` (what RUN steps use):
/// the sha256 hex of the id.
std::string cache_mount_dir(std::string_view id);

/// Exports the cache mount stored as cache/mounts/`dir` as a plain gzip tar blob into the
/// store (sockets are left out, as in layers), holding the directory's lock shared while it
/// reads (so a running sharing=locked step is waited for). `id` (empty when unknown) is recorded
/// as it is: the caller passes cache_mount_dir(id) as `dir`. nullopt when the directory is
/// missing or empty (nothing to share).
Result<std::optional<CacheMountLayer>> export_cache_mount(store::Store& store,
                                                          const std::string& dir,
                                                          const std::string& id, std::int64_t now);

/// Opens a verified reader of a cache-mount layer blob (from a registry via the store, or from
/// a layout); read to its end, it checks size and digest.
using MountBlobOpener = std::function<Result<std::unique_ptr<oci::ByteSource>>()>;

/// What import_cache_mount did.
enum class MountImport {
  filled,  ///< the directory was absent or empty and now holds the layer's files
  present, ///< it exists and is not empty: left alone
  busy,    ///< a running step holds its lock: left alone
};

/// Fills cache/mounts/<mount.dir> from the layer `open` reads when that directory is absent or
/// empty; a non-empty one is left alone. Under the directory's lock (exclusive, not waiting: a
/// step of another build holding it is using the directory, which is then left alone), the
/// layer is extracted into a temporary
/// directory next to it (cache/mounts/.import-<dir>-<pid>), the root gets mount.mode, uid and
/// gid, the filesystem is synced and the tree renamed over the empty directory: a crash leaves
/// the old empty directory (and a temporary one that `cache prune -a` removes). A reader that
/// fails verification fails the import (Code::corrupt) and leaves the directory as it was. The
/// caller holds the store lock shared.
Result<MountImport> import_cache_mount(store::Store& store, const CacheMountLayer& mount,
                                       const MountBlobOpener& open);

/// What the --cache-from sources gave: the entries for ExecutorOptions::imported_cache and the
/// fetch_blob that brings one of their layers into the store (from the source that listed it).
struct ImportedCache {
  std::vector<store::CacheEntry> entries;
  std::function<Result<void>(const oci::Descriptor& blob)> fetch_blob;
};

/// Reads every source in order (an entry's first source wins). A source that does not exist
/// (registry 404 / MANIFEST_UNKNOWN, a directory without index.json or without the tag) is a
/// warning on `log` ("no cache at REF"), not an error. A manifest that is not a minibuild
/// cache or a config that does not parse is Code::corrupt naming the source. The cache mounts
/// a source carries are imported at once (import_cache_mount; one line each on `log`). The
/// returned fetch_blob keeps references to `store` and to the registry clients: it is valid
/// while they are.
Result<ImportedCache> import_caches(const std::vector<CacheSpec>& specs, store::Store& store,
                                    const RegistryAccessor& registries, std::FILE* log);

/// What `cache gc` did to one artifact.
struct CacheGcReport {
  std::string target;         ///< spec.display()
  CacheGcSelection selection; ///< what was kept and removed
  bool rewritten = false;     ///< a new manifest replaced the old (false: nothing to remove)
  oci::Digest old_manifest;
  oci::Digest new_manifest; ///< == old_manifest when not rewritten
  /// type=local only: blobs deleted from the layout (no index entry reaches them any more) and
  /// their size. A registry frees blobs at its own garbage collection.
  std::size_t blobs_deleted = 0;
  std::uint64_t bytes_deleted = 0;
};

/// `cache gc`: reads the artifact at `spec` (a registry tag, or a layout's tag), drops what
/// select_cache_gc(…, keep_duration, now) removes and, when anything goes, writes the new config
/// and manifest into the store and pushes the manifest under the same tag (the registry already
/// has the layers); for a layout, writes the two blobs into it, points the tag's index.json
/// entry at the new manifest (atomically), then deletes the blobs of the old artifact that no
/// index entry reaches any more. Nothing is written when nothing goes. A missing artifact is
/// Code::not_found; a reference pinned by digest is Code::usage (there is no tag to move). The
/// caller holds the store lock shared.
Result<CacheGcReport> gc_cache(const CacheSpec& spec, std::int64_t keep_duration, std::int64_t now,
                               store::Store& store, const RegistryAccessor& registries);

} // namespace minibuild::cli
