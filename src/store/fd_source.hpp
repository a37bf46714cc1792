// A ByteSource over a file descriptor it owns (private to src/store).
#pragma once

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/oci/byte_source.hpp>

#include <cerrno>
#include <string>
#include <unistd.h>

namespace minibuild::store {

class FdSource : public oci::ByteSource {
public:
  /// `what` names the file in error messages.
  FdSource(UniqueFd fd, std::string what) : m_fd(std::move(fd)), m_what(std::move(what)) {}

  Result<std::size_t> read(std::span<char> buffer) override {
    if (buffer.empty()) {
      return std::size_t{0};
    }
    for (;;) {
      const ssize_t count = ::read(m_fd.get(), buffer.data(), buffer.size());
      if (count >= 0) {
        return static_cast<std::size_t>(count);
      }
      if (errno != EINTR) {
        return fail_errno(errno, "read " + m_what);
      }
    }
  }

private:
  UniqueFd m_fd;
  std::string m_what;
};

} // namespace minibuild::store
