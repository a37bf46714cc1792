// Pushing an image from the local store to a registry.
//
// For a manifest: every layer blob and the config are sent unless the registry already has
// them (HEAD); a blob the store knows came from another repository of the same registry (the
// `from` hints) is mounted instead of uploaded; then the manifest is PUT with its exact bytes
// and media type, under the tag (by digest when there is none). For an index: each child
// manifest as above but PUT by digest (children missing from the store are skipped only when
// the registry already has them), then the index. Blobs are uploaded up to
// max_concurrent_uploads at a time.
// The caller holds the store lock shared.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/registry/client.hpp>
#include <minibuild/registry/reference.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {
class Store;
}

namespace minibuild::registry {

/// What a push reports while it runs; thread-safe as PullProgress.
class PushProgress {
public:
  virtual ~PushProgress() = default;
  virtual void blob_skipped(const oci::Descriptor& /*blob*/) {} ///< the registry has it
  virtual void blob_mounted(const oci::Descriptor& /*blob*/, std::string_view /*from*/) {}
  virtual void blob_started(const oci::Descriptor& /*blob*/) {}
  virtual void blob_progress(const oci::Descriptor& /*blob*/, std::uint64_t /*bytes*/) {}
  virtual void blob_done(const oci::Descriptor& /*blob*/) {}
  virtual void manifest_pushed(const oci::Descriptor& /*manifest*/, std::string_view /*ref*/) {}
};

struct PushOptions {
  int max_concurrent_uploads = 3;
  /// Repositories of the same registry that may hold the blobs (mount sources), tried in order.
  std::vector<std::string> mount_from;
  PushProgress* progress = nullptr;
};

struct PushedImage {
  oci::Descriptor target; ///< what was pushed (manifest or index), digest as pushed
  std::uint64_t uploaded_bytes = 0;
  std::size_t blobs_skipped = 0;
  std::size_t blobs_mounted = 0;
};

/// Pushes the stored manifest or index `image` to `destination` (its tag, if any, is set; a
/// digest-only destination pushes by digest and checks it equals `image.digest`).
Result<PushedImage> push_image(RegistryClient& client, store::Store& store,
                               const oci::Descriptor& image, const Reference& destination,
                               const PushOptions& options);

} // namespace minibuild::registry
