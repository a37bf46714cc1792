#include "tree_diff.hpp"

#include <minibuild/base/unique_fd.hpp>

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <tuple>
#include <unistd.h>

namespace minibuild::build {
namespace {

EntryState state_of(const struct stat& st) {
  EntryState state;
  state.inode = st.st_ino;
  state.mode = st.st_mode;
  state.uid = st.st_uid;
  state.gid = st.st_gid;
  state.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
  state.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  state.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  return state;
}

Result<void> walk(int dir_fd, dev_t device, const std::string& prefix, TreeSnapshot& out) {
  const int listing = ::dup(dir_fd);
  DIR* dir = listing < 0 ? nullptr : ::fdopendir(listing);
  if (dir == nullptr) {
    if (listing >= 0) {
      ::close(listing);
    }
    return fail_errno(errno, "read directory \"/" + prefix + "\"");
  }
  std::vector<std::string> subdirs;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ::closedir(dir);
      return fail_errno(errno, "stat \"/" + prefix + name + "\"");
    }
    const std::string rel = prefix + name;
    out[rel] = state_of(st);
    if (S_ISDIR(st.st_mode) && st.st_dev == device) {
      subdirs.push_back(name);
    }
  }
  ::closedir(dir);
  for (const auto& name : subdirs) {
    UniqueFd child(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!child) {
      return fail_errno(errno, "open \"/" + prefix + name + "\"");
    }
    MB_TRY(walk(child.get(), device, prefix + name + "/", out));
  }
  return {};
}

std::string parent_of(const std::string& rel) {
  const std::size_t slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

Result<void> copy_metadata(const std::string& source, const std::string& target,
                           const struct stat& st) {
  if (::lchown(target.c_str(), st.st_uid, st.st_gid) != 0 && errno != EPERM && errno != EINVAL) {
    return fail_errno(errno, "chown \"" + target + "\"");
  }
  if (!S_ISLNK(st.st_mode) && ::chmod(target.c_str(), st.st_mode & 07777) != 0) {
    return fail_errno(errno, "chmod \"" + target + "\"");
  }
  // Extended attributes (capabilities, ACLs) travel with the entry.
  char names[4096];
  const ssize_t length = ::llistxattr(source.c_str(), names, sizeof names);
  for (ssize_t offset = 0; length > 0 && offset < length;) {
    const char* name = names + offset;
    offset += static_cast<ssize_t>(std::char_traits<char>::length(name)) + 1;
    char value[65536];
    const ssize_t size = ::lgetxattr(source.c_str(), name, value, sizeof value);
    if (size >= 0) {
      ::lsetxattr(target.c_str(), name, value, static_cast<std::size_t>(size), 0);
    }
  }
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, target.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno(errno, "set the times of \"" + target + "\"");
  }
  return {};
}

class Stager {
public:
  Stager(std::string root, std::string staging)
      : m_root(std::move(root)), m_staging(std::move(staging)) {}

  // Creates `rel` in the staging tree as it is in the root (parents first).
  Result<void> stage(const std::string& rel) {
    if (m_staged.contains(rel)) {
      return {};
    }
    const std::string parent = parent_of(rel);
    if (!parent.empty()) {
      MB_TRY(stage(parent));
    }
    const std::string source = m_root + "/" + rel;
    const std::string target = m_staging + "/" + rel;
    struct stat st {};
    if (::lstat(source.c_str(), &st) != 0) {
      return fail_errno(errno, "stat \"" + source + "\"");
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(target.c_str(), 0700) != 0) {
        return fail_errno(errno, "mkdir \"" + target + "\"");
      }
      m_directories.emplace_back(source, target, st);
    } else if (S_ISREG(st.st_mode)) {
      if (::link(source.c_str(), target.c_str()) != 0) {
        return fail_errno(errno, "link \"" + source + "\"");
      }
    } else if (S_ISLNK(st.st_mode)) {
      std::string link_target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      const ssize_t n = ::readlink(source.c_str(), link_target.data(), link_target.size());
      if (n < 0) {
        return fail_errno(errno, "readlink \"" + source + "\"");
      }
      link_target.resize(static_cast<std::size_t>(n));
      if (::symlink(link_target.c_str(), target.c_str()) != 0) {
        return fail_errno(errno, "symlink \"" + target + "\"");
      }
      MB_TRY(copy_metadata(source, target, st));
    } else {
      if (::mknod(target.c_str(), st.st_mode, st.st_rdev) != 0) {
        return fail_errno(errno, "mknod \"" + target + "\"");
      }
      MB_TRY(copy_metadata(source, target, st));
    }
    m_staged.insert(rel);
    return {};
  }

  Result<void> whiteout(const std::string& rel) {
    const std::string parent = parent_of(rel);
    if (!parent.empty()) {
      MB_TRY(stage(parent));
    }
    const std::string target = m_staging + "/" + rel;
    if (::mknod(target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return fail_errno(errno, "mknod whiteout \"" + target + "\"");
    }
    m_staged.insert(rel);
    return {};
  }

  Result<void> opaque(const std::string& rel) {
    MB_TRY(stage(rel));
    const std::string target = m_staging + "/" + rel;
    if (::setxattr(target.c_str(), "user.overlay.opaque", "y", 1, 0) != 0) {
      return fail_errno(errno, "mark \"" + target + "\" opaque");
    }
    return {};
  }

  // Directory metadata last, deepest first: creating children changed their mtimes.
  Result<void> finish() {
    for (auto it = m_directories.rbegin(); it != m_directories.rend(); ++it) {
      MB_TRY(copy_metadata(std::get<0>(*it), std::get<1>(*it), std::get<2>(*it)));
    }
    return {};
  }

private:
  std::string m_root;
  std::string m_staging;
  std::set<std::string> m_staged;
  std::vector<std::tuple<std::string, std::string, struct stat>> m_directories;
};

} // namespace

Result<TreeSnapshot> snapshot_tree(const std::string& root) {
  UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    return fail_errno(errno, "open \"" + root + "\"");
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0) {
    return fail_errno(errno, "stat \"" + root + "\"");
  }
  TreeSnapshot snapshot;
  MB_TRY(walk(dir.get(), st.st_dev, "", snapshot));
  return snapshot;
}

Result<TreeChanges> stage_changes(const std::string& root, const TreeSnapshot& before,
                                  const std::string& staging) {
  MB_TRY_ASSIGN(TreeSnapshot after, snapshot_tree(root));
  Stager stager(root, staging);
  TreeChanges changes;
  for (const auto& [rel, state] : after) {
    const auto old = before.find(rel);
    if (old != before.end() && old->second == state) {
      continue;
    }
    // A directory whose only change is a child's is staged as that child's parent anyway;
    // staging it here too keeps its new metadata (mtime) in the layer, as overlay does.
    MB_TRY(stager.stage(rel));
    ++changes.changed;
  }
  for (const auto& [rel, state] : before) {
    if (after.contains(rel)) {
      continue;
    }
    const std::string parent = parent_of(rel);
    if (!parent.empty()) {
      const auto now = after.find(parent);
      if (now == after.end()) {
        continue; // the whole directory went: one whiteout for it is enough
      }
      if (!S_ISDIR(now->second.mode)) {
        continue; // a file replaced the directory: its entry removes the old tree
      }
      if (now->second.inode != before.at(parent).inode) {
        // The directory was removed and made again: it hides all it held before.
        MB_TRY(stager.opaque(parent));
        continue;
      }
    }
    MB_TRY(stager.whiteout(rel));
    ++changes.deleted;
  }
  MB_TRY(stager.finish());
  return changes;
}

} // namespace minibuild::build
