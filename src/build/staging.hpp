// The staging tree of one COPY/ADD: a directory minibuild creates and alone writes to.
//
// Every path is walked from the staging root one component at a time with O_NOFOLLOW, so a
// symlink the step itself copied (`x -> /etc`) is never followed by a later write; a directory
// that would have to go where a non-directory already is fails, as in BuildKit ("cannot copy to
// non-directory"). Directory modes and mtimes are recorded and applied by finish(), deepest
// first, so adding entries neither changes a directory's mtime afterwards nor is blocked by a
// mode without owner write.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/id_map.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <time.h>

namespace minibuild::build {

struct DirMeta {
  std::uint32_t mode = 0755;
  std::optional<struct timespec> mtime; ///< nullopt: left as the filesystem set it
};

class StagingTree {
public:
  /// Opens the existing directory `dir`, which must be empty and writable.
  static Result<StagingTree> open(const std::string& dir);

  /// Decides whether an absolute image path is an existing directory of the base image.
  using BaseCheck = std::function<bool(const std::string& path)>;

  /// Opens (O_PATH) the directory at staging-relative `rel` ("" is the root), creating missing
  /// components as implied parents: 0755, or listed as base directories when `is_base` says the
  /// image already has them.
  Result<UniqueFd> ensure_implied(const std::string& rel, const BaseCheck& is_base);

  /// Makes `name` in `parent` (staging-relative path `rel`) a directory copied from a source
  /// directory: a new one gets `meta`; an existing one keeps its metadata unless `overwrite`.
  /// Sets `created`. Returns an O_PATH descriptor.
  Result<UniqueFd> copied_dir(int parent, const std::string& rel, const std::string& name,
                              const DirMeta& meta, bool overwrite, bool& created);

  /// Removes what is at `name` in `parent` so that a non-directory can be created there; fails
  /// for a directory ("cannot replace directory ... with a file").
  Result<void> clear_for_file(int parent, const std::string& rel, const std::string& name);

  /// Removes the empty directory `rel` created by copied_dir() (a directory that was only
  /// entered because exclusion exceptions might have kept something below it).
  Result<void> remove_empty_dir(int parent, const std::string& rel, const std::string& name);

  /// Opens an existing staging directory (O_PATH) without creating anything.
  Result<UniqueFd> open_existing(const std::string& rel) const;

  /// Applies the recorded directory modes and mtimes, deepest first.
  Result<void> finish();

  /// Staging-relative paths of directories that stand for base image directories.
  const std::set<std::string>& base_dirs() const { return m_base_dirs; }
  std::uint64_t directories_created() const { return m_created; }
  int root_fd() const { return m_root.get(); }
  const std::string& path() const { return m_path; }

private:
  StagingTree(UniqueFd root, std::string path) : m_root(std::move(root)), m_path(std::move(path)) {}

  UniqueFd m_root;
  std::string m_path;
  std::map<std::string, DirMeta> m_meta;
  std::set<std::string> m_base_dirs;
  std::uint64_t m_created = 0;
};

/// Gives every entry of the exported staging tree `tree` the owner its layer records
/// (`owners.by_path`, else `owners.all`), so the tree can become the layer's unpacked lower
/// dir (LayerStore::adopt) instead of being deleted and unpacked again from the blob. Entries
/// already owned right are not touched. chown(2) clears set-id bits and drops
/// security.capability, so both are put back. An id this user namespace cannot hold (single-id
/// mode: EINVAL/EPERM) is recorded in layer::k_owner_xattr on directories and regular files, as
/// an unprivileged pull does.
Result<void> give_owners(const std::string& tree, const layer::OwnerOverride& owners);

} // namespace minibuild::build
