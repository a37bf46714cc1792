#include <minibuild/store/store_fs.hpp>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::store {

namespace {

// "" names the root itself; *at() calls want "." for that.
std::string at_path(std::string_view rel) {
  return rel.empty() ? std::string(".") : std::string(rel);
}

std::string quoted(const std::string& path) {
  return "\"" + path + "\"";
}

EntryType type_of_mode(mode_t mode) {
  if (S_ISREG(mode)) {
    return EntryType::file;
  }
  if (S_ISDIR(mode)) {
    return EntryType::directory;
  }
  if (S_ISLNK(mode)) {
    return EntryType::symlink;
  }
  return EntryType::other;
}

// mkdir -p for the root; the last component gets 0700 (images may be private), parents 0755.
Result<void> make_root(const std::string& root) {
  std::string prefix;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = root.find('/', pos + 1);
    prefix = root.substr(0, pos);
    if (prefix.empty()) {
      continue;
    }
    const mode_t mode = pos == std::string::npos ? 0700 : 0755;
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return fail_errno(errno, "mkdir " + quoted(prefix));
    }
  }
  return {};
}

// Recursive removal below `dir_fd`. Read-only directories (images ship 0555 trees; a rootless
// user owns them but cannot unlink inside until the write bit is back) get u+rwx first.
Result<void> remove_children(int dir_fd, const std::string& shown) {
  UniqueFd list_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!list_fd) {
    return fail_errno(errno, "open " + quoted(shown));
  }
  DIR* dir = ::fdopendir(list_fd.get());
  if (dir == nullptr) {
    return fail_errno(errno, "opendir " + quoted(shown));
  }
  list_fd.release(); // owned by `dir` now
  std::vector<std::pair<std::string, bool>> entries;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    bool is_dir = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir =
          ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    entries.emplace_back(name, is_dir);
  }
  const int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) {
    return fail_errno(read_errno, "readdir " + quoted(shown));
  }
  struct stat self {};
  if (::fstat(dir_fd, &self) == 0 && (self.st_mode & S_IRWXU) != S_IRWXU) {
    ::fchmod(dir_fd, (self.st_mode & 07777) | S_IRWXU);
  }
  for (const auto& [name, is_dir] : entries) {
    const std::string child = shown + "/" + name;
    if (is_dir) {
      UniqueFd child_fd(
          ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child_fd) {
        return fail_errno(errno, "open " + quoted(child));
      }
      MB_TRY(remove_children(child_fd.get(), child));
    }
    if (::unlinkat(dir_fd, name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
      return fail_errno(errno, "remove " + quoted(child));
    }
  }
  return {};
}

} // namespace

Result<std::unique_ptr<RealStoreFs>> RealStoreFs::open(const std::string& root, Create create) {
  if (root.empty()) {
    return fail(Code::usage, "store root is empty");
  }
  std::string clean = root;
  while (clean.size() > 1 && clean.back() == '/') {
    clean.pop_back();
  }
  if (create == Create::yes) {
    MB_TRY(make_root(clean));
  }
  UniqueFd fd(::open(clean.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return fail_errno(errno, "open store root " + quoted(clean));
  }
  return std::unique_ptr<RealStoreFs>(new RealStoreFs(std::move(clean), std::move(fd)));
}

std::string RealStoreFs::absolute(std::string_view rel) const {
  if (rel.empty()) {
    return m_root;
  }
  return m_root + "/" + std::string(rel);
}

Result<UniqueFd> RealStoreFs::open_read(std::string_view rel) {
  UniqueFd fd(::openat(m_root_fd.get(), at_path(rel).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return fail_errno(errno, "open " + quoted(absolute(rel)));
  }
  return fd;
}

Result<std::optional<FsStat>> RealStoreFs::stat(std::string_view rel) {
  struct stat st {};
  if (::fstatat(m_root_fd.get(), at_path(rel).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return std::optional<FsStat>();
    }
    return fail_errno(errno, "stat " + quoted(absolute(rel)));
  }
  return std::optional<FsStat>(
      FsStat{type_of_mode(st.st_mode), static_cast<std::uint64_t>(st.st_size)});
}

Result<std::vector<FsEntry>> RealStoreFs::list(std::string_view rel) {
  UniqueFd fd(::openat(m_root_fd.get(), at_path(rel).c_str(),
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) {
      return std::vector<FsEntry>{};
    }
    return fail_errno(errno, "open " + quoted(absolute(rel)));
  }
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) {
    return fail_errno(errno, "opendir " + quoted(absolute(rel)));
  }
  const int dir_fd = fd.release(); // closedir closes it
  std::vector<FsEntry> entries;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    EntryType type = EntryType::other;
    switch (entry->d_type) {
    case DT_REG:
      type = EntryType::file;
      break;
    case DT_DIR:
      type = EntryType::directory;
      break;
    case DT_LNK:
      type = EntryType::symlink;
      break;
    case DT_UNKNOWN: {
      // Some filesystems (xfs without ftype, some FUSE) leave d_type empty.
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = type_of_mode(st.st_mode);
      }
      break;
    }
    default:
      break;
    }
    entries.push_back(FsEntry{name, type});
  }
  const int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) {
    return fail_errno(read_errno, "readdir " + quoted(absolute(rel)));
  }
  return entries;
}

Result<UniqueFd> RealStoreFs::lock(std::string_view rel, LockMode mode, Wait wait) {
  UniqueFd fd(::openat(m_root_fd.get(), at_path(rel).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return fail_errno(errno, "open lock " + quoted(absolute(rel)));
  }
  int operation = mode == LockMode::shared ? LOCK_SH : LOCK_EX;
  if (wait == Wait::no) {
    operation |= LOCK_NB;
  }
  while (::flock(fd.get(), operation) != 0) {
    if (errno == EINTR) {
      continue;
    }
    return fail_errno(errno, std::string("flock ") +
                                 (mode == LockMode::shared ? "shared " : "exclusive ") +
                                 quoted(absolute(rel)));
  }
  return fd;
}

Result<void> RealStoreFs::make_dir(std::string_view rel) {
  if (::mkdirat(m_root_fd.get(), at_path(rel).c_str(), 0755) != 0) {
    if (errno == EEXIST) {
      struct stat st {};
      if (::fstatat(m_root_fd.get(), at_path(rel).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISDIR(st.st_mode)) {
        return {};
      }
      errno = EEXIST;
    }
    return fail_errno(errno, "mkdir " + quoted(absolute(rel)));
  }
  return {};
}

Result<UniqueFd> RealStoreFs::create_file(std::string_view rel) {
  UniqueFd fd(::openat(m_root_fd.get(), at_path(rel).c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) {
    return fail_errno(errno, "create " + quoted(absolute(rel)));
  }
  return fd;
}

Result<void> RealStoreFs::write(int fd, std::span<const char> bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "write to store file (fd " + std::to_string(fd) + ")");
    }
    bytes = bytes.subspan(static_cast<std::size_t>(written));
  }
  return {};
}

Result<void> RealStoreFs::sync_file(int fd) {
  if (::fsync(fd) != 0) {
    return fail_errno(errno, "fsync store file (fd " + std::to_string(fd) + ")");
  }
  return {};
}

Result<void> RealStoreFs::sync_dir(std::string_view rel) {
  UniqueFd fd(::openat(m_root_fd.get(), at_path(rel).c_str(),
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return fail_errno(errno, "open " + quoted(absolute(rel)));
  }
  if (::fsync(fd.get()) != 0) {
    return fail_errno(errno, "fsync " + quoted(absolute(rel)));
  }
  return {};
}

Result<void> RealStoreFs::sync_fs() {
  if (::syncfs(m_root_fd.get()) != 0) {
    return fail_errno(errno, "syncfs " + quoted(m_root));
  }
  return {};
}

Result<void> RealStoreFs::rename(std::string_view from, std::string_view to) {
  if (::renameat(m_root_fd.get(), at_path(from).c_str(), m_root_fd.get(), at_path(to).c_str()) !=
      0) {
    return fail_errno(errno, "rename " + quoted(absolute(from)) + " to " + quoted(absolute(to)));
  }
  return {};
}

Result<void> RealStoreFs::remove_file(std::string_view rel) {
  if (::unlinkat(m_root_fd.get(), at_path(rel).c_str(), 0) != 0 && errno != ENOENT) {
    return fail_errno(errno, "unlink " + quoted(absolute(rel)));
  }
  return {};
}

Result<void> RealStoreFs::remove_tree(std::string_view rel) {
  struct stat st {};
  if (::fstatat(m_root_fd.get(), at_path(rel).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return {};
    }
    return fail_errno(errno, "stat " + quoted(absolute(rel)));
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd fd(::openat(m_root_fd.get(), at_path(rel).c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      return fail_errno(errno, "open " + quoted(absolute(rel)));
    }
    MB_TRY(remove_children(fd.get(), absolute(rel)));
  }
  if (::unlinkat(m_root_fd.get(), at_path(rel).c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) !=
          0 &&
      errno != ENOENT) {
    return fail_errno(errno, "remove " + quoted(absolute(rel)));
  }
  return {};
}

} // namespace minibuild::store
