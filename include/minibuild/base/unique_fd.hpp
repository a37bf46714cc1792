// UniqueFd: sole owner of a file descriptor; closes it on destruction. Move-only.
#pragma once

#include <unistd.h>
#include <utility>

namespace minibuild {

class UniqueFd {
public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return m_fd; }
  explicit operator bool() const { return m_fd >= 0; }
  /// Gives up ownership without closing; the caller now owns the descriptor.
  int release() { return std::exchange(m_fd, -1); }
  /// Closes the current descriptor (errors from close are ignored: nothing useful can be done
  /// with them for read-only descriptors; writers fsync and check before closing).
  void reset(int fd = -1) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

private:
  int m_fd = -1;
};

} // namespace minibuild
