#include "output_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace minibuild::build {

Result<void> write_all(int fd, std::span<const char> bytes, std::string_view what) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "write \"" + std::string(what) + "\"");
    }
    bytes = bytes.subspan(static_cast<std::size_t>(written));
  }
  return {};
}

Result<UniqueFd> open_directory(int dir_fd, const std::string& path, std::string_view display) {
  int fd = ::openat(dir_fd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    Error error = Error::from_errno(errno, "open directory \"" + std::string(display) + "\"");
    if (errno == ENOENT) {
      return fail(std::move(error).with_code(Code::not_found));
    }
    return fail(std::move(error));
  }
  return UniqueFd(fd);
}

Result<AtomicFile> AtomicFile::create(int temp_dir_fd, std::string temp_dir) {
  // pid + random suffix: unique across concurrent exports into one directory; O_EXCL guards the
  // rest (a collision just tries another name).
  static thread_local std::mt19937_64 random(std::random_device{}());
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string name = ".minibuild-" + std::to_string(::getpid()) + "-" +
                       std::to_string(random() % 1000000000ULL) + ".tmp";
    int fd = ::openat(temp_dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      return AtomicFile(temp_dir_fd, std::move(temp_dir), std::move(name), UniqueFd(fd));
    }
    if (errno != EEXIST) {
      return fail_errno(errno, "create \"" + temp_dir + "/" + name + "\"");
    }
  }
  return fail(Code::io, "create a temporary file in \"" + temp_dir + "\": names keep colliding");
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_temp_dir_fd(other.m_temp_dir_fd), m_temp_dir(std::move(other.m_temp_dir)),
      m_name(std::move(other.m_name)), m_fd(std::move(other.m_fd)),
      m_committed(std::exchange(other.m_committed, true)) {}

AtomicFile::~AtomicFile() {
  if (!m_committed && !m_name.empty()) {
    m_fd.reset();
    // Best effort: the only thing left to do with a failure here is to leave the hidden
    // temporary file behind, which its name makes recognisable.
    ::unlinkat(m_temp_dir_fd, m_name.c_str(), 0);
  }
}

Result<void> AtomicFile::commit(int dir_fd, const std::string& dir, const std::string& name) {
  if (m_committed) {
    return fail(Code::internal, "commit \"" + temp_path() + "\" twice");
  }
  if (::fsync(m_fd.get()) != 0) {
    return fail_errno(errno, "fsync \"" + temp_path() + "\"");
  }
  m_fd.reset();
  if (::renameat(m_temp_dir_fd, m_name.c_str(), dir_fd, name.c_str()) != 0) {
    return fail_errno(errno, "rename \"" + temp_path() + "\" to \"" + dir + "/" + name + "\"");
  }
  m_committed = true;
  if (::fsync(dir_fd) != 0) {
    return fail_errno(errno, "fsync directory \"" + dir + "\"");
  }
  return {};
}

Result<ArchiveDestination> ArchiveDestination::open(const std::string& dest) {
  ArchiveDestination destination;
  if (dest == "-") {
    destination.m_display = "standard output";
    return destination;
  }
  destination.m_display = dest;
  struct stat info {};
  if (::stat(dest.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return fail(Code::usage, "\"" + dest + "\" is a directory; an archive destination is a file");
  }
  std::tie(destination.m_dir, destination.m_name) = split_destination(dest);
  MB_TRY_ASSIGN(destination.m_dir_fd,
                open_directory(AT_FDCWD, destination.m_dir, destination.m_dir));
  MB_TRY_ASSIGN(auto file, AtomicFile::create(destination.m_dir_fd.get(), destination.m_dir));
  destination.m_file.emplace(std::move(file));
  return destination;
}

Result<void> ArchiveDestination::commit() {
  if (!m_file) {
    return {};
  }
  return m_file->commit(m_dir_fd.get(), m_dir, m_name);
}

std::pair<std::string, std::string> split_destination(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') {
    trimmed.pop_back();
  }
  auto slash = trimmed.rfind('/');
  if (slash == std::string::npos) {
    return {".", trimmed};
  }
  return {slash == 0 ? "/" : trimmed.substr(0, slash), trimmed.substr(slash + 1)};
}

} // namespace minibuild::build
