// The RUN sandbox: runs one process tree in fresh mount, PID, IPC and UTS namespaces (and a fresh
// network namespace for --network=none) on an overlay root filesystem.
//
// The model is bubblewrap's and crun's: everything is planned in the calling process (paths,
// argv/env arrays, the compiled seccomp program), then a child made with clone() runs the plan
// top to bottom with plain syscalls and no allocation-heavy work:
//
//   clone(NEWNS|NEWPID|NEWIPC|NEWUTS[|NEWNET])        the child is PID 1 of the step
//   → parent death signal, "/" made private (mounts never reach the caller's namespace)
//   → overlay (lowerdir through short links, upperdir, workdir, userxattr) or a plain dir bind
//   → /proc, /dev (tmpfs + binds of null zero full random urandom tty, devpts, shm, mqueue),
//     /sys read-only, /etc/hosts, /etc/resolv.conf, /etc/hostname, extra mounts
//   → pivot_root, old root detached → sethostname, lo up for a new network namespace
//   → fork the command; PID 1 reaps every process until the command exits, then exits with
//     its status (its death kills whatever is left in the PID namespace)
//   → in the command: setsid, setgroups/setresgid/setresuid, capabilities, umask, chdir,
//     no_new_privs, seccomp last, execve.
//
// The caller needs CAP_SYS_ADMIN over its own user namespace: real root, or the rootless
// namespace the CLI enters (runtime/user_namespace.hpp). No user namespace is made here.
//
// Errors of the child come back over a close-on-exec pipe as "<step>: <syscall> <path>: <errno
// text>" and become Code::sandbox with a hint when the cause is known. The command's own
// failure is not an error: it is SandboxExit.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/runtime/security.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace minibuild::runtime {

enum class NetworkMode {
  host, ///< the caller's network namespace
  none, ///< a new network namespace with only lo, up
};

/// How the step's root filesystem is made.
struct RootFs {
  /// Overlay lower dirs, TOP FIRST (the image's last layer first). Empty lower_dirs with a
  /// non-empty upper_dir mounts an overlay of an empty lower (FROM scratch).
  std::vector<std::string> lower_dirs;
  /// The overlay upper and work dirs: absolute, empty, on one filesystem. The upper dir holds
  /// the step's changes afterwards (whiteouts as 0/0 devices, user.overlay.opaque).
  std::string upper_dir;
  std::string work_dir;
  /// Instead of an overlay: this directory is the root (the copy-based vfs driver), changed in
  /// place. Used when non-empty; lower/upper/work are then ignored.
  std::string plain_dir;
};

struct MountSpec {
  enum class Kind { bind, tmpfs };
  Kind kind = Kind::bind;
  std::string source; ///< absolute host path for bind; unused for tmpfs
  std::string target; ///< absolute path in the container; created when missing
  bool read_only = false;
  std::string options; ///< tmpfs data ("size=64m,mode=1777"); empty: defaults
};

struct ProcessSpec {
  std::vector<std::string> argv; ///< argv[0] is looked up in PATH of `env` when it has no '/'
  std::vector<std::string> env;  ///< "KEY=VALUE"
  std::string cwd = "/";         ///< created (0755, owned by root) when missing
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> supplementary_gids;
  mode_t umask = 022;
  CapabilitySet capabilities = 0; ///< kept for a root process; a non-root one gets none
  /// The compiled filter; nullopt: unconfined. no_new_privs is set either way.
  std::optional<SeccompProgram> seccomp;
};

struct SandboxSpec {
  RootFs rootfs;
  ProcessSpec process;
  NetworkMode network = NetworkMode::host;
  std::string hostname = "minibuild";
  /// Content of the files supplied by the builder; bind-mounted read-only over the image's own
  /// (created when missing) and never part of the upper dir.
  std::string hosts;
  std::string resolv_conf;
  /// Mounts after the standard ones, in order.
  std::vector<MountSpec> mounts;
  /// A directory the sandbox may use for its own files (the mount point of the root, the short
  /// lower-dir links, the /etc files). Must exist and be empty; the caller removes it afterwards.
  std::string scratch_dir;
  /// The step's stdin, stdout and stderr; -1: /dev/null (stdin) or the caller's own.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  /// When set, stdout and stderr go to one pipe whose bytes are handed to this function as they
  /// arrive (on the calling thread), instead of stdout_fd/stderr_fd.
  std::function<void(std::string_view chunk)> output;
  /// `minibuild run` (as `docker run --sig-proxy`): SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1
  /// and SIGUSR2 that a process sends to minibuild are passed on to the command, through the
  /// helper and PID 1, instead of killing the step; the command decides what they mean.
  /// Signals a terminal generates (Ctrl-C) already reach the command, which shares the
  /// terminal's process group, and are not passed on a second time. Off for RUN steps: a
  /// signal ends the build.
  bool forward_signals = false;
};

/// Error tags (Error::has_tag) of run_in_sandbox() failures that callers decide on.
/// The kernel refused the overlay root (callers with the auto storage driver fall back to vfs).
inline constexpr std::string_view k_overlay_refused = "sandbox.overlay-refused";
/// The command is not in the container (Code::not_found; `docker run` exits 127).
inline constexpr std::string_view k_command_not_found = "sandbox.command-not-found";
/// The command exists but cannot be executed (`docker run` exits 126).
inline constexpr std::string_view k_command_not_executable = "sandbox.command-not-executable";

/// How the command ended.
struct SandboxExit {
  int exit_code = 0; ///< the command's exit status, or 128 + signal
  int signal = 0;    ///< the signal that ended it, or 0
};

/// Runs the spec and waits for the command. Blocking; several threads may run steps at once
/// (parallel stages), each its own. Every
/// process of the step is gone when this returns, success or failure. Its mounts live in a
/// mount namespace that no process is in any more; the kernel may still be tearing it down
/// (that waits for an RCU grace period, ~20 ms), so before the upper dir is mounted again, as
/// a lower dir of the next step, call finish_sandbox_teardown(). When the calling process
/// dies (SIGKILL, an unhandled SIGINT), the step's PID 1 receives SIGKILL (PR_SET_PDEATHSIG),
/// which ends the step the same way.
///
/// Code::sandbox when a setup step failed (the message names step, syscall, path, errno and a
/// hint); Code::not_found when the command does not exist in the container; Code::io when the
/// caller's side fails (pipe, clone).
Result<SandboxExit> run_in_sandbox(const SandboxSpec& spec);

/// Waits until the mount namespaces of finished steps are torn down (their overlay mounts
/// released), those of other threads' steps included. Cheap when there is nothing to wait for.
void finish_sandbox_teardown();

/// Kills every running step (SIGTERM to its helper, which SIGKILLs PID 1 and waits until the
/// whole step is gone), without marking the process interrupted: their run_in_sandbox() calls
/// fail (Code::sandbox, PID 1 ended without a status). For a build whose other stage failed.
void cancel_running_sandboxes();

/// Mounts a read-only overlay of `lowers` (TOP FIRST, at least one) on the existing directory
/// `target`, with `userxattr`, through the new mount API (`lowerdir+`, Linux 6.8+: no page
/// limit on the number of layers). For the builder's own view of a stage's files; the caller
/// must be in a mount namespace of its own (the rootless one, or the one root builds make),
/// or the mount reaches the host. Code::sandbox when the kernel refuses (callers fall back to
/// a copy).
Result<void> mount_overlay_view(const std::vector<std::string>& lowers, const std::string& target);

/// The /etc/hosts the builder supplies: localhost lines and the hostname.
std::string default_hosts_file(std::string_view hostname);

/// For the CLI: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 kill the running steps
/// (SIGTERM to their helper, which SIGKILLs PID 1, whose death takes the whole PID namespace
/// with it; for a step with SandboxSpec::forward_signals the signal is passed on to its command
/// instead) and mark the process interrupted, so run_in_sandbox() returns Code::interrupted and the
/// caller unwinds and cleans up. A signal that arrives while no step runs takes its default action
/// (the process ends; the store's temporary area is swept by the next command).
void install_interrupt_handlers();

/// True once install_interrupt_handlers()' handler has seen a signal.
bool interrupted();

} // namespace minibuild::runtime
