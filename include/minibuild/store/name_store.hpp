// Image names: "repository:tag" → the digest (and media type) of a manifest or index blob.
//
// All names live in one file, names.json, which is only ever replaced whole: written to a
// temporary file, fsync'ed, renamed over the old one, directory fsync'ed. Updates are
// read-modify-write under an exclusive flock on names.lock, so concurrent processes tagging
// different names never lose each other's update. Readers take no lock: rename makes every
// read see either the old or the new file.
//
// The file is versioned:
//   {"version":1,"names":{"docker.io/library/alpine:3.19":
//                          {"digest":"sha256:…","mediaType":"application/vnd.oci…"}}}
// A names file with a newer version is refused (Code::unsupported); an unreadable one is
// reported (Code::corrupt) and never overwritten.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/store/store_fs.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {

class TempArea;
class BlobStore;

/// One name and what it points at.
struct NamedImage {
  std::string name;       ///< "repository:tag", as the caller gave it (already normalised)
  oci::Digest digest;     ///< a manifest or index blob
  std::string media_type; ///< that blob's media type

  bool operator==(const NamedImage&) const = default;
};

/// Splits "repository:tag" at the last ':' after the last '/' ("localhost:5000/app:1" →
/// {"localhost:5000/app", "1"}). Fails with Code::usage when there is no tag, either part is
/// empty, or the name holds whitespace or control characters. The store does not normalise
/// names ("alpine" → "docker.io/library/alpine"): the registry module does, before tagging.
Result<std::pair<std::string, std::string>> split_name(std::string_view name);

/// The names part of a store (Store::names()). Mutations need the store lock held shared (so
/// prune cannot run between writing a manifest and naming it).
class NameStore {
public:
  NameStore(StoreFs& fs, TempArea& temp, BlobStore& blobs)
      : m_fs(fs), m_temp(temp), m_blobs(blobs) {}

  /// Points `name` at a stored manifest or index, replacing what it pointed at. Fails with
  /// Code::not_found when the blob is not stored, Code::unsupported when `media_type` is not a
  /// manifest or index type, Code::usage for a malformed name (split_name).
  Result<void> tag(std::string_view name, const oci::Digest& digest, std::string_view media_type);

  /// Removes a name; returns whether it existed (removing a missing name is success). Blobs
  /// stay until prune.
  Result<bool> untag(std::string_view name);

  /// What a name points at, or nullopt.
  Result<std::optional<NamedImage>> resolve(std::string_view name);

  /// All names, sorted by name.
  Result<std::vector<NamedImage>> list();

  /// Relative paths of the names file and its lock.
  static constexpr std::string_view k_file = "names.json";
  static constexpr std::string_view k_lock = "names.lock";
  /// The names-file version this minibuild writes and reads.
  static constexpr int k_version = 1;

private:
  StoreFs& m_fs;
  TempArea& m_temp;
  BlobStore& m_blobs;
};

} // namespace minibuild::store
