#include "fs_ops.hpp"

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/xattrs.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <optional>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace minibuild::build {

namespace {

std::string quoted(std::string_view path) {
  return "\"" + std::string(path) + "\"";
}

// Errors after which copy_file_range will not work for this pair of files and the plain loop
// must take over: EXDEV (different filesystems, Linux >= 5.19), EINVAL/EOPNOTSUPP (a filesystem
// or file type without support), ENOSYS (kernel < 4.5), EBADF (some FUSE/procfs files).
bool copy_range_unsupported(int err) {
  return err == EXDEV || err == EINVAL || err == EOPNOTSUPP || err == ENOSYS || err == EBADF;
}

Result<std::uint64_t> copy_with_buffer(int in, int out, std::string_view what, std::uint64_t done) {
  std::vector<char> buffer(1 << 17);
  while (true) {
    ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno(errno, "read " + quoted(what));
    }
    if (n == 0) {
      return done;
    }
    std::size_t written = 0;
    while (written < static_cast<std::size_t>(n)) {
      ssize_t w = ::write(out, buffer.data() + written, static_cast<std::size_t>(n) - written);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        return fail_errno(errno, "write copy of " + quoted(what));
      }
      written += static_cast<std::size_t>(w);
    }
    done += static_cast<std::uint64_t>(n);
  }
}

// What a destination may answer to an xattr it will not hold: EPERM (security.capability or
// trusted.* without the capability, user.* on a special file), EACCES, ENOTSUP (a filesystem
// without that namespace), EINVAL (an unknown namespace), E2BIG/ENOSPC/ERANGE (too large).
bool refusal(int err) {
  return err == EPERM || err == EACCES || err == ENOTSUP || err == EOPNOTSUPP || err == EINVAL ||
         err == E2BIG || err == ENOSPC || err == ERANGE;
}

// The names of `fd`'s xattrs; empty when its filesystem has none. ERANGE means the list grew
// between the size query and the read: ask again.
Result<std::vector<std::string>> list_xattrs(int fd, std::string_view what) {
  std::vector<char> buffer;
  while (true) {
    ssize_t size = ::flistxattr(fd, nullptr, 0);
    if (size < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) {
      return std::vector<std::string>{};
    }
    if (size < 0) {
      return fail_errno(errno, "list xattrs of " + quoted(what));
    }
    if (size == 0) {
      return std::vector<std::string>{};
    }
    buffer.resize(static_cast<std::size_t>(size));
    ssize_t got = ::flistxattr(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == ERANGE) {
      continue;
    }
    if (got < 0) {
      return fail_errno(errno, "list xattrs of " + quoted(what));
    }
    std::vector<std::string> names;
    std::size_t start = 0;
    while (start < static_cast<std::size_t>(got)) {
      const char* name = buffer.data() + start;
      const std::size_t length = ::strnlen(name, static_cast<std::size_t>(got) - start);
      if (length > 0) {
        names.emplace_back(name, length);
      }
      start += length + 1;
    }
    std::sort(names.begin(), names.end());
    return names;
  }
}

// One xattr value; nullopt when it vanished since it was listed.
Result<std::optional<std::string>> get_xattr(int fd, const std::string& name,
                                             std::string_view what) {
  std::string value;
  while (true) {
    ssize_t size = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (size < 0 && errno == ENODATA) {
      return std::optional<std::string>();
    }
    if (size < 0) {
      return fail_errno(errno, "read xattr " + name + " of " + quoted(what));
    }
    value.resize(static_cast<std::size_t>(size));
    ssize_t got = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (got < 0 && errno == ERANGE) {
      continue;
    }
    if (got < 0 && errno == ENODATA) {
      return std::optional<std::string>();
    }
    if (got < 0) {
      return fail_errno(errno, "read xattr " + name + " of " + quoted(what));
    }
    value.resize(static_cast<std::size_t>(got));
    return std::optional<std::string>(std::move(value));
  }
}

} // namespace

void XattrRefusals::note(std::string_view name, int err) {
  ++count;
  reasons.insert(std::string(name) + ": " + std::strerror(err));
}

void XattrRefusals::merge(const XattrRefusals& other) {
  count += other.count;
  reasons.insert(other.reasons.begin(), other.reasons.end());
}

std::string XattrRefusals::warning() const {
  if (count == 0) {
    return {};
  }
  std::string detail;
  for (const std::string& reason : reasons) {
    detail += (detail.empty() ? "" : "; ") + reason;
  }
  return "could not copy " + std::to_string(count) + " extended attribute" +
         (count == 1 ? "" : "s") + " (" + detail + ")";
}

Result<void> set_xattr(int fd, const std::string& name, std::string_view value,
                       std::string_view what, XattrRefusals& refused) {
  if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) == 0) {
    return {};
  }
  if (refusal(errno)) {
    refused.note(name, errno);
    return {};
  }
  return fail_errno(errno, "set xattr " + name + " on " + quoted(what));
}

Result<void> copy_xattrs(int in, int out, std::string_view what, XattrRefusals& refused) {
  MB_TRY_ASSIGN(auto names, list_xattrs(in, what));
  for (const std::string& name : names) {
    if (!layer::is_image_xattr(name)) {
      continue;
    }
    MB_TRY_ASSIGN(auto value, get_xattr(in, name, what));
    if (value) {
      MB_TRY(set_xattr(out, name, *value, what, refused));
    }
  }
  return {};
}

Result<std::vector<std::string>> list_directory(int dirfd, std::string_view where) {
  // fdopendir takes ownership, so hand it a duplicate.
  int copy = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return fail_errno(errno, "list " + quoted(where));
  }
  DIR* dir = ::fdopendir(copy);
  if (dir == nullptr) {
    int err = errno;
    ::close(copy);
    return fail_errno(err, "list " + quoted(where));
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      int err = errno;
      ::closedir(dir);
      if (err != 0) {
        return fail_errno(err, "list " + quoted(where));
      }
      break;
    }
    std::string_view name(entry->d_name);
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::uint64_t> copy_file_data(int in, int out, std::string_view what) {
  // A reflink shares the extents: instant and no extra space on btrfs/XFS.
  if (::ioctl(out, FICLONE, in) == 0) {
    struct stat st {};
    if (::fstat(out, &st) != 0) {
      return fail_errno(errno, "stat copy of " + quoted(what));
    }
    return static_cast<std::uint64_t>(st.st_size);
  }
  std::uint64_t done = 0;
  while (true) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && done == 0 && copy_range_unsupported(errno)) {
      return copy_with_buffer(in, out, what, 0);
    }
    if (n < 0) {
      return fail_errno(errno, "copy " + quoted(what));
    }
    if (n == 0) {
      return done;
    }
    done += static_cast<std::uint64_t>(n);
  }
}

Result<std::string> read_all(int fd, std::string_view what, std::size_t limit) {
  std::string text;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno(errno, "read " + quoted(what));
    }
    if (n == 0) {
      return text;
    }
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      return fail(Code::io,
                  "read " + quoted(what) + ": larger than " + std::to_string(limit) + " bytes");
    }
  }
}

Result<void> remove_tree(int dirfd, const std::string& name, std::string_view where) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return {};
    }
    return fail_errno(errno, "stat " + quoted(where));
  }
  if (S_ISDIR(st.st_mode)) {
    // Our own staging directories may have lost owner write/search by a --chmod.
    ::fchmodat(dirfd, name.c_str(), 0700, 0);
    UniqueFd dir(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) {
      return fail_errno(errno, "open " + quoted(where));
    }
    MB_TRY_ASSIGN(auto names, list_directory(dir.get(), where));
    for (const std::string& child : names) {
      MB_TRY(remove_tree(dir.get(), child, std::string(where) + "/" + child));
    }
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return fail_errno(errno, "remove " + quoted(where));
    }
    return {};
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return fail_errno(errno, "remove " + quoted(where));
  }
  return {};
}

} // namespace minibuild::build
