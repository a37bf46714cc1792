// The reproducible tar of a directory tree (docs/layers.md, "Format").
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/layer/id_map.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace minibuild::layer {

struct TarWriterOptions {
  TreeKind kind = TreeKind::plain;
  std::optional<std::int64_t> source_date_epoch;
  IdMap id_map;         ///< host -> container
  OwnerOverride owners; ///< wins over the files' owners and the id map
};

struct TarWriterStats {
  std::uint64_t entries = 0;
  std::vector<std::string> warnings;
};

/// Writes the tar of the tree at `root` (without an entry for the root itself) into `out`,
/// on the calling thread. Entries come in walk order: a directory's header, then (overlay
/// mode) its opaque marker and whiteouts, then its other children by name, bytewise, each
/// directory followed by its own subtree. Symlinks are never followed; every open is relative
/// to the parent directory's descriptor with O_NOFOLLOW. Errors name the path.
Result<TarWriterStats> write_tree_tar(const std::string& root, const TarWriterOptions& options,
                                      ByteSink& out);

} // namespace minibuild::layer
