// The JSON entry points shared by every OCI document type.
//
// Each document type (Platform, Descriptor, ImageManifest, ImageIndex, ImageConfig) offers:
//   - `from_json<T>(const nlohmann::json&)`: reads an already-parsed value;
//   - `parse<T>(std::string_view)`: parses text, then from_json<T>;
//   - `to_json(const T&)`: the JSON value, with empty optional fields left out exactly where the
//     Go structs of image-spec / docker-image-spec say `omitempty`;
//   - `serialize(const T&)`: canonical bytes: keys sorted byte-wise, no insignificant
//     whitespace, so the same value always gives the same bytes (and the same digest).
//
// Readers check what they read: a wrong JSON type, a missing required field, a malformed digest
// or a negative size fails with Code::corrupt and a message that names the field by its path
// ("layers[2].digest: …"). A digest of an algorithm minibuild cannot compute fails with
// Code::unsupported. Readers accept JSON null wherever Go would (null reads as absent) and
// ignore unknown fields, except ImageConfig, which keeps them (see image_config.hpp).
//
// Never hash a re-serialisation of a document read from elsewhere: its digest is the digest of
// the bytes as received.
#pragma once

#include <minibuild/base/error.hpp>

#include <nlohmann/json_fwd.hpp>

#include <string_view>

namespace minibuild::oci {

/// Reads a T from a parsed JSON value; specialised in each type's header. Never throws.
template <typename T>
Result<T> from_json(const nlohmann::json& json);

/// Parses `text` as JSON (invalid JSON gives Code::corrupt, naming the byte offset) and reads a
/// T from it. Instantiated for Platform, Descriptor, ImageManifest, ImageIndex and ImageConfig.
template <typename T>
Result<T> parse(std::string_view text);

} // namespace minibuild::oci
