// Sharing the build cache (`build --cache-to` / `--cache-from`; docs/cache.md, "Sharing the
// cache"): the cache entries a build used or made, written as an OCI artifact into a registry
// or an OCI layout directory, and read back by another store so that its build reuses them.
//
// The artifact is an OCI image manifest with artifactType k_cache_artifact_type whose config
// (media type k_cache_config_media_type) lists the entries, and whose layers are the distinct
// layer blobs those entries name, so that a registry keeps them alive:
//
//   {"version":1,"entries":[{"key":"sha256:…","kind":"run","layer":{descriptor}|null,
//    "diffID":"sha256:…"|"","created":"…","createdBy":"RUN make"}, …]}
//
// Entries are sorted by key and unique; the bytes are canonical (keys sorted, no whitespace),
// so the same entries always give the same config and manifest digests.
//
// Import reads the manifest and the config only; a layer blob is downloaded (or copied from the
// directory) when the executor uses an entry, through the store's verifying writer.
#pragma once

#include "registry_access.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/store/build_cache.hpp>

#include <cstdio>
#include <functional>
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
inline constexpr int k_cache_config_version = 1;

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

/// Which option a spec came from: the keys allowed differ.
enum class CacheDirection { to, from };

/// One --cache-to or --cache-from value.
struct CacheSpec {
  CacheType type = CacheType::registry;
  std::string ref; ///< type=registry: the reference as given
  std::string dir; ///< type=local: the layout directory
  std::string tag; ///< type=local: the index.json ref name ("latest" unless tag= is given)
  CacheMode mode = CacheMode::min;

  /// How messages name it: the ref, or the directory.
  std::string display() const { return type == CacheType::registry ? ref : dir; }
  bool operator==(const CacheSpec&) const = default;
};

/// Parses `type=registry,ref=REF[,mode=min|max]` or `type=local,dest=DIR[,tag=T][,mode=…]`
/// (--cache-to), `type=registry,ref=REF` or `type=local,src=DIR[,tag=T]` (--cache-from).
/// Fields are comma-separated key=value pairs in any order. Errors are Code::usage quoting the
/// value: a field without '=', an unknown or repeated key, a missing type/ref/dest/src, mode=
/// on --cache-from, a mode other than min|max.
Result<CacheSpec> parse_cache_spec(std::string_view value, CacheDirection direction);

/// The entries --cache-to exports from a build's used entries: with CacheMode::min only those
/// flagged target_stage, with max all; one per key (the first seen), sorted by key.
std::vector<store::CacheEntry>
select_cache_entries(const std::vector<build::BuildResult::UsedEntry>& used, CacheMode mode);

/// The config blob's canonical bytes for `entries` (which are sorted by key and deduplicated
/// first; last_used and size are not written: they are local bookkeeping).
std::string serialize_cache_config(std::vector<store::CacheEntry> entries);

/// Reads a config blob. Entries come back sorted by key, one per key, with size = the layer's
/// size and last_used 0. Malformed JSON, a missing or mistyped field, a bad digest, a layer
/// without a diffID or a duplicate key fail with Code::corrupt naming `origin` and the entry;
/// a newer version is Code::unsupported.
Result<std::vector<store::CacheEntry>> parse_cache_config(std::string_view text,
                                                          std::string_view origin);

/// The artifact for a set of entries: its config and manifest bytes and descriptors.
struct CacheArtifact {
  std::string config;
  oci::Descriptor config_descriptor;
  std::string manifest;
  oci::Descriptor manifest_descriptor;
  std::size_t entries = 0;
  std::size_t layers = 0; ///< distinct layer blobs in the manifest
};

/// Builds the artifact for `entries` (see the top of this file). Pure.
CacheArtifact make_cache_artifact(std::vector<store::CacheEntry> entries);

/// Gives the registry plumbing; created on first use by the caller (command_build.cpp).
using RegistryAccessor = std::function<Result<RegistryAccess*>()>;

/// Writes the artifact of `used` (filtered by spec.mode) into the store, then pushes it to
/// spec.ref or writes it into spec.dir as an OCI layout (atomic per file; other entries of an
/// existing layout are kept). Prints "exported N cache entries (M layers) to REF" on `log`.
/// The caller holds the store lock shared.
Result<void> export_cache(const CacheSpec& spec,
                          const std::vector<build::BuildResult::UsedEntry>& used,
                          store::Store& store, const RegistryAccessor& registries, std::FILE* log);

/// What the --cache-from sources gave: the entries for ExecutorOptions::imported_cache and the
/// fetch_blob that brings one of their layers into the store (from the source that listed it).
struct ImportedCache {
  std::vector<store::CacheEntry> entries;
  std::function<Result<void>(const oci::Descriptor& blob)> fetch_blob;
};

/// Reads every source in order (an entry's first source wins). A source that does not exist
/// (registry 404 / MANIFEST_UNKNOWN, a directory without index.json or without the tag) is a
/// warning on `log` ("no cache at REF"), not an error. A manifest that is not a minibuild
/// cache or a config that does not parse is Code::corrupt naming the source. The returned
/// fetch_blob keeps references to `store` and to the registry clients: it is valid while they
/// are.
Result<ImportedCache> import_caches(const std::vector<CacheSpec>& specs, store::Store& store,
                                    const RegistryAccessor& registries, std::FILE* log);

} // namespace minibuild::cli
