#include <minibuild/base/unique_fd.hpp>
#include <minibuild/build/copy_sources.hpp>
#include <minibuild/layer/xattrs.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace minibuild::build {

namespace {

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::int64_t ns_of(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The xattrs stage_copy() would copy (copy_xattrs: layer::is_image_xattr), sorted by name and
// framed, hashed; an empty Digest when there are none. A filesystem without xattrs has none.
Result<oci::Digest> image_xattrs_digest(int fd, const std::string& what) {
  std::string names(256, '\0');
  while (true) {
    ssize_t got = ::flistxattr(fd, names.data(), names.size());
    if (got < 0 && errno == ERANGE) {
      names.resize(names.size() * 4);
      continue;
    }
    if (got < 0 && (errno == ENOTSUP || errno == ENODATA)) {
      return oci::Digest();
    }
    if (got < 0) {
      return fail_errno(errno, "list xattrs of " + quoted(what));
    }
    names.resize(static_cast<std::size_t>(got));
    break;
  }
  std::vector<std::string> list;
  for (std::size_t start = 0; start < names.size();) {
    const std::size_t end = std::min(names.find('\0', start), names.size());
    if (end > start && layer::is_image_xattr(std::string_view(names).substr(start, end - start))) {
      list.push_back(names.substr(start, end - start));
    }
    start = end + 1;
  }
  if (list.empty()) {
    return oci::Digest();
  }
  std::sort(list.begin(), list.end());
  CacheKey key("xattrs");
  for (const std::string& name : list) {
    std::string value;
    ssize_t size = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (size < 0 && errno == ENODATA) {
      continue; // removed since it was listed
    }
    if (size >= 0) {
      value.resize(static_cast<std::size_t>(size));
      size = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    }
    if (size < 0) {
      return fail_errno(errno, "read xattr " + name + " of " + quoted(what));
    }
    value.resize(static_cast<std::size_t>(size));
    key.add("name", name).add("value", value);
  }
  return key.digest();
}

// Reads files as Engine::leaf (copy.cpp) opens them (same flags, same identity check, same
// messages), through the stat cache when there is one.
class DigestReader {
public:
  DigestReader(store::StatCache* cache, CopySourcesStats& stats) : m_cache(cache), m_stats(stats) {}

  Result<store::FileDigests> file(int parent_fd, const std::string& name, const struct stat& st,
                                  const std::string& physical) {
    ++m_stats.files;
    if (m_cache != nullptr) {
      if (auto cached = m_cache->lookup(physical, st)) {
        return *cached;
      }
    }
    UniqueFd in(::openat(parent_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
    if (!in) {
      return fail_errno(errno, "open " + quoted(name) + " in the build context");
    }
    struct stat opened {};
    if (::fstat(in.get(), &opened) != 0 || opened.st_ino != st.st_ino ||
        opened.st_dev != st.st_dev) {
      return fail(Code::io, "read " + quoted(name) +
                                " in the build context: the file changed while it was copied");
    }
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    oci::Sha256Hasher hasher;
    m_buffer.resize(1 << 17);
    while (true) {
      ssize_t n = ::read(in.get(), m_buffer.data(), m_buffer.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return fail_errno(errno, "read " + quoted(name) + " in the build context");
      }
      if (n == 0) {
        break;
      }
      hasher.update(std::string_view(m_buffer.data(), static_cast<std::size_t>(n)));
    }
    ++m_stats.files_read;
    m_stats.bytes_read += hasher.byte_count();
    store::FileDigests digests;
    digests.content = hasher.finish();
    MB_TRY_ASSIGN(digests.xattrs, image_xattrs_digest(in.get(), physical));
    // Cache only what was read from a file that stood still: the stat before and after the
    // read agree, so the digest belongs to that stat.
    struct stat after {};
    if (m_cache != nullptr && ::fstat(in.get(), &after) == 0 && after.st_size == st.st_size &&
        ns_of(after.st_mtim) == ns_of(st.st_mtim) && ns_of(after.st_ctim) == ns_of(st.st_ctim)) {
      m_cache->record(physical, st, digests);
    }
    return digests;
  }

private:
  store::StatCache* m_cache;
  CopySourcesStats& m_stats;
  std::string m_buffer; // one read buffer for every file
};

std::string_view type_name(EntryType type) {
  switch (type) {
  case EntryType::regular:
    return "file";
  case EntryType::directory:
    return "dir";
  case EntryType::symlink:
    return "symlink";
  case EntryType::fifo:
    return "fifo";
  case EntryType::char_device:
    return "char";
  case EntryType::block_device:
    return "block";
  }
  return "unknown";
}

bool dest_is_relative(const std::string& dest) {
  return dest.empty() || dest.front() != '/';
}

} // namespace

Result<CacheKey> copy_sources_key(const BuildContext& source, const CopyStep& step,
                                  store::StatCache* stat_cache, CopySourcesStats* stats) {
  CopySourcesStats local;
  CopySourcesStats& counters = stats != nullptr ? *stats : local;
  DigestReader digests(stat_cache, counters);
  SourceReader reader;
  reader.file = [&digests](int parent_fd, const std::string& name, const struct stat& st,
                           const std::string& physical) {
    return digests.file(parent_fd, name, st, physical);
  };
  reader.directory_xattrs = [](int dir_fd, const std::string& physical) {
    return image_xattrs_digest(dir_fd, physical);
  };
  MB_TRY_ASSIGN(std::vector<SelectedEntry> entries, select_copy_sources(source, step, reader));
  // Sorted by image path; stable, so an entry written twice keeps the copy's order. Indices
  // move instead of the entries.
  std::vector<std::size_t> order(entries.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&entries](std::size_t a, std::size_t b) {
    return entries[a].path < entries[b].path;
  });

  CacheKey key("copy-sources");
  key.add("step", step.kind == CopyKind::copy ? "COPY" : "ADD");
  key.add_list("sources", step.sources);
  key.add("dest", step.dest);
  // A relative destination lands below the WORKDIR; an absolute one does not depend on it.
  key.add("workdir", dest_is_relative(step.dest) ? step.workdir : std::string());
  key.add("chown", step.chown);
  key.add("chmod", step.chmod);
  key.add("link", step.link ? "1" : "0");
  key.add("parents", step.parents ? "1" : "0");
  key.add_list("exclude", step.excludes);
  key.add("checksum", step.checksum);
  key.add("unpack", !step.unpack ? "default" : *step.unpack ? "1" : "0");
  key.add("entries", static_cast<std::int64_t>(entries.size()));
  for (std::size_t index : order) {
    const SelectedEntry& entry = entries[index];
    key.add("path", entry.path);
    key.add("type", type_name(entry.type));
    key.add("mode", static_cast<std::int64_t>(entry.mode));
    // mtimes stay out, as in BuildKit: a fresh checkout on another runner gives every file a
    // new mtime, and a key with mtimes would never match there. A hit reuses the layer with
    // the mtimes of the build that made it (docs/cache.md, "COPY and ADD sources").
    switch (entry.type) {
    case EntryType::regular:
      key.add("size", static_cast<std::int64_t>(entry.size));
      key.add("content", entry.content.hex());
      key.add("hardlink", entry.hardlink_to);
      break;
    case EntryType::symlink:
      key.add("target", entry.link_target);
      break;
    case EntryType::char_device:
    case EntryType::block_device:
      key.add("rdev", static_cast<std::int64_t>(entry.rdev));
      break;
    case EntryType::directory:
    case EntryType::fifo:
      break;
    }
    key.add("xattrs", entry.xattrs.hex());
  }
  return key;
}

Result<oci::Digest> copy_sources_digest(const BuildContext& source, const CopyStep& step,
                                        store::StatCache* stat_cache, CopySourcesStats* stats) {
  MB_TRY_ASSIGN(CacheKey key, copy_sources_key(source, step, stat_cache, stats));
  return key.digest();
}

} // namespace minibuild::build
