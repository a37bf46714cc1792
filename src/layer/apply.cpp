#include "fs_util.hpp"
#include "scoped_locale.hpp"

#include <minibuild/base/in_root.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/decompress.hpp>
#include <minibuild/layer/whiteout.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <set>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <unordered_set>
#include <vector>

namespace minibuild::layer {

namespace {

constexpr std::size_t k_read_block_size = 128 * 1024;

std::string quoted(std::string_view path) {
  return "\"" + std::string(path) + "\"";
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// An archive path split into plain components: no "", ".", or ".." and no leading "/".
struct EntryPath {
  std::vector<std::string> components;
  std::string joined; // components joined with '/'; "" for the root

  std::span<const std::string> parent() const {
    return std::span<const std::string>(components).first(components.size() - 1);
  }
  const std::string& name() const { return components.back(); }
};

// Makes an archive path relative and refuses "..": a layer never needs to climb, and refusing
// is simpler to reason about than clamping (a clamped "../x" would silently land somewhere
// the author did not mean).
Result<EntryPath> normalize_path(std::string_view raw, std::string_view what) {
  EntryPath path;
  std::size_t start = 0;
  while (start <= raw.size()) {
    std::size_t end = raw.find('/', start);
    if (end == std::string_view::npos) {
      end = raw.size();
    }
    std::string_view component = raw.substr(start, end - start);
    start = end + 1;
    if (component.empty() || component == ".") {
      continue;
    }
    if (component == "..") {
      return fail(Code::corrupt, std::string(what) + " " + quoted(raw) +
                                     " has a \"..\" component, which could escape the target");
    }
    path.components.emplace_back(component);
  }
  for (const std::string& component : path.components) {
    if (!path.joined.empty()) {
      path.joined += '/';
    }
    path.joined += component;
  }
  return path;
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

// overlayfs bookkeeping must never be planted by a layer: once the unpacked tree is used as
// an overlay lower dir, trusted.overlay.redirect or .opaque would change what the container
// sees (and redirects can point anywhere in the lower stack).
bool is_unsafe_xattr(std::string_view name) {
  return starts_with(name, "trusted.overlay.") || starts_with(name, "user.overlay.") ||
         name == "security.selinux";
}

bool is_overlay_xattr(std::string_view name) {
  return starts_with(name, "trusted.overlay.") || starts_with(name, "user.overlay.");
}

// How overlayfs spells a whiteout in a layer directory (overlayfs.rst, "whiteouts and opaque
// directories"); in an overlay-style tree every 0/0 character device is one, since apply never
// creates a real 0/0 device there.
bool is_whiteout_device(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool is_refused_xattr_errno(int error) {
  return error == EPERM || error == ENOTSUP || error == EOPNOTSUPP || error == EACCES;
}

// The ByteSource that libarchive reads: the decompressed stream, hashed on the way (diffID).
class HashingSource {
public:
  explicit HashingSource(oci::ByteSource& inner) : m_inner(inner) {}
  Result<std::size_t> read(std::span<char> buffer) {
    MB_TRY_ASSIGN(std::size_t got, m_inner.read(buffer));
    m_hasher.update(std::string_view(buffer.data(), got));
    return got;
  }
  oci::Digest finish() { return m_hasher.finish(); }
  std::uint64_t bytes() const { return m_hasher.byte_count(); }

private:
  oci::ByteSource& m_inner;
  oci::Sha256Hasher m_hasher;
};

struct DeferredDir {
  std::vector<std::string> components;
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t perm = 0;
  bool has_mtime = false;
  struct timespec times[2]{};
};

class LayerApplier {
public:
  LayerApplier(const ApplyOptions& options, InRoot resolver, HashingSource& source)
      : m_options(options), m_resolver(std::move(resolver)), m_source(source),
        m_buffer(k_read_block_size) {
    m_chown = options.owners == Owners::preserve ||
              (options.owners == Owners::auto_detect && ::geteuid() == 0);
    m_proc_fd = ::access("/proc/self/fd", X_OK) == 0;
    m_result.used_openat2 = m_resolver.uses_openat2();
  }

  ~LayerApplier() {
    if (m_archive != nullptr) {
      archive_read_free(m_archive);
    }
  }
  LayerApplier(const LayerApplier&) = delete;
  LayerApplier& operator=(const LayerApplier&) = delete;

  Result<ApplyResult> run() {
    m_archive = archive_read_new();
    if (m_archive == nullptr) {
      return fail(Code::internal, "libarchive: out of memory");
    }
    // tar only (ustar, pax, GNU): no other format's parser is exposed to layer input, and no
    // libarchive filter: decompression happened before, so the diffID covers the real tar.
    if (archive_read_support_format_tar(m_archive) != ARCHIVE_OK ||
        archive_read_open(m_archive, this, nullptr, &LayerApplier::read_callback, nullptr) !=
            ARCHIVE_OK) {
      return fail(read_error("open the layer tar"));
    }
    while (true) {
      struct archive_entry* entry = nullptr;
      int rc = archive_read_next_header(m_archive, &entry);
      if (rc == ARCHIVE_EOF) {
        break;
      }
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return fail(read_error(m_last_path.empty()
                                   ? std::string("read the first tar header")
                                   : "read the tar header after entry " + quoted(m_last_path)));
      }
      MB_TRY(apply_entry(entry));
    }
    MB_TRY(finish_directories());
    // Read the stream to its very end: the diffID covers every byte, and a VerifiedSource
    // below only confirms size and digest on its final read.
    while (true) {
      MB_TRY_ASSIGN(std::size_t got,
                    m_source.read(std::span<char>(m_buffer.data(), m_buffer.size())));
      if (got == 0) {
        break;
      }
    }
    m_result.uncompressed_size = m_source.bytes();
    m_result.diff_id = m_source.finish();
    return std::move(m_result);
  }

private:
  static la_ssize_t read_callback(struct archive*, void* client, const void** buffer) {
    auto* self = static_cast<LayerApplier*>(client);
    auto got = self->m_source.read(std::span<char>(self->m_buffer.data(), self->m_buffer.size()));
    if (!got) {
      self->m_source_error = got.error();
      return -1;
    }
    *buffer = self->m_buffer.data();
    return static_cast<la_ssize_t>(*got);
  }

  Error read_error(const std::string& what) {
    if (m_source_error) {
      return *m_source_error;
    }
    const char* message = archive_error_string(m_archive);
    return Error(Code::corrupt,
                 what + ": " + (message != nullptr ? message : "malformed tar archive"));
  }

  void warn(const std::string& kind, const std::string& message) {
    if (m_warned.insert(kind).second) {
      m_result.warnings.push_back(message);
    }
  }

  static const char* entry_pathname(struct archive_entry* entry) {
    const char* name = archive_entry_pathname(entry);
    return name != nullptr ? name : archive_entry_pathname_utf8(entry);
  }
  static const char* entry_hardlink(struct archive_entry* entry) {
    const char* name = archive_entry_hardlink(entry);
    return name != nullptr ? name : archive_entry_hardlink_utf8(entry);
  }
  static const char* entry_symlink(struct archive_entry* entry) {
    const char* name = archive_entry_symlink(entry);
    return name != nullptr ? name : archive_entry_symlink_utf8(entry);
  }

  Result<void> apply_entry(struct archive_entry* entry) {
    ++m_result.entries;
    const char* raw = entry_pathname(entry);
    if (raw == nullptr) {
      return fail(Code::corrupt, "tar entry " + std::to_string(m_result.entries) +
                                     " has a name that cannot be decoded");
    }
    m_last_path = raw;
    auto applied = apply_named_entry(entry, m_last_path);
    if (!applied) {
      return fail(std::move(applied).error().wrap("layer entry " + quoted(m_last_path)));
    }
    return {};
  }

  Result<void> apply_named_entry(struct archive_entry* entry, const std::string& raw) {
    MB_TRY_ASSIGN(EntryPath path, normalize_path(raw, "path"));
    if (overlay_style()) {
      MB_TRY(refuse_overlay_xattrs(entry));
    }
    const char* hardlink = entry_hardlink(entry);
    mode_t type = archive_entry_filetype(entry);
    if (path.components.empty()) {
      if (hardlink != nullptr || type != AE_IFDIR) {
        return fail(Code::corrupt, "the root of the layer can only be a directory");
      }
      return apply_root(entry);
    }
    for (const std::string& component : path.parent()) {
      if (is_whiteout_name(component)) {
        return fail(Code::corrupt, "the directory " + quoted(component) +
                                       " has the reserved whiteout prefix \".wh.\"");
      }
    }
    if (is_whiteout_name(path.name())) {
      return apply_whiteout(path);
    }
    if (overlay_style()) {
      MB_TRY(revive_whited_out_parents(path));
      m_whiteout_paths.erase(path.joined); // replaced below, whatever the entry is
    }
    MB_TRY_ASSIGN(UniqueFd parent,
                  m_resolver.open_dir(path.parent(), Symlinks::follow_in_root, CreateMissing::yes));
    note_added(path);
    if (hardlink != nullptr) {
      return apply_hardlink(parent.get(), path, hardlink);
    }
    switch (type) {
    case AE_IFDIR:
      return apply_directory(entry, parent.get(), path);
    case AE_IFREG:
      return apply_regular(entry, parent.get(), path);
    case AE_IFLNK:
      return apply_symlink(entry, parent.get(), path);
    case AE_IFCHR:
    case AE_IFBLK:
      return apply_device(entry, parent.get(), path);
    case AE_IFIFO:
      return apply_fifo(entry, parent.get(), path);
    default:
      return fail(Code::corrupt, "unsupported tar entry type " + std::to_string(type));
    }
  }

  // Remembers what this layer added, so whiteouts (which only hide lower layers) spare it.
  void note_added(const EntryPath& path) {
    m_added.insert(path.joined);
    std::string prefix;
    for (std::size_t i = 0; i + 1 < path.components.size(); ++i) {
      prefix = child_path(prefix, path.components[i]);
      m_ancestors.insert(prefix);
    }
  }
  bool keeps(const std::string& path) const {
    return m_added.count(path) != 0 || m_ancestors.count(path) != 0;
  }

  // --- whiteouts -------------------------------------------------------------------------

  Result<void> apply_whiteout(const EntryPath& path) {
    const std::string& name = path.name();
    std::string parent_path = path.components.size() > 1
                                  ? path.joined.substr(0, path.joined.size() - name.size() - 1)
                                  : std::string();
    if (name != k_opaque_whiteout && starts_with(name, k_whiteout_meta_prefix)) {
      // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): never content (moby skips them too).
      ++m_result.skipped_other;
      warn("aufs", "skipped aufs metadata entry " + quoted(path.joined));
      return {};
    }
    std::string target = name.substr(k_whiteout_prefix.size());
    if (name != k_opaque_whiteout && (target.empty() || target == "." || target == "..")) {
      return fail(Code::corrupt, "the whiteout " + quoted(name) + " names no file");
    }
    ++m_result.whiteouts;
    if (overlay_style()) {
      return record_whiteout(path, parent_path, target);
    }
    auto parent = m_resolver.open_dir(path.parent(), Symlinks::follow_in_root, CreateMissing::no);
    if (!parent) {
      if (parent.error().sys_errno() == ENOENT || parent.error().sys_errno() == ENOTDIR) {
        return {}; // nothing below a missing directory to hide
      }
      return fail(std::move(parent).error());
    }
    if (name == k_opaque_whiteout) {
      return remove_lower_children(parent->get(), parent_path);
    }
    std::string target_path = child_path(parent_path, target);
    if (m_added.count(target_path) != 0) {
      return {}; // same layer: "can only be hidden by whiteout files in subsequent layers"
    }
    return remove_lower(parent->get(), target, target_path);
  }

  // Removes `name` in `dirfd` unless this layer added it; a directory that holds entries of
  // this layer is kept and only its lower content goes.
  Result<void> remove_lower(int dirfd, const std::string& name, const std::string& path) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        return {};
      }
      return fail_errno(errno, "stat " + quoted(path));
    }
    if (S_ISDIR(st.st_mode) && keeps(path)) {
      UniqueFd fd(::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) {
        return fail_errno(errno, "open " + quoted(path));
      }
      return remove_lower_children(fd.get(), path);
    }
    if (keeps(path)) {
      return {};
    }
    return remove_at(dirfd, name, path);
  }

  Result<void> remove_lower_children(int dirfd, const std::string& path) {
    MB_TRY_ASSIGN(std::vector<std::string> names, list_directory(dirfd, path));
    for (const std::string& name : names) {
      MB_TRY(remove_lower(dirfd, name, child_path(path, name)));
    }
    return {};
  }

  // --- overlay-style whiteouts -------------------------------------------------------------
  // The lower layers are not in `target`: a whiteout is written down for overlayfs instead of
  // carried out. The result must hide exactly what the apply style would remove.

  bool overlay_style() const { return m_options.whiteouts == WhiteoutStyle::overlay; }

  Result<void> refuse_overlay_xattrs(struct archive_entry* entry) {
    archive_entry_xattr_reset(entry);
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      if (is_overlay_xattr(name)) {
        return fail(Code::corrupt, std::string("the entry carries the overlayfs xattr ") + name +
                                       ", which a layer may not set: in an overlay lower dir it "
                                       "would hide or redirect files of other layers");
      }
    }
    return {};
  }

  Result<void> record_whiteout(const EntryPath& path, const std::string& parent_path,
                               const std::string& target) {
    // Parents are created like any entry's: the lower directory the whiteout sits in is not here.
    auto parent = m_resolver.open_dir(path.parent(), Symlinks::follow_in_root, CreateMissing::yes);
    if (!parent) {
      if (parent.error().sys_errno() == ENOTDIR) {
        return {}; // below a non-directory (or a whiteout) of this layer: nothing to hide
      }
      return fail(std::move(parent).error());
    }
    if (path.name() == k_opaque_whiteout) {
      return mark_opaque(parent->get(), ".", parent_path.empty() ? "." : parent_path);
    }
    const std::string target_path = child_path(parent_path, target);
    if (m_added.count(target_path) != 0) {
      return {}; // same layer: see apply_whiteout
    }
    struct stat st {};
    if (::fstatat(parent->get(), target.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (keeps(target_path)) {
        // Only entries below it are this layer's: an opaque directory keeps them and hides
        // the lower content, as remove_lower() would in the apply style.
        return S_ISDIR(st.st_mode) ? mark_opaque(parent->get(), target, target_path)
                                   : Result<void>();
      }
      if (is_whiteout_device(st)) {
        m_whiteout_paths.insert(target_path);
        return {};
      }
      // Whiteouts below a directory that is now hidden as a whole (or an existing file of a
      // non-empty target): the device replaces them.
      MB_TRY(remove_at(parent->get(), target, target_path));
    } else if (errno != ENOENT) {
      return fail_errno(errno, "stat " + quoted(target_path));
    }
    if (::mknodat(parent->get(), target.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
      const int error = errno;
      if (error == EPERM) {
        return fail(Code::unsupported,
                    "create the overlay whiteout " + quoted(target_path) +
                        ": the kernel refused a 0/0 character device (EPERM); without "
                        "CAP_MKNOD this needs Linux 5.8 or later");
      }
      return fail_errno(error, "create the overlay whiteout " + quoted(target_path));
    }
    m_whiteout_paths.insert(target_path);
    return {};
  }

  // Sets k_opaque_xattr on the directory `name` in `dirfd` ("." for `dirfd` itself).
  Result<void> mark_opaque(int dirfd, const std::string& name, const std::string& path) {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      return fail_errno(errno, "open directory " + quoted(path));
    }
    if (::fsetxattr(fd.get(), k_opaque_xattr, "y", 1, 0) != 0) {
      const int error = errno;
      if (error == ENOTSUP || error == EOPNOTSUPP) {
        return fail(Code::unsupported,
                    std::string("mark ") + quoted(path) +
                        " opaque: the filesystem does not "
                        "support the xattr " +
                        k_opaque_xattr +
                        " (user xattrs are needed; tmpfs has them since Linux 6.6)");
      }
      return fail_errno(error, std::string("set xattr ") + k_opaque_xattr + " on " + quoted(path));
    }
    return {};
  }

  // An entry below a path that this layer whited out earlier ("`.wh.dir`, then `dir/file`"):
  // the whiteout device becomes an opaque directory, so the lower `dir` stays hidden while the
  // new entries show (the apply style removed the lower `dir`, then created a fresh one).
  Result<void> revive_whited_out_parents(const EntryPath& path) {
    if (m_whiteout_paths.empty()) {
      return {};
    }
    std::string prefix;
    for (std::size_t i = 0; i + 1 < path.components.size(); ++i) {
      const std::string& name = path.components[i];
      prefix = child_path(prefix, name);
      if (m_whiteout_paths.erase(prefix) == 0) {
        continue;
      }
      std::span<const std::string> above = std::span<const std::string>(path.components).first(i);
      MB_TRY_ASSIGN(UniqueFd dir,
                    m_resolver.open_dir(above, Symlinks::follow_in_root, CreateMissing::yes));
      struct stat st {};
      if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !is_whiteout_device(st)) {
        continue; // replaced since: open_dir below handles what is there
      }
      if (::unlinkat(dir.get(), name.c_str(), 0) != 0) {
        return fail_errno(errno, "remove the overlay whiteout " + quoted(prefix));
      }
      if (::mkdirat(dir.get(), name.c_str(), 0755) != 0) {
        return fail_errno(errno, "create directory " + quoted(prefix));
      }
      MB_TRY(mark_opaque(dir.get(), name, prefix));
    }
    return {};
  }

  // --- entries ---------------------------------------------------------------------------

  // Clears the way for a new entry. Returns true when an existing directory stays (a directory
  // entry over a directory only updates attributes: image-spec "Changeset over existing files").
  Result<bool> replace_existing(int parent, const EntryPath& path, bool is_dir) {
    struct stat st {};
    if (::fstatat(parent, path.name().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        return false;
      }
      return fail_errno(errno, "stat " + quoted(path.joined));
    }
    if (S_ISDIR(st.st_mode) && is_dir) {
      return true;
    }
    MB_TRY(remove_at(parent, path.name(), path.joined));
    return false;
  }

  Result<void> apply_root(struct archive_entry* entry) {
    UniqueFd fd(::openat(m_resolver.root_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      return fail_errno(errno, "open the target directory");
    }
    MB_TRY(set_owner_fd(fd.get(), entry, "."));
    MB_TRY(set_xattrs_fd(fd.get(), entry, ".", true));
    return defer_directory(fd.get(), entry, {});
  }

  Result<void> apply_directory(struct archive_entry* entry, int parent, const EntryPath& path) {
    struct stat existing {};
    const bool over_whiteout =
        overlay_style() &&
        ::fstatat(parent, path.name().c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
        is_whiteout_device(existing);
    MB_TRY_ASSIGN(bool kept, replace_existing(parent, path, true));
    if (!kept && ::mkdirat(parent, path.name().c_str(), 0700) != 0) {
      return fail_errno(errno, "create directory " + quoted(path.joined));
    }
    UniqueFd fd(
        ::openat(parent, path.name().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      return fail_errno(errno, "open directory " + quoted(path.joined));
    }
    MB_TRY(set_owner_fd(fd.get(), entry, path.joined));
    MB_TRY(set_xattrs_fd(fd.get(), entry, path.joined, kept));
    if (over_whiteout) {
      // The lower directory was whited out before this one was made: hide its content.
      MB_TRY(mark_opaque(parent, path.name(), path.joined));
    }
    // Mode and times wait until the end: a read-only directory must still take its children,
    // and adding them would change its mtime anyway.
    return defer_directory(fd.get(), entry, path.components);
  }

  Result<void> defer_directory(int fd, struct archive_entry* entry,
                               const std::vector<std::string>& components) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return fail_errno(errno, "stat directory");
    }
    DeferredDir dir;
    dir.components = components;
    dir.dev = st.st_dev;
    dir.ino = st.st_ino;
    dir.perm = archive_entry_perm(entry);
    dir.has_mtime = entry_times(entry, dir.times);
    // A directory named twice keeps its first position (parents before children) and takes the
    // later attributes, as the later entry wins in a tar.
    std::string key;
    for (const std::string& component : components) {
      key = child_path(key, component);
    }
    auto [it, inserted] = m_deferred_index.emplace(key, m_deferred.size());
    if (inserted) {
      m_deferred.push_back(std::move(dir));
    } else {
      m_deferred[it->second] = std::move(dir);
    }
    return {};
  }

  Result<void> finish_directories() {
    for (auto it = m_deferred.rbegin(); it != m_deferred.rend(); ++it) {
      const DeferredDir& dir = *it;
      UniqueFd fd;
      if (dir.components.empty()) {
        fd.reset(::openat(m_resolver.root_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      } else {
        std::span<const std::string> all(dir.components);
        auto parent = m_resolver.open_dir(all.first(all.size() - 1), Symlinks::follow_in_root,
                                          CreateMissing::no);
        if (!parent) {
          continue; // removed or replaced later in the archive
        }
        fd.reset(::openat(parent->get(), dir.components.back().c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      struct stat st {};
      if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_dev != dir.dev || st.st_ino != dir.ino) {
        continue; // not the directory this layer made any more
      }
      if (::fchmod(fd.get(), dir.perm) != 0) {
        return fail_errno(errno, "chmod directory");
      }
      if (dir.has_mtime && ::futimens(fd.get(), dir.times) != 0) {
        return fail_errno(errno, "set times of directory");
      }
    }
    return {};
  }

  Result<void> apply_regular(struct archive_entry* entry, int parent, const EntryPath& path) {
    MB_TRY(replace_existing(parent, path, false));
    UniqueFd fd(::openat(parent, path.name().c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
      return fail_errno(errno, "create " + quoted(path.joined));
    }
    std::int64_t end = 0;
    while (true) {
      const void* block = nullptr;
      std::size_t size = 0;
      la_int64_t offset = 0;
      int rc = archive_read_data_block(m_archive, &block, &size, &offset);
      if (rc == ARCHIVE_EOF) {
        break;
      }
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return fail(read_error("read the data"));
      }
      const char* bytes = static_cast<const char*>(block);
      std::size_t done = 0;
      while (done < size) {
        ssize_t wrote = ::pwrite(fd.get(), bytes + done, size - done,
                                 static_cast<off_t>(offset) + static_cast<off_t>(done));
        if (wrote < 0 && errno == EINTR) {
          continue;
        }
        if (wrote < 0) {
          return fail_errno(errno, "write " + quoted(path.joined));
        }
        done += static_cast<std::size_t>(wrote);
      }
      end = std::max<std::int64_t>(end, offset + static_cast<std::int64_t>(size));
    }
    // A sparse file's trailing hole is not a data block.
    std::int64_t size = archive_entry_size(entry);
    if (size > end && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return fail_errno(errno, "extend " + quoted(path.joined));
    }
    // chown before chmod: chown clears setuid/setgid and security.capability.
    MB_TRY(set_owner_fd(fd.get(), entry, path.joined));
    if (::fchmod(fd.get(), archive_entry_perm(entry)) != 0) {
      return fail_errno(errno, "chmod " + quoted(path.joined));
    }
    MB_TRY(set_xattrs_fd(fd.get(), entry, path.joined, false));
    struct timespec times[2]{};
    if (entry_times(entry, times) && ::futimens(fd.get(), times) != 0) {
      return fail_errno(errno, "set times of " + quoted(path.joined));
    }
    return {};
  }

  Result<void> apply_symlink(struct archive_entry* entry, int parent, const EntryPath& path) {
    const char* target = entry_symlink(entry);
    if (target == nullptr) {
      return fail(Code::corrupt, "symlink entry without a target");
    }
    MB_TRY(replace_existing(parent, path, false));
    // Created as is: the target is data, never resolved by the extraction.
    if (::symlinkat(target, parent, path.name().c_str()) != 0) {
      return fail_errno(errno, "create symlink " + quoted(path.joined));
    }
    return set_metadata_at(entry, parent, path, false);
  }

  Result<void> apply_device(struct archive_entry* entry, int parent, const EntryPath& path) {
    if (overlay_style() && archive_entry_filetype(entry) == AE_IFCHR &&
        archive_entry_rdevmajor(entry) == 0 && archive_entry_rdevminor(entry) == 0) {
      ++m_result.skipped_devices;
      warn("whiteout-device", "skipped the character device 0/0 " + quoted(path.joined) +
                                  ": in an overlay layer it would read as a whiteout");
      return {};
    }
    switch (m_options.device_nodes) {
    case DeviceNodes::skip:
      ++m_result.skipped_devices;
      warn("device", "skipped device node " + quoted(path.joined) +
                         " (and any later ones): device nodes are not created by default");
      return {};
    case DeviceNodes::refuse:
      return fail(Code::unsupported, "the layer holds a device node and device nodes are refused");
    case DeviceNodes::create_or_skip:
    case DeviceNodes::create_or_refuse:
      break;
    }
    MB_TRY(replace_existing(parent, path, false));
    mode_t type = archive_entry_filetype(entry) == AE_IFCHR ? S_IFCHR : S_IFBLK;
    dev_t device = makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
    if (::mknodat(parent, path.name().c_str(), type | 0600, device) != 0) {
      int error = errno;
      if (error == EPERM && m_options.device_nodes == DeviceNodes::create_or_skip) {
        ++m_result.skipped_devices;
        warn("device", "skipped device node " + quoted(path.joined) +
                           " (and any later ones): creating device nodes needs CAP_MKNOD in "
                           "the initial user namespace");
        return {};
      }
      if (error == EPERM) {
        return fail(Code::unsupported,
                    "create device node: the kernel refused (EPERM); creating device nodes "
                    "needs CAP_MKNOD in the initial user namespace, or apply with "
                    "DeviceNodes::skip");
      }
      return fail_errno(error, "create device node " + quoted(path.joined));
    }
    return set_metadata_at(entry, parent, path, true);
  }

  Result<void> apply_fifo(struct archive_entry* entry, int parent, const EntryPath& path) {
    MB_TRY(replace_existing(parent, path, false));
    if (::mkfifoat(parent, path.name().c_str(), 0600) != 0) {
      return fail_errno(errno, "create fifo " + quoted(path.joined));
    }
    return set_metadata_at(entry, parent, path, true);
  }

  Result<void> apply_hardlink(int parent, const EntryPath& path, const char* raw_target) {
    MB_TRY_ASSIGN(EntryPath target, normalize_path(raw_target, "hardlink target"));
    if (target.components.empty()) {
      return fail(Code::corrupt, "hardlink to the root directory");
    }
    if (target.joined == path.joined) {
      return fail(Code::corrupt, "hardlink to itself");
    }
    // No symlink at all on the way to a hardlink target: a link made through one would pin
    // a file the archive author did not name (CVE-2019-14271-style confusion).
    auto target_parent = m_resolver.open_dir(target.parent(), Symlinks::refuse, CreateMissing::no);
    if (!target_parent) {
      int error = target_parent.error().sys_errno();
      if (error == ELOOP) {
        return fail(Code::corrupt,
                    "hardlink target " + quoted(raw_target) + " goes through a symlink");
      }
      if (error == ENOENT || error == ENOTDIR) {
        return fail(Code::corrupt, "hardlink target " + quoted(raw_target) + " does not exist");
      }
      return fail(std::move(target_parent).error());
    }
    struct stat target_st {};
    if (::fstatat(target_parent->get(), target.name().c_str(), &target_st, AT_SYMLINK_NOFOLLOW) !=
        0) {
      if (errno == ENOENT) {
        return fail(Code::corrupt, "hardlink target " + quoted(raw_target) + " does not exist");
      }
      return fail_errno(errno, "stat hardlink target " + quoted(raw_target));
    }
    if (S_ISDIR(target_st.st_mode)) {
      return fail(Code::corrupt, "hardlink target " + quoted(raw_target) + " is a directory");
    }
    if (overlay_style() && is_whiteout_device(target_st)) {
      return fail(Code::corrupt,
                  "hardlink target " + quoted(raw_target) + " was whited out by this layer");
    }
    struct stat existing {};
    if (::fstatat(parent, path.name().c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
        existing.st_dev == target_st.st_dev && existing.st_ino == target_st.st_ino) {
      return {}; // already that file
    }
    MB_TRY(replace_existing(parent, path, false));
    // flags 0: linkat never follows a symlink in the last component, so a link to a symlink
    // links the symlink itself.
    if (::linkat(target_parent->get(), target.name().c_str(), parent, path.name().c_str(), 0) !=
        0) {
      return fail_errno(errno, "create hardlink to " + quoted(raw_target));
    }
    return {};
  }

  // --- metadata --------------------------------------------------------------------------

  static bool entry_times(struct archive_entry* entry, struct timespec times[2]) {
    if (archive_entry_mtime_is_set(entry) == 0) {
      return false;
    }
    times[1].tv_sec = archive_entry_mtime(entry);
    times[1].tv_nsec = archive_entry_mtime_nsec(entry);
    if (archive_entry_atime_is_set(entry) != 0) {
      times[0].tv_sec = archive_entry_atime(entry);
      times[0].tv_nsec = archive_entry_atime_nsec(entry);
    } else {
      times[0] = times[1];
    }
    return true;
  }

  // The host owner of an entry, or nullopt (counted) when it must not be changed.
  Result<std::optional<std::pair<uid_t, gid_t>>> host_owner(struct archive_entry* entry,
                                                            const std::string& path) {
    if (!m_chown) {
      return std::optional<std::pair<uid_t, gid_t>>();
    }
    auto uid =
        to_host_id(m_options.id_map.uids, static_cast<std::uint32_t>(archive_entry_uid(entry)));
    auto gid =
        to_host_id(m_options.id_map.gids, static_cast<std::uint32_t>(archive_entry_gid(entry)));
    if (!uid || !gid) {
      if (m_options.owners == Owners::preserve) {
        return fail(Code::unsupported, "owner " + std::to_string(archive_entry_uid(entry)) + ":" +
                                           std::to_string(archive_entry_gid(entry)) +
                                           " is outside the id map");
      }
      ++m_result.skipped_owners;
      warn("owner-map", "left owners that are outside the id map unchanged, first " + quoted(path));
      return std::optional<std::pair<uid_t, gid_t>>();
    }
    return std::optional<std::pair<uid_t, gid_t>>(std::make_pair(*uid, *gid));
  }

  Result<void> owner_failed(int error, const std::string& path) {
    if (m_options.owners == Owners::preserve || (error != EPERM && error != EINVAL)) {
      return fail_errno(error, "chown " + quoted(path));
    }
    // EINVAL: the id has no mapping in this user namespace; EPERM: not allowed.
    ++m_result.skipped_owners;
    warn("owner", "could not give some entries their owners (" + std::string(strerror(error)) +
                      "), first " + quoted(path));
    return {};
  }

  Result<void> set_owner_fd(int fd, struct archive_entry* entry, const std::string& path) {
    MB_TRY_ASSIGN(auto owner, host_owner(entry, path));
    if (owner && ::fchown(fd, owner->first, owner->second) == 0) {
      return {};
    }
    if (owner) {
      MB_TRY(owner_failed(errno, path));
    }
    record_owner(fd, entry);
    return {};
  }

  // Without the right to chown, remembers the archive's owner in an xattr (ApplyOptions::
  // record_owners) so a builder can still tell who owns a directory of a base image. Best
  // effort: a filesystem without user xattrs just loses the record. O_PATH descriptors need
  // the /proc path, as fsetxattr(2) refuses them.
  void record_owner(int fd, struct archive_entry* entry) {
    if (!m_options.record_owners) {
      return;
    }
    const std::string value =
        std::to_string(archive_entry_uid(entry)) + ":" + std::to_string(archive_entry_gid(entry));
    if (::fsetxattr(fd, k_owner_xattr, value.data(), value.size(), 0) == 0) {
      return;
    }
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    (void)::setxattr(proc.c_str(), k_owner_xattr, value.data(), value.size(), 0);
  }

  Result<void> xattr_failed(int error, const char* name, const std::string& path) {
    if (!is_refused_xattr_errno(error)) {
      return fail_errno(error, std::string("set xattr ") + name + " on " + quoted(path));
    }
    ++m_result.skipped_xattrs;
    warn("xattr", std::string("could not set some xattrs (") + strerror(error) + "), first " +
                      name + " on " + quoted(path));
    return {};
  }

  // Sets the entry's xattrs on an open file; for a directory that already existed, the xattrs
  // the entry does not name are removed (its attributes are replaced, not merged).
  Result<void> set_xattrs_fd(int fd, struct archive_entry* entry, const std::string& path,
                             bool clear_others) {
    std::set<std::string> names;
    archive_entry_xattr_reset(entry);
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      if (is_unsafe_xattr(name)) {
        ++m_result.skipped_xattrs;
        warn("unsafe-xattr", std::string("ignored the xattr ") + name + " on " + quoted(path) +
                                 ": layers may not set overlayfs or SELinux attributes");
        continue;
      }
      names.insert(name);
      if (::fsetxattr(fd, name, value, size, 0) != 0) {
        MB_TRY(xattr_failed(errno, name, path));
      }
    }
    if (clear_others) {
      std::string list(64 * 1024, '\0');
      ssize_t length = ::flistxattr(fd, list.data(), list.size());
      if (length > 0) {
        list.resize(static_cast<std::size_t>(length));
        for (std::size_t start = 0; start < list.size();) {
          std::string existing(list.c_str() + start);
          start += existing.size() + 1;
          if (existing.empty() || names.count(existing) != 0 || is_unsafe_xattr(existing)) {
            continue;
          }
          if (::fremovexattr(fd, existing.c_str()) != 0 && !is_refused_xattr_errno(errno)) {
            return fail_errno(errno, "remove xattr " + existing + " from " + quoted(path));
          }
        }
      }
    }
    return {};
  }

  // Owner, mode, xattrs and times of an entry that cannot be opened (symlink, device, FIFO):
  // by name in the parent, never following the last component.
  Result<void> set_metadata_at(struct archive_entry* entry, int parent, const EntryPath& path,
                               bool chmod) {
    const char* name = path.name().c_str();
    MB_TRY_ASSIGN(auto owner, host_owner(entry, path.joined));
    if (owner && ::fchownat(parent, name, owner->first, owner->second, AT_SYMLINK_NOFOLLOW) != 0) {
      MB_TRY(owner_failed(errno, path.joined));
    }
    // Only for nodes this function's caller just created (never a symlink, which has no mode
    // of its own on Linux), so following the name is safe.
    if (chmod && ::fchmodat(parent, name, archive_entry_perm(entry), 0) != 0) {
      return fail_errno(errno, "chmod " + quoted(path.joined));
    }
    archive_entry_xattr_reset(entry);
    const char* xname = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(entry, &xname, &value, &size) == ARCHIVE_OK) {
      if (is_unsafe_xattr(xname)) {
        ++m_result.skipped_xattrs;
        warn("unsafe-xattr", std::string("ignored the xattr ") + xname + " on " +
                                 quoted(path.joined) +
                                 ": layers may not set overlayfs or SELinux attributes");
        continue;
      }
      if (!m_proc_fd) {
        MB_TRY(xattr_failed(ENOTSUP, xname, path.joined));
        continue;
      }
      // lsetxattr does not follow the last component; the parent is reached through its
      // descriptor's /proc link, so nothing in the path can be redirected.
      std::string full = "/proc/self/fd/" + std::to_string(parent) + "/" + path.name();
      if (::lsetxattr(full.c_str(), xname, value, size, 0) != 0) {
        MB_TRY(xattr_failed(errno, xname, path.joined));
      }
    }
    struct timespec times[2]{};
    if (entry_times(entry, times) && ::utimensat(parent, name, times, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "set times of " + quoted(path.joined));
    }
    return {};
  }

  const ApplyOptions& m_options;
  InRoot m_resolver;
  HashingSource& m_source;
  std::vector<char> m_buffer;
  struct archive* m_archive = nullptr;
  std::optional<Error> m_source_error;
  std::string m_last_path;
  bool m_chown = false;
  bool m_proc_fd = false;
  ApplyResult m_result;
  std::set<std::string> m_warned;
  std::unordered_set<std::string> m_added;     // entries of this layer
  std::unordered_set<std::string> m_ancestors; // their parent directories
  // Whiteout devices this layer created (overlay style), by archive path; may hold stale
  // paths, so users check the device is still there.
  std::unordered_set<std::string> m_whiteout_paths;
  std::vector<DeferredDir> m_deferred;
  std::map<std::string, std::size_t> m_deferred_index;
};

} // namespace

Result<ApplyResult> apply_layer(oci::ByteSource& source, const std::string& target,
                                const ApplyOptions& options) {
  ScopedUtf8Locale locale;
  auto resolver = InRoot::open(target, options.resolution);
  if (!resolver) {
    return fail(std::move(resolver).error().wrap("apply layer"));
  }
  DecompressingSource decompressed(source);
  HashingSource hashing(decompressed);
  LayerApplier applier(options, std::move(*resolver), hashing);
  auto result = applier.run();
  if (!result) {
    return fail(std::move(result).error().wrap("apply layer to \"" + target + "\""));
  }
  result->compression = decompressed.compression().value_or(oci::Compression::none);
  return result;
}

} // namespace minibuild::layer
