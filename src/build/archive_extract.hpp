// ADD's local archive extraction.
//
// BuildKit (solver/llbsolver/file/unpack.go) treats a source as an archive when, after
// decompression (gzip, bzip2, xz or zstd, recognised by their magic), the first tar header can
// be read; the name never matters, and an empty tar is copied as a file. Extraction follows its
// applyRootArchive: names are cleaned and a name that leaves the destination through ".." fails;
// parent directories resolve inside the destination (a symlink the archive created earlier is
// followed as if the destination were "/"), missing ones are created 0755 and owned by 0:0; an
// existing entry is replaced unless both are directories; hard links must point inside; entry
// owners come from the archive unless --chown overrides them; mtimes come from the archive.
//
// Extended attributes that entries carry (SCHILY.xattr.* / LIBARCHIVE.xattr.* pax records) are
// set on extracted files and directories, except host-specific ones (fs_ops.hpp); a refusal by
// the destination is counted in ExtractResult::xattrs_refused, never an error. Symlinks, hard
// links (they share their target's inode) and fifos get none.
#pragma once

#include "fs_ops.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/build/context.hpp>
#include <minibuild/build/owner.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::build {

/// Whether the regular file open as `fd` is a (possibly compressed) tar archive. Reads from the
/// start and leaves the offset unspecified.
Result<bool> is_tar_archive(int fd);

struct ExtractResult {
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t bytes = 0;
  /// Physical paths (relative to the destination) with the owner each entry must have.
  std::vector<std::pair<std::string, Owner>> owners;
  XattrRefusals xattrs_refused;
};

/// Extracts the archive open as `fd` into the existing directory `dest_dir`, which acts as the
/// root: nothing is created, changed or removed outside it. `owner_override` is the --chown
/// owner (entries get it; implied parents stay 0:0). `what` names the source in errors.
Result<ExtractResult> extract_archive(int fd, const std::string& dest_dir, std::string_view what,
                                      const std::optional<Owner>& owner_override,
                                      Resolution resolution);

} // namespace minibuild::build
