// The OCI whiteout names (image-spec layer.md, "Whiteouts").
#pragma once

#include <string_view>

namespace minibuild::layer {

/// `.wh.NAME` in a layer removes NAME of the lower layers from the same directory.
inline constexpr std::string_view k_whiteout_prefix = ".wh.";
/// Names that start with `.wh..wh.` are metadata of the whiteout scheme (aufs `.wh..wh.plnk`),
/// never file names.
inline constexpr std::string_view k_whiteout_meta_prefix = ".wh..wh.";
/// `.wh..wh..opq` in a directory hides every lower-layer child of that directory.
inline constexpr std::string_view k_opaque_whiteout = ".wh..wh..opq";

/// True when a file name (one path component) starts with the whiteout prefix.
constexpr bool is_whiteout_name(std::string_view name) {
  return name.substr(0, k_whiteout_prefix.size()) == k_whiteout_prefix;
}

} // namespace minibuild::layer
