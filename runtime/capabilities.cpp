// Capability names and the capability drop of the sandbox child. libcap is not a dependency: the
// child needs three prctl operations and capget/capset, which are raw syscalls here.

#include <minibuild/runtime/security.hpp>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace minibuild::runtime {

namespace {

struct CapabilityName {
  int number;
  std::string_view name; // without "CAP_"
};

// Spelled with the header's constants so that a renumbering would not compile silently wrong.
constexpr std::array k_capability_names{
    CapabilityName{CAP_CHOWN, "CHOWN"},
    CapabilityName{CAP_DAC_OVERRIDE, "DAC_OVERRIDE"},
    CapabilityName{CAP_DAC_READ_SEARCH, "DAC_READ_SEARCH"},
    CapabilityName{CAP_FOWNER, "FOWNER"},
    CapabilityName{CAP_FSETID, "FSETID"},
    CapabilityName{CAP_KILL, "KILL"},
    CapabilityName{CAP_SETGID, "SETGID"},
    CapabilityName{CAP_SETUID, "SETUID"},
    CapabilityName{CAP_SETPCAP, "SETPCAP"},
    CapabilityName{CAP_LINUX_IMMUTABLE, "LINUX_IMMUTABLE"},
    CapabilityName{CAP_NET_BIND_SERVICE, "NET_BIND_SERVICE"},
    CapabilityName{CAP_NET_BROADCAST, "NET_BROADCAST"},
    CapabilityName{CAP_NET_ADMIN, "NET_ADMIN"},
    CapabilityName{CAP_NET_RAW, "NET_RAW"},
    CapabilityName{CAP_IPC_LOCK, "IPC_LOCK"},
    CapabilityName{CAP_IPC_OWNER, "IPC_OWNER"},
    CapabilityName{CAP_SYS_MODULE, "SYS_MODULE"},
    CapabilityName{CAP_SYS_RAWIO, "SYS_RAWIO"},
    CapabilityName{CAP_SYS_CHROOT, "SYS_CHROOT"},
    CapabilityName{CAP_SYS_PTRACE, "SYS_PTRACE"},
    CapabilityName{CAP_SYS_PACCT, "SYS_PACCT"},
    CapabilityName{CAP_SYS_ADMIN, "SYS_ADMIN"},
    CapabilityName{CAP_SYS_BOOT, "SYS_BOOT"},
    CapabilityName{CAP_SYS_NICE, "SYS_NICE"},
    CapabilityName{CAP_SYS_RESOURCE, "SYS_RESOURCE"},
    CapabilityName{CAP_SYS_TIME, "SYS_TIME"},
    CapabilityName{CAP_SYS_TTY_CONFIG, "SYS_TTY_CONFIG"},
    CapabilityName{CAP_MKNOD, "MKNOD"},
    CapabilityName{CAP_LEASE, "LEASE"},
    CapabilityName{CAP_AUDIT_WRITE, "AUDIT_WRITE"},
    CapabilityName{CAP_AUDIT_CONTROL, "AUDIT_CONTROL"},
    CapabilityName{CAP_SETFCAP, "SETFCAP"},
    CapabilityName{CAP_MAC_OVERRIDE, "MAC_OVERRIDE"},
    CapabilityName{CAP_MAC_ADMIN, "MAC_ADMIN"},
    CapabilityName{CAP_SYSLOG, "SYSLOG"},
    CapabilityName{CAP_WAKE_ALARM, "WAKE_ALARM"},
    CapabilityName{CAP_BLOCK_SUSPEND, "BLOCK_SUSPEND"},
    CapabilityName{CAP_AUDIT_READ, "AUDIT_READ"},
    CapabilityName{CAP_PERFMON, "PERFMON"},
    CapabilityName{CAP_BPF, "BPF"},
    CapabilityName{CAP_CHECKPOINT_RESTORE, "CHECKPOINT_RESTORE"},
};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

int read_last_capability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int value = -1;
  if (in >> value && value >= 0 && value < 64) {
    return value;
  }
  return CAP_LAST_CAP;
}

// The capget/capset ABI, version 3: two 32-bit words per set.
struct CapState {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};

  CapabilitySet effective() const { return join(data[0].effective, data[1].effective); }
  CapabilitySet permitted() const { return join(data[0].permitted, data[1].permitted); }
  static CapabilitySet join(std::uint32_t low, std::uint32_t high) {
    return CapabilitySet{low} | (CapabilitySet{high} << 32);
  }
  void set(CapabilitySet effective_set, CapabilitySet permitted_set, CapabilitySet inheritable) {
    for (unsigned i = 0; i < 2; ++i) {
      data[i].effective = static_cast<std::uint32_t>(effective_set >> (32 * i));
      data[i].permitted = static_cast<std::uint32_t>(permitted_set >> (32 * i));
      data[i].inheritable = static_cast<std::uint32_t>(inheritable >> (32 * i));
    }
  }
};

int capget_self(CapState& state) noexcept {
  state.header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &state.header, state.data) == 0 ? 0 : errno;
}

int capset_self(CapState& state) noexcept {
  state.header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capset, &state.header, state.data) == 0 ? 0 : errno;
}

} // namespace

CapabilitySet default_capabilities() {
  CapabilitySet set = 0;
  for (int cap : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
                  CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
                  CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE}) {
    set |= capability_bit(cap);
  }
  return set;
}

Result<int> capability_from_name(std::string_view name) {
  std::string_view bare = name;
  if (bare.size() > 4 && equal_ignoring_case(bare.substr(0, 4), "CAP_")) {
    bare.remove_prefix(4);
  }
  for (const auto& entry : k_capability_names) {
    if (equal_ignoring_case(bare, entry.name)) {
      return entry.number;
    }
  }
  int number = -1;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
  if (ec == std::errc() && end == name.data() + name.size() && number >= 0 && number < 64) {
    return number;
  }
  return fail(Code::usage, "unknown capability \"" + std::string(name) + "\"");
}

std::string capability_name(int cap) {
  for (const auto& entry : k_capability_names) {
    if (entry.number == cap) {
      return "CAP_" + std::string(entry.name);
    }
  }
  return std::to_string(cap);
}

std::string format_capabilities(CapabilitySet caps) {
  std::string text;
  for (int cap = 0; cap < 64; ++cap) {
    if ((caps & capability_bit(cap)) != 0) {
      if (!text.empty()) {
        text += ',';
      }
      text += capability_name(cap);
    }
  }
  return text;
}

int last_capability() {
  static const int value = read_last_capability();
  return value;
}

int apply_capabilities(CapabilitySet keep, int last_cap) noexcept {
  CapState state;
  if (int err = capget_self(state); err != 0) {
    return err;
  }

  // Dropping from the bounding set needs CAP_SETPCAP in the EFFECTIVE set. After setresuid with
  // PR_SET_KEEPCAPS the effective set is empty but the permitted one is kept: raise it for now.
  const CapabilitySet setpcap = capability_bit(CAP_SETPCAP);
  if ((state.effective() & setpcap) == 0 && (state.permitted() & setpcap) != 0) {
    state.set(state.effective() | setpcap, state.permitted(), 0);
    if (int err = capset_self(state); err != 0) {
      return err;
    }
  }
  for (int cap = 0; cap <= last_cap && cap < 64; ++cap) {
    if ((keep & capability_bit(cap)) != 0) {
      continue;
    }
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) {
      continue; // not in the set (0), or unknown to this kernel (-1, EINVAL)
    }
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return errno;
    }
  }

  // Ambient capabilities survive execve of unprivileged binaries; none must. EINVAL: a kernel
  // older than 4.3 has no ambient set.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errno;
  }

  // Inheritable stays empty: Docker gave containers an inheritable set until CVE-2022-24769
  // (https://github.com/moby/moby/security/advisories/GHSA-2mm7-x5h6-5pvq).
  const CapabilitySet granted = ::geteuid() == 0 ? keep : 0;
  state.set(granted, granted, 0);
  return capset_self(state);
}

} // namespace minibuild::runtime
