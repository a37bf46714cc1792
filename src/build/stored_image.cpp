#include "stored_image.hpp"

#include <minibuild/build/executor.hpp>
#include <minibuild/build/run_image.hpp>
#include <minibuild/layer/apply.hpp>
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
    return fail(Error(Code::not_found, "image " + reference + " is not in the local store")
                    .tagged(k_image_not_stored));
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

Result<void> apply_layers(store::Store& store, const std::vector<oci::Descriptor>& layers,
                          const std::vector<oci::Digest>& diff_ids, const std::string& dir) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& layer = layers[i];
    const std::string what = "apply layer " + layer.digest.to_string();
    auto source = store.blobs().get(layer.digest, static_cast<std::uint64_t>(layer.size));
    if (!source) {
      return fail(std::move(source).error().wrap(what));
    }
    // Unprivileged, apply cannot chown; the xattr record keeps base owners known to
    // base_metadata().
    layer::ApplyOptions apply_options;
    apply_options.record_owners = true;
    auto applied = layer::apply_layer(**source, dir, apply_options);
    if (!applied) {
      return fail(std::move(applied).error().wrap(what));
    }
    if (layers.size() == diff_ids.size() && applied->diff_id != diff_ids[i]) {
      return fail(Code::corrupt, what + ": its content has diffID " + applied->diff_id.to_string() +
                                     ", the config says " + diff_ids[i].to_string());
    }
  }
  return {};
}

} // namespace minibuild::build
