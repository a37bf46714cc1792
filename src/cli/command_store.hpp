// The commands that read and manage the local store: images, inspect, history, rmi, prune,
// fsck, save. Their output formats are documented in docs/outputs.md ("Store commands").
//
// Locks (docs/store.md, "Locking"): images, inspect, history and save hold the store lock shared
// while they read, so prune cannot remove what they are reading; rmi holds it shared (like any
// name change); prune and fsck take it themselves (exclusive for prune and fsck --repair).
#pragma once

#include "commands.hpp"

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/store/fsck.hpp>
#include <minibuild/store/gc.hpp>
#include <minibuild/store/images.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace minibuild::cli {

struct ImagesOptions {
  bool quiet = false;           ///< -q: image ids only
  std::string format = "table"; ///< table | json
};

struct InspectOptions {
  std::string image;
};

struct HistoryOptions {
  std::string image;
  bool no_trunc = false;
};

struct RmiOptions {
  std::vector<std::string> images;
  bool force = false; ///< -f: a name that does not exist is not an error
};

struct PruneCommandOptions {
  bool all = false; ///< -a: also every build cache entry and cache mount
};

struct FsckOptions {
  bool repair = false;
};

struct SaveOptions {
  std::string image;
  std::string output;                 ///< -o FILE ("-": standard output)
  std::string format = "oci-archive"; ///< oci-archive | docker-archive
};

/// Lists names: docker's table (REPOSITORY TAG IMAGE ID CREATED SIZE), `-q` ids, or JSON lines.
Result<void> run_images(Context& context, const ImagesOptions& options);
/// Prints {"Name","Digest","MediaType","Id","Manifest","Config"} for one image.
Result<void> run_inspect(Context& context, const InspectOptions& options);
/// Prints docker's history table (IMAGE CREATED CREATED BY SIZE COMMENT), newest first.
Result<void> run_history(Context& context, const HistoryOptions& options);
/// Removes names ("Untagged: NAME"); blobs stay until prune. Missing names fail the command
/// (Code::not_found, after the others are removed) unless `force`.
Result<void> run_rmi(Context& context, const RmiOptions& options);
/// Removes what no name or build cache entry reaches (with -a: empties the cache first) and
/// prints what it reclaimed.
Result<void> run_prune(Context& context, const PruneCommandOptions& options);
/// Verifies the store and prints the problems; fails with Code::corrupt (exit 4) while any
/// problem remains unrepaired.
Result<void> run_fsck(Context& context, const FsckOptions& options);
/// Writes an image to an archive (build/outputs.hpp).
Result<void> run_save(Context& context, const SaveOptions& options);

// The renderers behind the commands: pure functions of what the store returned (and of `now`,
// seconds since the epoch, for ages), so tests check the output without a store.

/// `minibuild images` output for `rows` (table, -q ids, or JSON lines).
std::string render_images(const std::vector<store::ImageSummary>& rows,
                          const ImagesOptions& options, std::int64_t now);
/// `minibuild history` output. `image_id` is the config digest, shown on the newest row.
std::string render_history(const oci::ImageConfig& config, const oci::ImageManifest& manifest,
                           const oci::Digest& image_id, bool no_trunc, std::int64_t now);
/// `minibuild prune` (and `cache prune`) output: one line per removed cache entry, blob and
/// layer, then the total.
std::string render_prune(const store::PruneReport& report);
/// `minibuild fsck` output: one line per problem, then a summary line.
std::string render_fsck(const store::FsckReport& report);

} // namespace minibuild::cli
