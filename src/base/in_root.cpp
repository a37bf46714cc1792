#include <minibuild/base/in_root.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace minibuild {

namespace {

constexpr int k_max_symlinks = 40; // the kernel's MAXSYMLINKS
constexpr int k_openat2_retries = 16;

// glibc 2.36 has no openat2() wrapper.
int sys_openat2(int dirfd, const char* path, std::uint64_t flags, std::uint64_t resolve) {
  struct open_how how {};
  how.flags = flags;
  how.resolve = resolve;
  for (int attempt = 0;; ++attempt) {
    int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
    // EAGAIN: a concurrent rename raced with a ".." lookup; the kernel asks to retry.
    if (fd >= 0 || errno != EAGAIN || attempt >= k_openat2_retries) {
      return fd;
    }
  }
}

bool openat2_disabled_by_environment() {
  const char* value = std::getenv("MINIBUILD_NO_OPENAT2");
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

std::string quoted(std::string_view path) {
  return "\"" + std::string(path) + "\"";
}

std::deque<std::string> split_components(std::string_view rel) {
  std::deque<std::string> parts;
  std::size_t start = 0;
  while (start <= rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string_view::npos) {
      end = rel.size();
    }
    if (end > start) {
      parts.emplace_back(rel.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

// Lexically clean, for the openat2 fast path: "a/./b" -> "a/b"; ".." is left to the kernel.
std::string normalized(std::string_view rel) {
  std::string out;
  for (const std::string& part : split_components(rel)) {
    if (part == ".") {
      continue;
    }
    out = join_path(out, part);
  }
  return out;
}

Result<UniqueFd> dup_fd(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return fail_errno(errno, "duplicate a descriptor");
  }
  return UniqueFd(copy);
}

Result<std::string> read_link_at(int fd, const char* name, std::string_view where) {
  std::string target(256, '\0');
  while (true) {
    ssize_t n = ::readlinkat(fd, name, target.data(), target.size());
    if (n < 0) {
      return fail_errno(errno, "read symlink " + quoted(where));
    }
    if (static_cast<std::size_t>(n) < target.size()) {
      target.resize(static_cast<std::size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

std::string readlink_proc(int fd) {
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  std::string target(4096, '\0');
  ssize_t n = ::readlink(link.c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= target.size()) {
    return {};
  }
  target.resize(static_cast<std::size_t>(n));
  return target;
}

std::string parent_of(std::string_view rel) {
  auto slash = rel.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
}

std::string base_of(std::string_view rel) {
  auto slash = rel.rfind('/');
  return std::string(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
}

} // namespace

std::string join_path(std::string_view a, std::string_view b) {
  if (a.empty()) {
    return std::string(b);
  }
  if (b.empty()) {
    return std::string(a);
  }
  std::string out(a);
  out += '/';
  out += b;
  return out;
}

Result<InRoot> InRoot::open(const std::string& dir, Resolution resolution) {
  UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return fail_errno(errno, "open directory " + quoted(dir));
  }
  bool use_openat2 = resolution == Resolution::auto_detect && !openat2_disabled_by_environment();
  if (use_openat2) {
    UniqueFd probe(sys_openat2(fd.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC,
                               RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    // ENOSYS: kernel before 5.6. EPERM: a seccomp profile that predates openat2.
    if (!probe && (errno == ENOSYS || errno == EPERM)) {
      use_openat2 = false;
    } else if (!probe) {
      return fail_errno(errno, "open directory " + quoted(dir) + " with openat2");
    }
  }
  std::string proc_root = readlink_proc(fd.get());
  return InRoot(std::move(fd), dir, std::move(proc_root), use_openat2);
}

Result<Located> InRoot::locate(std::string_view rel, FollowFinal follow, Symlinks symlinks) const {
  if (m_openat2) {
    return locate_openat2(rel, follow, symlinks);
  }
  return walk(rel, follow, symlinks, nullptr);
}

Result<Located> InRoot::locate_openat2(std::string_view rel, FollowFinal follow,
                                       Symlinks symlinks) const {
  const std::string path = normalized(rel);
  const char* c_path = path.empty() ? "." : path.c_str();
  // First without symlinks: then the physical path is the path as written (the common case).
  UniqueFd fd(sys_openat2(m_root.get(), c_path, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                          RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS));
  struct stat st {};
  bool plain = false;
  if (fd) {
    if (::fstat(fd.get(), &st) != 0) {
      return fail_errno(errno, "stat " + quoted(path));
    }
    plain = !S_ISLNK(st.st_mode) || follow == FollowFinal::no;
    // ".." components resolved by the kernel make the written path differ from the physical
    // one; the cleaned sources never hold them, symlink targets are handled below.
    plain = plain && path.find("..") == std::string::npos;
  } else if (errno != ELOOP) {
    return fail_errno(errno, "open " + quoted(path) + " in " + quoted(m_path));
  }
  if (!plain && symlinks == Symlinks::refuse) {
    return fail_errno(ELOOP, "open " + quoted(path) + " in " + quoted(m_path));
  }
  std::string physical = path;
  if (!plain) {
    fd = UniqueFd(sys_openat2(m_root.get(), c_path,
                              O_PATH | O_CLOEXEC | (follow == FollowFinal::no ? O_NOFOLLOW : 0),
                              RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    if (!fd) {
      return fail_errno(errno, "open " + quoted(path) + " in " + quoted(m_path));
    }
    if (::fstat(fd.get(), &st) != 0) {
      return fail_errno(errno, "stat " + quoted(path));
    }
    // The kernel resolved the links; /proc tells where it ended up. Without /proc, the walk
    // computes the same answer in user space.
    std::string where = m_proc_root.empty() ? std::string() : readlink_proc(fd.get());
    if (where == m_proc_root) {
      physical.clear();
    } else if (!m_proc_root.empty() && where.size() > m_proc_root.size() &&
               where.compare(0, m_proc_root.size(), m_proc_root) == 0 &&
               (m_proc_root == "/" || where[m_proc_root.size()] == '/')) {
      physical = where.substr(m_proc_root == "/" ? 1 : m_proc_root.size() + 1);
    } else {
      return walk(rel, follow, symlinks, nullptr);
    }
  }
  Located located;
  located.st = st;
  located.physical = physical;
  if (physical.empty()) {
    MB_TRY_ASSIGN(located.parent, dup_fd(m_root.get()));
    return located;
  }
  located.name = base_of(physical);
  const std::string parent = parent_of(physical);
  if (parent.empty()) {
    MB_TRY_ASSIGN(located.parent, dup_fd(m_root.get()));
  } else {
    located.parent =
        UniqueFd(sys_openat2(m_root.get(), parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                             RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS));
    if (!located.parent) {
      return fail_errno(errno, "open " + quoted(parent) + " in " + quoted(m_path));
    }
  }
  return located;
}

Result<Located> InRoot::walk(std::string_view rel, FollowFinal follow, Symlinks symlinks,
                             std::vector<std::string>* created) const {
  struct Frame {
    UniqueFd fd;
    std::string name;
    struct stat st;
  };
  std::vector<Frame> stack; // resolved components below the root, each an O_PATH descriptor
  std::deque<std::string> todo = split_components(rel);
  int links = 0;
  const auto current = [&] { return stack.empty() ? m_root.get() : stack.back().fd.get(); };
  const auto physical = [&] {
    std::string out;
    for (const Frame& frame : stack) {
      out = join_path(out, frame.name);
    }
    return out;
  };
  const auto error = [&](int err, std::string_view what) {
    return fail_errno(err, std::string(what) + " " + quoted(join_path(physical(), "")) + " in " +
                               quoted(m_path));
  };

  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == ".") {
      continue;
    }
    if (!stack.empty() && !S_ISDIR(stack.back().st.st_mode)) {
      return error(ENOTDIR, "resolve");
    }
    if (name == "..") {
      if (!stack.empty()) {
        stack.pop_back();
      }
      continue;
    }
    const bool last = todo.empty();
    UniqueFd fd(::openat(current(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd && errno == ENOENT && created != nullptr) {
      if (::mkdirat(current(), name.c_str(), 0755) != 0) {
        if (errno != EEXIST) {
          return fail_errno(errno, "create directory " + quoted(join_path(physical(), name)) +
                                       " in " + quoted(m_path));
        }
      } else {
        created->push_back(join_path(physical(), name));
      }
      fd = UniqueFd(::openat(current(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd) {
      return fail_errno(errno,
                        "open " + quoted(join_path(physical(), name)) + " in " + quoted(m_path));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      return fail_errno(errno, "stat " + quoted(join_path(physical(), name)));
    }
    if (S_ISLNK(st.st_mode) && (!last || follow == FollowFinal::yes)) {
      if (symlinks == Symlinks::refuse || ++links > k_max_symlinks) {
        return fail_errno(ELOOP, "resolve " + quoted(join_path(physical(), name)) + " in " +
                                     quoted(m_path));
      }
      MB_TRY_ASSIGN(std::string target, read_link_at(fd.get(), "", join_path(physical(), name)));
      if (target.empty()) {
        return fail_errno(ENOENT, "resolve " + quoted(join_path(physical(), name)));
      }
      if (target.front() == '/') {
        stack.clear(); // an absolute target starts again at the root
      }
      auto parts = split_components(target);
      todo.insert(todo.begin(), parts.begin(), parts.end());
      continue;
    }
    stack.push_back(Frame{std::move(fd), std::move(name), st});
  }

  Located located;
  if (stack.empty()) {
    if (::fstat(m_root.get(), &located.st) != 0) {
      return fail_errno(errno, "stat " + quoted(m_path));
    }
    MB_TRY_ASSIGN(located.parent, dup_fd(m_root.get()));
    return located;
  }
  located.physical = physical();
  located.name = stack.back().name;
  located.st = stack.back().st;
  MB_TRY_ASSIGN(located.parent,
                dup_fd(stack.size() >= 2 ? stack[stack.size() - 2].fd.get() : m_root.get()));
  return located;
}

Result<OpenedDir> InRoot::ensure_dir(std::string_view rel, Symlinks symlinks,
                                     std::vector<std::string>* created) const {
  auto located = locate(rel, FollowFinal::yes, symlinks);
  if (!located && located.error().sys_errno() == ENOENT) {
    // Creating needs to know where each missing directory belongs: that is the walk's job.
    std::vector<std::string> made;
    located = walk(rel, FollowFinal::yes, symlinks, &made);
    if (created != nullptr) {
      created->insert(created->end(), made.begin(), made.end());
    }
  }
  if (!located) {
    return fail(std::move(located).error());
  }
  return open_located_dir(*located);
}

Result<UniqueFd> InRoot::open_dir(std::span<const std::string> components, Symlinks symlinks,
                                  CreateMissing create) const {
  std::string rel;
  for (const std::string& component : components) {
    rel = join_path(rel, component);
  }
  if (m_openat2) {
    // One syscall, no physical path: this runs once per archive entry.
    const std::string path = normalized(rel);
    std::uint64_t resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    if (symlinks == Symlinks::refuse) {
      resolve |= RESOLVE_NO_SYMLINKS;
    }
    UniqueFd fd(sys_openat2(m_root.get(), path.empty() ? "." : path.c_str(),
                            O_PATH | O_DIRECTORY | O_CLOEXEC, resolve));
    if (fd) {
      return fd;
    }
    // Creating missing directories is the walk's job (see ensure_dir); it is only taken when
    // the fast path says something is missing.
    const int error = errno;
    if (create == CreateMissing::no || error != ENOENT) {
      return fail_errno(error, "open directory " + quoted(path) + " in " + quoted(m_path));
    }
  }
  std::vector<std::string> made;
  MB_TRY_ASSIGN(Located located, walk(rel, FollowFinal::yes, symlinks,
                                      create == CreateMissing::yes ? &made : nullptr));
  MB_TRY_ASSIGN(OpenedDir dir, open_located_dir(located));
  return std::move(dir.fd);
}

Result<OpenedDir> InRoot::open_located_dir(const Located& located) const {
  if (!S_ISDIR(located.st.st_mode)) {
    return fail_errno(ENOTDIR,
                      "open directory " + quoted(located.physical) + " in " + quoted(m_path));
  }
  OpenedDir dir;
  dir.physical = located.physical;
  if (located.name.empty()) {
    MB_TRY_ASSIGN(dir.fd, dup_fd(m_root.get()));
    return dir;
  }
  dir.fd = UniqueFd(::openat(located.parent.get(), located.name.c_str(),
                             O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.fd) {
    return fail_errno(errno,
                      "open directory " + quoted(located.physical) + " in " + quoted(m_path));
  }
  return dir;
}

Result<UniqueFd> InRoot::open_for_reading(const Located& entry) const {
  const bool is_dir = S_ISDIR(entry.st.st_mode);
  if (!is_dir && !S_ISREG(entry.st.st_mode)) {
    return fail(Code::internal, "open_for_reading on " + quoted(entry.physical) +
                                    ", which is neither a file nor a directory");
  }
  const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | (is_dir ? O_DIRECTORY : 0);
  UniqueFd fd(::openat(entry.parent.get(), entry.name.empty() ? "." : entry.name.c_str(), flags));
  if (!fd) {
    return fail_errno(errno, "open " + quoted(entry.physical) + " in " + quoted(m_path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(errno, "stat " + quoted(entry.physical));
  }
  if (st.st_dev != entry.st.st_dev || st.st_ino != entry.st.st_ino) {
    return fail(Code::io, "open " + quoted(entry.physical) + " in " + quoted(m_path) +
                              ": the file changed while it was being read");
  }
  return fd;
}

} // namespace minibuild
