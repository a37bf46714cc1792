#include <minibuild/build/cache_key.hpp>

namespace minibuild::build {

CacheKey::CacheKey(std::string_view kind) {
  add("version", static_cast<std::int64_t>(k_cache_key_version));
  add("kind", kind);
}

CacheKey& CacheKey::add(std::string_view tag, std::string_view value) {
  m_text += 'T';
  m_text += tag;
  m_text += ' ';
  m_text += std::to_string(value.size());
  m_text += ':';
  m_text += value;
  m_text += '\n';
  return *this;
}

CacheKey& CacheKey::add(std::string_view tag, std::int64_t value) {
  return add(tag, std::to_string(value));
}

CacheKey& CacheKey::add_list(std::string_view tag, const std::vector<std::string>& values) {
  add(tag, static_cast<std::int64_t>(values.size()));
  for (const auto& value : values) {
    add("item", value);
  }
  return *this;
}

oci::Digest CacheKey::digest() const {
  return oci::sha256_of(m_text);
}

} // namespace minibuild::build
