// Resolving untrusted paths inside a root directory (a layer's target, the build context, a COPY
// staging tree, an ADD extraction directory) without ever leaving it.
//
// With openat2(2) the kernel does it: RESOLVE_IN_ROOT treats the root as "/" for absolute
// symlink targets and "..", RESOLVE_NO_MAGICLINKS refuses /proc-style links (the design of the
// CVE-2018-15664 and CVE-2019-19921 fixes). The fallback (kernels before 5.6, or a seccomp profile
// answering ENOSYS/EPERM) walks one component at a time with openat(O_PATH | O_NOFOLLOW) and
// expands symlinks itself with the same in-root rules: an absolute target restarts at the root,
// ".." never climbs above it, and at most 40 links (the kernel's MAXSYMLINKS). Both return the
// same answers; the tests run both.
//
// Besides a descriptor, locate() reports the *physical* path (every symlink resolved, relative to
// the root): .dockerignore decisions are made on physical paths, as BuildKit makes them on the
// context it transferred.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>

#include <span>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <vector>

namespace minibuild {

/// How paths below a root are resolved.
enum class Resolution {
  /// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) when the kernel has it (Linux 5.6+), else
  /// the fallback walk. MINIBUILD_NO_OPENAT2=1 in the environment forces the fallback (tests, CI,
  /// like crun's no_openat2 shim).
  auto_detect,
  /// Always the user-space walk: openat(O_NOFOLLOW) one component at a time, symlink targets
  /// resolved inside the root.
  fallback,
};

/// Whether the last component, when it is a symlink, is followed (inside the root).
enum class FollowFinal { no, yes };

/// Whether symlink components may be crossed while resolving.
enum class Symlinks {
  follow_in_root, ///< follow them, resolving their targets inside the root
  refuse,         ///< fail with ELOOP at the first symlink (e.g. on the way to hardlink targets)
};

/// Whether open_dir() creates the directories that are missing.
enum class CreateMissing { no, yes };

/// An entry found below a root.
struct Located {
  UniqueFd parent;      ///< O_PATH descriptor of the directory that holds the entry
  std::string name;     ///< the entry's name in `parent`; empty when the entry is the root
  std::string physical; ///< path from the root with every symlink resolved; "" for the root
  struct stat st {};    ///< lstat of the entry
};

/// A directory found or created below a root.
struct OpenedDir {
  UniqueFd fd;          ///< O_PATH
  std::string physical; ///< path from the root with every symlink resolved; "" for the root
};

/// A root directory and how paths below it resolve. Move-only; owns the root descriptor.
class InRoot {
public:
  /// Opens the directory `dir` (trusted) as the root. Resolution::fallback, the environment
  /// variable MINIBUILD_NO_OPENAT2=1, or an openat2 probe failing with ENOSYS/EPERM select the
  /// fallback walk.
  static Result<InRoot> open(const std::string& dir, Resolution resolution);

  /// Finds `rel` (relative, '/'-separated; "", "." and ".." components allowed) below the root.
  /// Symlinks in the middle are followed inside the root; the final one when `follow` says so.
  /// Errors keep the errno: ENOENT/ENOTDIR when something is missing, ELOOP for too many links
  /// (or any link with Symlinks::refuse).
  Result<Located> locate(std::string_view rel, FollowFinal follow,
                         Symlinks symlinks = Symlinks::follow_in_root) const;

  /// Opens the directory `rel`, creating what is missing (mode 0755 before the umask) where the
  /// in-root resolution says it belongs, also behind a dangling symlink. With Symlinks::refuse
  /// any symlink on the way fails with ELOOP. The physical paths of the directories it created
  /// are appended to `created` when it is not null, outermost first.
  Result<OpenedDir> ensure_dir(std::string_view rel, Symlinks symlinks,
                               std::vector<std::string>* created = nullptr) const;

  /// Opens the directory named by `components` below the root as an O_PATH descriptor, without
  /// computing its physical path (one openat2 call on the fast path: for per-entry lookups such
  /// as a layer's). Each component is a name; empty ones and "." are skipped, ".." stays inside
  /// the root. With CreateMissing::yes, missing directories are created as ensure_dir() creates
  /// them. Errors keep the errno: ELOOP for a refused symlink or too many links, ENOTDIR for a
  /// non-directory, ENOENT for a missing one.
  Result<UniqueFd> open_dir(std::span<const std::string> components, Symlinks symlinks,
                            CreateMissing create) const;

  /// Opens a located directory for reading, or a located regular file for reading. The entry is
  /// reopened by name in its parent with O_NOFOLLOW and must still be the same inode.
  Result<UniqueFd> open_for_reading(const Located& entry) const;

  int root_fd() const { return m_root.get(); }
  bool uses_openat2() const { return m_openat2; }
  const std::string& path() const { return m_path; }

private:
  InRoot(UniqueFd root, std::string path, std::string proc_root, bool openat2)
      : m_root(std::move(root)), m_path(std::move(path)), m_proc_root(std::move(proc_root)),
        m_openat2(openat2) {}

  Result<Located> walk(std::string_view rel, FollowFinal follow, Symlinks symlinks,
                       std::vector<std::string>* created) const;
  Result<Located> locate_openat2(std::string_view rel, FollowFinal follow, Symlinks symlinks) const;
  /// Opens the directory `located` names (O_PATH); ENOTDIR when it is something else.
  Result<OpenedDir> open_located_dir(const Located& located) const;

  UniqueFd m_root;
  std::string m_path;
  std::string m_proc_root; ///< the root as /proc/self/fd shows it; empty when /proc is missing
  bool m_openat2 = false;
};

/// Joins two relative paths with one `/`; either may be empty.
std::string join_path(std::string_view a, std::string_view b);

} // namespace minibuild
