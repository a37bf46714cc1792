// HttpHeaders: the small part of http.hpp that is not the libcurl transport.
#include "text.hpp"

#include <minibuild/registry/http.hpp>

#include <algorithm>
#include <cctype>

namespace minibuild::registry {

void HttpHeaders::add(std::string name, std::string value) {
  m_entries.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::set(std::string_view name, std::string value) {
  remove(name);
  m_entries.emplace_back(std::string(name), std::move(value));
}

void HttpHeaders::remove(std::string_view name) {
  std::erase_if(m_entries, [&](const auto& entry) { return text::iequals(entry.first, name); });
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [key, value] : m_entries) {
    if (text::iequals(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::get_all(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : m_entries) {
    if (text::iequals(key, name)) {
      values.push_back(value);
    }
  }
  return values;
}

} // namespace minibuild::registry
