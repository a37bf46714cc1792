#include <minibuild/base/file.hpp>
#include <minibuild/base/unique_fd.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild {

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno(errno, "open \"" + path + "\"");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(errno, "stat \"" + path + "\"");
  }
  if (S_ISDIR(st.st_mode)) {
    return fail(Code::io, "read \"" + path + "\": is a directory");
  }
  std::string data;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "read \"" + path + "\"");
    }
    if (n == 0) {
      break;
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

} // namespace minibuild
