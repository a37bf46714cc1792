// Private to src/oci: typed field readers over nlohmann::json that report errors with the
// field's path ("layers[2].size: expected a non-negative integer, found -1") and Code::corrupt.
// None of them throws: they only call non-throwing nlohmann accessors after checking types.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/platform.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::oci::detail {

using nlohmann::json;

enum class Presence { required, optional };

/// "object", "array", "string", "number", "boolean", "null" — for messages.
std::string_view type_name(const json& value);

/// "parent.key", or "key" at the top level.
std::string path_join(std::string_view parent, std::string_view key);
/// "parent[index]".
std::string path_index(std::string_view parent, std::size_t index);

/// A Code::corrupt error "<path>: <problem>" ("<problem>" alone when path is empty).
Error field_error(std::string_view path, std::string_view problem);

/// Fails unless `value` is an object; `what` names the document ("image manifest").
Result<void> expect_object(const json& value, std::string_view path, std::string_view what);

/// The member `key` of `object`, or nullptr when it is absent or null (Go reads null as
/// absent). A required member that is absent or null is an error.
Result<const json*> member(const json& object, std::string_view key, std::string_view parent,
                           Presence presence);

// Typed readers of `object[key]`. An optional member that is absent or null gives the empty
// value ("", {}, false, 0).
Result<std::string> get_string(const json& object, std::string_view key, std::string_view parent,
                               Presence presence);
Result<bool> get_bool(const json& object, std::string_view key, std::string_view parent);
Result<std::int64_t> get_int64(const json& object, std::string_view key, std::string_view parent,
                               Presence presence);
Result<std::vector<std::string>> get_string_array(const json& object, std::string_view key,
                                                  std::string_view parent, Presence presence);
Result<std::map<std::string, std::string>> get_string_map(const json& object, std::string_view key,
                                                          std::string_view parent);
/// A Go `map[string]struct{}` ({"80/tcp": {}}): the keys; values must be objects (or null).
Result<std::set<std::string>> get_key_set(const json& object, std::string_view key,
                                          std::string_view parent);
Result<Digest> get_digest(const json& object, std::string_view key, std::string_view parent,
                          Presence presence);
/// A digest read from a value already extracted (array element).
Result<Digest> to_digest(const json& value, std::string_view path);

/// Readers shared by the document types, with `path` naming where the value sits
/// ("manifests[0].platform"; "" for a whole document).
Result<Platform> read_platform(const json& value, std::string_view path);
Result<Descriptor> read_descriptor(const json& value, std::string_view path);

// The envelope shared by manifests and indexes (defined in manifest.cpp).
/// "schemaVersion": must be 2 (1, Docker's schema 1, is Code::unsupported).
Result<int> read_schema_version(const json& value);
/// A required top-level array of descriptors ("layers", "manifests").
Result<std::vector<Descriptor>> read_descriptor_list(const json& value, std::string_view key);
/// The optional "subject" descriptor.
Result<std::optional<Descriptor>> read_subject(const json& value);
/// schemaVersion, then mediaType, artifactType, subject, annotations when non-empty.
void write_common(json& out, int schema_version, const std::string& media_type,
                  const std::string& artifact_type, const std::optional<Descriptor>& subject,
                  const Annotations& annotations);

/// Parses text as JSON; invalid or absurdly nested JSON gives Code::corrupt.
Result<json> parse_json(std::string_view text);

/// Canonical text of a JSON value: sorted keys, no whitespace, invalid UTF-8 replaced by U+FFFD
/// (parsed input is always valid UTF-8; only strings set by callers can be invalid).
std::string canonical_dump(const json& value);

} // namespace minibuild::oci::detail
