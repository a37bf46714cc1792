#include "parallel.hpp"

#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/push.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

namespace minibuild::registry {

namespace {

constexpr std::size_t k_max_document = 4 << 20; // registries refuse larger manifests anyway

Error cancelled_error() {
  return Error(Code::interrupted, "cancelled because another upload failed");
}

// An upload's source that stops (with an error) once the push is cancelled, so that a failed
// upload does not leave the others sending hundreds of megabytes for nothing.
class CancellableSource : public oci::ByteSource {
public:
  CancellableSource(std::unique_ptr<oci::ByteSource> inner, const std::atomic<bool>& cancelled)
      : m_inner(std::move(inner)), m_cancelled(cancelled) {}

  Result<std::size_t> read(std::span<char> buffer) override {
    if (m_cancelled.load(std::memory_order_relaxed)) {
      return fail(cancelled_error());
    }
    return m_inner->read(buffer);
  }

private:
  std::unique_ptr<oci::ByteSource> m_inner;
  const std::atomic<bool>& m_cancelled;
};

// The media type of a stored document when the caller did not give one: the document's own
// mediaType field, else its shape.
Result<std::string> stored_media_type(const std::string& bytes, const oci::Digest& digest) {
  const auto sniffed = oci::sniff_media_type(bytes);
  if (!sniffed) {
    return fail(Code::corrupt, "stored document " + digest.to_string() + " is not a JSON object");
  }
  const std::string& type = *sniffed;
  if (!oci::is_manifest(type) && !oci::is_index(type)) {
    return fail(Code::unsupported, "stored document " + digest.to_string() +
                                       " is neither an image manifest nor an index");
  }
  return type;
}

// A stored manifest to push: its exact bytes and what it references.
struct ManifestToPush {
  oci::Descriptor descriptor;
  std::string bytes;
  oci::ImageManifest manifest;
};

Result<ManifestToPush> read_manifest(store::Store& store, const oci::Descriptor& descriptor) {
  ManifestToPush item;
  item.descriptor = descriptor;
  const std::string what = "manifest " + descriptor.digest.to_string();
  auto bytes = store.blobs().read(descriptor.digest, k_max_document);
  if (!bytes) {
    return fail(std::move(bytes).error().wrap("read " + what));
  }
  item.bytes = std::move(*bytes);
  auto manifest = oci::parse<oci::ImageManifest>(item.bytes);
  if (!manifest) {
    return fail(std::move(manifest).error().wrap(what));
  }
  item.manifest = std::move(*manifest);
  return item;
}

class Pusher {
public:
  Pusher(RegistryClient& client, store::Store& store, std::string repository,
         const PushOptions& options)
      : m_client(client), m_store(store), m_repository(std::move(repository)), m_options(options) {}

  // Sends every blob the manifests reference that the registry lacks, in parallel.
  Result<void> blobs(const std::vector<ManifestToPush>& manifests);

  Result<void> put(const ManifestToPush& item, const std::string& reference) {
    const std::string& type = item.descriptor.media_type;
    MB_TRY_ASSIGN(const oci::Digest digest,
                  m_client.put_manifest(m_repository, reference, item.bytes, type));
    if (digest != item.descriptor.digest) {
      return fail(Code::corrupt, "the registry stored manifest " +
                                     item.descriptor.digest.to_string() + " as " +
                                     digest.to_string());
    }
    return {};
  }

  PushedImage& result() { return m_result; }

private:
  Result<void> blob(const oci::Descriptor& blob);

  RegistryClient& m_client;
  store::Store& m_store;
  std::string m_repository;
  const PushOptions& m_options;
  std::atomic<bool> m_cancelled{false};
  std::mutex m_mutex; // guards m_result
  PushedImage m_result;
};

Result<void> Pusher::blobs(const std::vector<ManifestToPush>& manifests) {
  std::vector<oci::Descriptor> blobs;
  std::set<oci::Digest> seen;
  for (const auto& item : manifests) {
    // The config first: a registry that checks references on manifest PUT needs all of them,
    // and the config is small, so it is done while the layers are still going.
    if (seen.insert(item.manifest.config.digest).second) {
      blobs.push_back(item.manifest.config);
    }
    for (const auto& layer : item.manifest.layers) {
      // Foreign (non-distributable) layers are fetched from their URLs, never pushed: Docker
      // skips them too, and registries accept manifests referencing them.
      if (oci::is_nondistributable_layer(layer.media_type) || !layer.urls.empty()) {
        continue;
      }
      if (seen.insert(layer.digest).second) {
        blobs.push_back(layer);
      }
    }
  }

  return run_parallel(
      blobs.size(), static_cast<std::size_t>(std::max(1, m_options.max_concurrent_uploads)),
      [&](std::size_t index) { return blob(blobs[index]); },
      [&](std::size_t index) { return "blob " + blobs[index].digest.to_string(); },
      [&] { m_cancelled = true; });
}

// Cheapest first: a HEAD costs one round trip and no data; a mount one POST and no data (but
// a wrong hint costs a cancelled upload); only then the bytes themselves.
Result<void> Pusher::blob(const oci::Descriptor& blob) {
  PushProgress* progress = m_options.progress;
  MB_TRY_ASSIGN(const auto remote_size, m_client.blob_size(m_repository, blob.digest));
  if (remote_size) {
    {
      std::lock_guard lock(m_mutex);
      ++m_result.blobs_skipped;
    }
    if (progress != nullptr) {
      progress->blob_skipped(blob);
    }
    return {};
  }
  for (const auto& from : m_options.mount_from) {
    if (from == m_repository) {
      continue;
    }
    // A failed mount (the source repository is gone, or our token may not read it) only
    // means the blob has to be uploaded: the hint was wrong, the push is not.
    auto mounted = m_client.mount_blob(m_repository, blob.digest, from);
    if (mounted && *mounted) {
      {
        std::lock_guard lock(m_mutex);
        ++m_result.blobs_mounted;
      }
      if (progress != nullptr) {
        progress->blob_mounted(blob, from);
      }
      return {};
    }
  }
  MB_TRY_ASSIGN(const auto stored, m_store.blobs().stat(blob.digest));
  if (!stored) {
    std::string message = "blob " + blob.digest.to_string() +
                          " is neither in the local store nor in the registry's " + m_repository;
    for (const auto& from : m_options.mount_from) {
      message += ", " + from;
    }
    return fail(Code::not_found, std::move(message));
  }

  if (progress != nullptr) {
    progress->blob_started(blob);
  }
  const auto size = static_cast<std::uint64_t>(blob.size);
  const SourceOpener open = [this, &blob, size]() -> Result<std::unique_ptr<oci::ByteSource>> {
    MB_TRY_ASSIGN(auto source, m_store.blobs().get(blob.digest, size));
    return std::unique_ptr<oci::ByteSource>(
        std::make_unique<CancellableSource>(std::move(source), m_cancelled));
  };
  TransferProgress on_progress;
  if (progress != nullptr) {
    on_progress = [progress, &blob](std::uint64_t bytes) { progress->blob_progress(blob, bytes); };
  }
  MB_TRY(m_client.upload_blob(m_repository, blob, open, on_progress));
  {
    std::lock_guard lock(m_mutex);
    m_result.uploaded_bytes += size;
  }
  if (progress != nullptr) {
    progress->blob_done(blob);
  }
  return {};
}

} // namespace

Result<PushedImage> push_image(RegistryClient& client, store::Store& store,
                               const oci::Descriptor& image, const Reference& destination,
                               const PushOptions& options) {
  if (destination.digest && *destination.digest != image.digest) {
    return fail(Code::usage, "destination " + destination.to_string() + " names digest " +
                                 destination.digest->to_string() + ", the image is " +
                                 image.digest.to_string());
  }
  const std::string what = "image " + image.digest.to_string();
  auto bytes = store.blobs().read(image.digest, k_max_document);
  if (!bytes) {
    return fail(std::move(bytes).error().wrap("read " + what));
  }
  if (image.size > 0 && bytes->size() != static_cast<std::uint64_t>(image.size)) {
    return fail(Code::corrupt, what + " is " + std::to_string(bytes->size()) +
                                   " bytes in the store, its descriptor says " +
                                   std::to_string(image.size));
  }
  oci::Descriptor target = image;
  target.size = static_cast<std::int64_t>(bytes->size());
  if (!oci::is_manifest(target.media_type) && !oci::is_index(target.media_type)) {
    MB_TRY_ASSIGN(target.media_type, stored_media_type(*bytes, image.digest));
  }

  Pusher pusher(client, store, destination.path, options);
  const auto pushed = [&](const oci::Descriptor& manifest, const std::string& reference) {
    if (options.progress != nullptr) {
      options.progress->manifest_pushed(manifest, reference);
    }
  };

  if (oci::is_index(target.media_type)) {
    auto index = oci::parse<oci::ImageIndex>(*bytes);
    if (!index) {
      return fail(std::move(index).error().wrap("index " + image.digest.to_string()));
    }
    // The store keeps only the platforms it pulled or built: children it lacks can stay out
    // only when the registry already has them, or the index would point at nothing.
    std::vector<ManifestToPush> children;
    for (const auto& child : index->manifests) {
      MB_TRY_ASSIGN(const auto stored, store.blobs().stat(child.digest));
      if (stored && oci::is_manifest(child.media_type)) {
        MB_TRY_ASSIGN(auto item, read_manifest(store, child));
        children.push_back(std::move(item));
        continue;
      }
      MB_TRY_ASSIGN(const auto remote,
                    client.head_manifest(destination.path, child.digest.to_string()));
      if (!remote) {
        std::string platform;
        if (child.platform) {
          platform = " (" + oci::to_string(*child.platform) + ")";
        }
        const std::string where = " of index " + image.digest.to_string();
        return fail(Code::not_found,
                    "manifest " + child.digest.to_string() + platform + where +
                        (stored ? " is itself an index, which minibuild does not push, and is "
                                  "not in the registry's "
                                : " is neither in the local store nor in the registry's ") +
                        destination.path);
      }
    }
    // All children's blobs in one parallel batch (platforms share base layers), then the
    // children by digest: a registry refuses an index whose manifests it does not have.
    MB_TRY(pusher.blobs(children));
    for (const auto& child : children) {
      const std::string reference = child.descriptor.digest.to_string();
      MB_TRY_CONTEXT(pusher.put(child, reference), "put manifest " + reference);
      pushed(child.descriptor, reference);
    }
  } else {
    ManifestToPush item;
    item.descriptor = target;
    auto manifest = oci::parse<oci::ImageManifest>(*bytes);
    if (!manifest) {
      return fail(std::move(manifest).error().wrap("manifest " + image.digest.to_string()));
    }
    item.manifest = std::move(*manifest);
    MB_TRY(pusher.blobs({item}));
  }

  ManifestToPush top;
  top.descriptor = target;
  top.bytes = std::move(*bytes);
  // One PUT, under the tag when there is one (that makes the digest addressable too), as
  // Docker and skopeo do.
  const std::string shown = destination.tag ? *destination.tag : target.digest.to_string();
  MB_TRY_CONTEXT(pusher.put(top, shown), "put manifest " + shown);
  pushed(target, shown);

  PushedImage result = pusher.result();
  result.target = target;
  return result;
}

} // namespace minibuild::registry
