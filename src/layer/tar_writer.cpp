#include "tar_writer.hpp"

#include "scoped_locale.hpp"

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/whiteout.hpp>
#include <minibuild/layer/xattrs.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utility>

namespace minibuild::layer {

namespace {

constexpr std::size_t k_read_buffer_size = 256 * 1024;

std::string quoted(std::string_view path) {
  return "\"" + std::string(path) + "\"";
}

struct Xattr {
  std::string name;
  std::string value;
};

// Reads every xattr of one file through `list` and `get` (the f* or l* syscalls), sorted by
// name so the pax records come out in the same order on every filesystem.
template <typename List, typename Get>
Result<std::vector<Xattr>> read_xattrs(const std::string& path, List list, Get get) {
  std::vector<Xattr> result;
  std::string names;
  while (true) {
    ssize_t size = list(nullptr, 0);
    if (size < 0) {
      if (errno == ENOTSUP || errno == EOPNOTSUPP) {
        return result; // the filesystem has no xattrs at all
      }
      return fail_errno(errno, "list xattrs of " + quoted(path));
    }
    names.resize(static_cast<std::size_t>(size));
    size = list(names.data(), names.size());
    if (size < 0 && errno == ERANGE) {
      continue; // grew in between
    }
    if (size < 0) {
      return fail_errno(errno, "list xattrs of " + quoted(path));
    }
    names.resize(static_cast<std::size_t>(size));
    break;
  }
  std::size_t start = 0;
  while (start < names.size()) {
    std::size_t end = names.find('\0', start);
    if (end == std::string::npos) {
      end = names.size();
    }
    std::string name = names.substr(start, end - start);
    start = end + 1;
    if (name.empty()) {
      continue;
    }
    std::string value;
    while (true) {
      ssize_t size = get(name.c_str(), nullptr, 0);
      if (size < 0 && errno == ENODATA) {
        break; // removed since it was listed
      }
      if (size < 0) {
        return fail_errno(errno, "read xattr " + name + " of " + quoted(path));
      }
      value.resize(static_cast<std::size_t>(size));
      size = get(name.c_str(), value.data(), value.size());
      if (size < 0 && errno == ERANGE) {
        continue;
      }
      if (size < 0) {
        return fail_errno(errno, "read xattr " + name + " of " + quoted(path));
      }
      value.resize(static_cast<std::size_t>(size));
      result.push_back({std::move(name), std::move(value)});
      break;
    }
  }
  std::sort(result.begin(), result.end(),
            [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return result;
}

struct Child {
  std::string name;
  struct stat st {};
};

class TreeTarWriter {
public:
  TreeTarWriter(const std::string& root, const TarWriterOptions& options, ByteSink& out)
      : m_root(root), m_options(options), m_out(out), m_buffer(k_read_buffer_size) {
    m_proc_fd = ::access("/proc/self/fd", X_OK) == 0;
  }

  ~TreeTarWriter() {
    if (m_entry != nullptr) {
      archive_entry_free(m_entry);
    }
    if (m_archive != nullptr) {
      archive_write_free(m_archive);
    }
  }
  TreeTarWriter(const TreeTarWriter&) = delete;
  TreeTarWriter& operator=(const TreeTarWriter&) = delete;

  Result<TarWriterStats> run() {
    UniqueFd root(::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
      return fail_errno(errno, "open layer root " + quoted(m_root));
    }
    MB_TRY(open_archive());
    if (m_options.kind == TreeKind::overlay_upper) {
      MB_TRY_ASSIGN(auto xattrs, fd_xattrs(root.get(), m_root));
      MB_TRY_ASSIGN(bool opaque, check_overlay_dir(xattrs, "."));
      if (opaque) {
        MB_TRY(write_marker(std::string(k_opaque_whiteout)));
      }
    }
    MB_TRY(write_dir(root.get(), ""));
    if (archive_write_close(m_archive) != ARCHIVE_OK) {
      return archive_failure("finish tar stream");
    }
    return std::move(m_stats);
  }

private:
  static la_ssize_t write_callback(struct archive*, void* client, const void* buffer,
                                   size_t length) {
    auto* self = static_cast<TreeTarWriter*>(client);
    auto ok = self->m_out.write(std::span<const char>(static_cast<const char*>(buffer), length));
    if (!ok) {
      self->m_sink_error = ok.error();
      return -1;
    }
    return static_cast<la_ssize_t>(length);
  }

  Result<void> open_archive() {
    m_archive = archive_write_new();
    m_entry = archive_entry_new();
    if (m_archive == nullptr || m_entry == nullptr) {
      return fail(Code::internal, "libarchive: out of memory");
    }
    // pax "restricted": plain ustar headers, plus a pax extended header only for what ustar
    // cannot hold (long names and link targets, big ids and sizes, xattrs, non-ASCII names).
    if (archive_write_set_format_pax_restricted(m_archive) != ARCHIVE_OK ||
        // Only SCHILY.xattr.* records: what Go's archive/tar, containerd and GNU tar read.
        // The default adds LIBARCHIVE.xattr.* duplicates of every xattr.
        archive_write_set_format_option(m_archive, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        // 0: no 10240-byte blocking; writes go straight to the callback and the stream ends
        // right after the two zero blocks, as Go's and umoci's layers do.
        archive_write_set_bytes_per_block(m_archive, 0) != ARCHIVE_OK ||
        archive_write_open(m_archive, this, nullptr, &TreeTarWriter::write_callback, nullptr) !=
            ARCHIVE_OK) {
      return archive_failure("start tar stream");
    }
    return {};
  }

  Error archive_error(const std::string& what) {
    if (m_sink_error) {
      return *m_sink_error;
    }
    const char* message = archive_error_string(m_archive);
    return Error(Code::internal,
                 what + ": libarchive: " + (message != nullptr ? message : "unknown error"));
  }
  tl::unexpected<Error> archive_failure(const std::string& what) {
    return tl::unexpected<Error>(archive_error(what));
  }

  Result<std::vector<Child>> list_dir(int dirfd, const std::string& path) {
    int copy = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      return fail_errno(errno, "read directory " + quoted(path));
    }
    DIR* dir = ::fdopendir(copy);
    if (dir == nullptr) {
      int saved = errno;
      ::close(copy);
      return fail_errno(saved, "read directory " + quoted(path));
    }
    std::vector<Child> children;
    while (true) {
      errno = 0;
      struct dirent* entry = ::readdir(dir);
      if (entry == nullptr) {
        int saved = errno;
        ::closedir(dir);
        if (saved != 0) {
          return fail_errno(saved, "read directory " + quoted(path));
        }
        break;
      }
      std::string_view name = entry->d_name;
      if (name == "." || name == "..") {
        continue;
      }
      children.push_back({std::string(name), {}});
    }
    for (Child& child : children) {
      if (::fstatat(dirfd, child.name.c_str(), &child.st, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail_errno(errno, "stat " + quoted(path + child.name));
      }
    }
    // std::string compares with char_traits<char>::compare, i.e. memcmp: bytewise, unsigned.
    std::sort(children.begin(), children.end(),
              [](const Child& a, const Child& b) { return a.name < b.name; });
    return children;
  }

  // An overlay whiteout: a character device 0/0 (overlayfs.rst, "whiteouts and opaque
  // directories"). overlayfs often hardlinks all whiteouts to one inode, so this is checked
  // before the hardlink table.
  bool is_overlay_whiteout(const struct stat& st) const {
    return m_options.kind == TreeKind::overlay_upper && S_ISCHR(st.st_mode) && st.st_rdev == 0;
  }

  Result<void> write_dir(int dirfd, const std::string& prefix) {
    MB_TRY_ASSIGN(std::vector<Child> children, list_dir(dirfd, prefix.empty() ? "." : prefix));
    // Whiteouts first: image-spec layer.md asks for whiteouts before their siblings, so a
    // streaming consumer removes lower content before it sees this layer's new entries.
    for (const Child& child : children) {
      if (is_overlay_whiteout(child.st)) {
        MB_TRY(write_marker(prefix + std::string(k_whiteout_prefix) + child.name));
      }
    }
    for (const Child& child : children) {
      if (is_overlay_whiteout(child.st)) {
        continue;
      }
      if (is_whiteout_name(child.name)) {
        return fail(Code::unsupported,
                    quoted(prefix + child.name) +
                        " can not be stored in a layer: names starting "
                        "with \".wh.\" are reserved for whiteouts (image-spec layer.md)");
      }
      MB_TRY(write_child(dirfd, prefix, child));
    }
    return {};
  }

  // Checks an overlay directory's xattrs: refuses redirect/metacopy, reports opaqueness.
  Result<bool> check_overlay_dir(const std::vector<Xattr>& xattrs, const std::string& path) {
    bool opaque = false;
    for (const Xattr& xattr : xattrs) {
      MB_TRY(check_overlay_xattr(xattr, path));
      if ((xattr.name == "trusted.overlay.opaque" || xattr.name == "user.overlay.opaque") &&
          xattr.value == "y") {
        opaque = true;
      }
    }
    return opaque;
  }

  Result<void> check_overlay_xattr(const Xattr& xattr, const std::string& path) {
    if (m_options.kind != TreeKind::overlay_upper) {
      return {};
    }
    std::string_view name = xattr.name;
    if (name == "trusted.overlay.redirect" || name == "user.overlay.redirect" ||
        name == "trusted.overlay.metacopy" || name == "user.overlay.metacopy") {
      return fail(Code::unsupported,
                  quoted(path) + " has the overlayfs xattr " + xattr.name +
                      ": the upper dir was written with redirect_dir or metacopy enabled, "
                      "which a layer tar cannot express; mount the overlay with "
                      "redirect_dir=off,metacopy=off (minibuild's sandbox does)");
    }
    return {};
  }

  Result<std::vector<Xattr>> fd_xattrs(int fd, const std::string& path) {
    return read_xattrs(
        path, [fd](char* list, std::size_t size) { return ::flistxattr(fd, list, size); },
        [fd](const char* name, void* value, std::size_t size) {
          return ::fgetxattr(fd, name, value, size);
        });
  }

  // Symlinks, devices and FIFOs are not opened (opening a device or a FIFO has side effects),
  // so their xattrs are read by name with the l* calls, which do not follow the last
  // component. The parent is reached through its descriptor's /proc/self/fd link, so the path
  // cannot be redirected by a rename elsewhere in the tree; without /proc the full path is used.
  Result<std::vector<Xattr>> name_xattrs(int dirfd, const std::string& name,
                                         const std::string& path) {
    std::string full =
        m_proc_fd ? "/proc/self/fd/" + std::to_string(dirfd) + "/" + name : m_root + "/" + path;
    return read_xattrs(
        path,
        [&full](char* list, std::size_t size) { return ::llistxattr(full.c_str(), list, size); },
        [&full](const char* xname, void* value, std::size_t size) {
          return ::lgetxattr(full.c_str(), xname, value, size);
        });
  }

  // The owner an OwnerOverride gives the entry at `path` (directories end in '/'), if any.
  std::optional<EntryOwner> overridden_owner(std::string_view path) const {
    const OwnerOverride& owners = m_options.owners;
    if (owners.empty()) {
      return std::nullopt;
    }
    if (!path.empty() && path.back() == '/') {
      path.remove_suffix(1);
    }
    if (const auto found = owners.by_path.find(std::string(path)); found != owners.by_path.end()) {
      return found->second;
    }
    return owners.all;
  }

  Result<void> set_common(const std::string& path, const struct stat& st) {
    archive_entry_clear(m_entry);
    archive_entry_copy_pathname(m_entry, path.c_str());
    archive_entry_set_mode(m_entry, st.st_mode);
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    if (const auto owner = overridden_owner(path)) {
      uid = owner->uid;
      gid = owner->gid;
    } else {
      uid = to_container_id(m_options.id_map.uids, st.st_uid);
      gid = to_container_id(m_options.id_map.gids, st.st_gid);
    }
    if (!uid || !gid) {
      return fail(Code::unsupported, "owner " + std::to_string(st.st_uid) + ":" +
                                         std::to_string(st.st_gid) + " of " + quoted(path) +
                                         " is outside the id map, so it has no container owner");
    }
    archive_entry_set_uid(m_entry, *uid);
    archive_entry_set_gid(m_entry, *gid);
    // Whole seconds only (like moby's archive), clamped to SOURCE_DATE_EPOCH; no atime, ctime,
    // uname or gname: nothing that changes when the same tree is built again.
    std::int64_t mtime = st.st_mtim.tv_sec;
    if (m_options.source_date_epoch && mtime > *m_options.source_date_epoch) {
      mtime = *m_options.source_date_epoch;
    }
    archive_entry_set_mtime(m_entry, static_cast<time_t>(mtime), 0);
    return {};
  }

  void add_xattrs(const std::vector<Xattr>& xattrs) {
    for (const Xattr& xattr : xattrs) {
      // An empty value in a pax record means "unset the keyword" (POSIX pax, "extended
      // header"), so an empty xattr cannot be stored faithfully; umoci skips them too.
      if (!is_image_xattr(xattr.name) || xattr.value.empty()) {
        continue;
      }
      archive_entry_xattr_add_entry(m_entry, xattr.name.c_str(), xattr.value.data(),
                                    xattr.value.size());
    }
  }

  Result<void> write_header(const std::string& path) {
    int rc = archive_write_header(m_archive, m_entry);
    // ARCHIVE_WARN: a name that is not valid UTF-8 was written raw with hdrcharset=BINARY.
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return archive_failure("write tar header for " + quoted(path));
    }
    ++m_stats.entries;
    return {};
  }

  // A whiteout or opaque marker: an empty regular file, mode 0, owner 0:0, mtime 0, so it
  // carries nothing that depends on the build host or time.
  Result<void> write_marker(const std::string& path) {
    archive_entry_clear(m_entry);
    archive_entry_copy_pathname(m_entry, path.c_str());
    archive_entry_set_mode(m_entry, S_IFREG);
    archive_entry_set_size(m_entry, 0);
    archive_entry_set_mtime(m_entry, 0, 0);
    return write_header(path);
  }

  // Returns true when the entry was written as a hardlink to an earlier path.
  Result<bool> write_if_hardlink(const std::string& path, const struct stat& st) {
    if (st.st_nlink <= 1) {
      return false;
    }
    auto key = std::make_pair(st.st_dev, st.st_ino);
    auto found = m_links.find(key);
    if (found == m_links.end()) {
      m_links.emplace(key, path);
      return false;
    }
    MB_TRY(set_common(path, st));
    archive_entry_copy_hardlink(m_entry, found->second.c_str());
    archive_entry_set_size(m_entry, 0);
    MB_TRY(write_header(path));
    return true;
  }

  Result<void> write_child(int dirfd, const std::string& prefix, const Child& child) {
    std::string path = prefix + child.name;
    const struct stat& st = child.st;
    switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
      return write_directory(dirfd, path, child);
    case S_IFREG:
      return write_regular(dirfd, path, child);
    case S_IFLNK: {
      MB_TRY_ASSIGN(bool linked, write_if_hardlink(path, st));
      if (linked) {
        return {};
      }
      MB_TRY_ASSIGN(std::string target, read_link(dirfd, child, path));
      MB_TRY_ASSIGN(auto xattrs, name_xattrs(dirfd, child.name, path));
      MB_TRY(set_common(path, st));
      archive_entry_copy_symlink(m_entry, target.c_str());
      add_xattrs(xattrs);
      return write_header(path);
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO: {
      MB_TRY_ASSIGN(bool linked, write_if_hardlink(path, st));
      if (linked) {
        return {};
      }
      MB_TRY_ASSIGN(auto xattrs, name_xattrs(dirfd, child.name, path));
      MB_TRY(set_common(path, st));
      if (!S_ISFIFO(st.st_mode)) {
        archive_entry_set_rdevmajor(m_entry, major(st.st_rdev));
        archive_entry_set_rdevminor(m_entry, minor(st.st_rdev));
      }
      add_xattrs(xattrs);
      return write_header(path);
    }
    case S_IFSOCK:
      // tar has no socket type (ustar typeflags); GNU tar skips them with a warning too.
      m_stats.warnings.push_back("skipped socket " + quoted(path) + ": tar cannot store sockets");
      return {};
    default:
      m_stats.warnings.push_back("skipped " + quoted(path) + ": unknown file type");
      return {};
    }
  }

  Result<std::string> read_link(int dirfd, const Child& child, const std::string& path) {
    std::string target(static_cast<std::size_t>(child.st.st_size) + 1, '\0');
    while (true) {
      ssize_t length = ::readlinkat(dirfd, child.name.c_str(), target.data(), target.size());
      if (length < 0) {
        return fail_errno(errno, "read symlink " + quoted(path));
      }
      if (static_cast<std::size_t>(length) < target.size()) {
        target.resize(static_cast<std::size_t>(length));
        return target;
      }
      target.resize(target.size() * 2); // st_size was 0 (procfs-like) or the link changed
    }
  }

  Result<UniqueFd> open_checked(int dirfd, const Child& child, const std::string& path, int flags) {
    UniqueFd fd(::openat(dirfd, child.name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
      return fail_errno(errno, "open " + quoted(path));
    }
    struct stat now {};
    if (::fstat(fd.get(), &now) != 0) {
      return fail_errno(errno, "stat " + quoted(path));
    }
    if (now.st_ino != child.st.st_ino || now.st_dev != child.st.st_dev) {
      return fail(Code::io, quoted(path) + " was replaced while the layer was written");
    }
    return fd;
  }

  Result<void> write_directory(int dirfd, const std::string& path, const Child& child) {
    MB_TRY_ASSIGN(UniqueFd fd, open_checked(dirfd, child, path, O_RDONLY | O_DIRECTORY));
    MB_TRY_ASSIGN(auto xattrs, fd_xattrs(fd.get(), path));
    bool opaque = false;
    if (m_options.kind == TreeKind::overlay_upper) {
      MB_TRY_ASSIGN(opaque, check_overlay_dir(xattrs, path));
    }
    MB_TRY(set_common(path + "/", child.st));
    add_xattrs(xattrs);
    MB_TRY(write_header(path + "/"));
    if (opaque) {
      MB_TRY(write_marker(path + "/" + std::string(k_opaque_whiteout)));
    }
    return write_dir(fd.get(), path + "/");
  }

  Result<void> write_regular(int dirfd, const std::string& path, const Child& child) {
    MB_TRY_ASSIGN(bool linked, write_if_hardlink(path, child.st));
    if (linked) {
      return {};
    }
    // O_NOATIME keeps the export from dirtying every inode; it needs ownership or
    // CAP_FOWNER, so retry without it.
    auto opened = open_checked(dirfd, child, path, O_RDONLY | O_NOATIME);
    if (!opened && opened.error().sys_errno() == EPERM) {
      opened = open_checked(dirfd, child, path, O_RDONLY);
    }
    MB_TRY_ASSIGN(UniqueFd fd, std::move(opened));
    MB_TRY_ASSIGN(auto xattrs, fd_xattrs(fd.get(), path));
    if (m_options.kind == TreeKind::overlay_upper) {
      for (const Xattr& xattr : xattrs) {
        MB_TRY(check_overlay_xattr(xattr, path));
      }
    }
    MB_TRY(set_common(path, child.st));
    archive_entry_set_size(m_entry, child.st.st_size);
    add_xattrs(xattrs);
    MB_TRY(write_header(path));
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    auto remaining = static_cast<std::uint64_t>(child.st.st_size);
    while (remaining > 0) {
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(remaining, m_buffer.size()));
      ssize_t got = ::read(fd.get(), m_buffer.data(), want);
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        return fail_errno(errno, "read " + quoted(path));
      }
      if (got == 0) {
        return fail(Code::io, quoted(path) + " shrank while the layer was written");
      }
      la_ssize_t written = archive_write_data(m_archive, m_buffer.data(), static_cast<size_t>(got));
      if (written != got) {
        return archive_failure("write tar data of " + quoted(path));
      }
      remaining -= static_cast<std::uint64_t>(got);
    }
    char extra = 0;
    ssize_t more = ::read(fd.get(), &extra, 1);
    if (more > 0) {
      return fail(Code::io, quoted(path) + " grew while the layer was written");
    }
    return {};
  }

  const std::string& m_root;
  const TarWriterOptions& m_options;
  ByteSink& m_out;
  struct archive* m_archive = nullptr;
  struct archive_entry* m_entry = nullptr;
  std::optional<Error> m_sink_error;
  std::map<std::pair<dev_t, ino_t>, std::string> m_links;
  std::vector<char> m_buffer;
  bool m_proc_fd = false;
  TarWriterStats m_stats;
};

} // namespace

Result<TarWriterStats> write_tree_tar(const std::string& root, const TarWriterOptions& options,
                                      ByteSink& out) {
  ScopedUtf8Locale locale;
  TreeTarWriter writer(root, options, out);
  return writer.run();
}

} // namespace minibuild::layer
