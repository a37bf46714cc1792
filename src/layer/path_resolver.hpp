// Resolving untrusted relative paths inside a root directory, never outside it.
//
// Every directory an archive entry names is opened through a RootResolver. With openat2() it is
// one syscall: RESOLVE_IN_ROOT makes the kernel treat the root as "/" for absolute symlinks and
// "..", RESOLVE_NO_MAGICLINKS refuses /proc-style links (openat2(2); the design of
// CVE-2018-15664 and CVE-2019-19921 fixes). Without openat2 (Linux < 5.6, or a seccomp profile
// that answers ENOSYS/EPERM), the fallback walks one component at a time with
// openat(O_PATH | O_NOFOLLOW | O_DIRECTORY) and expands symlink components itself, with the
// same in-root semantics: an absolute target restarts at the root, ".." never goes above it,
// and 40 links at most (like the kernel's MAXSYMLINKS).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/apply.hpp>

#include <span>
#include <string>

namespace minibuild::layer {

/// Whether symlink components may be crossed while resolving.
enum class Symlinks {
  follow_in_root, ///< follow them, resolving their targets inside the root
  refuse,         ///< fail with ELOOP at the first symlink component (hardlink targets)
};

enum class CreateMissing { no, yes };

/// A root directory and the way paths below it are resolved. Move-only (owns the root fd).
class RootResolver {
public:
  /// Opens `root` (which must be a directory; the path itself is trusted) and decides between
  /// openat2 and the fallback: `PathResolution::fallback`, MINIBUILD_NO_OPENAT2=1, or an openat2
  /// probe that fails with ENOSYS or EPERM select the fallback.
  static Result<RootResolver> open(const std::string& root, PathResolution resolution);

  /// The root directory (O_PATH).
  int root_fd() const { return m_root.get(); }
  bool uses_openat2() const { return m_openat2; }

  /// Opens the directory named by `components` below the root as an O_PATH descriptor. Each
  /// component is a plain name (no '/', not empty); "." and ".." are handled as the kernel's
  /// RESOLVE_IN_ROOT does, though callers pass archive paths that never contain "..". With
  /// CreateMissing::yes, missing directories are created (0755, owned by the caller) where the
  /// in-root resolution says they belong, also behind a dangling symlink. Errors carry the
  /// errno: ELOOP for a refused symlink, ENOTDIR for a non-directory component, ENOENT.
  Result<UniqueFd> open_dir(std::span<const std::string> components, Symlinks symlinks,
                            CreateMissing create) const;

private:
  explicit RootResolver(UniqueFd root, bool openat2)
      : m_root(std::move(root)), m_openat2(openat2) {}
  Result<UniqueFd> open_with_openat2(std::span<const std::string> components,
                                     Symlinks symlinks) const;
  Result<UniqueFd> walk(std::span<const std::string> components, Symlinks symlinks,
                        CreateMissing create) const;

  UniqueFd m_root;
  bool m_openat2 = false;
};

} // namespace minibuild::layer
