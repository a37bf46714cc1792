#include "fs_util.hpp"

#include <minibuild/base/unique_fd.hpp>

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::layer {

namespace {

std::string quoted(std::string_view path) {
  return "\"" + std::string(path) + "\"";
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

// chmod u+rwx through the descriptor's /proc link: fchmod() refuses O_PATH descriptors and
// fchmodat() would follow a symlink that replaced the name.
void make_owner_writable(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700) {
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ::chmod(link.c_str(), (st.st_mode & 07777) | 0700);
  }
}

} // namespace

Result<std::vector<std::string>> list_directory(int dirfd, const std::string& path) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno(errno, "open directory " + quoted(path));
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int saved = errno;
    ::close(fd);
    return fail_errno(saved, "read directory " + quoted(path));
  }
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      int saved = errno;
      ::closedir(dir);
      if (saved != 0) {
        return fail_errno(saved, "read directory " + quoted(path));
      }
      return names;
    }
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
}

Result<void> remove_at(int dirfd, const std::string& name, const std::string& path) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) {
    return {};
  }
  if (errno != EISDIR && errno != EPERM) {
    return fail_errno(errno, "remove " + quoted(path));
  }
  UniqueFd dir(::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    return fail_errno(errno, "remove " + quoted(path));
  }
  make_owner_writable(dir.get());
  MB_TRY_ASSIGN(std::vector<std::string> names, list_directory(dir.get(), path));
  for (const std::string& child : names) {
    MB_TRY(remove_at(dir.get(), child, child_path(path, child)));
  }
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return fail_errno(errno, "remove directory " + quoted(path));
  }
  return {};
}

} // namespace minibuild::layer
