// enter_user_namespace in real namespaces. Each case forks a child (single-threaded by
// construction, whatever threads the test binary has), which becomes uid/gid 65534 when the tests
// run as root (else stays the invoking user), enters the namespace and reports through its exit
// status and a pipe. The subordinate-range SUCCESS path needs an /etc/subuid entry, which is
// global state: unit tests never write it, so only integration tests cover it; here newuidmap is
// run for real and must refuse a range the test user does not own.

#include "support/temp_dir.hpp"

#include <minibuild/runtime/user_namespace.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <grp.h>
#include <pwd.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using minibuild::Code;
using minibuild::layer::IdRange;
using namespace minibuild::runtime;

namespace {

constexpr uid_t k_test_id = 65534; // nobody/nogroup on Debian

uid_t unprivileged_id() {
  return ::geteuid() == 0 ? k_test_id : ::geteuid();
}

struct ChildResult {
  int status = -1; // exit code, or 128 + signal
  std::string text;
};

// Runs `body` in a forked child as an unprivileged user; the child's text comes back through a
// pipe and its return value becomes the exit code.
ChildResult run_unprivileged(const std::function<int(std::string&)>& body) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string text;
    int code = 0;
    if (::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 || ::setresgid(k_test_id, k_test_id, k_test_id) != 0 ||
         ::setresuid(k_test_id, k_test_id, k_test_id) != 0)) {
      text = "cannot drop to uid 65534: " + std::string(std::strerror(errno));
      code = 90;
    } else if (::prctl(PR_SET_DUMPABLE, 1) != 0) {
      // Changing credentials made the child non-dumpable, which gives its /proc/self files to
      // root; a process started by the user (the real case) is dumpable.
      text = "prctl(PR_SET_DUMPABLE): " + std::string(std::strerror(errno));
      code = 92;
    } else {
      code = body(text);
    }
    const ssize_t written = ::write(fds[1], text.data(), text.size());
    _exit(written == static_cast<ssize_t>(text.size()) ? code : 91);
  }
  ::close(fds[1]);
  ChildResult result;
  char buffer[4096];
  ssize_t got = 0;
  while ((got = ::read(fds[0], buffer, sizeof buffer)) > 0 || (got < 0 && errno == EINTR)) {
    if (got > 0) {
      result.text.append(buffer, static_cast<std::size_t>(got));
    }
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// "         0      65534          1\n" → "0 65534 1"
std::string squeeze(const std::string& text) {
  std::istringstream in(text);
  std::string word;
  std::string result;
  while (in >> word) {
    result += (result.empty() ? "" : " ") + word;
  }
  return result;
}

// The propagation fields of the mount at "/" in /proc/self/mountinfo ("shared:1 master:2").
std::string root_propagation() {
  std::istringstream lines(read_text("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    std::string word;
    while (words >> word && word != "-") {
      fields.push_back(word);
    }
    if (fields.size() >= 6 && fields[4] == "/") {
      std::string optional;
      for (std::size_t i = 6; i < fields.size(); ++i) {
        optional += fields[i] + " ";
      }
      return optional;
    }
  }
  return "no / in mountinfo";
}

// Whether the subid file has a line for `id` by number or by name (then newuidmap may accept).
bool file_mentions_id(const char* path, uid_t id) {
  std::vector<std::string> keys = {std::to_string(id) + ":"};
  if (const passwd* entry = ::getpwuid(id)) {
    keys.push_back(std::string(entry->pw_name) + ":");
  }
  std::istringstream lines(read_text(path));
  std::string line;
  while (std::getline(lines, line)) {
    for (const auto& key : keys) {
      if (line.rfind(key, 0) == 0) {
        return true;
      }
    }
  }
  return false;
}

} // namespace

TEST_CASE("enter_user_namespace does nothing as root", "[runtime]") {
  if (::geteuid() != 0) {
    WARN("skipped: the tests do not run as root");
    return;
  }
  auto entered = enter_user_namespace({});
  REQUIRE(entered);
  CHECK(entered->kind == NamespaceKind::not_needed);
  CHECK(entered->id_map.uids.empty());
  CHECK(entered->notice.empty());
}

TEST_CASE("enter_user_namespace maps a single id without subordinate ranges", "[runtime]") {
  minibuild::test::TempDir dir("userns");
  const uid_t id = unprivileged_id();
  const gid_t gid = ::geteuid() == 0 ? k_test_id : ::getegid();
  REQUIRE(::chown(dir.path().c_str(), id, gid) == 0);
  REQUIRE(::mkdir((dir / "mnt").c_str(), 0755) == 0);
  REQUIRE(::chown((dir / "mnt").c_str(), id, gid) == 0);
  const std::string expected_uid_map = "0 " + std::to_string(id) + " 1";
  const std::string expected_gid_map = "0 " + std::to_string(gid) + " 1";

  const auto child = run_unprivileged([&](std::string& text) {
    auto entered = enter_user_namespace({});
    if (!entered) {
      text = entered.error().what();
      return 10;
    }
    if (entered->kind != NamespaceKind::single_id ||
        entered->id_map.uids != std::vector<IdRange>{{0, id, 1}}) {
      text = "not a single-id namespace";
      return 11;
    }
    if (entered->notice.find("mapping only uid " + std::to_string(id)) == std::string::npos) {
      text = "notice: " + entered->notice;
      return 12;
    }
    if (squeeze(read_text("/proc/self/uid_map")) != expected_uid_map ||
        squeeze(read_text("/proc/self/gid_map")) != expected_gid_map ||
        squeeze(read_text("/proc/self/setgroups")) != "deny") {
      text = "maps: " + read_text("/proc/self/uid_map") + read_text("/proc/self/gid_map");
      return 13;
    }
    uid_t ruid = 1, euid = 1, suid = 1;
    gid_t rgid = 1, egid = 1, sgid = 1;
    ::getresuid(&ruid, &euid, &suid);
    ::getresgid(&rgid, &egid, &sgid);
    if (ruid != 0 || euid != 0 || suid != 0 || rgid != 0 || egid != 0 || sgid != 0) {
      text = "not root in the namespace";
      return 14;
    }
    const int fd = ::open((dir / "inside").c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_uid != 0 || st.st_gid != 0) {
      text = "create or stat inside: " + std::string(std::strerror(errno));
      return 15;
    }
    ::close(fd);
    const std::string propagation = root_propagation();
    if (propagation.find("shared:") != std::string::npos ||
        propagation.find("master:") != std::string::npos) {
      text = "/ is not private: " + propagation;
      return 16;
    }
    // A mount needs CAP_SYS_ADMIN over the new mount namespace; the host must not see it.
    if (::mount("tmpfs", (dir / "mnt").c_str(), "tmpfs", 0, "size=64k") != 0) {
      text = "mount tmpfs: " + std::string(std::strerror(errno));
      return 17;
    }
    const int in_tmpfs = ::open((dir / "mnt/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (in_tmpfs < 0) {
      text = "create in tmpfs: " + std::string(std::strerror(errno));
      return 18;
    }
    ::close(in_tmpfs);
    return 0;
  });
  INFO(child.text);
  REQUIRE(child.status == 0);

  struct stat st {};
  REQUIRE(::stat((dir / "inside").c_str(), &st) == 0);
  CHECK(st.st_uid == id); // container root is the user outside
  CHECK(st.st_gid == gid);
  CHECK(::access((dir / "mnt/x").c_str(), F_OK) != 0); // the tmpfs stayed in the namespace
}

TEST_CASE("enter_user_namespace refuses a multi-threaded process", "[runtime]") {
  const auto child = run_unprivileged([](std::string& text) {
    std::thread([] { ::pause(); }).detach(); // dies with the child at _exit
    auto entered = enter_user_namespace({});
    if (entered) {
      text = "entered with two threads";
      return 10;
    }
    text = entered.error().what();
    return entered.error().code() == Code::sandbox ? 0 : 11;
  });
  INFO(child.text);
  CHECK(child.status == 0);
  CHECK_THAT(child.text, Catch::StartsWith("enter user namespace: unshare(CLONE_NEWUSER): the "
                                           "process has 2 threads"));
}

TEST_CASE("enter_user_namespace names the missing newuidmap", "[runtime]") {
  minibuild::test::TempDir empty("no-helpers");
  UserNamespaceOptions options;
  options.subuids = {{0, 100000, 65536}};
  options.subgids = {{0, 100000, 65536}};
  options.helper_search_path = empty.path();
  const auto child = run_unprivileged([&](std::string& text) {
    auto entered = enter_user_namespace(options);
    text = entered ? "entered without newuidmap" : entered.error().what();
    return entered ? 10 : 0;
  });
  CHECK(child.status == 0);
  CHECK(child.text == "enter user namespace: newuidmap: not found in PATH or /usr/bin; install "
                      "Debian's uidmap package (apt-get install uidmap), or remove the "
                      "/etc/subuid and /etc/subgid entries to use a single-id map");
}

TEST_CASE("enter_user_namespace reports newuidmap refusing a range the user does not own",
          "[runtime]") {
  if (::access("/usr/bin/newuidmap", X_OK) != 0) {
    WARN("skipped: /usr/bin/newuidmap is not installed (Debian package uidmap)");
    return;
  }
  const uid_t id = unprivileged_id();
  if (file_mentions_id("/etc/subuid", id)) {
    WARN("skipped: /etc/subuid has an entry for the test user, newuidmap might accept the map");
    return;
  }
  UserNamespaceOptions options;
  options.subuids = {{0, 100000, 65536}};
  options.subgids = {{0, 100000, 65536}};
  options.user_name = "tester";
  options.helper_search_path = "/usr/bin";
  const auto child = run_unprivileged([&](std::string& text) {
    const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ::dup2(devnull, STDERR_FILENO); // newuidmap explains itself on stderr
    auto entered = enter_user_namespace(options);
    text = entered ? "newuidmap accepted a range without an /etc/subuid entry"
                   : entered.error().what();
    return entered ? 10 : entered.error().code() == Code::sandbox ? 0 : 11;
  });
  INFO(child.text);
  CHECK(child.status == 0);
  CHECK_THAT(child.text, Catch::StartsWith("enter user namespace: /usr/bin/newuidmap "));
  CHECK_THAT(child.text, Catch::Contains(" 0 " + std::to_string(id) +
                                         " 1 1 100000 65536: "
                                         "exited with status 1"));
  CHECK_THAT(child.text, Catch::Contains("/etc/subuid needs an entry tester:START:COUNT"));
}
