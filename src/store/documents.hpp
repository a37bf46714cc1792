// Reading the JSON documents (manifests, indexes, configs) that GC, fsck and image listing
// walk (private to src/store).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/store/blob_store.hpp>

#include <string>
#include <string_view>

namespace minibuild::store {

/// Manifests, indexes and configs larger than this are refused as damage.
inline constexpr std::size_t k_max_document = 4 * 1024 * 1024;

enum class DocumentKind { manifest, index, config, other };

/// The kind a media type names; an empty media type is `other` (see sniff_kind).
DocumentKind kind_of(std::string_view media_type);

/// For roots whose media type is unknown: guesses from the JSON itself ("mediaType" when
/// present, else "manifests" → index, "config" + "layers" → manifest).
DocumentKind sniff_kind(std::string_view text);

/// A stored blob, verified, parsed as T (oci::parse). Errors carry the digest.
template <typename T>
Result<T> read_document(BlobStore& blobs, const oci::Digest& digest) {
  MB_TRY_ASSIGN(std::string text, blobs.read(digest, k_max_document));
  auto parsed = oci::parse<T>(text);
  if (!parsed) {
    return fail(std::move(parsed).error().wrap("read " + digest.to_string()));
  }
  return parsed;
}

} // namespace minibuild::store
