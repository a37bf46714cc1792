// The user-namespace dance of a rootless minibuild, step by step (as bubblewrap's main does it).
//
// newuidmap/newgidmap must write the maps of a process that is already in the new namespace,
// from outside it: a process in the namespace has no privilege over the parent namespace's ids.
// So a helper child is forked BEFORE unshare (it stays in the initial namespace), the parent
// unshares and signals it over a pipe, the child runs the helpers on the parent's pid and reports
// back over a second pipe. See user_namespaces(7), newuidmap(1).

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/runtime/user_namespace.hpp>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace minibuild::runtime {
namespace {

constexpr std::string_view k_step = "enter user namespace";

// Error has no hint field yet: a hint is appended to the message after "; ", which costs the
// errno (Error::from_errno is the only way to set it).
Error sandbox_error(int sys_errno, const std::string& what, const std::string& hint) {
  if (hint.empty()) {
    return Error::from_errno(sys_errno, what).with_code(Code::sandbox);
  }
  return Error(Code::sandbox, what + ": " + std::strerror(sys_errno) + "; " + hint);
}

std::optional<long> read_sysctl(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return std::nullopt;
  }
  char buffer[32] = {};
  const ssize_t got = ::read(fd.get(), buffer, sizeof buffer - 1);
  if (got <= 0) {
    return std::nullopt;
  }
  long value = 0;
  const auto [end, error] = std::from_chars(buffer, buffer + got, value);
  if (error != std::errc() || end == buffer) {
    return std::nullopt;
  }
  return value;
}

Result<int> count_threads() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    return fail(sandbox_error(errno, "opendir /proc/self/task", ""));
  }
  int count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
      ++count;
    }
  }
  ::closedir(dir);
  return count;
}

std::optional<std::string> find_helper(std::string_view name,
                                       const std::optional<std::string>& search_path) {
  std::string path_list;
  if (search_path) {
    path_list = *search_path;
  } else {
    const char* env_path = std::getenv("PATH");
    path_list = std::string(env_path != nullptr ? env_path : "") + ":/usr/bin";
  }
  std::string_view rest = path_list;
  while (true) {
    const auto colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    if (!dir.empty()) {
      std::string candidate = std::string(dir) + "/" + std::string(name);
      if (::access(candidate.c_str(), X_OK) == 0) {
        return candidate;
      }
    }
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    rest = rest.substr(colon + 1);
  }
}

std::vector<std::string> helper_argv(const std::string& helper, pid_t pid,
                                     const std::vector<layer::IdRange>& map) {
  std::vector<std::string> argv{helper, std::to_string(pid)};
  for (const auto& range : map) {
    argv.push_back(std::to_string(range.container_id));
    argv.push_back(std::to_string(range.host_id));
    argv.push_back(std::to_string(range.size));
  }
  return argv;
}

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) {
    text += text.empty() ? "" : " ";
    text += word;
  }
  return text;
}

Result<void> write_proc_file(const char* path, const std::string& content,
                             const std::string& hint) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) {
    return fail(sandbox_error(errno, std::string("open ") + path, hint));
  }
  // The kernel takes a map in ONE write(2) and rejects a second one.
  const ssize_t written = ::write(fd.get(), content.data(), content.size());
  if (written < 0 || static_cast<std::size_t>(written) != content.size()) {
    return fail(sandbox_error(written < 0 ? errno : EIO, std::string("write ") + path, hint));
  }
  return {};
}

// What the helper child sends back: which helper failed (0: none) and how.
struct HelperReport {
  int failed_helper = 0; // 1 newuidmap, 2 newgidmap
  int spawn_errno = 0;
  int wait_status = 0;
};

// Runs in the forked child: waits for the parent's unshare, runs both helpers, reports.
[[noreturn]] void helper_child(int go_fd, int report_fd,
                               std::vector<std::vector<std::string>> commands) {
  char go = 0;
  ssize_t got = 0;
  do {
    got = ::read(go_fd, &go, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) {
    _exit(0); // the parent's unshare failed and closed the pipe; it reports that itself
  }
  HelperReport report;
  for (std::size_t i = 0; i < commands.size() && report.failed_helper == 0; ++i) {
    std::vector<char*> argv;
    for (auto& word : commands[i]) {
      argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
    if (rc != 0) {
      report = {static_cast<int>(i) + 1, rc, 0};
      break;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      report = {static_cast<int>(i) + 1, 0, status};
    }
  }
  const ssize_t written = ::write(report_fd, &report, sizeof report);
  _exit(written == sizeof report ? 0 : 1);
}

void reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

std::string subid_hint(const UserNamespaceOptions& options, const char* file,
                       const UserNamespaceSysctls& sysctls) {
  std::string hint = user_namespace_hint(EPERM, sysctls);
  if (!hint.empty()) {
    return hint;
  }
  const std::string user = options.user_name.empty() ? "USER" : options.user_name;
  return std::string("the helper refused the map: ") + file + " needs an entry " + user +
         ":START:COUNT holding these ids, and the helper must be setuid root (Debian package "
         "uidmap); without an entry minibuild falls back to a single-id map";
}

} // namespace

UserNamespaceSysctls read_user_namespace_sysctls() {
  return {read_sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
          read_sysctl("/proc/sys/user/max_user_namespaces"),
          read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")};
}

std::string user_namespace_hint(int sys_errno, const UserNamespaceSysctls& sysctls) {
  const bool refused = sys_errno == EPERM || sys_errno == EACCES;
  if (refused && sysctls.unprivileged_userns_clone == 0L) {
    return "user namespaces are disabled for unprivileged users "
           "(kernel.unprivileged_userns_clone = 0): enable them with `sysctl -w "
           "kernel.unprivileged_userns_clone=1`, or run minibuild as root";
  }
  if (sysctls.max_user_namespaces == 0L && (refused || sys_errno == ENOSPC)) {
    return "user namespaces are disabled (user.max_user_namespaces = 0): enable them with "
           "`sysctl -w user.max_user_namespaces=15000`, or run minibuild as root";
  }
  if (refused && sysctls.apparmor_restrict_unprivileged_userns == 1L) {
    return "AppArmor restricts unprivileged user namespaces "
           "(kernel.apparmor_restrict_unprivileged_userns = 1): set it to 0 with sysctl, or "
           "give minibuild an AppArmor profile that allows `userns,`";
  }
  if (sys_errno == ENOSPC || sys_errno == EUSERS) {
    return "the limit on user namespaces is reached (user.max_user_namespaces" +
           (sysctls.max_user_namespaces ? " = " + std::to_string(*sysctls.max_user_namespaces)
                                        : std::string()) +
           ", or more than 32 nested namespaces)";
  }
  if (sys_errno == EINVAL) {
    return "unshare(CLONE_NEWUSER) needs a single-threaded process that is not in a chroot";
  }
  return {};
}

Result<EnteredNamespace> enter_user_namespace(const UserNamespaceOptions& options) {
  EnteredNamespace entered;
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (uid == 0) {
    return entered; // root needs no user namespace (issue #5); RUN gets its own namespaces
  }

  MB_TRY_ASSIGN(const int threads, count_threads().map_error([](Error e) {
    return std::move(e).wrap(std::string(k_step));
  }));
  if (threads != 1) {
    return fail(Error(Code::sandbox, "unshare(CLONE_NEWUSER): the process has " +
                                         std::to_string(threads) +
                                         " threads; a user namespace can only be entered "
                                         "before any thread starts (call it first in main)")
                    .wrap(std::string(k_step)));
  }

  const IdMapPlan plan = plan_id_map(uid, gid, options.subuids, options.subgids, options.size);
  entered.id_map = plan.map;
  entered.uid_count = plan.uid_count;
  entered.gid_count = plan.gid_count;
  const UserNamespaceSysctls sysctls = read_user_namespace_sysctls();
  const pid_t self = ::getpid();

  // Subordinate ids: find the helpers and start the helper child before unshare.
  pid_t child = -1;
  UniqueFd go_write;
  UniqueFd report_read;
  std::vector<std::string> commands[2];
  if (plan.kind == IdMapKind::subordinate) {
    entered.kind = NamespaceKind::subordinate;
    const char* names[2] = {"newuidmap", "newgidmap"};
    for (int i = 0; i < 2; ++i) {
      auto helper = find_helper(names[i], options.helper_search_path);
      if (!helper) {
        return fail(Error(Code::sandbox, std::string(names[i]) +
                                             ": not found in PATH or /usr/bin; install Debian's "
                                             "uidmap package (apt-get install uidmap), or remove "
                                             "the /etc/subuid and /etc/subgid entries to use a "
                                             "single-id map")
                        .wrap(std::string(k_step)));
      }
      commands[i] = helper_argv(*helper, self, i == 0 ? plan.map.uids : plan.map.gids);
    }
    int go_pipe[2];
    int report_pipe[2];
    if (::pipe2(go_pipe, O_CLOEXEC) != 0) {
      return fail(sandbox_error(errno, "pipe2", "").wrap(std::string(k_step)));
    }
    UniqueFd go_read(go_pipe[0]);
    go_write.reset(go_pipe[1]);
    if (::pipe2(report_pipe, O_CLOEXEC) != 0) {
      return fail(sandbox_error(errno, "pipe2", "").wrap(std::string(k_step)));
    }
    report_read.reset(report_pipe[0]);
    UniqueFd report_write(report_pipe[1]);
    child = ::fork();
    if (child < 0) {
      return fail(sandbox_error(errno, "fork", "").wrap(std::string(k_step)));
    }
    if (child == 0) {
      go_write.reset();
      report_read.reset();
      helper_child(go_read.get(), report_write.get(), {commands[0], commands[1]});
    }
  } else {
    entered.kind = NamespaceKind::single_id;
    entered.notice =
        "no subordinate ids for " +
        (options.user_name.empty() ? "uid " + std::to_string(uid) : options.user_name) +
        " in /etc/subuid and /etc/subgid: mapping only uid " + std::to_string(uid) + " and gid " +
        std::to_string(gid) + " to root; files owned by other ids are stored as root";
  }

  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    const int error = errno;
    if (child > 0) {
      go_write.reset(); // EOF tells the child to exit without running the helpers
      reap(child);
    }
    return fail(sandbox_error(error, "unshare(CLONE_NEWUSER|CLONE_NEWNS)",
                              user_namespace_hint(error, sysctls))
                    .wrap(std::string(k_step)));
  }

  if (child > 0) {
    const char go = 'g';
    const bool sent = ::write(go_write.get(), &go, 1) == 1;
    go_write.reset();
    HelperReport report;
    ssize_t got = -1;
    if (sent) {
      do {
        got = ::read(report_read.get(), &report, sizeof report);
      } while (got < 0 && errno == EINTR);
    }
    reap(child);
    if (got != static_cast<ssize_t>(sizeof report)) {
      return fail(Error(Code::sandbox, "the newuidmap helper process died without a report")
                      .wrap(std::string(k_step)));
    }
    if (report.failed_helper != 0) {
      const auto& command = commands[report.failed_helper - 1];
      const char* file = report.failed_helper == 1 ? "/etc/subuid" : "/etc/subgid";
      if (report.spawn_errno != 0) {
        return fail(sandbox_error(report.spawn_errno, "posix_spawn " + command[0], "")
                        .wrap(std::string(k_step)));
      }
      const std::string how =
          WIFEXITED(report.wait_status)
              ? "exited with status " + std::to_string(WEXITSTATUS(report.wait_status))
              : "killed by signal " + std::to_string(WTERMSIG(report.wait_status));
      return fail(Error(Code::sandbox,
                        join(command) + ": " + how + "; " + subid_hint(options, file, sysctls))
                      .wrap(std::string(k_step)));
    }
  } else {
    // Unprivileged single-id map: setgroups must be denied before gid_map may be written
    // (Linux 3.19, CVE-2014-8989), and only our own ids may be mapped.
    std::string hint = user_namespace_hint(EPERM, sysctls);
    if (hint.empty() && ::prctl(PR_GET_DUMPABLE) == 0) {
      // A process that changed its credentials is not dumpable, and its /proc/self files belong
      // to root (proc(5)), so it cannot open its own uid_map.
      hint = "the process is not dumpable after a credential change; call "
             "prctl(PR_SET_DUMPABLE, 1) first";
    }
    auto step = write_proc_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n", hint)
                    .and_then([&] { return write_proc_file("/proc/self/setgroups", "deny", hint); })
                    .and_then([&] {
                      return write_proc_file("/proc/self/gid_map",
                                             "0 " + std::to_string(gid) + " 1\n", hint);
                    });
    if (!step) {
      return fail(std::move(step).error().wrap(std::string(k_step)));
    }
  }

  // All three ids, so a later exec keeps being root here (the saved id counts for setuid
  // programs and capability rules).
  if (::setresgid(0, 0, 0) != 0) {
    return fail(sandbox_error(errno, "setresgid 0", "").wrap(std::string(k_step)));
  }
  if (::setresuid(0, 0, 0) != 0) {
    return fail(sandbox_error(errno, "setresuid 0", "").wrap(std::string(k_step)));
  }
  // The new mount namespace starts as a copy with shared propagation; without this, mounts made
  // for RUN steps would propagate back to the host's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return fail(sandbox_error(errno, "mount(MS_REC|MS_PRIVATE) /", "").wrap(std::string(k_step)));
  }
  if (plan.kind == IdMapKind::subordinate && plan.uid_count < options.size + 1) {
    entered.notice =
        "only " + std::to_string(plan.uid_count - 1) + " subordinate uids for " +
        (options.user_name.empty() ? "uid " + std::to_string(uid) : options.user_name) +
        " (wanted " + std::to_string(options.size) +
        "): files owned by higher container ids cannot be created";
  }
  return entered;
}

} // namespace minibuild::runtime
