// Pulling an image from a registry into the local store.
//
//   1. the manifest the reference names (tag or digest); an index or Docker manifest list
//      selects the manifest for the wanted platform (oci::matches: "linux/arm64" takes v8);
//      none fitting is Code::not_found listing the platforms the index offers;
//   2. the config, verified, checked against the manifest's layer count;
//   3. every layer not already unpacked in the store (by diffID) is downloaded — up to
//      max_concurrent_downloads at once — and streamed: each chunk is written to the blob
//      file (hashed), decompressed (gzip, zstd, none) and applied to the unpacked-layer tree as
//      it arrives; the blob digest and the diffID are checked at the end, and only then are
//      the blob and the tree made visible (store BlobWriter commit + LayerStore rename). A
//      layer whose bytes turn out corrupt is downloaded again from scratch (twice at most)
//      before the pull fails naming the layer and the cause. A layer blob already in the store
//      is not downloaded.
//   4. manifest (and index, when there was one) blobs are stored, and the name recorded,
//      pointing at what the reference points at (the index for a multi-platform image; the
//      store keeps only the chosen platform's manifest).
// On failure nothing is named; complete blobs and layers stay (they are valid) until prune.
// The caller holds the store lock shared.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/platform.hpp>
#include <minibuild/registry/client.hpp>
#include <minibuild/registry/reference.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace minibuild::store {
class Store;
}

namespace minibuild::registry {

/// What a pull reports while it runs. Called from several threads (one per download): an
/// implementation must be thread-safe.
class PullProgress {
public:
  virtual ~PullProgress() = default;
  /// The manifest is known: `layers` layers, `total_bytes` compressed bytes in all.
  virtual void resolved(const Reference& /*reference*/, const oci::Digest& /*manifest*/,
                        std::size_t /*layers*/, std::uint64_t /*total_bytes*/) {}
  /// A layer is already in the store.
  virtual void layer_present(const oci::Descriptor& /*layer*/) {}
  virtual void layer_started(const oci::Descriptor& /*layer*/) {}
  virtual void layer_progress(const oci::Descriptor& /*layer*/, std::uint64_t /*bytes*/) {}
  virtual void layer_done(const oci::Descriptor& /*layer*/) {}
  /// A layer download failed and is retried from scratch (`reason` is the error text).
  virtual void layer_retry(const oci::Descriptor& /*layer*/, std::string_view /*reason*/) {}
};

struct PullOptions {
  /// The platform to select from an index. Required (the CLI gives the host's by default).
  oci::Platform platform;
  int max_concurrent_downloads = 4;
  PullProgress* progress = nullptr;
  /// Record the reference's canonical name ("docker.io/library/alpine:latest") in the store.
  /// A digest-only reference records no name.
  bool record_name = true;
};

struct PulledImage {
  Reference reference;
  /// What the reference points at: an index or a manifest.
  oci::Descriptor target;
  /// The manifest chosen for the platform (== target when the reference names a manifest).
  oci::Digest manifest_digest;
  oci::ImageManifest manifest;
  oci::ImageConfig config;
  std::uint64_t downloaded_bytes = 0; ///< layer bytes actually fetched
  std::size_t layers_present = 0;     ///< layers already in the store
};

/// Pulls `reference` from the registry `client` talks to into `store` (see the file comment).
Result<PulledImage> pull_image(RegistryClient& client, store::Store& store,
                               const Reference& reference, const PullOptions& options);

/// The manifest of `index_bytes` (an OCI index or Docker list) for `platform`, or
/// Code::not_found listing the platforms it offers ("linux/amd64, linux/arm64/v8").
Result<oci::Descriptor> select_platform(std::string_view index_bytes,
                                        const oci::Platform& platform);

} // namespace minibuild::registry
