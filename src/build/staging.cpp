#include "staging.hpp"

#include "fs_ops.hpp"

#include <minibuild/base/in_root.hpp>
#include <minibuild/layer/apply.hpp>

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace minibuild::build {

namespace {

std::string image_path(const std::string& rel) {
  return "/" + rel;
}

std::string quoted_image(const std::string& rel) {
  return "\"" + image_path(rel) + "\"";
}

UniqueFd open_dir_component(int parent, const std::string& name) {
  return UniqueFd(::openat(parent, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

std::vector<std::string> split(const std::string& rel) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start < rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string::npos) {
      end = rel.size();
    }
    if (end > start) {
      parts.push_back(rel.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

std::size_t depth(const std::string& rel) {
  return static_cast<std::size_t>(std::count(rel.begin(), rel.end(), '/'));
}

} // namespace

Result<StagingTree> StagingTree::open(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return fail_errno(errno, "open staging directory \"" + dir + "\"");
  }
  return StagingTree(std::move(fd), dir);
}

Result<UniqueFd> StagingTree::ensure_implied(const std::string& rel, const BaseCheck& is_base) {
  UniqueFd current(::fcntl(m_root.get(), F_DUPFD_CLOEXEC, 0));
  if (!current) {
    return fail_errno(errno, "open staging directory");
  }
  std::string so_far;
  for (const std::string& name : split(rel)) {
    so_far = join_path(so_far, name);
    UniqueFd next = open_dir_component(current.get(), name);
    if (!next && errno == ENOENT) {
      if (::mkdirat(current.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail_errno(errno, "create directory " + quoted_image(so_far));
      }
      if (is_base && is_base(image_path(so_far))) {
        m_base_dirs.insert(so_far);
      } else {
        m_meta[so_far] = DirMeta{0755, std::nullopt};
      }
      ++m_created;
      next = open_dir_component(current.get(), name);
    }
    if (!next) {
      if (errno == ENOTDIR || errno == ELOOP) {
        return fail(Code::build_failed, "cannot copy to non-directory: " + quoted_image(so_far) +
                                            " is not a directory in what this step copies");
      }
      return fail_errno(errno, "open directory " + quoted_image(so_far));
    }
    current = std::move(next);
  }
  return current;
}

Result<UniqueFd> StagingTree::copied_dir(int parent, const std::string& rel,
                                         const std::string& name, const DirMeta& meta,
                                         bool overwrite, bool& created) {
  created = false;
  UniqueFd fd = open_dir_component(parent, name);
  if (!fd && errno == ENOENT) {
    if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail_errno(errno, "create directory " + quoted_image(rel));
    }
    created = true;
    ++m_created;
    m_base_dirs.erase(rel);
    m_meta[rel] = meta;
    fd = open_dir_component(parent, name);
  } else if (fd && overwrite) {
    m_base_dirs.erase(rel);
    m_meta[rel] = meta;
  }
  if (!fd) {
    if (errno == ENOTDIR || errno == ELOOP) {
      return fail(Code::build_failed, "cannot copy to non-directory: " + quoted_image(rel));
    }
    return fail_errno(errno, "open directory " + quoted_image(rel));
  }
  return fd;
}

Result<void> StagingTree::clear_for_file(int parent, const std::string& rel,
                                         const std::string& name) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return {};
    }
    return fail_errno(errno, "stat " + quoted_image(rel));
  }
  if (S_ISDIR(st.st_mode)) {
    return fail(Code::build_failed,
                "cannot replace directory " + quoted_image(rel) + " with a non-directory");
  }
  if (::unlinkat(parent, name.c_str(), 0) != 0) {
    return fail_errno(errno, "replace " + quoted_image(rel));
  }
  return {};
}

Result<void> StagingTree::remove_empty_dir(int parent, const std::string& rel,
                                           const std::string& name) {
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) {
    return fail_errno(errno, "remove empty directory " + quoted_image(rel));
  }
  m_meta.erase(rel);
  --m_created;
  return {};
}

Result<UniqueFd> StagingTree::open_existing(const std::string& rel) const {
  UniqueFd current(::fcntl(m_root.get(), F_DUPFD_CLOEXEC, 0));
  if (!current) {
    return fail_errno(errno, "open staging directory");
  }
  std::string so_far;
  for (const std::string& name : split(rel)) {
    so_far = join_path(so_far, name);
    UniqueFd next = open_dir_component(current.get(), name);
    if (!next) {
      return fail_errno(errno, "open directory " + quoted_image(so_far));
    }
    current = std::move(next);
  }
  return current;
}

Result<void> StagingTree::finish() {
  std::vector<std::pair<std::string, DirMeta>> pending(m_meta.begin(), m_meta.end());
  std::stable_sort(pending.begin(), pending.end(),
                   [](const auto& a, const auto& b) { return depth(a.first) > depth(b.first); });
  for (const auto& [rel, meta] : pending) {
    const auto slash = rel.rfind('/');
    const std::string parent_rel = slash == std::string::npos ? "" : rel.substr(0, slash);
    const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    MB_TRY_ASSIGN(UniqueFd parent, open_existing(parent_rel));
    if (::fchmodat(parent.get(), name.c_str(), meta.mode & 07777, 0) != 0) {
      return fail_errno(errno, "set the mode of " + quoted_image(rel));
    }
    if (meta.mtime) {
      const struct timespec times[2] = {*meta.mtime, *meta.mtime};
      if (::utimensat(parent.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail_errno(errno, "set the mtime of " + quoted_image(rel));
      }
    }
  }
  m_meta.clear();
  return {};
}

namespace {

constexpr const char* k_capability_xattr = "security.capability";

// give_owners(): a depth-first walk below the staging root (the root itself stands for "/",
// whose owner a COPY layer does not write).
class OwnerWalk {
public:
  OwnerWalk(std::string root, const layer::OwnerOverride& owners)
      : m_root(std::move(root)), m_owners(owners) {}

  Result<void> walk(int dir_fd, const std::string& rel) {
    UniqueFd listing_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!listing_fd) {
      return fail_errno(errno, "open " + quoted_image(rel));
    }
    DIR* listing = ::fdopendir(listing_fd.get());
    if (listing == nullptr) {
      return fail_errno(errno, "list " + quoted_image(rel));
    }
    (void)listing_fd.release(); // closedir() owns it now
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(listing)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") {
        names.push_back(name);
      }
    }
    const int read_errno = errno;
    ::closedir(listing);
    if (read_errno != 0) {
      return fail_errno(read_errno, "list " + quoted_image(rel));
    }
    for (const auto& name : names) {
      const std::string child = join_path(rel, name);
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail_errno(errno, "stat " + quoted_image(child));
      }
      MB_TRY(own(dir_fd, name, child, st));
      if (S_ISDIR(st.st_mode)) {
        UniqueFd sub(::openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) {
          return fail_errno(errno, "open " + quoted_image(child));
        }
        MB_TRY(walk(sub.get(), child));
      }
    }
    return {};
  }

private:
  layer::EntryOwner owner_of(const std::string& rel) const {
    const auto found = m_owners.by_path.find(rel);
    if (found != m_owners.by_path.end()) {
      return found->second;
    }
    return m_owners.all.value_or(layer::EntryOwner{});
  }

  Result<void> own(int dir_fd, const std::string& name, const std::string& rel,
                   const struct stat& st) {
    const layer::EntryOwner owner = owner_of(rel);
    if (st.st_uid == owner.uid && st.st_gid == owner.gid) {
      return {};
    }
    const bool regular = S_ISREG(st.st_mode);
    std::string capability;
    if (regular) {
      char value[256];
      const std::string path = m_root + "/" + rel;
      const ssize_t size = ::lgetxattr(path.c_str(), k_capability_xattr, value, sizeof value);
      if (size > 0) {
        capability.assign(value, static_cast<std::size_t>(size));
      }
    }
    if (::fchownat(dir_fd, name.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != EINVAL && errno != EPERM) {
        return fail_errno(errno, "chown " + quoted_image(rel));
      }
      // Single-id mode: the id does not exist here. Remember it as an unprivileged pull does.
      if (regular || S_ISDIR(st.st_mode)) {
        const std::string value = std::to_string(owner.uid) + ":" + std::to_string(owner.gid);
        (void)::lsetxattr((m_root + "/" + rel).c_str(), layer::k_owner_xattr, value.data(),
                          value.size(), 0);
      }
      return {};
    }
    if (S_ISLNK(st.st_mode)) {
      return {};
    }
    if ((st.st_mode & (S_ISUID | S_ISGID)) != 0 &&
        ::fchmodat(dir_fd, name.c_str(), st.st_mode & 07777, 0) != 0) {
      return fail_errno(errno, "restore the mode of " + quoted_image(rel));
    }
    if (!capability.empty() && ::lsetxattr((m_root + "/" + rel).c_str(), k_capability_xattr,
                                           capability.data(), capability.size(), 0) != 0) {
      return fail_errno(errno, "restore the file capabilities of " + quoted_image(rel));
    }
    return {};
  }

  std::string m_root;
  const layer::OwnerOverride& m_owners;
};

} // namespace

Result<void> give_owners(const std::string& tree, const layer::OwnerOverride& owners) {
  UniqueFd root(::open(tree.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    return fail_errno(errno, "open staging directory \"" + tree + "\"");
  }
  OwnerWalk walk(tree, owners);
  return walk.walk(root.get(), "");
}

} // namespace minibuild::build
