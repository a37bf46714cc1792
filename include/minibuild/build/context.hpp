// The build context: the directory COPY and ADD read from, seen the way BuildKit sees it.
//
// BuildKit transfers the context filtered by .dockerignore and then resolves every COPY source
// inside what it received. minibuild does not copy the context anywhere; it opens the directory
// once and applies the same rules on every lookup:
//   - Confinement: a source path is cleaned first (`..` cannot climb above the context root, an
//     absolute source is relative to it), then resolved below the root with symlinks followed as
//     if the root were `/` (openat2 RESOLVE_IN_ROOT, or an equivalent walk where the kernel lacks
//     it). A symlink pointing outside the context therefore resolves to a path inside it (usually
//     a missing one), never to a file outside.
//   - Exclusion: a path excluded by the ignore file does not exist for COPY/ADD, unless it is a
//     directory an exception (`!pattern`) re-includes something below. Decisions are made on the
//     physical path (symlinks resolved), top-down, exactly as BuildKit's walker decides them.
//   - The ignore file is `<Dockerfile>.dockerignore` next to the Dockerfile when that exists,
//     else `.dockerignore` at the context root (BuildKit's precedence). The builder reads the
//     Dockerfile by its own path, so excluding it or the ignore file hides them from COPY only.
// The same class serves as the source of `COPY --from=<stage>` with IgnoreFiles::none.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/in_root.hpp>
#include <minibuild/dockerfile/dockerignore.hpp>

#include <memory>
#include <optional>
#include <string>

namespace minibuild::build {

/// How paths below a root are resolved (openat2 or the fallback walk; see base/in_root.hpp).
using minibuild::Resolution;

enum class IgnoreFiles {
  auto_detect, ///< `<Dockerfile>.dockerignore`, else `.dockerignore` (see above)
  none,        ///< nothing is excluded (a stage's root filesystem)
};

struct ContextOptions {
  /// The Dockerfile's path as the user gave it; `<path>.dockerignore` is looked up beside it.
  /// Empty or "-" (standard input): only the context's `.dockerignore` applies.
  std::string dockerfile_path;
  IgnoreFiles ignore = IgnoreFiles::auto_detect;
  Resolution resolution = Resolution::auto_detect;
};

/// An opened build context. Move-only; holds a descriptor of the context root for its lifetime,
/// so renaming the directory afterwards does not change what is read. Lookups are const and do
/// not modify anything; one context may serve several COPY steps, one at a time per thread.
class BuildContext {
public:
  /// Opens `dir` (which must be a directory) and loads the ignore file. Fails with
  /// Code::not_found when `dir` is missing, Code::dockerfile for a malformed ignore file (with
  /// its line as the location), Code::unsupported for a pattern minibuild cannot evaluate.
  static Result<BuildContext> open(const std::string& dir, const ContextOptions& options = {});

  BuildContext(BuildContext&&) noexcept;
  BuildContext& operator=(BuildContext&&) noexcept;
  ~BuildContext();

  /// The directory as given to open().
  const std::string& path() const;
  /// The ignore file in effect ("" when none): its path as opened, for messages.
  const std::string& ignore_file() const;
  /// The compiled ignore patterns, when an ignore file was loaded.
  const std::optional<dockerfile::IgnoreMatcher>& ignore() const;
  /// True when lookups use openat2 (false: the fallback walk).
  bool uses_openat2() const;

  /// Whether the physical path `rel` (relative to the root, '/'-separated) is part of the
  /// context as BuildKit would transfer it: not excluded, or an excluded directory below which
  /// an exception re-includes an entry. Fails with Code::not_found when `rel` does not exist.
  Result<bool> is_visible(const std::string& rel) const;

  struct Impl; ///< private to src/build
  const Impl& impl() const { return *m_impl; }

private:
  explicit BuildContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

} // namespace minibuild::build
