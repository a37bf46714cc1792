// What the exporters read from the store: the documents of an image and the blobs they reach.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/blob_store.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::build {

/// Manifests, indexes and configs larger than this are refused as corrupt (they are kilobytes).
inline constexpr std::size_t k_max_document_bytes = 4U << 20U;

/// A stored document, verified, with its media type.
struct StoredDocument {
  oci::Descriptor descriptor; ///< media type, digest, size (no annotations)
  std::string bytes;          ///< the content, exactly as stored
};

/// Reads the manifest or index `digest`; `media_type` empty means: take it from the document's
/// mediaType field (or its shape: "manifests" is an index, "layers" a manifest). Anything that
/// is neither is Code::unsupported. A missing blob is Code::not_found.
Result<StoredDocument> read_top_document(store::BlobStore& blobs, const oci::Digest& digest,
                                         std::string media_type);

/// Every blob an OCI layout of the image needs, the top document first, each once: for a
/// manifest its config and layers (all must be stored, Code::not_found otherwise); for an index
/// the index and, recursively, every child manifest or index the store holds (children it does
/// not hold are skipped, as a single-platform pull keeps them out of the store).
Result<std::vector<store::BlobInfo>> collect_blobs(store::BlobStore& blobs,
                                                   const StoredDocument& top);

/// "repository:tag" → "tag", via store::split_name (Code::usage for a name without a tag).
Result<std::string> tag_of(std::string_view name);

} // namespace minibuild::build
