// What a COPY or ADD reads from its source, without copying it: the sources' part of the step's
// cache key (docs/cache.md, "COPY and ADD sources").
//
// select_copy_sources() runs the same selection as stage_copy() (copy.hpp): the same flag checks,
// wildcard expansion, .dockerignore and --exclude decisions, directories copied as their
// contents, --parents, symlink handling and inline heredoc sources. Both share one
// implementation in copy.cpp, so a cache key cannot select other files than the copy does.
// It differs from stage_copy() in three deliberate ways:
//   - No base image: paths are those the entries get with an empty base (as with --link). The
//     base is part of the parent step's key, and where it redirects the destination follows
//     from it. For the same reason --chown is not resolved (the key holds its text) and "several
//     sources into a file" is not reported (it depends on the base); stage_copy() reports both.
//   - ADD does not sniff archives: an archive's content digest decides its extraction, and the
//     key holds the content digest plus the unpack setting.
//   - Nothing is written; regular files and directory xattrs are read through a SourceReader.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/build/cache_key.hpp>
#include <minibuild/build/context.hpp>
#include <minibuild/build/copy.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/stat_cache.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace minibuild::build {

enum class EntryType { regular, directory, symlink, fifo, char_device, block_device };

/// One entry a COPY/ADD step would write. Sockets are left out, as stage_copy() leaves them out.
struct SelectedEntry {
  std::string path;     ///< absolute image path, computed without a base image (see above)
  std::string physical; ///< path in the context, symlinks resolved; "" for a heredoc
  EntryType type = EntryType::regular;
  std::uint32_t mode = 0;    ///< permission bits as written (--chmod applied)
  std::int64_t mtime_ns = 0; ///< as copied; 0 for a heredoc (written at copy time)
  std::uint64_t size = 0;    ///< regular files
  std::uint64_t rdev = 0;    ///< device nodes
  std::string link_target;   ///< symlinks
  std::string hardlink_to;   ///< an earlier entry of the same source this one is a hard link of
  oci::Digest content;       ///< regular files: sha256 of the content
  oci::Digest xattrs;        ///< sha256 of the image xattrs (layer::is_image_xattr); empty: none
};

/// How the walk reads what it does not get from stat. `file` receives the directory holding a
/// regular file (a descriptor valid during the call), its name there, its lstat and its context
/// path; `directory_xattrs` receives a directory open for reading. Either may consult a cache.
struct SourceReader {
  std::function<Result<store::FileDigests>(int parent_fd, const std::string& name,
                                           const struct stat& st, const std::string& physical)>
      file;
  std::function<Result<oci::Digest>(int dir_fd, const std::string& physical)> directory_xattrs;
};

/// Every entry `step` selects in `context`, in the order stage_copy() writes them (sources in
/// order, directories depth-first in byte order). Fails as stage_copy() fails for the same step
/// (a missing source, no source files, a bad --chmod or --exclude, network sources), with the
/// same Code and message, except for the base-dependent errors named above.
Result<std::vector<SelectedEntry>>
select_copy_sources(const BuildContext& context, const CopyStep& step, const SourceReader& reader);

/// The reader copy_sources_digest() uses: reads file content and xattrs, and with a stat cache
/// reuses the digests of files whose stat is unchanged (store/stat_cache.hpp).
struct CopySourcesStats {
  std::uint64_t files = 0;      ///< regular files selected (heredocs excluded)
  std::uint64_t files_read = 0; ///< of those, read because the stat cache did not know them
  std::uint64_t bytes_read = 0;
};

/// The sources' part of a COPY/ADD key, as a CacheKey (kind "copy-sources") so its text can be
/// dumped with --debug-cache-key. Holds the step's own fields that change the result (kind,
/// destination, the workdir when the destination is relative, --chown and --chmod text, --link,
/// --parents, --exclude, --checksum, ADD's unpack setting) and then every selected entry sorted
/// by path (stable: an entry written twice keeps its order): path, type, mode, mtime, size,
/// content and xattr digests, link target, hard link, device number. Owners, inode numbers and
/// ctimes of context files do not enter (the copy does not keep them). `stat_cache` may be
/// null; `stats` may be null. Not thread-safe for one StatCache.
Result<CacheKey> copy_sources_key(const BuildContext& source, const CopyStep& step,
                                  store::StatCache* stat_cache, CopySourcesStats* stats = nullptr);

/// copy_sources_key(...).digest().
Result<oci::Digest> copy_sources_digest(const BuildContext& source, const CopyStep& step,
                                        store::StatCache* stat_cache,
                                        CopySourcesStats* stats = nullptr);

} // namespace minibuild::build
