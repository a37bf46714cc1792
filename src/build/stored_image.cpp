#include "stored_image.hpp"

#include <minibuild/build/executor.hpp>
#include <minibuild/oci/index.hpp>

namespace minibuild::build {
namespace {
constexpr std::size_t k_max_document = 64u << 20; // manifests, indexes and configs
} // namespace

// ---- images in the store ------------------------------------------------------------------

Result<std::string> read_blob(store::Store& store, const oci::Digest& digest,
                              std::string_view what) {
  auto bytes = store.blobs().read(digest, k_max_document);
  if (!bytes) {
    return fail(
        std::move(bytes).error().wrap("read " + std::string(what) + " " + digest.to_string()));
  }
  return std::move(*bytes);
}

Result<LoadedImage> load_image(store::Store& store, const std::string& reference,
                               const dockerfile::Platform& platform) {
  LoadedImage image;
  image.reference = reference;
  std::string media_type;
  bool found = false;
  if (const auto at = reference.find('@'); at != std::string::npos) {
    auto digest = oci::Digest::parse(reference.substr(at + 1));
    if (!digest) {
      return fail(Code::dockerfile,
                  "invalid image reference \"" + reference + "\": " + digest.error().message());
    }
    MB_TRY_ASSIGN(auto stat, store.blobs().stat(*digest));
    if (stat) {
      image.manifest_digest = *digest;
      found = true;
    }
  } else {
    for (const auto& name : store_name_candidates(reference)) {
      MB_TRY_ASSIGN(auto named, store.names().resolve(name));
      if (named) {
        image.manifest_digest = named->digest;
        media_type = named->media_type;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    return fail(Code::not_found, "image " + reference + " is not in the local store");
  }
  MB_TRY_ASSIGN(std::string bytes, read_blob(store, image.manifest_digest, "manifest"));
  auto manifest = oci::parse<oci::ImageManifest>(bytes);
  if (!manifest && (oci::is_index(media_type) || media_type.empty())) {
    // An index (a multi-platform image): take the stored manifest for the stage's platform.
    MB_TRY_ASSIGN(auto index, oci::parse<oci::ImageIndex>(bytes));
    oci::Platform wanted;
    wanted.os = platform.os;
    wanted.architecture = platform.architecture;
    wanted.variant = platform.variant;
    bool chosen = false;
    for (const auto& entry : oci::find_manifests(index, wanted)) {
      MB_TRY_ASSIGN(auto stat, store.blobs().stat(entry.digest));
      if (stat) {
        image.manifest_digest = entry.digest;
        chosen = true;
        break;
      }
    }
    if (!chosen) {
      return fail(Code::not_found, "image " + reference + " has no manifest for " +
                                       oci::to_string(platform) + " in the local store");
    }
    MB_TRY_ASSIGN(bytes, read_blob(store, image.manifest_digest, "manifest"));
    manifest = oci::parse<oci::ImageManifest>(bytes);
  }
  if (!manifest) {
    return fail(std::move(manifest).error().wrap("image " + reference + ": manifest " +
                                                 image.manifest_digest.to_string()));
  }
  image.manifest = std::move(*manifest);
  MB_TRY_ASSIGN(std::string config_bytes,
                read_blob(store, image.manifest.config.digest, "image config"));
  auto config = oci::parse<oci::ImageConfig>(config_bytes);
  if (!config) {
    return fail(std::move(config).error().wrap("image " + reference + ": config " +
                                               image.manifest.config.digest.to_string()));
  }
  image.config = std::move(*config);
  return image;
}

} // namespace minibuild::build
