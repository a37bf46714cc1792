// Seccomp profiles: parsing (the default profile, a table of errors), compiling with libseccomp
// and, for real, installing the compiled default filter in a forked child and watching the kernel
// refuse what Docker's default profile refuses. Each real case forks: the filter cannot be
// removed, so it must never reach the test binary itself.

#include "../support/child_report.hpp"

#include <minibuild/runtime/security.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <linux/capability.h>
#include <linux/sched.h>
#include <map>
#include <sched.h>
#include <set>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using minibuild::Code;
using namespace minibuild::runtime;

namespace {

SeccompProfile parse_ok(std::string_view json) {
  auto profile = parse_seccomp_profile(json, "test.json");
  if (!profile) {
    FAIL(profile.error().what());
  }
  return std::move(*profile);
}

SeccompProfile default_profile() {
  auto profile = default_seccomp_profile();
  if (!profile) {
    FAIL(profile.error().what());
  }
  return std::move(*profile);
}

SeccompProgram compile_ok(const SeccompProfile& profile, CapabilitySet caps,
                          KernelVersion kernel = {6, 1, 0}) {
  auto program = compile_seccomp(profile, caps, kernel);
  if (!program) {
    FAIL(program.error().what());
  }
  return std::move(*program);
}

// Runs `probe` in a forked child with the filter installed; the child writes "name=value" lines
// to a pipe (value: 0 for success, else the errno) and exits 0 when every probe ran, 100 when the
// filter could not be installed.
std::map<std::string, int> probe_in_child(const SeccompProgram& program,
                                          void (*probe)(int report_fd)) {
  const std::string text = minibuild::test::run_child_reporting([&](int report_fd) {
    const int err = install_seccomp(program);
    if (err != 0) {
      ::_exit(100);
    }
    probe(report_fd);
  });
  std::map<std::string, int> results;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto eq = line.find('=');
    results[line.substr(0, eq)] = std::stoi(line.substr(eq + 1));
  }
  return results;
}

void report(int fd, const char* name, long rc) {
  const int value = rc < 0 ? errno : 0;
  char line[128];
  const int len = std::snprintf(line, sizeof line, "%s=%d\n", name, value);
  (void)!::write(fd, line, static_cast<std::size_t>(len));
}

void probe_default_denials(int fd) {
  report(fd, "getpid", ::getpid() > 0 ? 0 : -1);
  report(fd, "unshare_user", ::unshare(CLONE_NEWUSER));
  clone_args args{};
  args.exit_signal = SIGCHLD;
  report(fd, "clone3", ::syscall(SYS_clone3, &args, sizeof args));
  report(fd, "personality_read_implies_exec", ::personality(READ_IMPLIES_EXEC));
  report(fd, "personality_query", ::personality(0xffffffff));
  // Without the filter this fails with ENOENT (or succeeds for root): EPERM is the filter.
  report(fd, "mount", ::mount("none", "/nonexistent-minibuild-test", "tmpfs", 0, nullptr));
  report(fd, "keyctl", ::syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1, 0));
  report(fd, "socket_vsock", ::socket(AF_VSOCK, SOCK_STREAM, 0));
  const int unix_socket = ::socket(AF_UNIX, SOCK_STREAM, 0);
  report(fd, "socket_unix", unix_socket);
  // fork() is clone(SIGCHLD): no namespace flag, allowed.
  const pid_t child = ::fork();
  if (child == 0) {
    ::_exit(7);
  }
  int status = 0;
  report(fd, "fork",
         child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status) &&
                 WEXITSTATUS(status) == 7
             ? 0
             : -1);
  // glibc creates threads with clone3 and falls back to clone on ENOSYS.
  bool ran = false;
  std::thread thread([&] { ran = true; });
  thread.join();
  errno = EIO;
  report(fd, "thread", ran ? 0 : -1);
}

void probe_sys_admin(int fd) {
  report(fd, "unshare_mount", ::unshare(CLONE_NEWNS));
  report(fd, "clone3_size_zero", ::syscall(SYS_clone3, nullptr, 0));
}

bool has_unconditional_allow(const SeccompProfile& profile, const std::string& name) {
  return std::any_of(profile.syscalls.begin(), profile.syscalls.end(), [&](const SeccompRule& r) {
    return r.action.kind == SeccompActionKind::allow && r.includes.caps.empty() && r.args.empty() &&
           std::find(r.names.begin(), r.names.end(), name) != r.names.end();
  });
}

} // namespace

TEST_CASE("the embedded default seccomp profile is the file in the repository", "[runtime]") {
  std::ifstream in(MINIBUILD_TEST_DATA_DIR "/../../runtime/profiles/seccomp-default.json");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str() == default_seccomp_profile_json());
}

TEST_CASE("the default seccomp profile parses and says what Docker's says", "[runtime]") {
  const SeccompProfile profile = default_profile();
  CHECK(profile.default_action == SeccompAction{SeccompActionKind::errno_return, EPERM});
  REQUIRE(profile.arch_map.size() >= 1);
  CHECK(profile.arch_map[0].architecture == "SCMP_ARCH_X86_64");
  CHECK(profile.arch_map[0].sub_architectures ==
        std::vector<std::string>{"SCMP_ARCH_X86", "SCMP_ARCH_X32"});

  // Denied unless a capability outside the default set is held.
  for (const char* denied : {"mount",       "umount2",         "unshare",       "setns",
                             "pivot_root",  "keyctl",          "add_key",       "request_key",
                             "bpf",         "perf_event_open", "kexec_load",    "init_module",
                             "reboot",      "swapon",          "clock_settime", "open_by_handle_at",
                             "userfaultfd", "io_uring_setup",  "clone",         "clone3",
                             "socket",      "personality"}) {
    INFO(denied);
    CHECK_FALSE(has_unconditional_allow(profile, denied));
  }
  for (const char* allowed : {"read", "execve", "fork", "chown", "mknod", "setuid", "fchmodat2"}) {
    INFO(allowed);
    CHECK(has_unconditional_allow(profile, allowed));
  }

  std::set<std::uint64_t> personalities;
  bool clone3_enosys = false;
  for (const auto& rule : profile.syscalls) {
    if (rule.names == std::vector<std::string>{"personality"}) {
      REQUIRE(rule.args.size() == 1);
      CHECK(rule.args[0].op == SeccompOp::equal);
      personalities.insert(rule.args[0].value);
    }
    if (rule.names == std::vector<std::string>{"clone3"} &&
        rule.action == SeccompAction{SeccompActionKind::errno_return, ENOSYS}) {
      clone3_enosys = rule.excludes.caps == std::vector<std::string>{"CAP_SYS_ADMIN"};
    }
  }
  CHECK(personalities == std::set<std::uint64_t>{0x0, 0x8, 0x20000, 0x20008, 0xffffffff});
  CHECK(clone3_enosys);
}

TEST_CASE("a seccomp profile in Docker's format parses field by field", "[runtime]") {
  const SeccompProfile profile = parse_ok(R"({
    "defaultAction": "SCMP_ACT_KILL_PROCESS",
    "architectures": ["SCMP_ARCH_X86_64"],
    "unknownKey": {"ignored": true},
    "syscalls": [
      {"name": "write", "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": null},
      {"names": ["ptrace"], "action": "SCMP_ACT_TRACE",
       "includes": {"caps": ["CAP_SYS_PTRACE"], "minKernel": "4.8"},
       "excludes": {"arches": ["x86"]}},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
      {"names": ["getpid"], "action": "SCMP_ACT_LOG"}
    ]})");
  CHECK(profile.default_action == SeccompAction{SeccompActionKind::kill_process, 0});
  CHECK(profile.architectures == std::vector<std::string>{"SCMP_ARCH_X86_64"});
  REQUIRE(profile.syscalls.size() == 4);
  CHECK(profile.syscalls[0].names == std::vector<std::string>{"write"});
  CHECK(profile.syscalls[0].action == SeccompAction{SeccompActionKind::errno_return, 5});
  CHECK(profile.syscalls[1].action == SeccompAction{SeccompActionKind::trace, EPERM});
  CHECK(profile.syscalls[1].includes.caps == std::vector<std::string>{"CAP_SYS_PTRACE"});
  CHECK(profile.syscalls[1].includes.min_kernel == KernelVersion{4, 8, 0});
  CHECK(profile.syscalls[1].excludes.arches == std::vector<std::string>{"x86"});
  REQUIRE(profile.syscalls[2].args.size() == 1);
  CHECK(profile.syscalls[2].args[0] == SeccompArg{0, 2114060288, 0, SeccompOp::masked_equal});
  CHECK(profile.syscalls[3].action.kind == SeccompActionKind::log);
}

TEST_CASE("seccomp profile errors name the file and what is wrong", "[runtime]") {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"([])", "p.json: expected a JSON object, got array"},
      {R"({"syscalls": []})", "p.json: defaultAction: missing (to run without a filter, use "
                              "seccomp=unconfined)"},
      {R"({"defaultAction": "SCMP_ACT_DENY"})",
       "p.json: defaultAction: unknown action \"SCMP_ACT_DENY\""},
      {R"({"defaultAction": 1})", "p.json: defaultAction: expected a string, got number"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1})",
       "p.json: defaultErrnoRet: expected a non-negative integer, got -1"},
      {R"({"defaultAction": "SCMP_ACT_NOTIFY"})",
       "p.json: defaultAction: SCMP_ACT_NOTIFY needs a seccomp listener, which minibuild does "
       "not provide"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]})",
       "p.json: syscalls[0].action: missing"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
       "p.json: syscalls[0].args[0].index: argument index 6 out of range (0..5)"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]})",
       "p.json: syscalls[0].args[0].op: unknown operator \"SCMP_CMP_XX\""},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ALLOW", "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}]})",
       "p.json: syscalls[0].args[0].index: missing"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read",
            "action": "SCMP_ACT_ALLOW"}]})",
       "p.json: syscalls[0].names: expected an array, got string"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "name": "write",
            "action": "SCMP_ACT_ALLOW"}]})",
       "p.json: syscalls[0]: both \"name\" and \"names\" are given; use one"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]})",
       "p.json: syscalls[0].includes.minKernel: malformed kernel version \"four\" (expected "
       "MAJOR.MINOR[.PATCH])"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_VAX"]})",
       "p.json: architectures[0]: unknown architecture \"SCMP_ARCH_VAX\""},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]})",
       "p.json: both \"architectures\" and \"archMap\" are given; use one"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
            "subArchitectures": ["SCMP_ARCH_Z80"]}]})",
       "p.json: archMap[0].subArchitectures[0]: unknown architecture \"SCMP_ARCH_Z80\""},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    const auto result = parse_seccomp_profile(c.json, "p.json");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::usage);
    CHECK(result.error().what() == c.message);
  }
}

TEST_CASE("a seccomp profile with a JSON syntax error points at line and column", "[runtime]") {
  const auto result =
      parse_seccomp_profile("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  ]\n}", "p.json");
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::usage);
  REQUIRE(result.error().location());
  CHECK(result.error().location()->file == "p.json");
  CHECK(result.error().location()->line == 3);
  CHECK(result.error().location()->column == 3);
  CHECK_THAT(result.error().message(), Catch::StartsWith("invalid JSON: "));
}

TEST_CASE("the default seccomp profile compiles to a BPF program", "[runtime]") {
  const SeccompProgram program = compile_ok(default_profile(), default_capabilities());
  CHECK(program.instructions.size() > 100);
  CHECK(program.instructions.size() < 0xffff);
  CHECK(program.rule_count > 300);
  CHECK_FALSE(libseccomp_version().empty());

  // The capability and kernel conditions change what reaches libseccomp.
  const SeccompProgram admin =
      compile_ok(default_profile(), default_capabilities() | capability_bit(CAP_SYS_ADMIN));
  CHECK(admin.rule_count > program.rule_count);
  const SeccompProgram old_kernel =
      compile_ok(default_profile(), default_capabilities(), KernelVersion{4, 7, 0});
  CHECK(old_kernel.rule_count == program.rule_count - 3); // ptrace, process_vm_readv/writev
}

TEST_CASE("unknown syscall names are skipped, not errors", "[runtime]") {
  const SeccompProfile profile = parse_ok(R"({"defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [{"names": ["read", "no_such_syscall_in_any_kernel", "write",
                            "no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ALLOW"},
                 {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]})");
  const SeccompProgram program = compile_ok(profile, 0);
  CHECK(program.unknown_syscalls == std::vector<std::string>{"no_such_syscall_in_any_kernel"});
  // read, write; the getpid rule repeats the default action and is a no-op.
  CHECK(program.rule_count == 2);
  CHECK_FALSE(program.instructions.empty());
}

TEST_CASE("two comparisons of one argument become two rules, as in runc", "[runtime]") {
  const SeccompProfile profile = parse_ok(R"({"defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                           {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]})");
  CHECK(compile_ok(profile, 0).rule_count == 2);
}

TEST_CASE("install_seccomp refuses an empty program", "[runtime]") {
  CHECK(install_seccomp(SeccompProgram{}) == EINVAL);
}

TEST_CASE("the default seccomp filter denies in a real child what Docker denies", "[runtime]") {
  const SeccompProgram program = compile_ok(default_profile(), default_capabilities());
  const auto results = probe_in_child(program, probe_default_denials);
  const std::map<std::string, int> expected{
      {"getpid", 0},
      {"unshare_user", EPERM},
      {"clone3", ENOSYS},
      {"personality_read_implies_exec", EPERM},
      {"personality_query", 0},
      {"mount", EPERM},
      {"keyctl", EPERM},
      {"socket_vsock", EPERM},
      {"socket_unix", 0},
      {"fork", 0},
      {"thread", 0},
  };
  CHECK(results == expected);
}

TEST_CASE("with CAP_SYS_ADMIN the default filter lets namespaces and clone3 through", "[runtime]") {
  if (::geteuid() != 0) {
    WARN("skipped the CAP_SYS_ADMIN half: unshare(CLONE_NEWNS) needs root");
    CHECK(compile_ok(default_profile(), capability_bit(CAP_SYS_ADMIN)).rule_count > 0);
    return;
  }
  const SeccompProgram program =
      compile_ok(default_profile(), default_capabilities() | capability_bit(CAP_SYS_ADMIN));
  const auto results = probe_in_child(program, probe_sys_admin);
  // clone3 reaches the kernel, which refuses a zero size with EINVAL (not the filter's ENOSYS).
  CHECK(results == std::map<std::string, int>{{"unshare_mount", 0}, {"clone3_size_zero", EINVAL}});
}

TEST_CASE("includes and excludes are decided by native architecture, caps and kernel",
          "[runtime]") {
  const SeccompProfile profile = parse_ok(R"({"defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [
      {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
      {"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "arm64"]}},
      {"names": ["close"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64", "arm64"]}},
      {"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
       "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
      {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NO_SUCH"]}},
      {"names": ["gettid"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_NET_ADMIN"]}},
      {"names": ["uname"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}}
    ]})");
  // Native amd64 or arm64 (the only hosts minibuild is built for): read or close never, write
  // always.
  const std::size_t arch_rules = 1;
  CHECK(compile_ok(profile, 0, {4, 19, 0}).rule_count == arch_rules + 2); // gettid, uname
  CHECK(compile_ok(profile, 0, {5, 0, 0}).rule_count == arch_rules + 1);  // gettid
  CHECK(compile_ok(profile, capability_bit(CAP_SYS_ADMIN), {5, 0, 0}).rule_count ==
        arch_rules + 1); // getpid needs both caps
  CHECK(
      compile_ok(profile, capability_bit(CAP_SYS_ADMIN) | capability_bit(CAP_NET_ADMIN), {5, 0, 0})
          .rule_count == arch_rules + 1); // getpid in, gettid out
}

TEST_CASE("the host's podman profile, when installed, parses and compiles", "[runtime]") {
  std::ifstream in("/usr/share/containers/seccomp.json");
  if (!in) {
    WARN("skipped: /usr/share/containers/seccomp.json (containers-common) is not installed");
    CHECK(compile_ok(default_profile(), default_capabilities()).rule_count > 0);
    return;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto profile = parse_seccomp_profile(text.str(), "/usr/share/containers/seccomp.json");
  if (!profile) {
    FAIL(profile.error().what());
  }
  CHECK(profile->default_action.kind == SeccompActionKind::errno_return);
  CHECK_FALSE(compile_ok(*profile, default_capabilities()).instructions.empty());
}
