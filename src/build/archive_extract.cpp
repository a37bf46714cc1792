#include "archive_extract.hpp"

#include "fs_ops.hpp"

#include <minibuild/base/in_root.hpp>
#include <minibuild/base/unique_fd.hpp>
#include <minibuild/layer/xattrs.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <clocale>
#include <fcntl.h>
#include <locale.h>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::build {

namespace {

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// libarchive converts pax UTF-8 names to the thread's locale; pinning C.UTF-8 makes names come
// out as the bytes the archive holds, whatever the caller's environment (uselocale is
// per-thread).
class Utf8Locale {
public:
  Utf8Locale() {
    m_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (m_locale != static_cast<locale_t>(nullptr)) {
      m_previous = uselocale(m_locale);
    }
  }
  ~Utf8Locale() {
    if (m_locale != static_cast<locale_t>(nullptr)) {
      uselocale(m_previous);
      freelocale(m_locale);
    }
  }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

private:
  locale_t m_locale = static_cast<locale_t>(nullptr);
  locale_t m_previous = static_cast<locale_t>(nullptr);
};

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// The formats BuildKit's DecompressStream recognises, and tar (ustar, pax, GNU, v7) only.
Result<ArchivePtr> open_reader(int fd, std::string_view what) {
  if (::lseek(fd, 0, SEEK_SET) < 0) {
    return fail_errno(errno, "rewind " + quoted(what));
  }
  ArchivePtr a(archive_read_new());
  if (!a) {
    return fail(Code::io, "libarchive: out of memory");
  }
  // ARCHIVE_WARN means "through an external program": still usable.
  if (archive_read_support_filter_gzip(a.get()) < ARCHIVE_WARN ||
      archive_read_support_filter_bzip2(a.get()) < ARCHIVE_WARN ||
      archive_read_support_filter_xz(a.get()) < ARCHIVE_WARN ||
      archive_read_support_filter_zstd(a.get()) < ARCHIVE_WARN ||
      archive_read_support_format_tar(a.get()) != ARCHIVE_OK) {
    return fail(Code::internal, std::string("libarchive setup: ") + archive_error_string(a.get()));
  }
  if (archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) {
    return fail(Code::corrupt,
                "read " + quoted(what) + ": " +
                    (archive_error_string(a.get()) != nullptr ? archive_error_string(a.get())
                                                              : "unknown error"));
  }
  return a;
}

std::string archive_message(struct archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown error";
}

// path.Clean after trimming leading slashes; nullopt when the name climbs above the root.
std::optional<std::string> clean_entry_name(std::string_view raw) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= raw.size()) {
    std::size_t end = raw.find('/', start);
    if (end == std::string_view::npos) {
      end = raw.size();
    }
    std::string_view part = raw.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) {
        return std::nullopt;
      }
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    start = end + 1;
  }
  std::string out;
  for (const std::string& part : parts) {
    out = join_path(out, part);
  }
  return out;
}

struct timespec entry_mtime(struct archive_entry* entry) {
  struct timespec ts {};
  if (archive_entry_mtime_is_set(entry)) {
    ts.tv_sec = archive_entry_mtime(entry);
    ts.tv_nsec = archive_entry_mtime_nsec(entry);
  }
  return ts;
}

struct PendingDir {
  std::string physical;
  std::uint32_t mode;
  struct timespec mtime;
};

std::pair<std::string, std::string> split_parent(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) {
    return {"", rel};
  }
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// Sets the entry's xattrs on `fd` (open, not O_PATH). Called after the data and the mode: a
// write would clear security.capability.
Result<void> apply_entry_xattrs(struct archive_entry* entry, int fd, const std::string& physical,
                                XattrRefusals& refused) {
  if (archive_entry_xattr_reset(entry) == 0) {
    return {};
  }
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  // libarchive's own writer records each xattr twice (LIBARCHIVE.xattr.* and SCHILY.xattr.*),
  // and its reader returns both: set each name once.
  std::set<std::string_view> seen;
  while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
    if (name == nullptr || !layer::is_image_xattr(name) || !seen.insert(name).second) {
      continue;
    }
    MB_TRY(set_xattr(fd, name,
                     std::string_view(static_cast<const char*>(value), value == nullptr ? 0 : size),
                     physical, refused));
  }
  return {};
}

} // namespace

Result<bool> is_tar_archive(int fd) {
  auto reader = open_reader(fd, "archive");
  if (!reader) {
    // Not decodable as any supported filter + tar: a plain file for ADD.
    return false;
  }
  struct archive_entry* entry = nullptr;
  int r = archive_read_next_header(reader->get(), &entry);
  return r == ARCHIVE_OK || r == ARCHIVE_WARN;
}

Result<ExtractResult> extract_archive(int fd, const std::string& dest_dir, std::string_view what,
                                      const std::optional<Owner>& owner_override,
                                      Resolution resolution) {
  Utf8Locale locale;
  MB_TRY_ASSIGN(ArchivePtr reader, open_reader(fd, what));
  MB_TRY_ASSIGN(InRoot root, InRoot::open(dest_dir, resolution));
  ExtractResult result;
  std::vector<PendingDir> dirs;
  const auto note_created = [&](const std::vector<std::string>& created) -> Result<void> {
    // Implied parents: 0755 and root-owned, whatever --chown says (BuildKit's implied ids).
    for (const std::string& physical : created) {
      auto [parent_rel, name] = split_parent(physical);
      MB_TRY_ASSIGN(OpenedDir parent, root.ensure_dir(parent_rel, Symlinks::refuse));
      if (::fchmodat(parent.fd.get(), name.c_str(), 0755, 0) != 0) {
        return fail_errno(errno, "set the mode of " + quoted(physical));
      }
      ++result.directories;
      if (owner_override && !(*owner_override == Owner{})) {
        result.owners.emplace_back(physical, Owner{});
      }
    }
    return {};
  };

  while (true) {
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) {
      break;
    }
    if (r < ARCHIVE_WARN) {
      return fail(Code::corrupt, "read " + quoted(what) + ": " + archive_message(reader.get()));
    }
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) {
      raw = archive_entry_pathname_utf8(entry);
    }
    if (raw == nullptr) {
      return fail(Code::corrupt, "read " + quoted(what) + ": an entry has no usable name");
    }
    auto rel = clean_entry_name(raw);
    if (!rel) {
      return fail(Code::corrupt, "extract " + quoted(what) + ": entry " + quoted(raw) +
                                     " is outside the destination");
    }
    if (rel->empty()) {
      continue; // "./": the destination itself
    }
    const mode_t type = archive_entry_filetype(entry);
    const char* hardlink = archive_entry_hardlink(entry);
    const std::uint32_t mode = static_cast<std::uint32_t>(archive_entry_perm(entry)) & 07777;
    const struct timespec mtime = entry_mtime(entry);
    const struct timespec times[2] = {mtime, mtime};
    const Owner entry_owner =
        owner_override.value_or(Owner{static_cast<std::uint32_t>(archive_entry_uid(entry)),
                                      static_cast<std::uint32_t>(archive_entry_gid(entry))});

    auto [parent_rel, name] = split_parent(*rel);
    std::vector<std::string> created;
    MB_TRY_ASSIGN(OpenedDir parent,
                  root.ensure_dir(parent_rel, Symlinks::follow_in_root, &created));
    MB_TRY(note_created(created));
    const std::string physical = join_path(parent.physical, name);

    if (hardlink == nullptr && type == AE_IFDIR) {
      struct stat st {};
      if (::fstatat(parent.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
        MB_TRY(remove_tree(parent.fd.get(), name, physical));
      }
      // A directory entry follows a symlink of the same name inside the destination.
      created.clear();
      MB_TRY_ASSIGN(OpenedDir dir, root.ensure_dir(*rel, Symlinks::follow_in_root, &created));
      // The entry's own directory is not an implied parent.
      if (!created.empty() && created.back() == dir.physical) {
        created.pop_back();
        ++result.directories;
      }
      MB_TRY(note_created(created));
      if (archive_entry_xattr_count(entry) > 0) {
        UniqueFd readable(::openat(dir.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!readable) {
          return fail_errno(errno, "open " + quoted(dir.physical));
        }
        MB_TRY(apply_entry_xattrs(entry, readable.get(), dir.physical, result.xattrs_refused));
      }
      dirs.push_back({dir.physical, mode, mtime});
      result.owners.emplace_back(dir.physical, entry_owner);
      if (archive_read_data_skip(reader.get()) < ARCHIVE_WARN) {
        return fail(Code::corrupt, "read " + quoted(what) + ": " + archive_message(reader.get()));
      }
      continue;
    }

    // Any other entry replaces what is there, a directory included (BuildKit's RemoveAll).
    MB_TRY(remove_tree(parent.fd.get(), name, physical));
    if (hardlink != nullptr) {
      auto target = clean_entry_name(hardlink);
      if (!target || target->empty()) {
        return fail(Code::corrupt, "extract " + quoted(what) + ": hard link " + quoted(raw) +
                                       " points outside the destination");
      }
      MB_TRY_ASSIGN(Located linked, root.locate(*target, FollowFinal::no));
      if (::linkat(linked.parent.get(), linked.name.c_str(), parent.fd.get(), name.c_str(), 0) !=
          0) {
        return fail_errno(errno, "extract " + quoted(what) + ": hard link " + quoted(raw) + " to " +
                                     quoted(hardlink));
      }
      if (!S_ISLNK(linked.st.st_mode)) {
        if (::fchmodat(parent.fd.get(), name.c_str(), mode, 0) != 0 ||
            ::utimensat(parent.fd.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
          return fail_errno(errno, "set the metadata of " + quoted(physical));
        }
        ++result.files;
      } else {
        ++result.symlinks;
      }
    } else if (type == AE_IFREG) {
      UniqueFd out(::openat(parent.fd.get(), name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) {
        return fail_errno(errno, "create " + quoted(physical));
      }
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      while (true) {
        int rd = archive_read_data_block(reader.get(), &block, &size, &offset);
        if (rd == ARCHIVE_EOF) {
          break;
        }
        if (rd < ARCHIVE_WARN) {
          return fail(Code::corrupt,
                      "read " + quoted(what) + ": " + raw + ": " + archive_message(reader.get()));
        }
        const char* data = static_cast<const char*>(block);
        std::size_t written = 0;
        while (written < size) {
          ssize_t w = ::pwrite(out.get(), data + written, size - written,
                               static_cast<off_t>(offset) + static_cast<off_t>(written));
          if (w < 0 && errno == EINTR) {
            continue;
          }
          if (w < 0) {
            return fail_errno(errno, "write " + quoted(physical));
          }
          written += static_cast<std::size_t>(w);
        }
        result.bytes += size;
      }
      // A sparse file may end in a hole that no data block covers.
      if (archive_entry_size_is_set(entry) &&
          ::ftruncate(out.get(), static_cast<off_t>(archive_entry_size(entry))) != 0) {
        return fail_errno(errno, "write " + quoted(physical));
      }
      if (::fchmod(out.get(), mode) != 0 || ::futimens(out.get(), times) != 0) {
        return fail_errno(errno, "set the metadata of " + quoted(physical));
      }
      MB_TRY(apply_entry_xattrs(entry, out.get(), physical, result.xattrs_refused));
      ++result.files;
    } else if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      if (target == nullptr) {
        target = archive_entry_symlink_utf8(entry);
      }
      if (target == nullptr || ::symlinkat(target, parent.fd.get(), name.c_str()) != 0) {
        return fail_errno(target == nullptr ? EINVAL : errno, "create symlink " + quoted(physical));
      }
      if (::utimensat(parent.fd.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail_errno(errno, "set the mtime of " + quoted(physical));
      }
      ++result.symlinks;
    } else if (type == AE_IFIFO) {
      if (::mkfifoat(parent.fd.get(), name.c_str(), 0600) != 0 ||
          ::fchmodat(parent.fd.get(), name.c_str(), mode, 0) != 0 ||
          ::utimensat(parent.fd.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail_errno(errno, "create fifo " + quoted(physical));
      }
      ++result.files;
    } else {
      return fail(Code::unsupported, "extract " + quoted(what) + ": entry " + quoted(raw) +
                                         " is a device or special file, which ADD does not "
                                         "create");
    }
    result.owners.emplace_back(physical, entry_owner);
  }

  // Directory metadata last, deepest first: extracting children changes a directory's mtime,
  // and a read-only directory could not receive them.
  std::stable_sort(dirs.begin(), dirs.end(), [](const PendingDir& a, const PendingDir& b) {
    return std::count(a.physical.begin(), a.physical.end(), '/') >
           std::count(b.physical.begin(), b.physical.end(), '/');
  });
  for (const PendingDir& dir : dirs) {
    auto [parent_rel, name] = split_parent(dir.physical);
    auto parent = root.ensure_dir(parent_rel, Symlinks::refuse);
    struct stat st {};
    if (!parent || ::fstatat(parent->fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      continue; // a later entry replaced it
    }
    const struct timespec times[2] = {dir.mtime, dir.mtime};
    if (::fchmodat(parent->fd.get(), name.c_str(), dir.mode, 0) != 0 ||
        ::utimensat(parent->fd.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno(errno, "set the metadata of " + quoted(dir.physical));
    }
  }
  return result;
}

} // namespace minibuild::build
