// HttpHeaders: the small part of http.hpp that is not the libcurl transport.
#include <minibuild/registry/http.hpp>

#include <algorithm>
#include <cctype>

namespace minibuild::registry {
namespace {

bool same_name(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

} // namespace

void HttpHeaders::add(std::string name, std::string value) {
  m_entries.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::set(std::string_view name, std::string value) {
  remove(name);
  m_entries.emplace_back(std::string(name), std::move(value));
}

void HttpHeaders::remove(std::string_view name) {
  std::erase_if(m_entries, [&](const auto& entry) { return same_name(entry.first, name); });
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [key, value] : m_entries) {
    if (same_name(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::get_all(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : m_entries) {
    if (same_name(key, name)) {
      values.push_back(value);
    }
  }
  return values;
}

} // namespace minibuild::registry
