// The RUN sandbox, top to bottom (see sandbox.hpp for the order of the steps).
//
// Three processes: the caller forks a HELPER (fork(), not clone(): glibc's fork makes malloc
// usable in the child of a multi-threaded caller), which unshares the namespaces and forks INIT,
// PID 1 of the new PID namespace. Init mounts the root filesystem, pivots into it and forks the
// COMMAND, then reaps every process until the command exits. The helper only waits: it exists
// because a process cannot move itself into a new PID namespace, only its children.
//
// Everything the child side needs is computed before the fork (paths, argv/env arrays, PATH
// candidates, the seccomp program). A child failure is written as one fixed-size record to a
// close-on-exec pipe, so the caller reads either a record or EOF (the command was executed).

#include <minibuild/base/in_root.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/runtime/sandbox.hpp>

#include <climits>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <mutex>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace minibuild::runtime {
namespace {

// ---- reporting from the child -----------------------------------------------------------------

enum class FailureKind : int { setup = 1, not_found = 2, exec = 3 };

// One write(2) of at most PIPE_BUF bytes is atomic on a pipe, so a record is never torn.
struct ChildFailure {
  FailureKind kind = FailureKind::setup;
  int sys_errno = 0;
  char step[48] = {};
  char syscall[24] = {};
  char path[360] = {};
};
// The step name of the overlay root mount: its failure is tagged k_overlay_refused.
constexpr const char* k_overlay_step = "mount the overlay root filesystem";

static_assert(sizeof(ChildFailure) <= PIPE_BUF);

struct ChildContext {
  int report_fd = -1;
};

[[noreturn]] void child_fail(const ChildContext& context, FailureKind kind, const char* step,
                             const char* syscall, std::string_view path, int sys_errno) {
  ChildFailure failure;
  failure.kind = kind;
  failure.sys_errno = sys_errno;
  std::snprintf(failure.step, sizeof failure.step, "%s", step);
  std::snprintf(failure.syscall, sizeof failure.syscall, "%s", syscall);
  std::snprintf(failure.path, sizeof failure.path, "%.*s", static_cast<int>(path.size()),
                path.data());
  [[maybe_unused]] const ssize_t written = ::write(context.report_fd, &failure, sizeof failure);
  ::_exit(125);
}

// Written by the helper to the status pipe after PID 1 was reaped; never a wait status.
constexpr int k_helper_done = -1;

// ---- the plan -----------------------------------------------------------------------------------

constexpr const char* k_root_dir = "root";
constexpr const char* k_links_dir = "l";
constexpr const char* k_empty_dir = "empty";
constexpr const char* k_stubs_file = "stubs";

// Files of /proc that Docker hides (bound over with /dev/null) and directories it makes
// read-only: kernel memory, keys and timers of the host are none of a build step's business.
constexpr const char* k_masked_proc_files[] = {"kcore",       "keys",          "timer_list",
                                               "sched_debug", "latency_stats", "acpi"};
constexpr const char* k_read_only_proc[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};
constexpr const char* k_device_files[] = {"null", "zero", "full", "random", "urandom", "tty"};

struct Plan {
  const SandboxSpec* spec = nullptr;
  pid_t caller = 0;
  std::string scratch;
  std::string overlay_data; // empty: plain_dir bind
  std::vector<std::string> exec_candidates;
  std::vector<char*> argv;
  std::vector<char*> envp;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int report_fd = -1;
  int status_fd = -1;
  int last_cap = 0;
  bool refuse_overlay = false;
};

std::string env_value(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& entry : env) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return {};
}

// execvpe searches the CALLER's PATH, not the one in envp; the step's PATH is the image's.
std::vector<std::string> exec_candidates(const ProcessSpec& process) {
  const std::string& name = process.argv.front();
  if (name.find('/') != std::string::npos) {
    return {name};
  }
  std::string path = env_value(process.env, "PATH");
  if (path.empty()) {
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  }
  std::vector<std::string> candidates;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    std::string dir = path.substr(start, end - start);
    candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + name);
    start = end + 1;
  }
  return candidates;
}

Result<void> write_file(const std::string& path, std::string_view content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) {
    return fail_errno(errno, "create \"" + path + "\"");
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "write \"" + path + "\"");
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> make_dir(const std::string& path, mode_t mode = 0755) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return fail_errno(errno, "mkdir \"" + path + "\"");
  }
  return {};
}

std::string read_host_file(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  std::string text;
  if (!fd) {
    return text;
  }
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buffer, sizeof buffer)) > 0) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return text;
}

// The overlay options. Lower dirs go through links named by their index in `scratch`/l, so that
// the option string (limited to one page by mount(2)) holds ~500 layers, overlayfs's own limit,
// whatever the store's path: the trick of Docker's overlay2 driver.
Result<std::string> prepare_overlay(const Plan& plan) {
  const RootFs& rootfs = plan.spec->rootfs;
  const std::string links = plan.scratch + "/" + k_links_dir;
  MB_TRY(make_dir(links));
  std::string lower;
  if (rootfs.lower_dirs.empty()) {
    MB_TRY(make_dir(plan.scratch + "/" + k_empty_dir));
    lower = k_empty_dir;
  }
  for (std::size_t i = 0; i < rootfs.lower_dirs.size(); ++i) {
    const std::string name = std::to_string(i);
    const std::string link = links + "/" + name;
    if (::symlink(rootfs.lower_dirs[i].c_str(), link.c_str()) != 0) {
      return fail_errno(errno, "symlink \"" + link + "\"");
    }
    lower += (i == 0 ? "" : ":") + std::string(k_links_dir) + "/" + name;
  }
  std::string data = "lowerdir=" + lower + ",upperdir=" + rootfs.upper_dir +
                     ",workdir=" + rootfs.work_dir + ",userxattr";
  const long page = ::sysconf(_SC_PAGESIZE);
  if (static_cast<long>(data.size()) >= page) {
    return fail(Code::sandbox, "mount overlay: the option string for " +
                                   std::to_string(rootfs.lower_dirs.size()) + " layers is " +
                                   std::to_string(data.size()) + " bytes, more than a page");
  }
  return data;
}

// ---- child side: mounts ------------------------------------------------------------------------

std::string fd_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

// Flags a bind remount must keep: in a user namespace the kernel refuses to drop nosuid, nodev,
// noexec or the atime flags that the original mount has (they are "locked", mount_namespaces(7)).
unsigned long locked_flags(const char* path) {
  struct statvfs info {};
  if (::statvfs(path, &info) != 0) {
    return 0;
  }
  unsigned long flags = 0;
  if (info.f_flag & ST_NOSUID)
    flags |= MS_NOSUID;
  if (info.f_flag & ST_NODEV)
    flags |= MS_NODEV;
  if (info.f_flag & ST_NOEXEC)
    flags |= MS_NOEXEC;
  if (info.f_flag & ST_NOATIME)
    flags |= MS_NOATIME;
  if (info.f_flag & ST_NODIRATIME)
    flags |= MS_NODIRATIME;
  if (info.f_flag & ST_RELATIME)
    flags |= MS_RELATIME;
  return flags;
}

int remount_read_only(const char* path) {
  return ::mount(nullptr, path, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(path),
                 nullptr);
}

class ChildMounts {
public:
  ChildMounts(const Plan& plan, const ChildContext& context) : m_plan(plan), m_context(context) {}

  void run() {
    const SandboxSpec& spec = *m_plan.spec;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      fail("make / private", "mount", "/");
    }
    if (::chdir(m_plan.scratch.c_str()) != 0) {
      fail("enter the scratch directory", "chdir", m_plan.scratch);
    }
    mount_root();
    auto root = InRoot::open(m_plan.scratch + "/" + k_root_dir, Resolution::auto_detect);
    if (!root) {
      fail("open the root filesystem", "open", m_plan.scratch + "/" + k_root_dir,
           root.error().sys_errno());
    }
    m_root.emplace(std::move(*root));
    mount_proc();
    mount_dev();
    mount_sys();
    bind_file("etc/hosts", m_plan.scratch + "/hosts");
    bind_file("etc/resolv.conf", m_plan.scratch + "/resolv.conf");
    bind_file("etc/hostname", m_plan.scratch + "/hostname");
    for (const auto& extra : spec.mounts) {
      mount_extra(extra);
    }
    // The working directory is the step's content when it was missing (BuildKit creates it
    // too); it is made before the pivot, as root, like the other directories.
    auto cwd = m_root->ensure_dir(relative(spec.process.cwd), Symlinks::follow_in_root);
    if (!cwd) {
      fail("create the working directory", "mkdir", spec.process.cwd, cwd.error().sys_errno());
    }
    write_stubs();
    pivot();
  }

private:
  [[noreturn]] void fail(const char* step, const char* syscall, std::string_view path,
                         int sys_errno = -1) {
    child_fail(m_context, FailureKind::setup, step, syscall, path,
               sys_errno < 0 ? errno : sys_errno);
  }

  static std::string relative(std::string_view path) {
    while (!path.empty() && path.front() == '/') {
      path.remove_prefix(1);
    }
    return std::string(path);
  }

  void mount_root() {
    const std::string target = k_root_dir;
    if (m_plan.overlay_data.empty()) {
      if (::mount(m_plan.spec->rootfs.plain_dir.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC,
                  nullptr) != 0) {
        fail("mount the root filesystem", "mount", m_plan.spec->rootfs.plain_dir);
      }
      return;
    }
    // MINIBUILD_NO_OVERLAY=1 plays a kernel that refuses overlay in a user namespace, so the
    // vfs fallback is tested everywhere (as MINIBUILD_NO_OPENAT2 does for openat2).
    if (m_plan.refuse_overlay) {
      fail(k_overlay_step, "mount", m_plan.scratch + "/" + k_root_dir, EPERM);
    }
    if (::mount("overlay", target.c_str(), "overlay", 0, m_plan.overlay_data.c_str()) != 0) {
      fail(k_overlay_step, "mount", m_plan.scratch + "/" + k_root_dir);
    }
  }

  // A directory below the root, created when missing (recorded as a stub), as an O_PATH fd.
  UniqueFd directory(const char* step, const std::string& rel) {
    std::vector<std::string> created;
    auto dir = m_root->ensure_dir(rel, Symlinks::follow_in_root, &created);
    if (!dir) {
      fail(step, "mkdir", "/" + rel, dir.error().sys_errno());
    }
    for (auto& path : created) {
      m_stubs.push_back(std::move(path));
    }
    return std::move(dir->fd);
  }

  // Reopens a directory after something was mounted on it: the O_PATH fd still names the
  // covered directory. The physical path has no symlinks left, so O_NOFOLLOW walks are exact.
  UniqueFd reopen(const std::string& rel) {
    const std::string path = rel.empty() ? std::string(".") : rel;
    UniqueFd fd(
        ::openat(m_root->root_fd(), path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      fail("open a mount point", "open", "/" + rel);
    }
    return fd;
  }

  void mount_proc() {
    UniqueFd dir = directory("mount /proc", "proc");
    if (::mount("proc", fd_path(dir.get()).c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      fail("mount /proc", "mount", "/proc");
    }
    UniqueFd proc = reopen("proc");
    const std::string proc_path = fd_path(proc.get());
    for (const char* name : k_read_only_proc) {
      UniqueFd entry(::openat(proc.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!entry) {
        continue;
      }
      const std::string path = fd_path(entry.get());
      if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        fail("make /proc read-only in part", "mount", std::string("/proc/") + name);
      }
      // The remount must name the new mount's root, not the dentry it covers.
      UniqueFd mounted(::openat(proc.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!mounted || remount_read_only(fd_path(mounted.get()).c_str()) != 0) {
        fail("make /proc read-only in part", "mount", std::string("/proc/") + name);
      }
    }
    for (const char* name : k_masked_proc_files) {
      UniqueFd entry(::openat(proc.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!entry) {
        continue;
      }
      struct stat st {};
      const bool is_dir = ::fstat(entry.get(), &st) == 0 && S_ISDIR(st.st_mode);
      const std::string path = fd_path(entry.get());
      const int rc = is_dir ? ::mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, "size=0")
                            : ::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr);
      if (rc != 0) {
        fail("mask a /proc file", "mount", std::string("/proc/") + name);
      }
    }
  }

  void mount_dev() {
    UniqueFd dir = directory("mount /dev", "dev");
    if (::mount("tmpfs", fd_path(dir.get()).c_str(), "tmpfs", MS_NOSUID | MS_STRICTATIME,
                "mode=755,size=65536k") != 0) {
      fail("mount /dev", "mount", "/dev");
    }
    UniqueFd dev = reopen("dev");
    // Device nodes are bound from the host: mknod is refused in a user namespace, and a bind
    // gives the same node everywhere.
    for (const char* name : k_device_files) {
      UniqueFd file(::openat(dev.get(), name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666));
      if (!file) {
        fail("create a /dev entry", "open", std::string("/dev/") + name);
      }
      const std::string source = std::string("/dev/") + name;
      if (::mount(source.c_str(), fd_path(file.get()).c_str(), nullptr, MS_BIND, nullptr) != 0) {
        fail("bind a device", "mount", source);
      }
    }
    if (::mkdirat(dev.get(), "pts", 0755) != 0 || ::mkdirat(dev.get(), "shm", 01777) != 0 ||
        ::mkdirat(dev.get(), "mqueue", 0755) != 0) {
      fail("create /dev directories", "mkdir", "/dev/pts");
    }
    UniqueFd pts(::openat(dev.get(), "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    const std::string pts_path = fd_path(pts.get());
    // gid=5 (tty) only where the namespace maps it; the single-id map does not.
    if (::mount("devpts", pts_path.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5") != 0 &&
        ::mount("devpts", pts_path.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620") != 0) {
      fail("mount /dev/pts", "mount", "/dev/pts");
    }
    UniqueFd shm(::openat(dev.get(), "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (::mount("shm", fd_path(shm.get()).c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=1777,size=65536k") != 0) {
      fail("mount /dev/shm", "mount", "/dev/shm");
    }
    UniqueFd mqueue(::openat(dev.get(), "mqueue", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    // A missing mqueue filesystem is no reason to fail a build.
    ::mount("mqueue", fd_path(mqueue.get()).c_str(), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            nullptr);
    const std::pair<const char*, const char*> links[] = {{"pts/ptmx", "ptmx"},
                                                         {"/proc/self/fd", "fd"},
                                                         {"/proc/self/fd/0", "stdin"},
                                                         {"/proc/self/fd/1", "stdout"},
                                                         {"/proc/self/fd/2", "stderr"}};
    for (const auto& [target, name] : links) {
      if (::symlinkat(target, dev.get(), name) != 0) {
        fail("create /dev links", "symlink", std::string("/dev/") + name);
      }
    }
  }

  void mount_sys() {
    UniqueFd dir = directory("mount /sys", "sys");
    const std::string path = fd_path(dir.get());
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
    if (::mount("sysfs", path.c_str(), "sysfs", flags, nullptr) == 0) {
      return;
    }
    // A user namespace may mount sysfs only with a network namespace of its own; with the
    // host's network the host's /sys is bound read-only instead, as rootless podman does.
    if (::mount("/sys", path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      fail("mount /sys", "mount", "/sys");
    }
    UniqueFd sys = reopen("sys");
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::syscall(SYS_mount_setattr, sys.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                  sizeof attr) != 0 &&
        remount_read_only(fd_path(sys.get()).c_str()) != 0) {
      fail("make /sys read-only", "mount", "/sys");
    }
  }

  // Binds a builder-supplied file over `rel` (following a symlink inside the root, creating the
  // file as a stub when missing) and makes it read-only.
  void bind_file(const std::string& rel, const std::string& source) {
    UniqueFd target;
    std::string physical;
    auto found = m_root->locate(rel, FollowFinal::yes);
    if (found) {
      if (!S_ISREG(found->st.st_mode)) {
        return; // a directory or device there: the image wants it so; leave it alone
      }
      target.reset(
          ::openat(found->parent.get(), found->name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      physical = found->physical;
    } else if (found.error().sys_errno() == ENOENT) {
      const std::size_t slash = rel.rfind('/');
      const std::string parent_rel = slash == std::string::npos ? "" : rel.substr(0, slash);
      const std::string name = rel.substr(slash + 1);
      std::vector<std::string> created;
      auto parent = m_root->ensure_dir(parent_rel, Symlinks::follow_in_root, &created);
      if (!parent) {
        fail("create a mount point", "mkdir", "/" + parent_rel, parent.error().sys_errno());
      }
      UniqueFd dir(::openat(parent->fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      UniqueFd file(::openat(dir.get(), name.c_str(),
                             O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!file) {
        // A dangling symlink of the image: nothing to bind over.
        return;
      }
      for (auto& path : created) {
        m_stubs.push_back(std::move(path));
      }
      physical = parent->physical.empty() ? name : parent->physical + "/" + name;
      m_stubs.push_back(physical);
      target = std::move(file);
    } else {
      fail("find a mount point", "open", "/" + rel, found.error().sys_errno());
    }
    if (!target) {
      fail("open a mount point", "open", "/" + rel);
    }
    const std::string path = fd_path(target.get());
    if (::mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      fail("bind a file", "mount", "/" + rel);
    }
    UniqueFd mounted(
        ::openat(m_root->root_fd(), physical.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (mounted && remount_read_only(fd_path(mounted.get()).c_str()) != 0) {
      fail("make a file read-only", "mount", "/" + rel);
    }
  }

  void mount_extra(const MountSpec& extra) {
    const std::string rel = relative(extra.target);
    if (extra.kind == MountSpec::Kind::tmpfs) {
      UniqueFd dir = directory("mount a tmpfs", rel);
      const unsigned long flags = MS_NOSUID | MS_NODEV | (extra.read_only ? MS_RDONLY : 0);
      if (::mount("tmpfs", fd_path(dir.get()).c_str(), "tmpfs", flags,
                  extra.options.empty() ? nullptr : extra.options.c_str()) != 0) {
        fail("mount a tmpfs", "mount", extra.target);
      }
      return;
    }
    struct stat source_stat {};
    if (::stat(extra.source.c_str(), &source_stat) != 0) {
      fail("bind a mount", "stat", extra.source);
    }
    UniqueFd target;
    if (S_ISDIR(source_stat.st_mode)) {
      target = directory("bind a mount", rel);
    } else {
      const std::size_t slash = rel.rfind('/');
      UniqueFd parent = directory(
          "bind a mount", slash == std::string::npos ? std::string() : rel.substr(0, slash));
      UniqueFd dir(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      const std::string name = rel.substr(slash + 1);
      UniqueFd file(::openat(dir.get(), name.c_str(),
                             O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (file) {
        m_stubs.push_back(rel); // created for the mount: not the step's content
      } else if (errno == EEXIST) {
        file.reset(::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!file) {
        fail("bind a mount", "open", extra.target);
      }
      target = std::move(file);
    }
    const std::string path = fd_path(target.get());
    if (::mount(extra.source.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      fail("bind a mount", "mount", extra.source);
    }
    if (extra.read_only) {
      UniqueFd mounted(::openat(m_root->root_fd(), rel.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!mounted || remount_read_only(fd_path(mounted.get()).c_str()) != 0) {
        fail("make a mount read-only", "mount", extra.target);
      }
    }
  }

  // The mount points this step created in the root, for the caller to take out of the layer.
  void write_stubs() {
    std::string text;
    for (const auto& stub : m_stubs) {
      text += stub + "\n";
    }
    if (!write_file(m_plan.scratch + "/" + k_stubs_file, text)) {
      fail("record mount points", "write", m_plan.scratch + "/" + k_stubs_file);
    }
  }

  void pivot() {
    const std::string root = m_plan.scratch + "/" + k_root_dir;
    if (::chdir(root.c_str()) != 0) {
      fail("pivot_root", "chdir", root);
    }
    // pivot_root(".", "."): the old root ends up on top of the new one and is detached at once
    // (pivot_root(2), "pivot_root(\".\", \".\")"), so no directory for it is needed.
    if (::syscall(SYS_pivot_root, ".", ".") != 0) {
      fail("pivot_root", "pivot_root", root);
    }
    if (::umount2(".", MNT_DETACH) != 0) {
      fail("pivot_root", "umount2", "the old root");
    }
    if (::chdir("/") != 0) {
      fail("pivot_root", "chdir", "/");
    }
  }

  const Plan& m_plan;
  const ChildContext& m_context;
  std::optional<InRoot> m_root;
  std::vector<std::string> m_stubs;
};

// ---- child side: processes ------------------------------------------------------------------

void bring_loopback_up(const ChildContext& context) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) {
    child_fail(context, FailureKind::setup, "bring lo up", "socket", "AF_INET", errno);
  }
  struct ifreq request {};
  std::snprintf(request.ifr_name, sizeof request.ifr_name, "lo");
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &request) != 0) {
    child_fail(context, FailureKind::setup, "bring lo up", "ioctl", "SIOCGIFFLAGS lo", errno);
  }
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &request) != 0) {
    child_fail(context, FailureKind::setup, "bring lo up", "ioctl", "SIOCSIFFLAGS lo", errno);
  }
}

[[noreturn]] void command_main(const Plan& plan, const ChildContext& context) {
  const ProcessSpec& process = plan.spec->process;
  ::setsid();
  // Capabilities first, while the process is still root with every capability: dropping from
  // the bounding set needs CAP_SETPCAP. setresuid() to a non-root user then clears the rest.
  if (const int err = apply_capabilities(process.capabilities, plan.last_cap); err != 0) {
    child_fail(context, FailureKind::setup, "drop capabilities", "capset", "", err);
  }
  if (::setgroups(process.supplementary_gids.size(), process.supplementary_gids.data()) != 0) {
    // The single-id namespace denies setgroups (user_namespaces(7), /proc/PID/setgroups): keep
    // the inherited list when nothing beyond the primary group was asked for.
    const bool only_primary =
        process.supplementary_gids.empty() ||
        (process.supplementary_gids.size() == 1 && process.supplementary_gids[0] == process.gid);
    if (errno != EPERM || !only_primary) {
      child_fail(context, FailureKind::setup, "set the user", "setgroups",
                 "for uid " + std::to_string(process.uid), errno);
    }
  }
  if (::setresgid(process.gid, process.gid, process.gid) != 0) {
    child_fail(context, FailureKind::setup, "set the user", "setresgid",
               "gid " + std::to_string(process.gid), errno);
  }
  if (::setresuid(process.uid, process.uid, process.uid) != 0) {
    child_fail(context, FailureKind::setup, "set the user", "setresuid",
               "uid " + std::to_string(process.uid), errno);
  }
  ::umask(process.umask);
  if (::chdir(process.cwd.c_str()) != 0) {
    child_fail(context, FailureKind::setup, "enter the working directory", "chdir", process.cwd,
               errno);
  }
  // seccomp last: everything above needs syscalls the profile may deny.
  if (process.seccomp) {
    if (const int err = install_seccomp(*process.seccomp); err != 0) {
      child_fail(context, FailureKind::setup, "install the seccomp filter", "seccomp", "", err);
    }
  } else if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    child_fail(context, FailureKind::setup, "set no_new_privs", "prctl", "", errno);
  }
  int first_error = ENOENT;
  for (const auto& candidate : plan.exec_candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
    // Like execvp: a directory without the file is not an error; a file we may not run is.
    if (errno != ENOENT && errno != ENOTDIR && first_error == ENOENT) {
      first_error = errno;
    }
  }
  child_fail(context, first_error == ENOENT ? FailureKind::not_found : FailureKind::exec, "exec",
             "execve", process.argv.front(), first_error);
}

// ---- signal forwarding (SandboxSpec::forward_signals) ----------------------------------------

constexpr int k_forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// In the helper: PID 1; in PID 1: the command. 0 until it is forked.
volatile sig_atomic_t g_forward_to = 0;

void forward_signal(int signal_number, siginfo_t* info, void* /*context*/) {
  // A terminal's signal (si_code SI_KERNEL) reaches the whole foreground process group, the
  // command included: passing it on would deliver it twice.
  if (info != nullptr && info->si_code == SI_KERNEL) {
    return;
  }
  const pid_t to = g_forward_to;
  if (to > 0) {
    ::kill(to, signal_number);
  }
}

// A RUN step's helper is stopped by the caller with SIGTERM (kill_running_helpers): it kills
// PID 1 and goes on waiting for it. PID 1's death ends every process of the namespace before
// PID 1 can be reaped, so the step is entirely gone when the helper reports "done" and
// run_in_sandbox() returns. (SIGKILL to the helper would leave PID 1 to PR_SET_PDEATHSIG, and
// the step would still be dying after the build had ended.) Before PID 1 exists, it just exits.
void stop_step(int /*signal_number*/) {
  const pid_t init = g_forward_to;
  if (init > 0) {
    ::kill(init, SIGKILL);
  } else {
    ::_exit(1);
  }
}

enum class ChildSignals {
  forward,     ///< the helper and PID 1 of `minibuild run`: pass signals on
  step_helper, ///< a RUN step's helper: SIGTERM stops the step, the rest is the caller's
  defaults,    ///< PID 1 of a RUN step: what the command inherits
};

// The helper and PID 1 start with their parent's handlers (fork copies them, with the caller's
// tables): replace them. execve() resets caught signals to the default for the command, but
// not ignored ones, hence `defaults` for PID 1 of a RUN step.
void set_child_signals(ChildSignals mode) {
  for (const int signal_number : k_forwarded_signals) {
    struct sigaction action {};
    sigemptyset(&action.sa_mask);
    if (mode == ChildSignals::forward) {
      action.sa_sigaction = forward_signal;
      action.sa_flags = SA_SIGINFO | SA_RESTART;
    } else if (mode == ChildSignals::step_helper) {
      // A terminal's Ctrl-C reaches the caller too, which decides: it stops the step.
      action.sa_handler = signal_number == SIGTERM ? stop_step : SIG_IGN;
      action.sa_flags = SA_RESTART;
    } else {
      action.sa_handler = SIG_DFL;
    }
    ::sigaction(signal_number, &action, nullptr);
  }
}

[[noreturn]] void init_main(const Plan& plan, const ChildContext& context) {
  if (!plan.spec->forward_signals) {
    set_child_signals(ChildSignals::defaults);
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ChildMounts(plan, context).run();
  if (::sethostname(plan.spec->hostname.data(), plan.spec->hostname.size()) != 0) {
    child_fail(context, FailureKind::setup, "set the hostname", "sethostname", plan.spec->hostname,
               errno);
  }
  if (plan.spec->network == NetworkMode::none) {
    bring_loopback_up(context);
  }
  g_forward_to = 0;
  const pid_t command = ::fork();
  if (command < 0) {
    child_fail(context, FailureKind::setup, "start the command", "fork", "", errno);
  }
  if (command == 0) {
    command_main(plan, context);
  }
  g_forward_to = command;
  ::close(context.report_fd);
  ::close(STDIN_FILENO);
  ::close(STDOUT_FILENO);
  ::close(STDERR_FILENO);
  // PID 1 reaps every orphan of the step. When the command ends, so does PID 1, and the kernel
  // kills what is left in the namespace (pid_namespaces(7)).
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, 0);
    if (done == command) {
      [[maybe_unused]] const ssize_t written = ::write(plan.status_fd, &status, sizeof status);
      ::_exit(0);
    }
    if (done < 0 && errno != EINTR) {
      ::_exit(1);
    }
  }
}

[[noreturn]] void helper_main(const Plan& plan) {
  ChildContext context{plan.report_fd};
  set_child_signals(plan.spec->forward_signals ? ChildSignals::forward : ChildSignals::step_helper);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != plan.caller) {
    ::_exit(1); // the caller died before the death signal was armed
  }
  for (const auto& [from, to] :
       {std::pair{plan.stdin_fd, STDIN_FILENO}, std::pair{plan.stdout_fd, STDOUT_FILENO},
        std::pair{plan.stderr_fd, STDERR_FILENO}}) {
    if (from >= 0 && from != to && ::dup2(from, to) < 0) {
      child_fail(context, FailureKind::setup, "redirect the output", "dup2", "", errno);
    }
  }
  // Every other descriptor of the caller (store locks, sockets of the registry client) must not
  // reach the step.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (plan.spec->network == NetworkMode::none) {
    flags |= CLONE_NEWNET;
  }
  if (::unshare(flags) != 0) {
    child_fail(context, FailureKind::setup, "create namespaces", "unshare",
               "mount, pid, ipc, uts" +
                   std::string(plan.spec->network == NetworkMode::none ? ", net" : ""),
               errno);
  }
  const pid_t init = ::fork();
  if (init < 0) {
    child_fail(context, FailureKind::setup, "start PID 1", "fork", "", errno);
  }
  if (init == 0) {
    init_main(plan, context);
  }
  g_forward_to = init;
  ::close(plan.report_fd);
  ::close(STDOUT_FILENO);
  ::close(STDERR_FILENO);
  int status = 0;
  while (::waitpid(init, &status, 0) < 0 && errno == EINTR) {
  }
  // Every process of the step is gone now (PID 1 was reaped, and its exit killed the rest).
  // Say so before exiting: the exit itself tears the mount namespace down, which waits for
  // an RCU grace period, and the caller need not wait for that.
  [[maybe_unused]] const ssize_t written =
      ::write(plan.status_fd, &k_helper_done, sizeof k_helper_done);
  ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

// ---- caller side --------------------------------------------------------------------------------

// The helpers of the steps running now (parallel stages run several). A fixed table of atomics,
// because the signal handler reads it: it may not take a lock.
constexpr std::size_t k_max_running = 256;
std::atomic<pid_t> g_running_helpers[k_max_running];

// Takes a free slot for `helper`; with every slot taken (more parallel steps than any --jobs
// gives) the helper runs unlisted, so only the death of the process would end it.
std::atomic<pid_t>* register_running(pid_t helper) {
  for (auto& slot : g_running_helpers) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, helper)) {
      return &slot;
    }
  }
  return nullptr;
}

// Stops every running step (SIGTERM to its helper: stop_step); returns how many there were.
// Async-signal-safe.
int kill_running_helpers() {
  int killed = 0;
  for (auto& slot : g_running_helpers) {
    const pid_t helper = slot.load();
    if (helper > 0) {
      ::kill(helper, SIGTERM);
      ++killed;
    }
  }
  return killed;
}

// Helpers whose step is over but whose exit (the mount namespace's teardown) may still run.
std::mutex g_exiting_mutex;
std::vector<pid_t> g_exiting_helpers;

void reap_exiting_helpers(bool wait) {
  std::vector<pid_t> helpers;
  {
    const std::lock_guard lock(g_exiting_mutex);
    helpers.swap(g_exiting_helpers);
  }
  std::vector<pid_t> still_running;
  for (const pid_t pid : helpers) {
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid, &status, wait ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (done == 0) { // not reaped and still our child
      still_running.push_back(pid);
    }
  }
  const std::lock_guard lock(g_exiting_mutex);
  g_exiting_helpers.insert(g_exiting_helpers.end(), still_running.begin(), still_running.end());
}
std::atomic<bool> g_interrupted{false};

std::string hint_for(const ChildFailure& failure) {
  const std::string step = failure.step;
  const int err = failure.sys_errno;
  if (step.find("overlay") != std::string::npos) {
    if (err == EINVAL) {
      return "overlayfs refused the options (userxattr needs Linux 5.11+; the upper dir must be "
             "on a filesystem with user xattrs, not overlayfs itself); try "
             "--storage-driver=vfs";
    }
    if (err == EPERM) {
      return "this kernel does not allow overlay mounts in a user namespace (Linux 5.11+ does); "
             "try --storage-driver=vfs";
    }
    if (err == ENODEV) {
      return "the overlay filesystem is not available (modprobe overlay)";
    }
  }
  if (step == "create namespaces" && (err == EPERM || err == ENOSPC)) {
    return "the kernel refused new namespaces: minibuild needs root or its user namespace "
           "(is it running inside a container that forbids unshare?)";
  }
  if (step == "mount /proc" && err == EPERM) {
    return "a fresh /proc is refused when parts of the host's /proc are hidden by other mounts "
           "(as inside many containers); run minibuild where /proc is fully visible";
  }
  if (step == "set the user" && (err == EINVAL || err == EPERM)) {
    return "the id is not mapped in minibuild's user namespace (no subordinate ids: add a "
           "range to /etc/subuid and /etc/subgid)";
  }
  return {};
}

Error failure_error(const ChildFailure& failure) {
  const std::string syscall = failure.syscall;
  const std::string path = failure.path;
  std::string message = std::string(failure.step) + ": " + syscall +
                        (path.empty() ? std::string() : " " + path) + ": " +
                        std::strerror(failure.sys_errno);
  if (failure.kind == FailureKind::not_found) {
    return Error(Code::not_found, "exec " + path + ": executable file not found in $PATH")
        .tagged(k_command_not_found);
  }
  if (failure.kind == FailureKind::exec) {
    return Error(Code::build_failed, "exec " + path + ": " + std::strerror(failure.sys_errno))
        .tagged(k_command_not_executable);
  }
  const std::string hint = hint_for(failure);
  if (!hint.empty()) {
    message += "; " + hint;
  }
  if (std::string_view(failure.step) == k_overlay_step) {
    return Error(Code::sandbox, message).tagged(k_overlay_refused);
  }
  return Error(Code::sandbox, message);
}

// Set while a step with SandboxSpec::forward_signals runs (`minibuild run`).
std::atomic<bool> g_forwarding{false};

void on_signal(int signal_number, siginfo_t* info, void* /*context*/) {
  if (g_forwarding.load()) {
    // The command decides. A terminal's signal has reached it already (same process group).
    bool any = false;
    for (auto& slot : g_running_helpers) {
      const pid_t helper = slot.load();
      if (helper > 0) {
        any = true;
        if (info == nullptr || info->si_code != SI_KERNEL) {
          ::kill(helper, signal_number);
        }
      }
    }
    if (any) {
      return;
    }
  }
  // Marked first: a step starting on another thread right now sees it when its helper ends.
  g_interrupted.store(true);
  if (kill_running_helpers() == 0) {
    ::signal(signal_number, SIG_DFL);
    ::raise(signal_number);
  }
}

} // namespace

std::string default_hosts_file(std::string_view hostname) {
  std::string text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  text += "127.0.1.1\t" + std::string(hostname) + "\n";
  return text;
}

Result<void> mount_overlay_view(const std::vector<std::string>& lowers, const std::string& target) {
  if (lowers.empty()) {
    return fail(Code::internal, "mount an overlay view: no lower dir");
  }
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs) {
    return fail(
        Error::from_errno(errno, "mount an overlay view: fsopen overlay").with_code(Code::sandbox));
  }
  const auto config = [&](unsigned cmd, const char* key, const char* value) -> Result<void> {
    if (::syscall(SYS_fsconfig, fs.get(), cmd, key, value, 0) != 0) {
      return fail(Error::from_errno(errno, "mount an overlay view: fsconfig " +
                                               std::string(key ? key : "create") + " " +
                                               std::string(value ? value : ""))
                      .with_code(Code::sandbox));
    }
    return {};
  };
  for (const auto& lower : lowers) {
    MB_TRY(config(FSCONFIG_SET_STRING, "lowerdir+", lower.c_str()));
  }
  MB_TRY(config(FSCONFIG_SET_FLAG, "userxattr", nullptr));
  MB_TRY(config(FSCONFIG_CMD_CREATE, nullptr, nullptr));
  UniqueFd mounted(
      static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY)));
  if (!mounted) {
    return fail(
        Error::from_errno(errno, "mount an overlay view: fsmount").with_code(Code::sandbox));
  }
  if (::syscall(SYS_move_mount, mounted.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return fail(Error::from_errno(errno, "mount an overlay view: move_mount \"" + target + "\"")
                    .with_code(Code::sandbox));
  }
  return {};
}

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  for (const int signal_number : k_forwarded_signals) {
    ::sigaction(signal_number, &action, nullptr);
  }
}

bool interrupted() {
  return g_interrupted.load();
}

void finish_sandbox_teardown() {
  reap_exiting_helpers(true);
}

void cancel_running_sandboxes() {
  (void)kill_running_helpers();
}

Result<SandboxExit> run_in_sandbox(const SandboxSpec& spec) {
  if (spec.process.argv.empty()) {
    return fail(Code::usage, "run: no command");
  }
  reap_exiting_helpers(false);
  Plan plan;
  plan.spec = &spec;
  plan.caller = ::getpid();
  plan.last_cap = last_capability();
  const char* no_overlay = std::getenv("MINIBUILD_NO_OVERLAY");
  plan.refuse_overlay = no_overlay != nullptr && std::string_view(no_overlay) == "1";
  plan.scratch = spec.scratch_dir;
  MB_TRY(make_dir(plan.scratch + "/" + k_root_dir));
  if (spec.rootfs.plain_dir.empty()) {
    MB_TRY_ASSIGN(plan.overlay_data, prepare_overlay(plan));
  }
  MB_TRY(write_file(plan.scratch + "/hosts",
                    spec.hosts.empty() ? default_hosts_file(spec.hostname) : spec.hosts));
  MB_TRY(write_file(plan.scratch + "/resolv.conf", spec.resolv_conf.empty()
                                                       ? read_host_file("/etc/resolv.conf")
                                                       : spec.resolv_conf));
  MB_TRY(write_file(plan.scratch + "/hostname", spec.hostname + "\n"));
  plan.exec_candidates = exec_candidates(spec.process);
  for (const auto& arg : spec.process.argv) {
    plan.argv.push_back(const_cast<char*>(arg.c_str()));
  }
  plan.argv.push_back(nullptr);
  for (const auto& entry : spec.process.env) {
    plan.envp.push_back(const_cast<char*>(entry.c_str()));
  }
  plan.envp.push_back(nullptr);

  int report[2] = {-1, -1};
  int status[2] = {-1, -1};
  int output[2] = {-1, -1};
  if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0 ||
      (spec.output && ::pipe2(output, O_CLOEXEC) != 0)) {
    return fail_errno(errno, "run: pipe");
  }
  UniqueFd report_read(report[0]), report_write(report[1]);
  UniqueFd status_read(status[0]), status_write(status[1]);
  UniqueFd output_read(output[0]), output_write(output[1]);
  UniqueFd null_input;
  if (spec.stdin_fd < 0) {
    null_input.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  plan.stdin_fd = spec.stdin_fd >= 0 ? spec.stdin_fd : null_input.get();
  plan.stdout_fd = spec.output ? output_write.get() : spec.stdout_fd;
  plan.stderr_fd = spec.output ? output_write.get() : spec.stderr_fd;
  plan.report_fd = report_write.get();
  plan.status_fd = status_write.get();

  const pid_t helper = ::fork();
  if (helper < 0) {
    return fail_errno(errno, "run: fork");
  }
  if (helper == 0) {
    helper_main(plan);
  }
  if (spec.forward_signals) {
    g_forwarding.store(true);
  }
  std::atomic<pid_t>* const running = register_running(helper);
  if (g_interrupted.load()) {
    ::kill(helper, SIGKILL); // the signal came between fork and registration
  }
  report_write.reset();
  status_write.reset();
  output_write.reset();

  ChildFailure failure;
  std::size_t failure_bytes = 0;
  bool report_open = true;
  bool output_open = output_read.get() >= 0;
  char buffer[16384];
  while (report_open || output_open) {
    pollfd fds[2] = {{report_read.get(), POLLIN, 0}, {output_read.get(), POLLIN, 0}};
    if (!report_open) {
      fds[0].fd = -1;
    }
    if (!output_open) {
      fds[1].fd = -1;
    }
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (report_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = ::read(report_read.get(), reinterpret_cast<char*>(&failure) + failure_bytes,
                               sizeof failure - failure_bytes);
      if (n > 0) {
        failure_bytes += static_cast<std::size_t>(n);
      } else if (n == 0 || errno != EINTR) {
        report_open = false;
      }
      if (failure_bytes == sizeof failure) {
        report_open = false;
      }
    }
    if (output_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = ::read(output_read.get(), buffer, sizeof buffer);
      if (n > 0) {
        spec.output(std::string_view(buffer, static_cast<std::size_t>(n)));
      } else if (n == 0 || errno != EINTR) {
        output_open = false;
      }
    }
  }
  // The command's wait status (from PID 1), then the helper's "all gone" marker.
  std::optional<int> command_status;
  bool helper_done = false;
  for (;;) {
    int value = 0;
    const ssize_t got = ::read(status_read.get(), &value, sizeof value);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got != sizeof value) {
      break;
    }
    if (value == k_helper_done) {
      helper_done = true;
      break;
    }
    command_status = value;
  }
  if (running != nullptr) {
    running->store(0);
  }
  if (spec.forward_signals) {
    g_forwarding.store(false);
  }
  if (helper_done) {
    // Its exit (the namespace teardown) finishes in the background; reaped later.
    const std::lock_guard lock(g_exiting_mutex);
    g_exiting_helpers.push_back(helper);
  } else {
    int helper_status = 0;
    while (::waitpid(helper, &helper_status, 0) < 0 && errno == EINTR) {
    }
  }
  if (g_interrupted.load()) {
    return fail(Code::interrupted, "interrupted");
  }
  if (failure_bytes == sizeof failure) {
    return fail(failure_error(failure));
  }
  if (!command_status) {
    return fail(Code::sandbox, "run: the step's PID 1 ended without reporting the command's "
                               "status (killed from outside?)");
  }
  SandboxExit result;
  if (WIFEXITED(*command_status)) {
    result.exit_code = WEXITSTATUS(*command_status);
  } else if (WIFSIGNALED(*command_status)) {
    result.signal = WTERMSIG(*command_status);
    result.exit_code = 128 + result.signal;
  }
  return result;
}

} // namespace minibuild::runtime
