#include "json_read.hpp"

#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/json.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/platform.hpp>

#include <limits>

namespace minibuild::oci {

namespace detail {

std::string_view type_name(const json& value) {
  switch (value.type()) {
  case json::value_t::object:
    return "object";
  case json::value_t::array:
    return "array";
  case json::value_t::string:
    return "string";
  case json::value_t::boolean:
    return "boolean";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
  case json::value_t::number_float:
    return "number";
  case json::value_t::null:
    return "null";
  case json::value_t::binary:
  case json::value_t::discarded:
    break;
  }
  return "invalid value";
}

std::string path_join(std::string_view parent, std::string_view key) {
  if (parent.empty()) {
    return std::string(key);
  }
  std::string path(parent);
  path += '.';
  path += key;
  return path;
}

std::string path_index(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

Error field_error(std::string_view path, std::string_view problem) {
  if (path.empty()) {
    return Error(Code::corrupt, std::string(problem));
  }
  return Error(Code::corrupt, std::string(path) + ": " + std::string(problem));
}

namespace {

Error type_error(std::string_view path, std::string_view expected, const json& found) {
  return field_error(path, "expected " + std::string(expected) + ", found " +
                               std::string(type_name(found)));
}

Result<std::string> as_string(const json& value, std::string_view path) {
  if (!value.is_string()) {
    return fail(type_error(path, "a string", value));
  }
  return value.get_ref<const std::string&>();
}

} // namespace

Result<void> expect_object(const json& value, std::string_view path, std::string_view what) {
  if (!value.is_object()) {
    if (path.empty()) {
      return fail(Code::corrupt, std::string(what) + " must be a JSON object, found " +
                                     std::string(type_name(value)));
    }
    return fail(type_error(path, "an object", value));
  }
  return {};
}

Result<const json*> member(const json& object, std::string_view key, std::string_view parent,
                           Presence presence) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (presence == Presence::required) {
      return fail(field_error(path_join(parent, key), "required field is missing"));
    }
    return nullptr;
  }
  return &*it;
}

Result<std::string> get_string(const json& object, std::string_view key, std::string_view parent,
                               Presence presence) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, presence));
  if (value == nullptr) {
    return std::string();
  }
  return as_string(*value, path_join(parent, key));
}

Result<bool> get_bool(const json& object, std::string_view key, std::string_view parent) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, Presence::optional));
  if (value == nullptr) {
    return false;
  }
  if (!value->is_boolean()) {
    return fail(type_error(path_join(parent, key), "a boolean", *value));
  }
  return value->get<bool>();
}

Result<std::int64_t> get_int64(const json& object, std::string_view key, std::string_view parent,
                               Presence presence) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, presence));
  if (value == nullptr) {
    return std::int64_t{0};
  }
  // Go decodes into int64 only from an integer literal: 1.0 and 1e3 are refused, as here
  // (nlohmann parses those as floats).
  if (value->is_number_integer() && !value->is_number_unsigned()) {
    return value->get<std::int64_t>();
  }
  if (value->is_number_unsigned()) {
    auto number = value->get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(field_error(path_join(parent, key), "integer out of range"));
    }
    return static_cast<std::int64_t>(number);
  }
  return fail(type_error(path_join(parent, key), "an integer", *value));
}

Result<std::vector<std::string>> get_string_array(const json& object, std::string_view key,
                                                  std::string_view parent, Presence presence) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, presence));
  std::vector<std::string> out;
  if (value == nullptr) {
    return out;
  }
  auto path = path_join(parent, key);
  if (!value->is_array()) {
    return fail(type_error(path, "an array of strings", *value));
  }
  out.reserve(value->size());
  for (std::size_t i = 0; i < value->size(); ++i) {
    MB_TRY_ASSIGN(auto item, as_string((*value)[i], path_index(path, i)));
    out.push_back(std::move(item));
  }
  return out;
}

Result<std::map<std::string, std::string>> get_string_map(const json& object, std::string_view key,
                                                          std::string_view parent) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, Presence::optional));
  std::map<std::string, std::string> out;
  if (value == nullptr) {
    return out;
  }
  auto path = path_join(parent, key);
  if (!value->is_object()) {
    return fail(type_error(path, "an object of strings", *value));
  }
  for (const auto& [name, item] : value->items()) {
    MB_TRY_ASSIGN(auto text, as_string(item, path_join(path, name)));
    out.emplace(name, std::move(text));
  }
  return out;
}

Result<std::set<std::string>> get_key_set(const json& object, std::string_view key,
                                          std::string_view parent) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, Presence::optional));
  std::set<std::string> out;
  if (value == nullptr) {
    return out;
  }
  auto path = path_join(parent, key);
  if (!value->is_object()) {
    return fail(type_error(path, "an object", *value));
  }
  for (const auto& [name, item] : value->items()) {
    if (!item.is_object() && !item.is_null()) {
      return fail(type_error(path_join(path, name), "an object ({})", item));
    }
    out.insert(name);
  }
  return out;
}

Result<Digest> to_digest(const json& value, std::string_view path) {
  MB_TRY_ASSIGN(auto text, as_string(value, path));
  auto digest = Digest::parse(text);
  if (!digest) {
    // The path goes into the message, as for every other field error; the code (corrupt or
    // unsupported) is kept.
    return fail(Error(digest.error().code(), std::string(path) + ": " + digest.error().message()));
  }
  return *digest;
}

Result<Digest> get_digest(const json& object, std::string_view key, std::string_view parent,
                          Presence presence) {
  MB_TRY_ASSIGN(const json* value, member(object, key, parent, presence));
  if (value == nullptr) {
    return Digest();
  }
  return to_digest(*value, path_join(parent, key));
}

std::string canonical_dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

constexpr int k_max_depth = 64;

// nlohmann's parser and dump() recurse per nesting level; a hostile blob of a million '['
// would overflow the stack. OCI documents nest a handful of levels, so refuse deep ones before
// parsing.
bool nesting_within_limit(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > k_max_depth) {
        return false;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

} // namespace

Result<json> parse_json(std::string_view text) {
  if (!nesting_within_limit(text)) {
    return fail(Code::corrupt,
                "invalid JSON: nested deeper than " + std::to_string(k_max_depth) + " levels");
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& error) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: …".
    return fail(Code::corrupt, std::string("invalid JSON: ") + error.what());
  }
}

} // namespace detail

template <typename T>
Result<T> parse(std::string_view text) {
  MB_TRY_ASSIGN(auto value, detail::parse_json(text));
  return from_json<T>(value);
}

template Result<Platform> parse<Platform>(std::string_view);
template Result<Descriptor> parse<Descriptor>(std::string_view);
template Result<ImageManifest> parse<ImageManifest>(std::string_view);
template Result<ImageIndex> parse<ImageIndex>(std::string_view);
template Result<ImageConfig> parse<ImageConfig>(std::string_view);

} // namespace minibuild::oci
