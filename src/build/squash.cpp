#include "fs_ops.hpp"
#include "run_step.hpp"

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/build/squash.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/xattrs.hpp>
#include <minibuild/store/store.hpp>

#include <cerrno>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utility>

namespace minibuild::build {
namespace {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::vector<std::string> components_of(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    start = end + 1;
  }
  return parts;
}

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

bool is_opaque(int dir_fd) {
  char value[4] = {};
  const ssize_t n = ::fgetxattr(dir_fd, layer::k_opaque_xattr, value, sizeof value);
  return n == 1 && value[0] == 'y';
}

UniqueFd open_dir_at(int dir_fd, const std::string& name) {
  return UniqueFd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// fstatat without following; nullopt when the name is absent.
Result<std::optional<struct stat>> stat_at(int dir_fd, const std::string& name,
                                           std::string_view where) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    return std::optional<struct stat>(st);
  }
  if (errno == ENOENT) {
    return std::optional<struct stat>();
  }
  return fail_errno(errno, "stat " + quoted(std::string(where) + "/" + name));
}

// The merge of the folded trees into the target, one directory at a time.
class Folder {
public:
  Folder(const std::vector<std::string>& base, std::string target)
      : m_base(base), m_target(std::move(target)), m_uid(::geteuid()), m_gid(::getegid()) {}

  // `sources` are this directory in the folded layers that show it, top first. `base_hidden`:
  // an ancestor in the result is opaque, so nothing of the base shows below it.
  Result<void> merge(const std::vector<UniqueFd>& sources, const std::string& rel, int out,
                     bool base_hidden) {
    std::set<std::string> names;
    for (const UniqueFd& source : sources) {
      // list_directory consumes the position; a duplicate keeps the source usable.
      UniqueFd copy(::openat(source.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!copy) {
        return fail_errno(errno, "open " + quoted(rel_or_root(rel)));
      }
      MB_TRY_ASSIGN(auto listed, list_directory(copy.get(), rel_or_root(rel)));
      names.insert(listed.begin(), listed.end());
    }
    for (const std::string& name : names) {
      const std::string child = rel.empty() ? name : rel + "/" + name;
      std::size_t top = 0;
      struct stat st {};
      for (; top < sources.size(); ++top) {
        MB_TRY_ASSIGN(auto found, stat_at(sources[top].get(), name, child));
        if (found) {
          st = *found;
          break;
        }
      }
      if (top == sources.size()) {
        continue; // removed while we looked: the store's trees never change, so not expected
      }
      if (is_whiteout(st)) {
        MB_TRY(whiteout(child, name, out, base_hidden));
      } else if (S_ISDIR(st.st_mode)) {
        MB_TRY(directory(sources, top, st, child, name, out, base_hidden));
      } else {
        MB_TRY(copy_entry(sources[top].get(), st, child, name, out));
      }
    }
    return {};
  }

  FoldStats take_stats() {
    if (const std::string warning = m_refused.warning(); !warning.empty()) {
      m_stats.warnings.push_back(warning);
    }
    return std::move(m_stats);
  }

private:
  static std::string rel_or_root(const std::string& rel) { return rel.empty() ? "/" : rel; }

  Result<void> whiteout(const std::string& child, const std::string& name, int out,
                        bool base_hidden) {
    if (base_hidden) {
      return {};
    }
    MB_TRY_ASSIGN(const LayerLookup in_base, lookup_in_layers(m_base, child));
    if (in_base == LayerLookup::absent) {
      return {}; // created and deleted within the folded layers: nothing to hide
    }
    if (::mknodat(out, name.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
      const int err = errno;
      if (err == EPERM) {
        return fail(Code::unsupported, "create the whiteout " + quoted(child) +
                                           ": a 0/0 character device needs Linux 5.8+ "
                                           "without CAP_MKNOD: Operation not permitted");
      }
      return fail_errno(err, "create the whiteout " + quoted(child));
    }
    ++m_stats.entries;
    ++m_stats.whiteouts;
    return {};
  }

  Result<void> directory(const std::vector<UniqueFd>& sources, std::size_t top,
                         const struct stat& st, const std::string& child, const std::string& name,
                         int out, bool base_hidden) {
    // The folded layers that merge into this directory, top first, as overlayfs stacks them: a
    // directory merges with the ones below it until an opaque one, or one that replaced a file
    // or whiteout (then the base's directory is hidden too).
    std::vector<UniqueFd> children;
    bool hides_base = false;
    for (std::size_t i = top; i < sources.size(); ++i) {
      MB_TRY_ASSIGN(auto found, stat_at(sources[i].get(), name, child));
      if (!found) {
        continue;
      }
      if (!S_ISDIR(found->st_mode)) {
        hides_base = true;
        break;
      }
      UniqueFd dir = open_dir_at(sources[i].get(), name);
      if (!dir) {
        return fail_errno(errno, "open " + quoted(child));
      }
      const bool opaque = is_opaque(dir.get());
      children.push_back(std::move(dir));
      if (opaque) {
        hides_base = true;
        break;
      }
    }
    bool mark_opaque = false;
    if (hides_base && !base_hidden) {
      MB_TRY_ASSIGN(const LayerLookup in_base, lookup_in_layers(m_base, child));
      mark_opaque = in_base == LayerLookup::directory;
    }
    // 0700 until the children are in, so nothing inherits a setgid bit or a default ACL mode
    // from a mode that is not final yet; the real mode and mtime come after the children.
    if (::mkdirat(out, name.c_str(), 0700) != 0) {
      return fail_errno(errno, "mkdir " + quoted(child));
    }
    ++m_stats.entries;
    UniqueFd made = open_dir_at(out, name);
    if (!made) {
      return fail_errno(errno, "open " + quoted(child));
    }
    MB_TRY(merge(children, child, made.get(), base_hidden || hides_base));
    if (mark_opaque) {
      if (::fsetxattr(made.get(), layer::k_opaque_xattr, "y", 1, 0) != 0) {
        return fail_errno(errno,
                          "mark " + quoted(child) + " opaque (" + layer::k_opaque_xattr + ")");
      }
      ++m_stats.opaque_dirs;
    }
    MB_TRY(copy_xattrs(children.front().get(), made.get(), child, m_refused));
    return finish_metadata(made.get(), st, child);
  }

  // Owners, then mode (chown clears set-id bits), then times, on an open file or directory.
  Result<void> finish_metadata(int fd, const struct stat& st, const std::string& child) {
    if ((st.st_uid != m_uid || st.st_gid != m_gid) && ::fchown(fd, st.st_uid, st.st_gid) != 0) {
      return fail_errno(errno, "chown " + quoted(child) + " to " + std::to_string(st.st_uid) + ":" +
                                   std::to_string(st.st_gid));
    }
    if (::fchmod(fd, st.st_mode & 07777) != 0) {
      return fail_errno(errno, "chmod " + quoted(child));
    }
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(fd, times) != 0) {
      return fail_errno(errno, "set the times of " + quoted(child));
    }
    return {};
  }

  Result<void> copy_entry(int source_dir, const struct stat& st, const std::string& child,
                          const std::string& name, int out) {
    if (st.st_nlink > 1) {
      // A hard-link group of one layer (inodes never span layers): link to the first copy.
      const auto it = m_links.find({st.st_dev, st.st_ino});
      if (it != m_links.end()) {
        const std::string first = m_target + "/" + it->second;
        if (::linkat(AT_FDCWD, first.c_str(), out, name.c_str(), 0) != 0) {
          return fail_errno(errno, "link " + quoted(child) + " to " + quoted(it->second));
        }
        ++m_stats.entries;
        ++m_stats.hardlinks;
        return {};
      }
      m_links.emplace(std::make_pair(st.st_dev, st.st_ino), child);
    }
    ++m_stats.entries;
    if (S_ISREG(st.st_mode)) {
      UniqueFd in(::openat(source_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) {
        return fail_errno(errno, "open " + quoted(child));
      }
      UniqueFd made(
          ::openat(out, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!made) {
        return fail_errno(errno, "create " + quoted(child));
      }
      MB_TRY(copy_file_data(in.get(), made.get(), child));
      // Owner and mode first: chown clears security.capability, which copy_xattrs sets.
      if ((st.st_uid != m_uid || st.st_gid != m_gid) &&
          ::fchown(made.get(), st.st_uid, st.st_gid) != 0) {
        return fail_errno(errno, "chown " + quoted(child) + " to " + std::to_string(st.st_uid) +
                                     ":" + std::to_string(st.st_gid));
      }
      if (::fchmod(made.get(), st.st_mode & 07777) != 0) {
        return fail_errno(errno, "chmod " + quoted(child));
      }
      MB_TRY(copy_xattrs(in.get(), made.get(), child, m_refused));
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      if (::futimens(made.get(), times) != 0) {
        return fail_errno(errno, "set the times of " + quoted(child));
      }
      return {};
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      const ssize_t length = ::readlinkat(source_dir, name.c_str(), target.data(), target.size());
      if (length < 0) {
        return fail_errno(errno, "readlink " + quoted(child));
      }
      target.resize(static_cast<std::size_t>(length));
      if (::symlinkat(target.c_str(), out, name.c_str()) != 0) {
        return fail_errno(errno, "symlink " + quoted(child));
      }
    } else if (S_ISSOCK(st.st_mode)) {
      --m_stats.entries; // a tar cannot hold one; the export would leave it out anyway
      m_stats.warnings.push_back("left out the socket " + quoted(child));
      return {};
    } else if (::mknodat(out, name.c_str(), st.st_mode & (S_IFMT | 07777), st.st_rdev) != 0) {
      return fail_errno(errno, "mknod " + quoted(child));
    }
    // Symlinks and special files: no descriptor to work on, so by name without following.
    if ((st.st_uid != m_uid || st.st_gid != m_gid) &&
        ::fchownat(out, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "chown " + quoted(child) + " to " + std::to_string(st.st_uid) + ":" +
                                   std::to_string(st.st_gid));
    }
    if (!S_ISLNK(st.st_mode) && ::fchmodat(out, name.c_str(), st.st_mode & 07777, 0) != 0) {
      return fail_errno(errno, "chmod " + quoted(child));
    }
    MB_TRY(copy_link_xattrs(source_dir, out, name, child));
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(out, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "set the times of " + quoted(child));
    }
    return {};
  }

  // The xattrs of an entry that cannot be opened (a symlink, a device): through the directory's
  // /proc/self/fd link, with the l* calls so the last component is not followed.
  Result<void> copy_link_xattrs(int source_dir, int out, const std::string& name,
                                const std::string& child) {
    const std::string from = "/proc/self/fd/" + std::to_string(source_dir) + "/" + name;
    const std::string to = "/proc/self/fd/" + std::to_string(out) + "/" + name;
    std::string names(4096, '\0');
    ssize_t length = ::llistxattr(from.c_str(), names.data(), names.size());
    if (length < 0 && errno == ERANGE) {
      names.resize(65536);
      length = ::llistxattr(from.c_str(), names.data(), names.size());
    }
    if (length < 0) {
      if (errno == ENOTSUP) {
        return {};
      }
      return fail_errno(errno, "list the xattrs of " + quoted(child));
    }
    for (std::size_t start = 0; start < static_cast<std::size_t>(length);) {
      const std::string key(names.c_str() + start);
      start += key.size() + 1;
      if (!layer::is_image_xattr(key)) {
        continue;
      }
      std::string value(65536, '\0');
      const ssize_t size = ::lgetxattr(from.c_str(), key.c_str(), value.data(), value.size());
      if (size < 0) {
        return fail_errno(errno, "read the xattr " + key + " of " + quoted(child));
      }
      if (::lsetxattr(to.c_str(), key.c_str(), value.data(), static_cast<std::size_t>(size), 0) !=
          0) {
        m_refused.note(key, errno);
      }
    }
    return {};
  }

  const std::vector<std::string>& m_base;
  std::string m_target;
  uid_t m_uid;
  gid_t m_gid;
  FoldStats m_stats;
  XattrRefusals m_refused;
  std::map<std::pair<dev_t, ino_t>, std::string> m_links; // source inode -> first copy (relative)
};

// Removes a temporary tree unless it was handed over.
class TreeGuard {
public:
  explicit TreeGuard(std::string path) : m_path(std::move(path)) {}
  ~TreeGuard() {
    if (!m_path.empty()) {
      const std::size_t slash = m_path.rfind('/');
      UniqueFd parent(::open(m_path.substr(0, slash).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (parent) {
        // Best effort: what is left goes with the store's temporary area.
        (void)remove_tree(parent.get(), m_path.substr(slash + 1), m_path);
      }
    }
  }
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;
  void release() { m_path.clear(); }

private:
  std::string m_path;
};

} // namespace

Result<LayerLookup> lookup_in_layers(const std::vector<std::string>& lowers,
                                     std::string_view path) {
  const std::vector<std::string> parts = components_of(path);
  if (parts.empty()) {
    return LayerLookup::directory;
  }
  for (const std::string& lower : lowers) {
    UniqueFd dir(::open(lower.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
      return fail_errno(errno, "open layer " + quoted(lower));
    }
    bool opaque_on_the_way = false; // lower layers cannot show through an opaque directory
    bool missing = false;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      MB_TRY_ASSIGN(auto found, stat_at(dir.get(), parts[i], lower));
      if (!found) {
        missing = true;
        break;
      }
      if (!S_ISDIR(found->st_mode)) {
        return LayerLookup::absent; // a whiteout, file or symlink ends the path in every layer
      }
      UniqueFd next = open_dir_at(dir.get(), parts[i]);
      if (!next) {
        return fail_errno(errno, "open " + quoted(lower + "/" + parts[i]));
      }
      dir = std::move(next);
      opaque_on_the_way = opaque_on_the_way || is_opaque(dir.get());
    }
    if (!missing) {
      MB_TRY_ASSIGN(auto found, stat_at(dir.get(), parts.back(), lower));
      if (found) {
        if (is_whiteout(*found)) {
          return LayerLookup::absent;
        }
        return S_ISDIR(found->st_mode) ? LayerLookup::directory : LayerLookup::other;
      }
    }
    if (opaque_on_the_way) {
      return LayerLookup::absent;
    }
  }
  return LayerLookup::absent;
}

Result<FoldStats> fold_layer_trees(const std::vector<std::string>& folded,
                                   const std::vector<std::string>& base,
                                   const std::string& target) {
  std::vector<UniqueFd> roots;
  for (const std::string& lower : folded) {
    UniqueFd root(::open(lower.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
      return fail_errno(errno, "open layer " + quoted(lower));
    }
    const bool opaque = is_opaque(root.get());
    roots.push_back(std::move(root));
    if (opaque) {
      break; // not made by minibuild, but overlayfs would stop here too
    }
  }
  UniqueFd out(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!out) {
    return fail_errno(errno, "open " + quoted(target));
  }
  Folder folder(base, target);
  MB_TRY(folder.merge(roots, "", out.get(), false));
  return folder.take_stats();
}

Result<SquashResult> squash_layers(store::Store& store, const std::vector<std::string>& base_lowers,
                                   const std::vector<oci::Descriptor>& layers,
                                   const std::vector<oci::Digest>& diff_ids,
                                   const layer::ExportOptions& options) {
  if (layers.empty()) {
    return fail(Code::internal, "squash: no layers to fold");
  }
  const std::string context = "squash " + std::to_string(layers.size()) + " layers";
  auto outcome = [&]() -> Result<SquashResult> {
    MB_TRY_ASSIGN(const std::vector<std::string> folded,
                  unpacked_lower_dirs(store, layers, diff_ids));
    MB_TRY_ASSIGN(const std::string tree, store.layers().new_work_dir("squash"));
    TreeGuard guard(tree);
    SquashResult result;
    MB_TRY_ASSIGN(result.fold, fold_layer_trees(folded, base_lowers, tree));

    layer::ExportOptions export_options = options;
    export_options.kind = layer::TreeKind::overlay_upper;
    MB_TRY_ASSIGN(auto writer, store.blobs().open_writer({}));
    MB_TRY_ASSIGN(layer::ExportResult exported, layer::export_layer(tree, export_options, *writer));
    MB_TRY_ASSIGN(const store::BlobInfo info, writer->commit());
    result.layer.media_type = exported.media_type;
    result.layer.digest = info.digest;
    result.layer.size = static_cast<std::int64_t>(info.size);
    result.diff_id = exported.diff_id;
    result.entries = exported.entries;
    result.uncompressed_size = exported.uncompressed_size;
    result.warnings = result.fold.warnings;
    result.warnings.insert(result.warnings.end(), exported.warnings.begin(),
                           exported.warnings.end());
    // adopt() consumes the tree whatever happens once it accepts the path.
    guard.release();
    MB_TRY(store.layers().adopt(exported.diff_id, tree));
    return result;
  }();
  if (!outcome) {
    return fail(std::move(outcome).error().wrap(context));
  }
  return outcome;
}

} // namespace minibuild::build
