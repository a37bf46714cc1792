// Small text helpers the registry module's HTTP code shares (private to src/registry).
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace minibuild::registry::text {

/// ASCII lower case (header names, schemes, hosts: never locale-dependent).
inline std::string lower(std::string_view text) {
  std::string out(text);
  std::ranges::transform(out, out.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// ASCII case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

/// Without leading and trailing spaces and tabs (HTTP's optional whitespace, RFC 9110 §5.6.3),
/// and CR/LF (libcurl hands header lines over with their line end).
inline std::string_view trim(std::string_view text) {
  constexpr std::string_view k_space = " \t\r\n";
  while (!text.empty() && k_space.find(text.front()) != std::string_view::npos) {
    text.remove_prefix(1);
  }
  while (!text.empty() && k_space.find(text.back()) != std::string_view::npos) {
    text.remove_suffix(1);
  }
  return text;
}

} // namespace minibuild::registry::text
