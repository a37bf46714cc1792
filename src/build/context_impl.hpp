// BuildContext internals shared by the COPY/ADD engine.
#pragma once

#include "path_filter.hpp"

#include <minibuild/base/in_root.hpp>
#include <minibuild/build/context.hpp>

#include <optional>
#include <string>

namespace minibuild::build {

struct BuildContext::Impl {
  InRoot root;
  std::string path;
  std::string ignore_file;
  std::optional<dockerfile::IgnoreMatcher> ignore;

  PathFilter filter() const { return ignore ? PathFilter(&*ignore) : PathFilter(); }

  /// Decides `rel` (physical) by walking its components from the root, as the context walker
  /// reaches it. `is_dir` is the type of the last component.
  Result<PathDecision> decide(std::string_view rel, bool is_dir) const {
    return decide_path(filter(), rel, is_dir);
  }

  /// Whether a located entry is in the transferred context (see BuildContext::is_visible).
  Result<bool> visible(const Located& entry) const;

  /// Whether the directory at physical path `rel`, excluded itself, holds a kept entry.
  Result<bool> has_kept_descendant(int dirfd, const std::string& rel,
                                   const FilterState& state) const;
};

} // namespace minibuild::build
