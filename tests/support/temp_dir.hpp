// A temporary directory for tests, removed with everything in it at scope exit.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>

namespace minibuild::test {

/// A fresh directory under $TMPDIR (or /tmp). The destructor first gives the owner full rights
/// on every directory below it (tests chmod directories to 0500 or 0000, unpacked layers hold
/// read-only ones), then removes the tree without following symlinks.
class TempDir {
public:
  explicit TempDir(std::string_view purpose = "test") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/minibuild-" +
                          std::string(purpose) + "-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    m_path = pattern;
  }
  ~TempDir() {
    namespace fs = std::filesystem;
    std::error_code error;
    ::chmod(m_path.c_str(), 0700);
    for (auto it = fs::recursive_directory_iterator(
             m_path, fs::directory_options::skip_permission_denied, error);
         !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (it->is_directory(error) && !it->is_symlink(error)) {
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, error);
      }
    }
    fs::remove_all(m_path, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return m_path; }
  std::string operator/(std::string_view relative) const {
    return m_path + "/" + std::string(relative);
  }

private:
  std::string m_path;
};

} // namespace minibuild::test
