// A content descriptor (descriptor.md; Go specs.Descriptor): what a blob is, how big it is and
// what it hashes to. Manifests, indexes, layouts and registry calls all point at blobs this way.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/json.hpp>
#include <minibuild/oci/platform.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::oci {

/// Annotations (string → string), kept sorted so serialisation is deterministic.
using Annotations = std::map<std::string, std::string>;

/// A descriptor. media_type, digest and size are required in JSON; the rest is optional and
/// omitted from JSON when empty.
struct Descriptor {
  std::string media_type;           ///< "mediaType"
  Digest digest;                    ///< "digest"
  std::int64_t size = 0;            ///< "size" in bytes; never negative
  std::vector<std::string> urls;    ///< "urls": where else the blob may be fetched
  Annotations annotations;          ///< "annotations"
  std::string data;                 ///< "data": embedded content, raw bytes (base64 in JSON)
  std::optional<Platform> platform; ///< "platform": only in index entries
  std::string artifact_type;        ///< "artifactType"

  bool operator==(const Descriptor&) const = default;
};

/// A descriptor of `content` (digest and size computed here) with the given media type.
Descriptor make_descriptor(std::string media_type, std::string_view content);

/// Reads a descriptor. Rejects (Code::corrupt, naming the field): a missing or non-string
/// mediaType, a missing or malformed digest, a missing, non-integer or negative size, non-string
/// urls or annotation values, and data that is not standard padded base64. A digest of an
/// algorithm minibuild cannot compute gives Code::unsupported. Unknown fields are ignored.
template <>
Result<Descriptor> from_json<Descriptor>(const nlohmann::json& json);

nlohmann::json to_json(const Descriptor& descriptor);

/// Canonical bytes (see json.hpp).
std::string serialize(const Descriptor& descriptor);

/// Standard base64 with padding (RFC 4648 §4), as Go encodes []byte.
std::string base64_encode(std::string_view bytes);
/// Decodes standard padded base64; rejects other alphabets, missing or misplaced padding and
/// whitespace with Code::corrupt.
Result<std::string> base64_decode(std::string_view text);

} // namespace minibuild::oci
