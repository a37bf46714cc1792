// Store verification (`minibuild fsck`): re-reads everything and reports what does not match.
//
// What is checked:
//   - every blob: read in full through the verifying reader (digest and size);
//   - every entry of blobs/<alg>/ and layers/<alg>/: its name must be a digest of that
//     algorithm and it must be a file (blobs) or directory (layers);
//   - every unpacked layer: layer.json must be readable and name the directory's diffID, and
//     list_content() of diff/ must equal the content digest recorded at unpack time
//     (layer_listing.hpp says what that fingerprint covers and what it misses);
//   - every name: the walk from it (gc.hpp) must find every manifest, index, config and layer
//     blob it references, readable;
//   - every build cache entry (build_cache.hpp): its file must parse and name its key, and its
//     layer blob must be stored (and not corrupt).
// With Repair::yes, corrupt or stray blobs and layers are removed (a later pull or build
// stores them again), broken or dangling cache entries are removed (the step runs again on the
// next build) and stale temporary files are cleaned; names are never changed, so a name
// whose manifest is missing stays and is reported (remove it with `minibuild rmi`).
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/store/store_fs.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace minibuild::store {

class Store;

enum class Repair { no, yes };

struct FsckProblem {
  enum class Kind {
    corrupt_blob,         ///< content does not match its digest (or is unreadable)
    stray_blob_entry,     ///< something in blobs/ that is not a blob
    corrupt_layer,        ///< unpacked tree changed, or its metadata is missing or wrong
    stray_layer_entry,    ///< something in layers/ that is not a layer directory
    dangling_name,        ///< a name whose manifest or index is not stored
    missing_blob,         ///< a stored document references a blob that is not stored
    unreadable_document,  ///< a manifest, index or config that does not parse
    broken_cache_entry,   ///< a file under cache/entries/ that is not a readable entry
    dangling_cache_entry, ///< a cache entry whose layer blob is missing (or corrupt)
  };
  Kind kind = Kind::corrupt_blob;
  std::string subject; ///< the digest, path or name concerned
  std::string detail;  ///< what is wrong
  bool repaired = false;
};

/// Name of a problem kind as printed by the CLI ("corrupt-blob").
std::string_view kind_name(FsckProblem::Kind kind);

struct FsckReport {
  std::uint64_t blobs_checked = 0;
  std::uint64_t layers_checked = 0;
  std::uint64_t names_checked = 0;
  std::uint64_t cache_entries_checked = 0; ///< readable entries and broken files
  std::size_t temp_entries_removed = 0;
  std::vector<FsckProblem> problems;

  /// True when nothing is wrong (or everything wrong was repaired).
  bool clean() const;
};

/// Verifies the store. Holds the store lock shared (Repair::no: builds and pulls may run) or
/// exclusive (Repair::yes), taken per `wait`; the caller must not hold one. Content problems are
/// reported in the FsckReport, never as an error; errors are I/O failures and a busy store.
Result<FsckReport> fsck(Store& store, Repair repair, Wait wait = Wait::yes);

} // namespace minibuild::store
