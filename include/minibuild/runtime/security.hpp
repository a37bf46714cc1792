// The security settings of the RUN sandbox: capabilities and the seccomp filter.
//
// Everything that allocates or can fail for reasons the user should read (parsing a profile,
// compiling it with libseccomp, naming capabilities) happens in the PARENT, before fork/clone:
// the result is plain data (a CapabilitySet, a SeccompProgram). The sandbox child then only calls
// the two `noexcept` appliers at the end of its setup, in this order (as crun and runc do):
//
//   setgroups → setresgid → setresuid → apply_capabilities → install_seccomp → execve
//
// install_seccomp comes last so that the filter does not have to allow the setup's own syscalls.
// The appliers allocate nothing and return an errno, so they are safe after fork() in a
// multi-threaded parent. See docs/security.md for the settings and how they compare to Docker's.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdint>
#include <linux/filter.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::runtime {

// --- Capabilities -------------------------------------------------------------------------------

/// A set of Linux capabilities: bit N is capability number N of <linux/capability.h>
/// (CAP_CHOWN = bit 0). 64 bits cover every capability the kernel's capset ABI (v3) can express.
using CapabilitySet = std::uint64_t;

/// The bit of capability `cap` (0..63) in a CapabilitySet.
constexpr CapabilitySet capability_bit(int cap) {
  return CapabilitySet{1} << static_cast<unsigned>(cap);
}

/// Docker's default set for containers (14 capabilities): CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD
/// NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
CapabilitySet default_capabilities();

/// The number of a capability named "CAP_NET_RAW", "NET_RAW" or "net_raw" (case-insensitive, the
/// "CAP_" prefix optional), or a decimal number 0..63 (what capability_name gives for a number
/// minibuild has no name for). Unknown names fail with Code::usage naming the input.
Result<int> capability_from_name(std::string_view name);

/// "CAP_NET_RAW" for 13; the decimal number for a capability minibuild has no name for.
std::string capability_name(int cap);

/// The set as "CAP_CHOWN,CAP_DAC_OVERRIDE,..." in bit order; "" for the empty set.
std::string format_capabilities(CapabilitySet caps);

/// The highest capability number the running kernel knows: /proc/sys/kernel/cap_last_cap, read
/// once per process (thread-safe); CAP_LAST_CAP of the headers when /proc cannot be read. Call
/// it in the parent and pass the value to apply_capabilities.
int last_capability();

/// Drops every capability not in `keep`, in the calling (sandbox child) process. Allocates
/// nothing; returns 0 or the errno of the step that failed.
///   1. the bounding set: PR_CAPBSET_DROP for every capability 0..`last_cap` not in `keep`
///      (needs CAP_SETPCAP, which is raised from the permitted set if need be);
///   2. the ambient set is cleared;
///   3. capset(2): effective = permitted = `keep` when the effective uid is 0, empty otherwise;
///      inheritable is always empty (Docker's fix for CVE-2022-24769).
/// Works both before and after setresuid: as root (of the container's user namespace), or as a
/// non-root uid that still holds its permitted set (prctl(PR_SET_KEEPCAPS, 1) before setresuid).
/// A non-root process without CAP_SETPCAP whose bounding set still holds capabilities outside
/// `keep` gets EPERM: call it before setresuid or set PR_SET_KEEPCAPS.
int apply_capabilities(CapabilitySet keep, int last_cap) noexcept;

// --- Seccomp profiles ---------------------------------------------------------------------------

/// What a seccomp rule does when it matches (the SCMP_ACT_* names of Docker/OCI profiles).
enum class SeccompActionKind {
  allow,        ///< SCMP_ACT_ALLOW
  errno_return, ///< SCMP_ACT_ERRNO: the syscall fails with errno `value`
  kill_thread,  ///< SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD
  kill_process, ///< SCMP_ACT_KILL_PROCESS
  trap,         ///< SCMP_ACT_TRAP: SIGSYS
  trace,        ///< SCMP_ACT_TRACE: a ptrace tracer is notified with message `value`
  log,          ///< SCMP_ACT_LOG: allowed and logged by the kernel
};

struct SeccompAction {
  SeccompActionKind kind = SeccompActionKind::allow;
  /// errno for errno_return, the tracer message for trace (EPERM when the profile gives none,
  /// as in runc); 0 otherwise.
  std::uint32_t value = 0;

  bool operator==(const SeccompAction&) const = default;
};

/// Comparison of one syscall argument (the SCMP_CMP_* names).
enum class SeccompOp {
  not_equal,
  less_than,
  less_equal,
  equal,
  greater_equal,
  greater_than,
  masked_equal, ///< (arg & value) == value_two
};

struct SeccompArg {
  unsigned index = 0; ///< 0..5
  std::uint64_t value = 0;
  std::uint64_t value_two = 0;
  SeccompOp op = SeccompOp::equal;

  bool operator==(const SeccompArg&) const = default;
};

/// A kernel release as compared by minKernel: "4.8" → {4, 8, 0}.
struct KernelVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;

  auto operator<=>(const KernelVersion&) const = default;
};

/// The running kernel (uname(2) release, "6.1.0-18-amd64" → {6, 1, 0}).
Result<KernelVersion> running_kernel_version();

/// The `includes` / `excludes` condition of a rule. Empty fields are no condition.
struct SeccompFilter {
  /// Capability names as written ("CAP_SYS_ADMIN"); a name minibuild does not know never matches.
  std::vector<std::string> caps;
  /// Architectures in Docker's (Go) spelling: "amd64", "x86", "x32", "arm64", "arm", ...; compared
  /// with the NATIVE architecture only, as Docker does ("x86_64" and "aarch64" are accepted too).
  std::vector<std::string> arches;
  std::optional<KernelVersion> min_kernel;

  bool operator==(const SeccompFilter&) const = default;
};

/// One entry of `syscalls`: `names` (or the older single `name`) with an action, optional argument
/// comparisons (all must hold) and conditions on capabilities, architecture and kernel.
struct SeccompRule {
  std::vector<std::string> names;
  SeccompAction action;
  std::vector<SeccompArg> args;
  SeccompFilter includes; ///< the rule applies only if ALL of these hold
  SeccompFilter excludes; ///< the rule is dropped if ANY of these holds
};

/// An `archMap` entry: when the native architecture is `architecture`, the filter also covers
/// `sub_architectures`.
struct SeccompArchMapEntry {
  std::string architecture; ///< "SCMP_ARCH_X86_64"
  std::vector<std::string> sub_architectures;
};

/// A parsed Docker/OCI-format seccomp profile (the JSON of `docker run --security-opt
/// seccomp=FILE`, or the `linux.seccomp` object of an OCI runtime config). Architectures are kept
/// as written ("SCMP_ARCH_X86_64"), validated by the parser.
struct SeccompProfile {
  SeccompAction default_action;
  std::vector<std::string> architectures;
  std::vector<SeccompArchMapEntry> arch_map;
  std::vector<SeccompRule> syscalls;
};

/// Parses a profile. Pure: `file_name` only names the file in errors. Errors have Code::usage and
/// say where and what, e.g. `seccomp.json: syscalls[3].args[0].op: unknown operator "SCMP_CMP_X"`;
/// JSON syntax errors carry a SourceRange (line:column). Refused: a missing defaultAction (a
/// profile that allows everything is spelled `seccomp=unconfined`), an unknown action, operator or
/// architecture, SCMP_ACT_NOTIFY (minibuild has no listener), an argument index above 5, `name`
/// together with `names`, `architectures` together with `archMap`, a malformed minKernel. Unknown
/// syscall NAMES are not errors (profiles list syscalls of newer kernels); compile_seccomp skips
/// them. Unknown keys are ignored, as Docker does.
Result<SeccompProfile> parse_seccomp_profile(std::string_view json, std::string_view file_name);

/// minibuild's default profile: runtime/profiles/seccomp-default.json, embedded in the library at
/// build time. Equivalent in effect to Docker's default profile (docs/security.md).
Result<SeccompProfile> default_seccomp_profile();

/// The text of the embedded default profile (for `minibuild debug` and cache keys).
std::string_view default_seccomp_profile_json();

// --- Compiled filters ---------------------------------------------------------------------------

/// A compiled classic-BPF filter: plain data, made in the parent, installed in the child.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  /// Names in the profile that libseccomp does not know (newer syscalls), in profile order,
  /// once each: their calls get the default action.
  std::vector<std::string> unknown_syscalls;
  /// Rules given to libseccomp after the includes/excludes filtering (one per resolved name and
  /// argument set), for tests and `--debug` output.
  std::size_t rule_count = 0;
};

/// Compiles `profile` with libseccomp for the native architecture and those of its compat
/// architectures that the profile lists (x86_64 → x86, x32; aarch64 → arm). includes/excludes
/// `caps` are decided against `effective_caps` (Docker uses the container's bounding set, which
/// minibuild makes equal to it), `minKernel` against `kernel`. Several comparisons of the SAME
/// argument in one rule become one rule per comparison (runc does the same, since libseccomp
/// refuses them in one rule). Fails with Code::sandbox when libseccomp refuses a rule.
Result<SeccompProgram> compile_seccomp(const SeccompProfile& profile, CapabilitySet effective_caps,
                                       const KernelVersion& kernel);

/// As above, for the running kernel.
Result<SeccompProgram> compile_seccomp(const SeccompProfile& profile, CapabilitySet effective_caps);

/// "2.5.4": the libseccomp the filter is compiled with (part of a compiled filter's cache key).
std::string libseccomp_version();

/// Installs `program` in the calling (sandbox child) process, right before execve: sets
/// PR_SET_NO_NEW_PRIVS, then seccomp(SECCOMP_SET_MODE_FILTER) (prctl(PR_SET_SECCOMP) on kernels
/// without the seccomp syscall). Allocates nothing; returns 0 or errno (EINVAL for an empty
/// program). The filter is inherited by every descendant and cannot be removed.
int install_seccomp(const SeccompProgram& program) noexcept;

} // namespace minibuild::runtime
