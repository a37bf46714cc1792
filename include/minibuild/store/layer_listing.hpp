// A cheap fingerprint of an unpacked layer tree, recorded when the layer is unpacked and
// re-computed by fsck to find trees that were changed afterwards.
//
// The digest is sha256 over the tree's entries in a fixed order (depth first, names sorted
// byte-wise), each entry written as delimited, tagged fields (STYLE.md habit 13):
//   path (relative, "/"-separated), type (file, dir, symlink, char, block, fifo, socket),
//   permission bits including setuid/setgid/sticky, uid, gid, and then by type:
//     regular file: size and, up to k_listing_hash_limit bytes, the sha256 of the content;
//                   for larger files the modification time in nanoseconds instead
//     symlink:      the target
//     device:       the device number (an overlay whiteout is a character device 0/0)
//   and every extended attribute except security.selinux (labels change with the host policy),
//   sorted by name, with its value (user.overlay.opaque marks opaque directories).
// What it does not see: a change to a file above the limit that keeps size and mtime (someone
// who writes and then resets the mtime), atime/ctime, and hard-link structure.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstdint>
#include <string>

namespace minibuild::store {

/// Regular files up to this size are fingerprinted by content, larger ones by size and mtime.
inline constexpr std::uint64_t k_listing_hash_limit = 1024 * 1024;

struct ContentListing {
  oci::Digest digest;        ///< the fingerprint described above
  std::uint64_t size = 0;    ///< sum of the sizes of regular files (apparent size)
  std::uint64_t entries = 0; ///< number of entries below the root (the root not counted)
};

/// Walks the tree at `dir` (an absolute path; symlinks are never followed) and fingerprints it.
/// Errors name the entry that could not be read.
Result<ContentListing> list_content(const std::string& dir);

} // namespace minibuild::store
