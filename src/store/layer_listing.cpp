#include <minibuild/base/unique_fd.hpp>
#include <minibuild/store/layer_listing.hpp>

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace minibuild::store {

namespace {

class ListingHasher {
public:
  // Tag, length and value: no two different entries can produce the same byte stream
  // (ccache's hash_delimiter idea).
  void field(std::string_view tag, std::string_view value) {
    m_hasher.update(tag);
    m_hasher.update("=");
    m_hasher.update(std::to_string(value.size()));
    m_hasher.update(":");
    m_hasher.update(value);
    m_hasher.update("\n");
  }
  void field(std::string_view tag, std::uint64_t value) { field(tag, std::to_string(value)); }
  oci::Digest finish() { return m_hasher.finish(); }

private:
  oci::Sha256Hasher m_hasher;
};

std::string_view type_name(mode_t mode) {
  switch (mode & S_IFMT) {
  case S_IFREG:
    return "file";
  case S_IFDIR:
    return "dir";
  case S_IFLNK:
    return "symlink";
  case S_IFCHR:
    return "char";
  case S_IFBLK:
    return "block";
  case S_IFIFO:
    return "fifo";
  case S_IFSOCK:
    return "socket";
  default:
    return "unknown";
  }
}

Result<void> hash_xattrs(ListingHasher& hasher, const std::string& path) {
  ssize_t length = ::llistxattr(path.c_str(), nullptr, 0);
  if (length < 0) {
    if (errno == ENOTSUP) {
      return {};
    }
    return fail_errno(errno, "list xattrs of \"" + path + "\"");
  }
  std::string names(static_cast<std::size_t>(length), '\0');
  length = ::llistxattr(path.c_str(), names.data(), names.size());
  if (length < 0) {
    return fail_errno(errno, "list xattrs of \"" + path + "\"");
  }
  names.resize(static_cast<std::size_t>(length));
  std::vector<std::string> sorted;
  for (std::size_t start = 0; start < names.size();) {
    const std::size_t end = names.find('\0', start);
    std::string name = names.substr(start, end - start);
    if (!name.empty() && name != "security.selinux") {
      sorted.push_back(std::move(name));
    }
    start = end == std::string::npos ? names.size() : end + 1;
  }
  std::sort(sorted.begin(), sorted.end());
  for (const auto& name : sorted) {
    ssize_t size = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) {
      return fail_errno(errno, "read xattr " + name + " of \"" + path + "\"");
    }
    std::string value(static_cast<std::size_t>(size), '\0');
    size = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (size < 0) {
      return fail_errno(errno, "read xattr " + name + " of \"" + path + "\"");
    }
    value.resize(static_cast<std::size_t>(size));
    hasher.field("xattr", name);
    hasher.field("value", value);
  }
  return {};
}

Result<void> hash_content(ListingHasher& hasher, int dir_fd, const std::string& name,
                          const std::string& shown, const struct stat& st) {
  if (static_cast<std::uint64_t>(st.st_size) <= k_listing_hash_limit) {
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd) {
      oci::Sha256Hasher content;
      std::vector<char> buffer(64 * 1024);
      for (;;) {
        const ssize_t count = ::read(fd.get(), buffer.data(), buffer.size());
        if (count < 0) {
          if (errno == EINTR) {
            continue;
          }
          return fail_errno(errno, "read \"" + shown + "\"");
        }
        if (count == 0) {
          break;
        }
        content.update(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
      }
      hasher.field("sha256", content.finish().hex());
      return {};
    }
    // A rootless owner cannot open its own mode-0000 files (images ship some, e.g.
    // /etc/shadow); fall back to the mtime, which is just as deterministic for us.
    if (errno != EACCES && errno != EPERM) {
      return fail_errno(errno, "open \"" + shown + "\"");
    }
  }
  hasher.field("mtime", static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000ULL +
                            static_cast<std::uint64_t>(st.st_mtim.tv_nsec));
  return {};
}

Result<void> walk(ListingHasher& hasher, ContentListing& listing, int dir_fd,
                  const std::string& dir_path, const std::string& rel_prefix) {
  UniqueFd list_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!list_fd) {
    return fail_errno(errno, "open \"" + dir_path + "\"");
  }
  DIR* dir = ::fdopendir(list_fd.get());
  if (dir == nullptr) {
    return fail_errno(errno, "opendir \"" + dir_path + "\"");
  }
  list_fd.release();
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  const int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) {
    return fail_errno(read_errno, "readdir \"" + dir_path + "\"");
  }
  std::sort(names.begin(), names.end());

  for (const auto& name : names) {
    const std::string path = dir_path + "/" + name;
    const std::string rel = rel_prefix.empty() ? name : rel_prefix + "/" + name;
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "stat \"" + path + "\"");
    }
    ++listing.entries;
    hasher.field("path", rel);
    hasher.field("type", type_name(st.st_mode));
    hasher.field("mode", static_cast<std::uint64_t>(st.st_mode & 07777));
    hasher.field("uid", static_cast<std::uint64_t>(st.st_uid));
    hasher.field("gid", static_cast<std::uint64_t>(st.st_gid));
    switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      listing.size += static_cast<std::uint64_t>(st.st_size);
      hasher.field("size", static_cast<std::uint64_t>(st.st_size));
      MB_TRY(hash_content(hasher, dir_fd, name, path, st));
      break;
    case S_IFLNK: {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      const ssize_t length = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (length < 0) {
        return fail_errno(errno, "readlink \"" + path + "\"");
      }
      target.resize(static_cast<std::size_t>(length));
      hasher.field("target", target);
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
      hasher.field("rdev",
                   std::to_string(major(st.st_rdev)) + "," + std::to_string(minor(st.st_rdev)));
      break;
    default:
      break;
    }
    MB_TRY(hash_xattrs(hasher, path));
    if (S_ISDIR(st.st_mode)) {
      UniqueFd child(
          ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child) {
        return fail_errno(errno, "open \"" + path + "\"");
      }
      MB_TRY(walk(hasher, listing, child.get(), path, rel));
      hasher.field("end", rel);
    }
  }
  return {};
}

} // namespace

Result<ContentListing> list_content(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    return fail_errno(errno, "open layer tree \"" + dir + "\"");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(errno, "stat \"" + dir + "\"");
  }
  ListingHasher hasher;
  ContentListing listing;
  // The root's own metadata matters too: it becomes "/" of the container.
  hasher.field("root-mode", static_cast<std::uint64_t>(st.st_mode & 07777));
  hasher.field("root-uid", static_cast<std::uint64_t>(st.st_uid));
  hasher.field("root-gid", static_cast<std::uint64_t>(st.st_gid));
  MB_TRY(hash_xattrs(hasher, dir));
  MB_TRY(walk(hasher, listing, fd.get(), dir, ""));
  listing.digest = hasher.finish();
  return listing;
}

} // namespace minibuild::store
