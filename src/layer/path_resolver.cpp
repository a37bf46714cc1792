#include "path_resolver.hpp"

#include <cerrno>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string_view>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace minibuild::layer {

namespace {

constexpr int k_max_symlinks = 40; // the kernel's MAXSYMLINKS
constexpr int k_openat2_retries = 16;

std::string join(std::span<const std::string> components) {
  std::string path;
  for (const std::string& component : components) {
    if (!path.empty()) {
      path += '/';
    }
    path += component;
  }
  return path.empty() ? "." : path;
}

std::string quoted(std::string_view path) {
  return "\"" + std::string(path) + "\"";
}

// glibc 2.36 has no openat2() wrapper.
int sys_openat2(int dirfd, const char* path, std::uint64_t flags, std::uint64_t resolve) {
  struct open_how how {};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

bool openat2_disabled_by_environment() {
  const char* value = std::getenv("MINIBUILD_NO_OPENAT2");
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

} // namespace

Result<RootResolver> RootResolver::open(const std::string& root, PathResolution resolution) {
  UniqueFd fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return fail_errno(errno, "open target directory " + quoted(root));
  }
  bool use_openat2 =
      resolution == PathResolution::auto_detect && !openat2_disabled_by_environment();
  if (use_openat2) {
    UniqueFd probe(sys_openat2(fd.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC,
                               RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    // ENOSYS: kernel before 5.6. EPERM: container runtimes whose seccomp profile predates
    // openat2 deny unknown syscalls that way.
    if (!probe && (errno == ENOSYS || errno == EPERM)) {
      use_openat2 = false;
    } else if (!probe) {
      return fail_errno(errno, "open target directory " + quoted(root) + " with openat2");
    }
  }
  return RootResolver(std::move(fd), use_openat2);
}

Result<UniqueFd> RootResolver::open_dir(std::span<const std::string> components, Symlinks symlinks,
                                        CreateMissing create) const {
  if (m_openat2) {
    auto opened = open_with_openat2(components, symlinks);
    // Creating missing directories needs to know where each one belongs, which is what the
    // walk computes; it is only taken when the fast path says something is missing.
    if (opened || create == CreateMissing::no || opened.error().sys_errno() != ENOENT) {
      return opened;
    }
  }
  return walk(components, symlinks, create);
}

Result<UniqueFd> RootResolver::open_with_openat2(std::span<const std::string> components,
                                                 Symlinks symlinks) const {
  std::string path = join(components);
  std::uint64_t resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (symlinks == Symlinks::refuse) {
    resolve |= RESOLVE_NO_SYMLINKS;
  }
  for (int attempt = 0;; ++attempt) {
    int fd = sys_openat2(m_root.get(), path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, resolve);
    if (fd >= 0) {
      return UniqueFd(fd);
    }
    // EAGAIN: a rename raced with a ".." lookup; the kernel asks to retry (openat2(2)).
    if (errno == EAGAIN && attempt < k_openat2_retries) {
      continue;
    }
    return fail_errno(errno, "open directory " + quoted(path) + " inside the target");
  }
}

Result<UniqueFd> RootResolver::walk(std::span<const std::string> components, Symlinks symlinks,
                                    CreateMissing create) const {
  std::vector<UniqueFd> stack; // the directories resolved so far, below the root
  std::deque<std::string> todo(components.begin(), components.end());
  int links = 0;
  auto current = [&] { return stack.empty() ? m_root.get() : stack.back().get(); };
  auto open_component = [&](const std::string& name) {
    return UniqueFd(
        ::openat(current(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  };
  std::string where = join(components);

  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name.empty() || name == ".") {
      continue;
    }
    if (name == "..") {
      if (!stack.empty()) {
        stack.pop_back(); // ".." of the root is the root, as with RESOLVE_IN_ROOT
      }
      continue;
    }
    UniqueFd fd = open_component(name);
    if (!fd && errno == ENOENT && create == CreateMissing::yes) {
      if (::mkdirat(current(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail_errno(errno, "create directory " + quoted(name) + " for " + quoted(where));
      }
      fd = open_component(name);
    }
    if (fd) {
      // O_PATH | O_NOFOLLOW could hand back the symlink itself on some kernels; only a
      // directory may join the stack.
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) {
        return fail_errno(errno, "stat " + quoted(name) + " in " + quoted(where));
      }
      if (S_ISDIR(st.st_mode)) {
        stack.push_back(std::move(fd));
        continue;
      }
      errno = ENOTDIR;
    }
    int error = errno;
    if (error != ENOTDIR && error != ELOOP) {
      return fail_errno(error, "open directory " + quoted(where) + " inside the target");
    }
    // Not a directory: either a symlink to expand, or a real non-directory.
    std::string target(4096, '\0');
    ssize_t length = ::readlinkat(current(), name.c_str(), target.data(), target.size());
    if (length < 0) {
      return fail_errno(errno == EINVAL ? ENOTDIR : errno,
                        "open directory " + quoted(where) + " inside the target");
    }
    if (symlinks == Symlinks::refuse) {
      return fail_errno(ELOOP, "open directory " + quoted(where) +
                                   " inside the target: " + quoted(name) + " is a symlink");
    }
    if (++links > k_max_symlinks) {
      return fail_errno(ELOOP, "open directory " + quoted(where) + " inside the target");
    }
    target.resize(static_cast<std::size_t>(length));
    if (target.empty()) {
      return fail_errno(ENOENT, "open directory " + quoted(where) +
                                    " inside the target: " + quoted(name) + " is an empty symlink");
    }
    if (target[0] == '/') {
      stack.clear(); // an absolute target starts again at the root, never at the host's "/"
    }
    // Splice the target's components in front of what is left to resolve.
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= target.size()) {
      std::size_t end = target.find('/', start);
      if (end == std::string::npos) {
        end = target.size();
      }
      parts.push_back(target.substr(start, end - start));
      start = end + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      todo.push_front(std::move(*it));
    }
  }
  if (stack.empty()) {
    UniqueFd root(::openat(m_root.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
      return fail_errno(errno, "open the target directory");
    }
    return root;
  }
  return std::move(stack.back());
}

} // namespace minibuild::layer
