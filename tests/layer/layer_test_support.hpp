// Helpers shared by the layer tests: temporary trees, tree snapshots for comparison, and a
// TarBuilder that crafts archives (including malicious ones) with libarchive.
#pragma once

#include "layer/fs_util.hpp"
#include "support/temp_dir.hpp"

#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/byte_sink.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/digest.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace layer_test {

using namespace minibuild;

using TempDir = minibuild::test::TempDir;

/// Whether this process can give files arbitrary owners (root in the initial user namespace;
/// root of a user namespace with a single-id map cannot).
inline bool can_chown() {
  TempDir dir;
  std::string path = dir.path() + "/probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return false;
  }
  ::close(fd);
  return ::chown(path.c_str(), 1234, 5678) == 0;
}

/// Whether this process can create device nodes (CAP_MKNOD in the initial user namespace).
inline bool can_mknod() {
  TempDir dir;
  return ::mknod((dir.path() + "/probe").c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0;
}

inline void make_dir(const std::string& path, mode_t mode = 0755) {
  REQUIRE(::mkdir(path.c_str(), mode) == 0);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

inline void write_file(const std::string& path, const std::string& content, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t wrote = ::write(fd, content.data() + done, content.size() - done);
    REQUIRE(wrote > 0);
    done += static_cast<std::size_t>(wrote);
  }
  ::close(fd);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

inline std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::string content;
  char buffer[65536];
  while (true) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    REQUIRE(got >= 0);
    if (got == 0) {
      break;
    }
    content.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return content;
}

/// The names in a directory, sorted.
inline std::vector<std::string> names_in(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  auto names = layer::list_directory(fd, path);
  ::close(fd);
  REQUIRE(names);
  std::sort(names->begin(), names->end());
  return *names;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline void set_mtime(const std::string& path, time_t seconds) {
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

/// Compressible but not trivial bytes, like text and binaries mixed: a deterministic stream.
inline std::string sample_bytes(std::size_t size, std::uint32_t seed) {
  std::string bytes;
  bytes.reserve(size);
  std::uint32_t state = seed * 2654435761u + 1;
  static const char* words[] = {"layer ",
                                "tar ",
                                "gzip ",
                                "zstd ",
                                "digest ",
                                "sha256 ",
                                "overlay ",
                                "whiteout ",
                                "\n",
                                "\x7f"
                                "ELF",
                                "\0\0\0\0"};
  while (bytes.size() < size) {
    state = state * 1103515245u + 12345u;
    if ((state >> 16) % 4 == 0) {
      bytes.push_back(static_cast<char>(state >> 24)); // some noise
    } else {
      bytes += words[(state >> 8) % (sizeof(words) / sizeof(words[0]))];
    }
  }
  bytes.resize(size);
  return bytes;
}

/// One entry of a tree as compared by the round-trip tests.
struct NodeInfo {
  char type = '?';
  unsigned mode = 0;
  unsigned uid = 0;
  unsigned gid = 0;
  std::string content; // regular files
  std::string target;  // symlinks
  unsigned rdev_major = 0;
  unsigned rdev_minor = 0;
  std::map<std::string, std::string> xattrs;
  long long mtime = 0;
  std::string link_group; // first path (in walk order) sharing this inode, for nlink > 1

  bool operator==(const NodeInfo&) const = default;
};

inline std::map<std::string, std::string> xattrs_of(const std::string& path) {
  std::map<std::string, std::string> result;
  char names[65536];
  ssize_t length = ::llistxattr(path.c_str(), names, sizeof(names));
  for (ssize_t start = 0; length > 0 && start < length;) {
    std::string name(names + start);
    start += static_cast<ssize_t>(name.size()) + 1;
    if (name == "security.selinux") {
      continue;
    }
    char value[65536];
    ssize_t size = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof(value));
    if (size >= 0) {
      result[name] = std::string(value, static_cast<std::size_t>(size));
    }
  }
  return result;
}

struct SnapshotOptions {
  bool mtimes = true;
  bool owners = true;
  bool dir_mtimes = true;
};

/// Everything that a layer round trip must preserve, keyed by relative path.
inline std::map<std::string, NodeInfo> snapshot(const std::string& root,
                                                SnapshotOptions options = {}) {
  std::map<std::string, NodeInfo> nodes;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string dir = todo.back();
    todo.pop_back();
    std::string dir_path = dir.empty() ? root : root + "/" + dir;
    int fd = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto names = layer::list_directory(fd, dir_path);
    ::close(fd);
    REQUIRE(names);
    std::sort(names->begin(), names->end());
    for (const std::string& name : *names) {
      std::string relative = dir.empty() ? name : dir + "/" + name;
      std::string full = root + "/" + relative;
      struct stat st {};
      REQUIRE(::lstat(full.c_str(), &st) == 0);
      NodeInfo node;
      node.mode = st.st_mode & 07777;
      node.uid = options.owners ? st.st_uid : 0;
      node.gid = options.owners ? st.st_gid : 0;
      node.mtime = options.mtimes ? st.st_mtim.tv_sec : 0;
      node.xattrs = xattrs_of(full);
      switch (st.st_mode & S_IFMT) {
      case S_IFDIR:
        node.type = 'd';
        if (!options.dir_mtimes) {
          node.mtime = 0;
        }
        todo.push_back(relative);
        break;
      case S_IFREG:
        node.type = 'f';
        node.content = read_file(full);
        break;
      case S_IFLNK: {
        node.type = 'l';
        node.mode = 0; // symlink modes are meaningless on Linux
        std::string target(4096, '\0');
        ssize_t length = ::readlink(full.c_str(), target.data(), target.size());
        REQUIRE(length >= 0);
        target.resize(static_cast<std::size_t>(length));
        node.target = target;
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
        node.type = S_ISCHR(st.st_mode) ? 'c' : 'b';
        node.rdev_major = major(st.st_rdev);
        node.rdev_minor = minor(st.st_rdev);
        break;
      case S_IFIFO:
        node.type = 'p';
        break;
      default:
        node.type = 's';
        break;
      }
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto [it, inserted] = inodes.emplace(std::make_pair(st.st_dev, st.st_ino), relative);
        node.link_group = inserted ? relative : it->second;
      }
      nodes[relative] = node;
    }
  }
  // The link group is "the smallest path of the inode", independent of the walk order.
  std::map<std::string, std::string> smallest;
  for (auto& [path, node] : nodes) {
    if (!node.link_group.empty()) {
      auto [it, inserted] = smallest.emplace(node.link_group, path);
      if (!inserted && path < it->second) {
        it->second = path;
      }
    }
  }
  for (auto& [path, node] : nodes) {
    if (!node.link_group.empty()) {
      node.link_group = smallest[node.link_group];
    }
  }
  return nodes;
}

inline std::string describe(const std::map<std::string, NodeInfo>& nodes) {
  std::string text;
  for (const auto& [path, node] : nodes) {
    text += path + " " + node.type + " mode=" + std::to_string(node.mode) +
            " owner=" + std::to_string(node.uid) + ":" + std::to_string(node.gid) +
            " mtime=" + std::to_string(node.mtime) +
            " size=" + std::to_string(node.content.size()) + " target=" + node.target +
            " rdev=" + std::to_string(node.rdev_major) + "," + std::to_string(node.rdev_minor) +
            " link=" + node.link_group;
    for (const auto& [name, value] : node.xattrs) {
      text += " " + name + "=" + std::to_string(value.size()) + "B";
    }
    text += "\n";
  }
  return text;
}

/// Crafts tar archives entry by entry; names and link targets are written exactly as given.
class TarBuilder {
public:
  TarBuilder() {
    m_archive = archive_write_new();
    m_entry = archive_entry_new();
    archive_write_set_format_pax(m_archive);
    archive_write_set_bytes_per_block(m_archive, 0);
    archive_write_open(m_archive, this, nullptr, &TarBuilder::write_callback, nullptr);
  }
  ~TarBuilder() {
    archive_entry_free(m_entry);
    archive_write_free(m_archive);
  }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  TarBuilder& file(const std::string& path, const std::string& content, unsigned mode = 0644) {
    start(path, AE_IFREG, mode);
    archive_entry_set_size(m_entry, static_cast<la_int64_t>(content.size()));
    header();
    REQUIRE(archive_write_data(m_archive, content.data(), content.size()) ==
            static_cast<la_ssize_t>(content.size()));
    return *this;
  }
  TarBuilder& dir(const std::string& path, unsigned mode = 0755) {
    start(path, AE_IFDIR, mode);
    header();
    return *this;
  }
  TarBuilder& symlink(const std::string& path, const std::string& target) {
    start(path, AE_IFLNK, 0777);
    archive_entry_copy_symlink(m_entry, target.c_str());
    header();
    return *this;
  }
  TarBuilder& hardlink(const std::string& path, const std::string& target) {
    start(path, AE_IFREG, 0644);
    archive_entry_copy_hardlink(m_entry, target.c_str());
    archive_entry_set_size(m_entry, 0);
    header();
    return *this;
  }
  TarBuilder& device(const std::string& path, bool character, unsigned major_number,
                     unsigned minor_number) {
    start(path, character ? AE_IFCHR : AE_IFBLK, 0600);
    archive_entry_set_rdevmajor(m_entry, major_number);
    archive_entry_set_rdevminor(m_entry, minor_number);
    header();
    return *this;
  }
  TarBuilder& fifo(const std::string& path) {
    start(path, AE_IFIFO, 0644);
    header();
    return *this;
  }
  /// Adds an xattr to the next entry.
  /// Owner of the next entry only (later entries are 0:0 again).
  TarBuilder& owner(unsigned uid, unsigned gid) {
    m_next_owner = {uid, gid};
    return *this;
  }
  TarBuilder& xattr(const std::string& name, const std::string& value) {
    m_xattrs.emplace_back(name, value);
    return *this;
  }
  std::string finish() {
    archive_write_close(m_archive);
    return m_bytes;
  }

private:
  static la_ssize_t write_callback(struct archive*, void* client, const void* buffer,
                                   size_t length) {
    static_cast<TarBuilder*>(client)->m_bytes.append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  }
  void start(const std::string& path, unsigned type, unsigned mode) {
    archive_entry_clear(m_entry);
    archive_entry_copy_pathname(m_entry, path.c_str());
    archive_entry_set_filetype(m_entry, type);
    archive_entry_set_perm(m_entry, mode);
    archive_entry_set_mtime(m_entry, 1600000000, 0);
    archive_entry_set_uid(m_entry, m_next_owner.first);
    archive_entry_set_gid(m_entry, m_next_owner.second);
    m_next_owner = {0, 0};
    for (const auto& [name, value] : m_xattrs) {
      archive_entry_xattr_add_entry(m_entry, name.c_str(), value.data(), value.size());
    }
    m_xattrs.clear();
  }
  void header() {
    int rc = archive_write_header(m_archive, m_entry);
    REQUIRE((rc == ARCHIVE_OK || rc == ARCHIVE_WARN));
  }

  struct archive* m_archive;
  struct archive_entry* m_entry;
  std::string m_bytes;
  std::vector<std::pair<std::string, std::string>> m_xattrs;
  std::pair<unsigned, unsigned> m_next_owner{0, 0};
};

/// One entry of a tar as listed by listing(): header fields only.
struct TarEntry {
  std::string path;
  char type = '?';
  unsigned mode = 0;
  long long uid = 0;
  long long gid = 0;
  long long mtime = 0;
  std::string link; // symlink target or hardlink target
  bool hardlink = false;
  bool has_uname = false;
  bool has_atime = false;
  std::map<std::string, std::string> xattrs;
};

/// Lists an uncompressed tar with libarchive.
inline std::vector<TarEntry> listing(const std::string& tar) {
  struct archive* archive = archive_read_new();
  archive_read_support_format_tar(archive);
  REQUIRE(archive_read_open_memory(archive, tar.data(), tar.size()) == ARCHIVE_OK);
  std::vector<TarEntry> entries;
  struct archive_entry* entry = nullptr;
  while (true) {
    int rc = archive_read_next_header(archive, &entry);
    if (rc == ARCHIVE_EOF) {
      break;
    }
    REQUIRE((rc == ARCHIVE_OK || rc == ARCHIVE_WARN));
    TarEntry item;
    item.path = archive_entry_pathname(entry);
    switch (archive_entry_filetype(entry)) {
    case AE_IFDIR:
      item.type = 'd';
      break;
    case AE_IFLNK:
      item.type = 'l';
      break;
    case AE_IFCHR:
      item.type = 'c';
      break;
    case AE_IFBLK:
      item.type = 'b';
      break;
    case AE_IFIFO:
      item.type = 'p';
      break;
    default:
      item.type = 'f';
      break;
    }
    item.mode = archive_entry_perm(entry);
    item.uid = archive_entry_uid(entry);
    item.gid = archive_entry_gid(entry);
    item.mtime = archive_entry_mtime(entry);
    if (archive_entry_hardlink(entry) != nullptr) {
      item.hardlink = true;
      item.link = archive_entry_hardlink(entry);
    } else if (archive_entry_symlink(entry) != nullptr) {
      item.link = archive_entry_symlink(entry);
    }
    const char* uname = archive_entry_uname(entry);
    const char* gname = archive_entry_gname(entry);
    item.has_uname = (uname != nullptr && *uname != 0) || (gname != nullptr && *gname != 0);
    item.has_atime =
        archive_entry_atime_is_set(entry) != 0 || archive_entry_ctime_is_set(entry) != 0;
    archive_entry_xattr_reset(entry);
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      item.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    entries.push_back(item);
  }
  archive_read_free(archive);
  return entries;
}

/// Exports `root` uncompressed into memory.
inline std::string export_tar(const std::string& root, layer::ExportOptions options = {}) {
  options.compression = oci::Compression::none;
  layer::StringSink sink;
  auto result = layer::export_layer(root, options, sink);
  INFO((result ? std::string() : result.error().what()));
  REQUIRE(result);
  return sink.take();
}

inline Result<layer::ApplyResult> apply_bytes(const std::string& bytes, const std::string& target,
                                              const layer::ApplyOptions& options = {}) {
  oci::StringSource source(bytes);
  return layer::apply_layer(source, target, options);
}

} // namespace layer_test
