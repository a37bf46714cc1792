// The COPY/ADD engine: one instruction becomes a staging tree.
//
// stage_copy() fills a fresh directory (the caller creates it, e.g. in the store's tmp area)
// with exactly the entries the step adds, at their final image paths: `COPY x /app/bin/` gives
// `<staging>/app/bin/x`, with the final permission bits and mtimes. The layer writer then tars
// that tree. Ownership is uniform per step and is not applied to the staging tree (a rootless
// builder could not): the result carries the owner for the layer writer to write into every
// entry, plus the few exceptions (see StagedCopy).
//
// The rules, as Docker/BuildKit apply them (docs/copy.md has the details and the references):
//   - Sources are resolved in a BuildContext (confined, .dockerignore applied). A directory
//     source copies its contents; a symlink named as a source (or matched by a wildcard) is
//     followed inside the context; symlinks found while copying a directory are copied as
//     symlinks. Hard links within one source stay hard links.
//   - Wildcards follow Go's filepath.Match per path component (path_match.hpp). A source without
//     wildcards must exist. A wildcard may match nothing as long as the instruction as a whole
//     copies something; otherwise "no source files were specified".
//   - The destination is relative to the WORKDIR. It is a directory when it ends in "/" or "/.",
//     is ".", when the step has several sources (after wildcard expansion), or when it already
//     is a directory in the base image; several sources into a path that is none of these is an
//     error ("When using COPY with more than one source file, the destination must be a
//     directory and end with a /").
//   - Missing parent directories are created 0755 with the step's owner; parents that exist in
//     the base image are listed in StagedCopy::base_directories so the layer keeps their
//     metadata.
//   - --chmod applies to every file and directory copied (not to symlinks, not to created
//     parents, not to entries extracted from an archive). --chown: owner.hpp. --exclude:
//     dockerignore-style patterns matched against each entry's path relative to its source (a
//     file source: its name; with --parents: relative to the pivot). --parents keeps the path
//     of each source below the context root, or below a `/./` pivot, and gives `**` its
//     "any number of directories" meaning.
//   - ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd; detected from the content,
//     never the name) into the destination directory, confined to it; other files are copied
//     as COPY does. URL and git sources are Code::unsupported until minibuild has its HTTP
//     client. --checksum is only valid for those (BuildKit's rule).
//   - Heredoc sources become a file named after the delimiter, mode 0644 before --chmod.
//   - With --link, BuildKit copies onto an empty tree: the base image is not consulted for
//     destination directories or symlinks (only for --chown names).
//
// select_copy_sources() (copy_sources.hpp) runs the same source selection without copying, for
// the step's cache key; both share one implementation in copy.cpp.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/build/context.hpp>
#include <minibuild/build/owner.hpp>
#include <minibuild/dockerfile/instructions.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace minibuild::build {

/// Error tag (Error::has_tag) of a COPY/ADD source missing from its context (or excluded by
/// .dockerignore); a `COPY --from` caller turns it into a report of what the stage holds.
inline constexpr std::string_view k_source_not_found = "copy.source-not-found";

enum class CopyKind { copy, add };

/// One COPY or ADD, with variables already expanded (dockerfile::expand_instruction).
struct CopyStep {
  CopyKind kind = CopyKind::copy;
  std::vector<std::string> sources;
  std::vector<dockerfile::InlineSource> inline_sources; ///< bodies already expanded
  std::string dest;
  std::string workdir = "/"; ///< the stage's WORKDIR when the step runs (absolute)
  std::string chown;
  std::string chmod;
  std::string checksum; ///< ADD only
  bool link = false;
  bool parents = false;       ///< COPY only
  std::optional<bool> unpack; ///< ADD only; nullopt: extract local archives
  std::vector<std::string> excludes;

  /// The step for an expanded COPY (its `from`, if any, is the caller's business: pass that
  /// stage's root filesystem as the BuildContext).
  static CopyStep from(const dockerfile::CopyInstruction& copy, std::string workdir);
  static CopyStep from(const dockerfile::AddInstruction& add, std::string workdir);
};

/// What the engine may ask about the image the step copies onto. Every member may be empty:
/// an empty base (scratch) has no directories, no symlinks and no files.
struct BaseImage {
  /// Whether the absolute path is a directory in the base, following symlinks inside the image
  /// root ("/usr/bin" when /bin -> usr/bin counts too).
  std::function<bool(const std::string& path)> is_directory;
  /// The absolute path with every symlink of the base resolved inside the image root (the
  /// existing prefix resolved, the rest appended). Lets `COPY x /bin/` land in /usr/bin when
  /// /bin is a symlink, as it does on a real root filesystem. Empty: paths are taken literally.
  std::function<std::string(const std::string& path)> resolve;
  /// Reads /etc/passwd and /etc/group for --chown names.
  BaseFileReader read_file;
};

/// An entry whose owner is not StagedCopy::owner: archive entries extracted by ADD without
/// --chown keep the owner the archive gives them (BuildKit does the same).
struct OwnerException {
  std::string path; ///< image path, absolute
  Owner owner;

  bool operator==(const OwnerException&) const = default;
};

/// What stage_copy() produced, beside the staging tree itself.
struct StagedCopy {
  /// Owner of every entry of the staging tree (0:0 without --chown), except owner_exceptions.
  Owner owner;
  std::vector<OwnerException> owner_exceptions; ///< sorted by path
  /// Directories of the staging tree that stand for directories already in the base image
  /// (the destination and its parents). The layer must write them with the base's mode, owner
  /// and mtime, as an overlay diff would, not with the staging tree's. Absolute, sorted.
  std::vector<std::string> base_directories;
  bool link = false;       ///< --link: the layer must not depend on the base (BuildKit MergeOp)
  std::uint64_t files = 0; ///< regular files written (hard links included)
  std::uint64_t directories = 0; ///< directories created, parents included
  std::uint64_t symlinks = 0;
  std::uint64_t bytes = 0;           ///< file data copied or extracted
  std::vector<std::string> warnings; ///< entries left out (sockets), one line each
};

/// Runs `step` from `context` into the existing, empty directory `staging_dir`.
///
/// Errors name the instruction and the source ("COPY app/*.go: no source files were
/// specified"); the caller attaches the Dockerfile location with Error::at. Codes:
/// Code::build_failed for a missing source, an unknown --chown name, several sources into a
/// file; Code::dockerfile for bad flag values (--chmod, --chown syntax, --checksum on COPY or a
/// local source, a malformed wildcard); Code::unsupported for URL and git sources and device
/// nodes; Code::corrupt for an archive entry that would escape the destination; Code::io for
/// the rest. On error `staging_dir` holds a partial tree that the caller discards.
Result<StagedCopy> stage_copy(const BuildContext& context, const CopyStep& step,
                              const BaseImage& base, const std::string& staging_dir);

} // namespace minibuild::build
