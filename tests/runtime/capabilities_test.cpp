// Capability names and sets, and apply_capabilities for real in forked children: as container
// root (the default set stays) and as a non-root USER (nothing stays but the bounding set). The
// children read their own /proc/self/status and send it back through a pipe.

#include "../support/child_report.hpp"

#include <minibuild/runtime/security.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <fstream>
#include <grp.h>
#include <linux/capability.h>
#include <map>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using minibuild::Code;
using namespace minibuild::runtime;

namespace {

constexpr uid_t k_test_id = 65534;

// The Cap* lines of /proc/self/status as numbers, plus "rc" (apply_capabilities' result).
using CapReport = std::map<std::string, std::uint64_t>;

enum class Identity { root, non_root_keepcaps, non_root_without_keepcaps };

CapReport run_child(Identity identity, CapabilitySet keep) {
  const int last_cap = last_capability(); // computed before fork, as the sandbox must
  const std::string text = minibuild::test::run_child_reporting([&](int report_fd) {
    if (identity != Identity::root) {
      if (identity == Identity::non_root_keepcaps && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
        ::_exit(101);
      }
      if (::setgroups(0, nullptr) != 0 || ::setresgid(k_test_id, k_test_id, k_test_id) != 0 ||
          ::setresuid(k_test_id, k_test_id, k_test_id) != 0) {
        ::_exit(102);
      }
    }
    const int rc = apply_capabilities(keep, last_cap);
    std::ostringstream out;
    out << "rc:\t" << rc << "\n";
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Cap", 0) == 0) {
        out << line << "\n";
      }
    }
    const std::string report = out.str();
    (void)!::write(report_fd, report.data(), report.size());
  });
  CapReport report;
  std::istringstream lines(text);
  std::string key;
  std::string value;
  while (std::getline(lines, key, ':') && std::getline(lines, value)) {
    report[key] = key == "rc" ? std::stoull(value) : std::stoull(value, nullptr, 16);
  }
  return report;
}

// Whether `id` is mapped in this user namespace (under `unshare -r` only root is).
bool id_mapped(const char* map_file, unsigned id) {
  std::ifstream in(map_file);
  unsigned inside = 0;
  unsigned outside = 0;
  unsigned count = 0;
  while (in >> inside >> outside >> count) {
    if (id >= inside && id - inside < count) {
      return true;
    }
  }
  return false;
}

bool test_id_mapped() {
  return id_mapped("/proc/self/uid_map", k_test_id) && id_mapped("/proc/self/gid_map", k_test_id);
}

} // namespace

TEST_CASE("the default capability set is Docker's 14", "[runtime]") {
  const CapabilitySet caps = default_capabilities();
  CHECK(__builtin_popcountll(caps) == 14);
  CHECK(format_capabilities(caps) ==
        "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,CAP_SETUID,"
        "CAP_SETPCAP,CAP_NET_BIND_SERVICE,CAP_NET_RAW,CAP_SYS_CHROOT,CAP_MKNOD,CAP_AUDIT_WRITE,"
        "CAP_SETFCAP");
  CHECK((caps & capability_bit(CAP_SYS_ADMIN)) == 0);
  CHECK((caps & capability_bit(CAP_DAC_READ_SEARCH)) == 0);
  CHECK(format_capabilities(0).empty());
}

TEST_CASE("capability names round-trip", "[runtime]") {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    const std::string name = capability_name(cap);
    INFO(name);
    CHECK(name.rfind("CAP_", 0) == 0);
    const auto back = capability_from_name(name);
    REQUIRE(back);
    CHECK(*back == cap);
  }
  CHECK(capability_from_name("NET_RAW").value() == CAP_NET_RAW);
  CHECK(capability_from_name("cap_net_raw").value() == CAP_NET_RAW);
  CHECK(capability_from_name("Sys_Admin").value() == CAP_SYS_ADMIN);
  // A number minibuild has no name for is written as the number and read back.
  CHECK(capability_name(62) == "62");
  CHECK(capability_from_name("62").value() == 62);

  for (const char* bad : {"", "CAP_", "CAP_NET_RAWX", "NETRAW", "64", "-1", "CAP_13"}) {
    INFO(bad);
    const auto result = capability_from_name(bad);
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::usage);
    CHECK(result.error().message() == "unknown capability \"" + std::string(bad) + "\"");
  }
}

TEST_CASE("last_capability is the kernel's cap_last_cap", "[runtime]") {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int expected = CAP_LAST_CAP;
  in >> expected;
  CHECK(last_capability() == expected);
  CHECK(last_capability() >= CAP_AUDIT_READ);
}

TEST_CASE("apply_capabilities leaves the default set to root and nothing to a user", "[runtime]") {
  const CapabilitySet keep = default_capabilities();
  if (::geteuid() != 0) {
    WARN("skipped the root and USER cases: dropping capabilities of root needs root");
    // Without CAP_SETPCAP a process cannot shrink its bounding set, which still holds more than
    // the default set: the contract says EPERM.
    const CapReport report = run_child(Identity::root, keep);
    CHECK(report.at("rc") == EPERM);
    return;
  }
  SECTION("container root keeps exactly the default set") {
    const CapReport report = run_child(Identity::root, keep);
    CHECK(report.at("rc") == 0);
    CHECK(report.at("CapEff") == keep);
    CHECK(report.at("CapPrm") == keep);
    CHECK(report.at("CapBnd") == keep);
    CHECK(report.at("CapInh") == 0);
    CHECK(report.at("CapAmb") == 0);
  }
  SECTION("a non-root USER (PR_SET_KEEPCAPS) holds nothing, its bounding set is the default") {
    if (!test_id_mapped()) {
      WARN("skipped: uid/gid 65534 is not mapped in this user namespace");
      CHECK(run_child(Identity::root, keep).at("CapEff") == keep);
      return;
    }
    const CapReport report = run_child(Identity::non_root_keepcaps, keep);
    CHECK(report.at("rc") == 0);
    CHECK(report.at("CapEff") == 0);
    CHECK(report.at("CapPrm") == 0);
    CHECK(report.at("CapBnd") == keep);
    CHECK(report.at("CapInh") == 0);
  }
  SECTION("a non-root USER that lost its capabilities cannot shrink the bounding set") {
    if (!test_id_mapped()) {
      WARN("skipped: uid/gid 65534 is not mapped in this user namespace");
      CHECK(run_child(Identity::root, keep).at("CapBnd") == keep);
      return;
    }
    const CapReport report = run_child(Identity::non_root_without_keepcaps, keep);
    CHECK(report.at("rc") == EPERM);
    CHECK(report.at("CapEff") == 0);
  }
  SECTION("an empty set drops everything") {
    const CapReport report = run_child(Identity::root, 0);
    CHECK(report.at("rc") == 0);
    CHECK(report.at("CapEff") == 0);
    CHECK(report.at("CapBnd") == 0);
  }
}
