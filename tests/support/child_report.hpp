// Runs a check in a forked child (for what must not touch the test process: seccomp filters,
// dropped capabilities, changed ids) and returns what the child wrote to its report pipe.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace minibuild::test {

/// Forks; the child calls `child(report_fd)` and exits 0 when it returns (it may _exit with
/// another code itself to say a step failed). The parent reads the report to EOF, reaps the
/// child and REQUIREs a clean exit 0, showing the report when it is not.
template <typename Child>
std::string run_child_reporting(Child&& child) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buffer[512];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child report:\n" << text);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return text;
}

} // namespace minibuild::test
