// The vfs storage driver's change detection: a RUN step runs on a plain copy of the root
// filesystem, so its layer is found by comparing the tree before and after the step.
//
// A snapshot records, per path, what any change to an entry moves: the inode, ctime (every
// write, chmod, chown, xattr change or rename updates it), mtime, size, mode and owners. The
// diff builds a tree in overlay-upper form (new and changed entries, 0/0 character-device
// whiteouts for deleted ones) that layer::export_layer(TreeKind::overlay_upper) turns into the
// layer: the same path as the overlay driver from there on.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace minibuild::build {

struct EntryState {
  ino_t inode = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;

  bool operator==(const EntryState&) const = default;
};

/// Every entry below `root` (relative paths, "a/b"), symlinks not followed, other filesystems
/// mounted below `root` not entered.
using TreeSnapshot = std::map<std::string, EntryState>;

Result<TreeSnapshot> snapshot_tree(const std::string& root);

/// What stage_changes() found.
struct TreeChanges {
  std::size_t changed = 0; ///< new or changed entries staged
  std::size_t deleted = 0; ///< whiteouts staged
};

/// Fills the empty directory `staging` (same filesystem as `root`) with the difference between
/// `before` and the tree at `root` now: changed and new regular files are hard-linked (no
/// copy), directories, symlinks and special files re-created with their metadata, parents of
/// changed entries added with the metadata they have in `root`; a deleted entry becomes a 0/0
/// character device (a whiteout), except below a directory that is itself deleted.
Result<TreeChanges> stage_changes(const std::string& root, const TreeSnapshot& before,
                                  const std::string& staging);

} // namespace minibuild::build
