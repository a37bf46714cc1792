#include "output_image.hpp"

#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/name_store.hpp>

#include <set>

namespace minibuild::build {

namespace {

struct Collector {
  store::BlobStore& blobs;
  std::vector<store::BlobInfo> found;
  std::set<oci::Digest> seen;

  bool add(const oci::Digest& digest, std::int64_t size) {
    if (!seen.insert(digest).second) {
      return false;
    }
    found.push_back({digest, static_cast<std::uint64_t>(size)});
    return true;
  }

  Result<void> require(const oci::Descriptor& descriptor, std::string_view role,
                       const oci::Digest& owner) {
    MB_TRY_ASSIGN(auto info, blobs.stat(descriptor.digest));
    if (!info) {
      return fail(Code::not_found, std::string(role) + " " + descriptor.digest.to_string() +
                                       " of manifest " + owner.to_string() +
                                       " is not in the store");
    }
    add(descriptor.digest, descriptor.size);
    return {};
  }

  Result<void> walk(const StoredDocument& document) {
    const oci::Digest& digest = document.descriptor.digest;
    if (oci::is_manifest(document.descriptor.media_type)) {
      MB_TRY_ASSIGN(auto manifest, oci::parse<oci::ImageManifest>(document.bytes));
      MB_TRY(require(manifest.config, "config", digest));
      for (const auto& layer : manifest.layers) {
        MB_TRY(require(layer, "layer", digest));
      }
      return {};
    }
    MB_TRY_ASSIGN(auto index, oci::parse<oci::ImageIndex>(document.bytes));
    for (const auto& child : index.manifests) {
      if (!oci::is_manifest(child.media_type) && !oci::is_index(child.media_type)) {
        continue; // an attestation or artifact the exporters have no use for
      }
      MB_TRY_ASSIGN(auto info, blobs.stat(child.digest));
      if (!info || !add(child.digest, child.size)) {
        continue;
      }
      MB_TRY_ASSIGN(auto bytes, blobs.read(child.digest, k_max_document_bytes));
      StoredDocument child_document{child, std::move(bytes)};
      MB_TRY_CONTEXT(walk(child_document), "manifest " + child.digest.to_string());
    }
    return {};
  }
};

} // namespace

Result<StoredDocument> read_top_document(store::BlobStore& blobs, const oci::Digest& digest,
                                         std::string media_type) {
  MB_TRY_ASSIGN(std::string bytes, blobs.read(digest, k_max_document_bytes));
  if (media_type.empty()) {
    media_type = oci::sniff_media_type(bytes).value_or("");
  }
  if (!oci::is_manifest(media_type) && !oci::is_index(media_type)) {
    return fail(Code::unsupported, digest.to_string() +
                                       " is not an image manifest or index (media type \"" +
                                       media_type + "\")");
  }
  oci::Descriptor descriptor;
  descriptor.media_type = media_type;
  descriptor.digest = digest;
  descriptor.size = static_cast<std::int64_t>(bytes.size());
  return StoredDocument{std::move(descriptor), std::move(bytes)};
}

Result<std::vector<store::BlobInfo>> collect_blobs(store::BlobStore& blobs,
                                                   const StoredDocument& top) {
  Collector collector{blobs, {}, {}};
  collector.add(top.descriptor.digest, top.descriptor.size);
  MB_TRY(collector.walk(top));
  return std::move(collector.found);
}

Result<std::string> tag_of(std::string_view name) {
  MB_TRY_ASSIGN(auto split, store::split_name(name));
  return split.second;
}

} // namespace minibuild::build
