// run_in_sandbox for real: fresh namespaces, an overlay root made of a busybox lower dir built
// in a temp dir, and busybox applets inspecting what the step sees (id, hostname, /etc files,
// ip link, /proc/self/status). The trees live under /var/tmp, not /tmp: the overlay upper dir
// needs a filesystem with user xattrs, which a tmpfs /tmp may lack.
//
// The sandbox needs CAP_SYS_ADMIN (real root, or the CLI's user namespace). When the tests do
// not run as root, each case checks that the refusal is reported as Code::sandbox naming the
// step, and says it skipped the rest.

#include "build/run_step.hpp"

#include <minibuild/runtime/sandbox.hpp>
#include <minibuild/runtime/security.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <vector>

using minibuild::Code;
using namespace minibuild::runtime;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_busybox = "/bin/busybox";
constexpr const char* k_applets[] = {"sh", "echo",    "cat",      "ls",   "id",    "sleep",
                                     "ip", "unshare", "mount",    "grep", "touch", "mkdir",
                                     "rm", "true",    "hostname", "pwd",  "umask", "env"};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void spit(const std::string& path, std::string_view content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE(out.good());
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// A temporary directory under /var/tmp, removed with everything in it.
class VarTmpDir {
public:
  VarTmpDir() {
    std::string pattern = "/var/tmp/minibuild-sandbox-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    m_path = pattern;
  }
  ~VarTmpDir() {
    std::error_code error;
    fs::remove_all(m_path, error);
  }
  VarTmpDir(const VarTmpDir&) = delete;
  VarTmpDir& operator=(const VarTmpDir&) = delete;
  std::string operator/(std::string_view rel) const { return m_path + "/" + std::string(rel); }

private:
  std::string m_path;
};

bool have_busybox() {
  struct stat st {};
  return ::stat(k_busybox, &st) == 0 && S_ISREG(st.st_mode);
}

// A lower dir with busybox and its applets, and fresh upper/work/scratch dirs for each run.
class Fixture {
public:
  Fixture() {
    m_lower = m_dir / "lower";
    populate(m_lower);
  }

  static void populate(const std::string& root) {
    fs::create_directories(root + "/bin");
    fs::copy_file(k_busybox, root + "/bin/busybox");
    for (const char* applet : k_applets) {
      fs::create_symlink("busybox", root + "/bin/" + applet);
    }
  }

  const std::string& lower() const { return m_lower; }
  std::string path(std::string_view rel) const { return m_dir / rel; }

  /// A spec running `script` with /bin/sh -c on the busybox lower dir, as root with the default
  /// capabilities, output collected in output().
  SandboxSpec spec(const std::string& script) {
    SandboxSpec spec;
    const std::string run = m_dir / ("run-" + std::to_string(m_runs++));
    spec.rootfs.lower_dirs = {m_lower};
    spec.rootfs.upper_dir = run + "/upper";
    spec.rootfs.work_dir = run + "/work";
    spec.scratch_dir = run + "/scratch";
    for (const auto& dir : {spec.rootfs.upper_dir, spec.rootfs.work_dir, spec.scratch_dir}) {
      fs::create_directories(dir);
    }
    spec.process.argv = {"/bin/sh", "-c", script};
    spec.process.env = {"PATH=/bin"};
    spec.process.capabilities = default_capabilities();
    spec.output = [this](std::string_view chunk) {
      m_output.append(chunk);
      ++m_chunks;
    };
    return spec;
  }

  /// Runs the spec; fails the test on a sandbox error.
  SandboxExit must_run(const SandboxSpec& spec) {
    m_output.clear();
    auto ran = run_in_sandbox(spec);
    if (!ran) {
      FAIL(ran.error().what());
    }
    return *ran;
  }

  const std::string& output() const { return m_output; }
  int chunks() const { return m_chunks; }

private:
  VarTmpDir m_dir;
  std::string m_lower;
  int m_runs = 0;
  std::string m_output;
  int m_chunks = 0;
};

// Whether the sandbox can run here. Not root: a run must be refused as Code::sandbox at the
// namespace step (a real check of the error path), and the caller skips the rest.
bool sandbox_available() {
  if (!have_busybox()) {
    WARN("skipped: " << k_busybox << " is missing (Debian package busybox-static)");
    CHECK(default_hosts_file("h").find("127.0.1.1\th\n") != std::string::npos);
    return false;
  }
  if (::geteuid() == 0) {
    return true;
  }
  WARN("skipped: needs root (the sandbox needs CAP_SYS_ADMIN)");
  Fixture f;
  auto ran = run_in_sandbox(f.spec("true"));
  REQUIRE_FALSE(ran);
  CHECK(ran.error().code() == Code::sandbox);
  CHECK(ran.error().message().rfind("create namespaces: unshare", 0) == 0);
  return false;
}

// Whether every id is mapped in this user namespace (uid and gid alike): under `unshare -r`
// only the caller's own id is, and a step cannot become anyone else.
bool ids_mapped(std::initializer_list<std::uint32_t> ids) {
  for (const char* map : {"/proc/self/uid_map", "/proc/self/gid_map"}) {
    std::istringstream lines(slurp(map));
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    std::uint64_t inside = 0;
    std::uint64_t outside = 0;
    std::uint64_t count = 0;
    while (lines >> inside >> outside >> count) {
      ranges.emplace_back(inside, inside + count);
    }
    for (const std::uint32_t id : ids) {
      if (std::none_of(ranges.begin(), ranges.end(), [id](const auto& range) {
            return id >= range.first && id < range.second;
          })) {
        WARN("skipped: id " << id << " is not mapped in this user namespace (" << map << ")");
        return false;
      }
    }
  }
  return true;
}

SeccompProgram default_program() {
  auto profile = default_seccomp_profile();
  REQUIRE(profile);
  auto program = compile_seccomp(*profile, default_capabilities());
  REQUIRE(program);
  return std::move(*program);
}

bool is_whiteout(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 &&
         minor(st.st_rdev) == 0;
}

// Every process whose argv is exactly `argv`.
int processes_with_argv(const std::vector<std::string>& argv) {
  std::string wanted;
  for (const auto& arg : argv) {
    wanted += arg;
    wanted.push_back('\0');
  }
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    if (slurp(entry.path().string() + "/cmdline") == wanted) {
      ++count;
    }
  }
  return count;
}

} // namespace

TEST_CASE("sandbox: default_hosts_file names localhost and the hostname", "[runtime]") {
  CHECK(default_hosts_file("box") ==
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbox\n");
}

TEST_CASE("sandbox: the command's exit code and signal come back", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  const SandboxExit ok = f.must_run(f.spec("true"));
  CHECK(ok.exit_code == 0);
  CHECK(ok.signal == 0);
  const SandboxExit seven = f.must_run(f.spec("exit 7"));
  CHECK(seven.exit_code == 7);
  CHECK(seven.signal == 0);
  const SandboxExit killed = f.must_run(f.spec("kill -9 $$"));
  CHECK(killed.signal == 9);
  CHECK(killed.exit_code == 128 + 9);
}

TEST_CASE("sandbox: the output callback receives stdout and stderr", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  const SandboxExit exit = f.must_run(f.spec("echo to-stdout; echo to-stderr >&2; echo again"));
  CHECK(exit.exit_code == 0);
  CHECK(f.output() == "to-stdout\nto-stderr\nagain\n");
  CHECK(f.chunks() >= 1);
}

TEST_CASE("sandbox: env, working directory and umask are applied", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  SandboxSpec spec = f.spec("echo \"FOO=$FOO\"; pwd; umask; env | grep -c =");
  spec.process.env = {"PATH=/bin", "FOO=bar baz"};
  spec.process.cwd = "/work/here";
  spec.process.umask = 027;
  const SandboxExit exit = f.must_run(spec);
  CHECK(exit.exit_code == 0);
  const auto lines = lines_of(f.output());
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "FOO=bar baz");
  CHECK(lines[1] == "/work/here");
  CHECK(lines[2] == "0027");
  // Only the spec's variables (and what sh itself adds: PWD, SHLVL), nothing of the caller's.
  CHECK(std::stoi(lines[3]) <= 5);

  // The missing working directory was created in the step's content (the upper dir).
  struct stat st {};
  REQUIRE(::stat((spec.rootfs.upper_dir + "/work/here").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(st.st_uid == 0);
}

TEST_CASE("sandbox: uid, gid and supplementary groups are applied", "[runtime]") {
  if (!sandbox_available() || !ids_mapped({1000, 29, 44})) {
    return;
  }
  Fixture f;
  SandboxSpec spec = f.spec("id -u; id -g; id -G");
  spec.process.uid = 1000;
  spec.process.gid = 1000;
  spec.process.supplementary_gids = {1000, 29, 44};
  const SandboxExit exit = f.must_run(spec);
  CHECK(exit.exit_code == 0);
  const auto lines = lines_of(f.output());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "1000");
  CHECK(lines[1] == "1000");
  // The primary group and the supplementary ones, whatever order id prints them in.
  std::istringstream words(lines[2]);
  std::vector<std::string> ids{std::istream_iterator<std::string>(words),
                               std::istream_iterator<std::string>()};
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"1000", "29", "44"});
}

TEST_CASE("sandbox: hostname, /etc/hosts and /etc/resolv.conf are the builder's", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  SandboxSpec spec = f.spec("hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf; "
                            "echo overwrite >> /etc/hosts && echo writable");
  spec.hostname = "step-host";
  spec.hosts = "10.1.2.3\tdb\n";
  spec.resolv_conf = "nameserver 192.0.2.53\n";
  const SandboxExit exit = f.must_run(spec);
  CHECK(exit.exit_code != 0); // the bound files are read-only
  CHECK(f.output().rfind("step-host\nstep-host\n10.1.2.3\tdb\nnameserver 192.0.2.53\n", 0) == 0);
  CHECK(f.output().find("writable") == std::string::npos);

  // The lower dir had no /etc: the mount points were created in the upper dir, recorded in the
  // stubs file, and are empty there (the content never reaches the layer).
  const auto stubs = lines_of(slurp(spec.scratch_dir + "/stubs"));
  for (const char* stub :
       {"etc", "etc/hosts", "etc/resolv.conf", "etc/hostname", "proc", "dev", "sys"}) {
    CHECK(std::find(stubs.begin(), stubs.end(), stub) != stubs.end());
  }
  CHECK(fs::file_size(spec.rootfs.upper_dir + "/etc/hosts") == 0);
  CHECK(fs::file_size(spec.rootfs.upper_dir + "/etc/resolv.conf") == 0);
  // remove_mount_stubs (the executor's next step) leaves nothing of them.
  REQUIRE(minibuild::build::remove_mount_stubs(spec.rootfs.upper_dir,
                                               slurp(spec.scratch_dir + "/stubs")));
  CHECK(fs::is_empty(spec.rootfs.upper_dir));
}

TEST_CASE("sandbox: without spec hosts the default hosts file is bound", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  spit(f.lower() + "/etc/hosts", "image hosts\n");
  SandboxSpec spec = f.spec("cat /etc/hosts");
  spec.hostname = "dflt";
  f.must_run(spec);
  CHECK(f.output() == default_hosts_file("dflt"));
  // The image had /etc/hosts: nothing was created, nothing recorded for it.
  const auto stubs = lines_of(slurp(spec.scratch_dir + "/stubs"));
  CHECK(std::find(stubs.begin(), stubs.end(), "etc/hosts") == stubs.end());
  CHECK_FALSE(fs::exists(spec.rootfs.upper_dir + "/etc/hosts"));
  CHECK(slurp(f.lower() + "/etc/hosts") == "image hosts\n");
}

TEST_CASE("sandbox: writes land in the upper dir, deletions as whiteouts", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  spit(f.lower() + "/data/old", "old\n");
  spit(f.lower() + "/data/kept", "kept\n");
  SandboxSpec spec = f.spec("echo new > /created && rm /data/old && mkdir -p /a/b && "
                            "touch /a/b/c && cat /data/kept");
  const SandboxExit exit = f.must_run(spec);
  CHECK(exit.exit_code == 0);
  CHECK(f.output() == "kept\n");
  const std::string& upper = spec.rootfs.upper_dir;
  CHECK(slurp(upper + "/created") == "new\n");
  CHECK(fs::is_regular_file(upper + "/a/b/c"));
  CHECK(is_whiteout(upper + "/data/old"));
  CHECK_FALSE(fs::exists(upper + "/data/kept"));
  // The lower dir is untouched.
  CHECK(slurp(f.lower() + "/data/old") == "old\n");
  CHECK_FALSE(fs::exists(f.lower() + "/created"));
}

TEST_CASE("sandbox: NetworkMode::none leaves only lo, up", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  SandboxSpec spec = f.spec("ip -o link");
  spec.network = NetworkMode::none;
  CHECK(f.must_run(spec).exit_code == 0);
  const auto links = lines_of(f.output());
  REQUIRE(links.size() == 1);
  CHECK(links[0].find(": lo: <LOOPBACK,UP") != std::string::npos);

  // The host's network: as many links as the caller sees.
  std::size_t host_links = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/sys/class/net")) {
    ++host_links;
  }
  SandboxSpec host = f.spec("ip -o link");
  CHECK(f.must_run(host).exit_code == 0);
  CHECK(lines_of(f.output()).size() == host_links);
}

TEST_CASE("sandbox: the default seccomp filter refuses new user namespaces", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  SandboxSpec confined = f.spec("unshare -U true && echo created");
  confined.process.seccomp = default_program();
  CHECK(f.must_run(confined).exit_code != 0);
  CHECK(f.output().find("created") == std::string::npos);

  SandboxSpec unconfined = f.spec("unshare -U true && echo created");
  const SandboxExit exit = f.must_run(unconfined);
  if (exit.exit_code != 0 && std::ifstream("/proc/sys/user/max_user_namespaces").good() &&
      slurp("/proc/sys/user/max_user_namespaces") == "0\n") {
    WARN("skipped the unconfined half: user namespaces are disabled on this host");
    return;
  }
  CHECK(exit.exit_code == 0);
  CHECK(f.output() == "created\n");
}

TEST_CASE("sandbox: root keeps the default capabilities, another user none", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  SandboxSpec root = f.spec("grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb)' /proc/self/status");
  f.must_run(root);
  CHECK(f.output() == "CapInh:\t0000000000000000\n"
                      "CapPrm:\t00000000a80425fb\n"
                      "CapEff:\t00000000a80425fb\n"
                      "CapBnd:\t00000000a80425fb\n"
                      "CapAmb:\t0000000000000000\n");

  if (!ids_mapped({1000})) {
    return;
  }
  SandboxSpec user = f.spec("grep -E '^Cap(Eff|Prm)' /proc/self/status");
  user.process.uid = 1000;
  user.process.gid = 1000;
  f.must_run(user);
  CHECK(f.output() == "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n");
}

TEST_CASE("sandbox: PID 1 ends the step's background processes with the command", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  // First with the sleep's output elsewhere: were it left running, the run would still return
  // and the scan of /proc would find it.
  auto start = std::chrono::steady_clock::now();
  SandboxExit exit = f.must_run(f.spec("sleep 4242 >/dev/null 2>&1 & echo started"));
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(exit.exit_code == 0);
  CHECK(f.output() == "started\n");
  CHECK(elapsed < std::chrono::seconds(5));
  CHECK(processes_with_argv({"sleep", "4242"}) == 0);

  // Then holding the output pipe: the run returns because the sleep dies with PID 1.
  start = std::chrono::steady_clock::now();
  exit = f.must_run(f.spec("sleep 4243 & echo started"));
  elapsed = std::chrono::steady_clock::now() - start;
  CHECK(exit.exit_code == 0);
  CHECK(f.output() == "started\n");
  CHECK(elapsed < std::chrono::seconds(5));
  CHECK(processes_with_argv({"sleep", "4243"}) == 0);
}

TEST_CASE("sandbox: a missing command is not_found, a bad lower dir names the step", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  for (const std::string& name : {std::string("no-such-command"), std::string("/bin/nope")}) {
    SandboxSpec spec = f.spec("");
    spec.process.argv = {name, "arg"};
    auto ran = run_in_sandbox(spec);
    REQUIRE_FALSE(ran);
    CHECK(ran.error().code() == Code::not_found);
    CHECK(ran.error().message() == "exec " + name + ": executable file not found in $PATH");
  }

  // A file that is not executable: the step fails, it is not "not found".
  spit(f.lower() + "/bin/script", "#!/bin/sh\necho hi\n");
  SandboxSpec not_executable = f.spec("");
  not_executable.process.argv = {"script"};
  auto refused = run_in_sandbox(not_executable);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::build_failed);

  SandboxSpec bad = f.spec("true");
  bad.rootfs.lower_dirs = {f.path("no-such-layer")};
  auto failed = run_in_sandbox(bad);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == Code::sandbox);
  CHECK(failed.error().message().rfind("mount the overlay root filesystem: mount ", 0) == 0);
}

TEST_CASE("sandbox: 120 lower dirs mount and all of them are visible", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  constexpr int k_layers = 120;
  SandboxSpec spec = f.spec("ls /layers; cat /layers/f0 /layers/f119 /shadowed");
  std::vector<std::string> lowers;
  std::size_t total_path_bytes = 0;
  for (int i = k_layers - 1; i >= 0; --i) { // top first
    const std::string layer = f.path("layer-with-a-rather-long-name-" + std::to_string(i));
    spit(layer + "/layers/f" + std::to_string(i), std::to_string(i) + "\n");
    spit(layer + "/shadowed", "layer " + std::to_string(i) + "\n");
    lowers.push_back(layer);
    total_path_bytes += layer.size() + 1;
  }
  lowers.push_back(f.lower());
  // Longer than mount(2)'s one page of options when written out in full.
  CHECK(total_path_bytes > static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
  spec.rootfs.lower_dirs = lowers;
  CHECK(f.must_run(spec).exit_code == 0);
  const auto lines = lines_of(f.output());
  REQUIRE(lines.size() == k_layers + 3);
  std::vector<std::string> listed(lines.begin(), lines.begin() + k_layers);
  std::sort(listed.begin(), listed.end());
  std::vector<std::string> expected;
  for (int i = 0; i < k_layers; ++i) {
    expected.push_back("f" + std::to_string(i));
  }
  std::sort(expected.begin(), expected.end());
  CHECK(listed == expected);
  CHECK(lines[k_layers] == "0");
  CHECK(lines[k_layers + 1] == "119");
  CHECK(lines[k_layers + 2] == "layer 119"); // the top layer wins
}

TEST_CASE("sandbox: a plain directory root is changed in place", "[runtime]") {
  if (!sandbox_available()) {
    return;
  }
  Fixture f;
  const std::string root = f.path("plain");
  Fixture::populate(root);
  spit(root + "/old", "old");
  SandboxSpec spec = f.spec("echo made > /made && rm /old && hostname");
  spec.rootfs.lower_dirs.clear();
  spec.rootfs.plain_dir = root;
  spec.hostname = "plain-host";
  CHECK(f.must_run(spec).exit_code == 0);
  CHECK(f.output() == "plain-host\n");
  CHECK(slurp(root + "/made") == "made\n");
  CHECK_FALSE(fs::exists(root + "/old"));
  CHECK(fs::is_regular_file(root + "/etc/hosts")); // a stub, empty, recorded
  CHECK(fs::file_size(root + "/etc/hosts") == 0);
  // Nothing was written through the overlay dirs.
  CHECK(fs::is_empty(spec.rootfs.upper_dir));
}
