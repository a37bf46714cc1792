#include "documents.hpp"

#include <minibuild/store/images.hpp>
#include <minibuild/store/store.hpp>

#include <set>

namespace minibuild::store {

namespace {

struct ManifestFacts {
  oci::Digest config;
  std::string created;
};

// Adds the config and layer sizes of one manifest to `counted`/`size`; returns the config
// digest and creation time.
Result<ManifestFacts> add_manifest(BlobStore& blobs, const oci::Digest& digest,
                                   std::set<oci::Digest>& counted, std::uint64_t& size) {
  MB_TRY_ASSIGN(oci::ImageManifest manifest, read_document<oci::ImageManifest>(blobs, digest));
  ManifestFacts facts{manifest.config.digest, ""};
  const auto add = [&](const oci::Descriptor& descriptor) {
    if (counted.insert(descriptor.digest).second) {
      size += static_cast<std::uint64_t>(descriptor.size);
    }
  };
  add(manifest.config);
  for (const auto& layer : manifest.layers) {
    add(layer);
  }
  if (kind_of(manifest.config.media_type) == DocumentKind::config) {
    // A missing or unreadable config only costs the "created" column.
    auto config = read_document<oci::ImageConfig>(blobs, manifest.config.digest);
    if (config) {
      facts.created = config->created;
    }
  }
  return facts;
}

} // namespace

Result<std::vector<ImageSummary>> list_images(Store& store) {
  MB_TRY_ASSIGN(auto names, store.names().list());
  std::vector<ImageSummary> rows;
  for (const auto& name : names) {
    ImageSummary row;
    auto split = split_name(name.name);
    if (split) {
      row.repository = split->first;
      row.tag = split->second;
    } else {
      row.repository = name.name;
    }
    row.manifest_digest = name.digest;
    row.media_type = name.media_type;
    std::set<oci::Digest> counted;
    switch (kind_of(name.media_type)) {
    case DocumentKind::manifest: {
      auto facts = add_manifest(store.blobs(), name.digest, counted, row.size);
      if (!facts) {
        if (facts.error().code() == Code::io) {
          return fail(std::move(facts).error());
        }
        row.problem = facts.error().what();
        break;
      }
      row.image_id = facts->config;
      row.created = facts->created;
      break;
    }
    case DocumentKind::index: {
      auto index = read_document<oci::ImageIndex>(store.blobs(), name.digest);
      if (!index) {
        if (index.error().code() == Code::io) {
          return fail(std::move(index).error());
        }
        row.problem = index.error().what();
        break;
      }
      for (const auto& child : index->manifests) {
        if (kind_of(child.media_type) != DocumentKind::manifest) {
          continue;
        }
        MB_TRY_ASSIGN(auto stored, store.blobs().stat(child.digest));
        if (!stored) {
          continue; // single-platform pulls keep only the manifest they need
        }
        auto facts = add_manifest(store.blobs(), child.digest, counted, row.size);
        if (!facts && facts.error().code() == Code::io) {
          return fail(std::move(facts).error());
        }
      }
      break;
    }
    case DocumentKind::config:
    case DocumentKind::other:
      row.problem = "names a " + name.media_type + ", not a manifest or index";
      break;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

} // namespace minibuild::store
