// User and group id mappings between a container and the host, as in /proc/PID/uid_map.
//
// Exporting maps host ids back to container ids (a rootless build's upper dir holds files owned
// by subordinate host ids); applying maps container ids to host ids before chown.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace minibuild::layer {

/// One contiguous range: container ids [container_id, container_id + size) are host ids
/// [host_id, host_id + size).
struct IdRange {
  std::uint32_t container_id = 0;
  std::uint32_t host_id = 0;
  std::uint32_t size = 0;

  bool operator==(const IdRange&) const = default;
};

/// The uid and gid mappings of one user namespace. An empty list means identity for that kind.
struct IdMap {
  std::vector<IdRange> uids;
  std::vector<IdRange> gids;

  bool operator==(const IdMap&) const = default;
};

/// A container owner to write into a tar entry.
struct EntryOwner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;

  bool operator==(const EntryOwner&) const = default;
};

/// Owners that replace the files' own when a tree becomes a layer. A COPY step gives every entry
/// one owner (0:0, or its --chown), with exceptions for single paths: archive entries that keep
/// their owners, directories that already exist in the base and keep the base's owner. With an
/// override the file's host owner is never consulted, so the tree needs no chown(2) and an
/// unprivileged build writes the same layer as root does.
struct OwnerOverride {
  std::optional<EntryOwner> all;             ///< every entry not named in `by_path`
  std::map<std::string, EntryOwner> by_path; ///< relative to the root: "etc/app", no '/' ends

  bool empty() const { return !all && by_path.empty(); }
};

/// The container id of `host_id`; identity when `ranges` is empty; nullopt when no range holds
/// it. Ranges are searched in order; the first one that contains the id wins.
std::optional<std::uint32_t> to_container_id(const std::vector<IdRange>& ranges,
                                             std::uint32_t host_id);
/// The host id of `container_id`; identity when `ranges` is empty; nullopt when unmapped.
std::optional<std::uint32_t> to_host_id(const std::vector<IdRange>& ranges,
                                        std::uint32_t container_id);

} // namespace minibuild::layer
