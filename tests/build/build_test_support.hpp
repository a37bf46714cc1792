// Helpers for the COPY/ADD tests: temporary trees, file helpers, archives made with libarchive,
// and a fake base image.
#pragma once

#include "support/temp_dir.hpp"

#include <minibuild/build/context.hpp>
#include <minibuild/build/copy.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace minibuild::build::testing {

using TempDir = minibuild::test::TempDir;

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Writes `content` to `path`, creating parent directories.
inline void spit(const std::string& path, std::string_view content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE(out.good());
}

inline void make_dir(const std::string& path) {
  std::filesystem::create_directories(path);
}

inline void make_symlink(const std::string& target, const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
}

inline struct stat lstat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline std::uint32_t mode_of(const std::string& path) {
  return lstat_of(path).st_mode & 07777;
}

inline void set_mtime(const std::string& path, std::int64_t seconds) {
  const struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

/// Every path below `root` ("a", "a/b"), with a trailing "/" for directories and " -> target"
/// for symlinks, sorted.
inline std::vector<std::string> tree_of(const std::string& root) {
  std::vector<std::string> entries;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::string rel = it->path().lexically_relative(root).string();
    if (it->is_symlink()) {
      rel += " -> " + std::filesystem::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      rel += "/";
    }
    entries.push_back(rel);
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

/// A fake base image: a set of directories, symlinks (resolved lexically, one level) and files.
struct FakeBase {
  std::set<std::string> directories{"/"};
  std::map<std::string, std::string> symlinks; ///< absolute path -> absolute target
  std::map<std::string, std::string> files;
  mutable std::vector<std::string> files_read;

  std::string resolve(const std::string& path) const {
    // Replace the longest symlinked prefix; enough for these tests.
    for (const auto& [link, target] : symlinks) {
      if (path == link) {
        return target;
      }
      if (path.rfind(link + "/", 0) == 0) {
        return target + path.substr(link.size());
      }
    }
    return path;
  }

  BaseImage image() const {
    BaseImage base;
    base.is_directory = [this](const std::string& path) {
      return directories.count(resolve(path)) > 0;
    };
    base.resolve = [this](const std::string& path) { return resolve(path); };
    base.read_file = [this](const std::string& path) -> Result<std::optional<std::string>> {
      files_read.push_back(path);
      auto found = files.find(path);
      if (found == files.end()) {
        return std::optional<std::string>();
      }
      return std::optional<std::string>(found->second);
    };
    return base;
  }
};

/// One entry for make_archive().
struct ArchiveEntry {
  enum class Type { file, dir, symlink, hardlink };

  ArchiveEntry(std::string path_, Type type_, std::string content_ = {}, std::uint32_t mode_ = 0644,
               std::int64_t mtime_ = 1600000000, std::int64_t uid_ = 0, std::int64_t gid_ = 0)
      : path(std::move(path_)), type(type_), content(std::move(content_)), mode(mode_),
        mtime(mtime_), uid(uid_), gid(gid_) {}

  std::string path;
  Type type;
  std::string content; ///< file content, or symlink/hardlink target
  std::uint32_t mode;
  std::int64_t mtime;
  std::int64_t uid;
  std::int64_t gid;
};

enum class Filter { none, gzip, bzip2, xz, zstd };

/// Writes a pax tar with `entries` to `path`, compressed with `filter`.
inline void make_archive(const std::string& path, const std::vector<ArchiveEntry>& entries,
                         Filter filter) {
  struct archive* a = archive_write_new();
  REQUIRE(a != nullptr);
  switch (filter) {
  case Filter::none:
    break;
  case Filter::gzip:
    REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
    break;
  case Filter::bzip2:
    REQUIRE(archive_write_add_filter_bzip2(a) == ARCHIVE_OK);
    break;
  case Filter::xz:
    REQUIRE(archive_write_add_filter_xz(a) == ARCHIVE_OK);
    break;
  case Filter::zstd:
    REQUIRE(archive_write_add_filter_zstd(a) == ARCHIVE_OK);
    break;
  }
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const ArchiveEntry& e : entries) {
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_perm(entry, e.mode);
    archive_entry_set_mtime(entry, e.mtime, 0);
    archive_entry_set_uid(entry, e.uid);
    archive_entry_set_gid(entry, e.gid);
    switch (e.type) {
    case ArchiveEntry::Type::file:
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
      break;
    case ArchiveEntry::Type::dir:
      archive_entry_set_filetype(entry, AE_IFDIR);
      break;
    case ArchiveEntry::Type::symlink:
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.content.c_str());
      break;
    case ArchiveEntry::Type::hardlink:
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.content.c_str());
      break;
    }
    REQUIRE(archive_write_header(a, entry) == ARCHIVE_OK);
    if (e.type == ArchiveEntry::Type::file && !e.content.empty()) {
      REQUIRE(archive_write_data(a, e.content.data(), e.content.size()) ==
              static_cast<la_ssize_t>(e.content.size()));
    }
    archive_entry_free(entry);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

/// A context, a staging directory and the call, for tests that run one step.
struct CopyFixture {
  TempDir context_dir;
  TempDir staging_dir;
  FakeBase base;

  std::string ctx(std::string_view rel) const { return context_dir / rel; }
  std::string staged(std::string_view rel) const { return staging_dir / rel; }

  Result<StagedCopy> run(const CopyStep& step, const ContextOptions& options = {}) {
    auto context = BuildContext::open(context_dir.path(), options);
    if (!context) {
      return tl::unexpected<Error>(std::move(context).error());
    }
    return stage_copy(*context, step, base.image(), staging_dir.path());
  }
};

inline CopyStep copy_step(std::vector<std::string> sources, std::string dest,
                          std::string workdir = "/") {
  CopyStep step;
  step.sources = std::move(sources);
  step.dest = std::move(dest);
  step.workdir = std::move(workdir);
  return step;
}

inline CopyStep add_step(std::vector<std::string> sources, std::string dest) {
  CopyStep step = copy_step(std::move(sources), std::move(dest));
  step.kind = CopyKind::add;
  return step;
}

} // namespace minibuild::build::testing
