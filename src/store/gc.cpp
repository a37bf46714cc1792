#include "documents.hpp"

#include <minibuild/store/gc.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <ctime>

namespace minibuild::store {

namespace {

struct Pending {
  oci::Digest digest;
  std::string media_type;
  std::string referrer;
  /// Index entries and subjects may be absent: a single-platform pull stores one manifest of
  /// a multi-platform index, and a referrer may arrive without its subject.
  bool may_be_absent = false;
};

} // namespace

Result<Reachability> find_reachable(BlobStore& blobs, const std::vector<WalkRoot>& roots) {
  Reachability reach;
  std::vector<Pending> stack;
  for (const auto& root : roots) {
    stack.push_back(Pending{root.digest, root.media_type, root.label});
  }
  // Content problems become issues; a failing disk is an error of the walk itself.
  const auto unreadable = [&](const Pending& item, const Error& error,
                              WalkIssue::Kind kind = WalkIssue::Kind::unreadable) -> Result<void> {
    if (error.code() == Code::io) {
      return fail(error);
    }
    reach.issues.push_back(WalkIssue{kind, item.digest, item.referrer, error.what()});
    return {};
  };

  while (!stack.empty()) {
    Pending item = std::move(stack.back());
    stack.pop_back();
    if (item.digest.empty() || !reach.blobs.insert(item.digest).second) {
      continue;
    }
    MB_TRY_ASSIGN(auto stored, blobs.stat(item.digest));
    if (!stored) {
      if (item.may_be_absent) {
        continue;
      }
      reach.issues.push_back(WalkIssue{WalkIssue::Kind::missing, item.digest, item.referrer, ""});
      continue;
    }
    DocumentKind kind = kind_of(item.media_type);
    if (item.media_type.empty()) {
      if (stored->size > k_max_document) {
        continue; // too large to be a document: a leaf
      }
      auto text = blobs.read(item.digest, k_max_document);
      if (!text) {
        MB_TRY(unreadable(item, text.error()));
        continue;
      }
      kind = sniff_kind(*text);
    }
    const std::string self = item.digest.to_string();
    switch (kind) {
    case DocumentKind::index: {
      auto index = read_document<oci::ImageIndex>(blobs, item.digest);
      if (!index) {
        MB_TRY(unreadable(item, index.error()));
        break;
      }
      for (const auto& child : index->manifests) {
        stack.push_back(Pending{child.digest, child.media_type, "index " + self, true});
      }
      if (index->subject) {
        stack.push_back(Pending{index->subject->digest, index->subject->media_type,
                                "index " + self + " (subject)", true});
      }
      break;
    }
    case DocumentKind::manifest: {
      auto manifest = read_document<oci::ImageManifest>(blobs, item.digest);
      if (!manifest) {
        MB_TRY(unreadable(item, manifest.error()));
        break;
      }
      std::string config_type = manifest->config.media_type;
      if (kind_of(config_type) != DocumentKind::config) {
        config_type.clear(); // artifacts: treat as an opaque blob below
      }
      stack.push_back(
          Pending{manifest->config.digest,
                  config_type.empty() ? std::string("application/octet-stream") : config_type,
                  "manifest " + self});
      for (const auto& layer : manifest->layers) {
        // Layers are leaves: never read them. A non-empty media type keeps them from being
        // sniffed.
        stack.push_back(Pending{layer.digest,
                                layer.media_type.empty() ? std::string("application/octet-stream")
                                                         : layer.media_type,
                                "manifest " + self});
      }
      if (manifest->subject) {
        stack.push_back(Pending{manifest->subject->digest, manifest->subject->media_type,
                                "manifest " + self + " (subject)", true});
      }
      break;
    }
    case DocumentKind::config: {
      auto config = read_document<oci::ImageConfig>(blobs, item.digest);
      if (!config) {
        MB_TRY(unreadable(item, config.error(), WalkIssue::Kind::unreadable_config));
        break;
      }
      reach.diff_ids.insert(config->rootfs.diff_ids.begin(), config->rootfs.diff_ids.end());
      break;
    }
    case DocumentKind::other:
      break;
    }
  }
  return reach;
}

Result<PruneReport> prune(Store& store, const PruneOptions& options) {
  const std::string context = "prune " + store.root();
  MB_TRY_ASSIGN(StoreLock lock,
                store.lock(LockMode::exclusive, options.wait).map_error([&](Error error) {
                  return std::move(error).wrap(context);
                }));
  PruneReport report;
  MB_TRY_ASSIGN(report.temp_entries_removed, store.clean_temp());

  std::vector<WalkRoot> roots;
  MB_TRY_ASSIGN(auto names, store.names().list());
  for (const auto& name : names) {
    roots.push_back(WalkRoot{name.digest, name.media_type, "name " + name.name});
  }
  for (const auto& extra : options.extra_roots) {
    roots.push_back(WalkRoot{extra.digest, extra.media_type, "extra root"});
  }
  // The build cache, pruned first under this same lock, then its entries are roots. A broken
  // entry keeps nothing: it is a miss for builds, and fsck --repair or `cache prune` drops it.
  std::set<oci::Digest> cache_layers;
  if (options.cache) {
    const std::int64_t now = options.now != 0 ? options.now : std::int64_t(std::time(nullptr));
    MB_TRY_ASSIGN(CachePruneResult pruned,
                  store.cache().prune(*options.cache, now).map_error([&](Error error) {
                    return std::move(error).wrap(context);
                  }));
    report.removed_cache_entries = std::move(pruned.removed);
    report.broken_cache_entries_removed = pruned.broken_removed;
  }
  if (options.cache_mounts == CacheMounts::remove) {
    MB_TRY_ASSIGN(auto mounts, store.cache().remove_mounts().map_error(
                                   [&](Error error) { return std::move(error).wrap(context); }));
    report.cache_mounts_removed = mounts.count;
    report.freed_bytes += mounts.bytes;
  }
  MB_TRY_ASSIGN(CacheScan cache, store.cache().scan());
  for (const auto& broken : cache.broken) {
    report.warnings.push_back("cache entry " + store.fs().absolute(broken.path) +
                              " is unreadable and keeps nothing: " + broken.detail);
  }
  for (const auto& entry : cache.entries) {
    if (!entry.layer) {
      continue;
    }
    // A layer is a leaf: a media type keeps the walk from sniffing it.
    roots.push_back(WalkRoot{entry.layer->digest,
                             entry.layer->media_type.empty() ? "application/octet-stream"
                                                             : entry.layer->media_type,
                             "cache entry " + entry.key.to_string()});
    if (!entry.diff_id.empty()) {
      cache_layers.insert(entry.diff_id);
    }
  }
  MB_TRY_ASSIGN(Reachability reach, find_reachable(store.blobs(), roots));
  for (const auto& issue : reach.issues) {
    if (issue.kind == WalkIssue::Kind::unreadable) {
      return fail(Error(Code::corrupt,
                        issue.digest.to_string() + " (from " + issue.referrer +
                            ") cannot be read, so what it references is unknown; nothing was "
                            "removed (run `minibuild fsck --repair`, or remove the name): " +
                            issue.detail)
                      .wrap(context));
    }
    if (issue.kind == WalkIssue::Kind::unreadable_config) {
      report.warnings.push_back("config " + issue.digest.to_string() + " (from " + issue.referrer +
                                ") cannot be read: " + issue.detail);
    } else {
      report.warnings.push_back(issue.referrer + " references " + issue.digest.to_string() +
                                ", which is not in the store");
    }
  }
  std::set<oci::Digest> keep_layers = reach.diff_ids;
  keep_layers.insert(options.extra_layer_roots.begin(), options.extra_layer_roots.end());
  keep_layers.insert(cache_layers.begin(), cache_layers.end());

  // Layers first: their metadata names source blobs, which must not decide anything after the
  // blobs are gone.
  MB_TRY_ASSIGN(auto layers, store.layers().list());
  for (const auto& diff_id : layers) {
    if (keep_layers.count(diff_id) != 0) {
      continue;
    }
    auto info = store.layers().stat(diff_id);
    if (info && *info && !(*info)->source_blob.empty() &&
        reach.blobs.count((*info)->source_blob) != 0) {
      continue;
    }
    MB_TRY_CONTEXT(store.layers().remove(diff_id), context);
    report.removed_layers.push_back(diff_id);
    if (info && *info) {
      report.freed_bytes += (*info)->size;
    }
  }

  MB_TRY_ASSIGN(auto blobs, store.blobs().list());
  for (const auto& digest : blobs) {
    if (reach.blobs.count(digest) != 0) {
      continue;
    }
    MB_TRY_ASSIGN(auto info, store.blobs().stat(digest));
    MB_TRY_CONTEXT(store.blobs().remove(digest), context);
    if (info) {
      report.removed_blobs.push_back(*info);
      report.freed_bytes += info->size;
    }
  }
  return report;
}

} // namespace minibuild::store
