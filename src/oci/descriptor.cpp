#include "json_read.hpp"

#include <minibuild/oci/descriptor.hpp>

#include <array>

namespace minibuild::oci {

namespace {

constexpr std::string_view k_base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    auto b0 = static_cast<unsigned char>(bytes[i]);
    auto b1 = static_cast<unsigned char>(bytes[i + 1]);
    auto b2 = static_cast<unsigned char>(bytes[i + 2]);
    out += k_base64_alphabet[b0 >> 2];
    out += k_base64_alphabet[((b0 & 0x3) << 4) | (b1 >> 4)];
    out += k_base64_alphabet[((b1 & 0xf) << 2) | (b2 >> 6)];
    out += k_base64_alphabet[b2 & 0x3f];
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    auto b0 = static_cast<unsigned char>(bytes[i]);
    out += k_base64_alphabet[b0 >> 2];
    out += k_base64_alphabet[(b0 & 0x3) << 4];
    out += "==";
  } else if (rest == 2) {
    auto b0 = static_cast<unsigned char>(bytes[i]);
    auto b1 = static_cast<unsigned char>(bytes[i + 1]);
    out += k_base64_alphabet[b0 >> 2];
    out += k_base64_alphabet[((b0 & 0x3) << 4) | (b1 >> 4)];
    out += k_base64_alphabet[(b1 & 0xf) << 2];
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return fail(Code::corrupt, "invalid base64: length is not a multiple of 4 (missing padding?)");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    std::array<int, 4> values{};
    int padding = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        ++padding;
        values[j] = 0;
        continue;
      }
      if (padding > 0 || (values[j] = base64_value(c)) < 0) {
        return fail(Code::corrupt,
                    "invalid base64: unexpected character at offset " + std::to_string(i + j));
      }
    }
    unsigned int group = (static_cast<unsigned int>(values[0]) << 18) |
                         (static_cast<unsigned int>(values[1]) << 12) |
                         (static_cast<unsigned int>(values[2]) << 6) |
                         static_cast<unsigned int>(values[3]);
    out += static_cast<char>((group >> 16) & 0xff);
    if (padding < 2) {
      out += static_cast<char>((group >> 8) & 0xff);
    }
    if (padding < 1) {
      out += static_cast<char>(group & 0xff);
    }
    // Canonical encodings leave the bits under the padding zero; Go's StdEncoding refuses
    // others, and so do we, so one byte string has one text.
    if ((padding == 1 && (group & 0xff) != 0) || (padding == 2 && (group & 0xffff) != 0)) {
      return fail(Code::corrupt, "invalid base64: non-zero bits before the padding");
    }
  }
  return out;
}

Descriptor make_descriptor(std::string media_type, std::string_view content) {
  Descriptor descriptor;
  descriptor.media_type = std::move(media_type);
  descriptor.digest = sha256_of(content);
  descriptor.size = static_cast<std::int64_t>(content.size());
  return descriptor;
}

namespace detail {

Result<Descriptor> read_descriptor(const json& value, std::string_view path) {
  MB_TRY(expect_object(value, path, "descriptor"));
  Descriptor descriptor;
  MB_TRY_ASSIGN(descriptor.media_type, get_string(value, "mediaType", path, Presence::required));
  MB_TRY_ASSIGN(descriptor.digest, get_digest(value, "digest", path, Presence::required));
  MB_TRY_ASSIGN(descriptor.size, get_int64(value, "size", path, Presence::required));
  if (descriptor.size < 0) {
    return fail(
        field_error(path_join(path, "size"), "negative size " + std::to_string(descriptor.size)));
  }
  MB_TRY_ASSIGN(descriptor.urls, get_string_array(value, "urls", path, Presence::optional));
  MB_TRY_ASSIGN(descriptor.annotations, get_string_map(value, "annotations", path));
  MB_TRY_ASSIGN(auto data, get_string(value, "data", path, Presence::optional));
  if (!data.empty()) {
    auto decoded = base64_decode(data);
    if (!decoded) {
      return fail(field_error(path_join(path, "data"), decoded.error().message()));
    }
    descriptor.data = std::move(*decoded);
  }
  MB_TRY_ASSIGN(const json* platform, member(value, "platform", path, Presence::optional));
  if (platform != nullptr) {
    MB_TRY_ASSIGN(descriptor.platform, read_platform(*platform, path_join(path, "platform")));
  }
  MB_TRY_ASSIGN(descriptor.artifact_type,
                get_string(value, "artifactType", path, Presence::optional));
  return descriptor;
}

} // namespace detail

template <>
Result<Descriptor> from_json<Descriptor>(const nlohmann::json& json) {
  return detail::read_descriptor(json, "");
}

nlohmann::json to_json(const Descriptor& descriptor) {
  nlohmann::json out = nlohmann::json::object();
  out["mediaType"] = descriptor.media_type;
  out["digest"] = descriptor.digest.to_string();
  out["size"] = descriptor.size;
  if (!descriptor.urls.empty()) {
    out["urls"] = descriptor.urls;
  }
  if (!descriptor.annotations.empty()) {
    out["annotations"] = descriptor.annotations;
  }
  if (!descriptor.data.empty()) {
    out["data"] = base64_encode(descriptor.data);
  }
  if (descriptor.platform) {
    out["platform"] = to_json(*descriptor.platform);
  }
  if (!descriptor.artifact_type.empty()) {
    out["artifactType"] = descriptor.artifact_type;
  }
  return out;
}

std::string serialize(const Descriptor& descriptor) {
  return detail::canonical_dump(to_json(descriptor));
}

} // namespace minibuild::oci
