// The build executor: runs a planned Dockerfile (dockerfile::Plan) against a build context and
// the local store, and writes the resulting image into the store.
//
// What it does, stage by stage in plan order, as BuildKit's dockerfile2llb and its image
// exporter do:
//   - a stage starts from scratch, from an earlier stage's result, or from an image already in
//     the store by name (index → manifest for the stage platform → config). The base's layers,
//     history and rootfs are carried over untouched; only the config fields BuildKit rewrites
//     change (image_config_builder.hpp). An image that is not in the store is fetched
//     through ExecutorOptions::fetch_image (the registry pull) when one is given.
//   - ONBUILD triggers of the base (an image's OnBuild, or an earlier stage's ONBUILD lines) run
//     first, as if written after FROM.
//   - variables expand in the base image's Env plus the stage's ARG/ENV scope
//     (dockerfile::StageScope); ARG values never reach the config's Env.
//   - metadata instructions change the config; COPY/ADD (through the copy engine) and WORKDIR
//     (other than "/") produce a layer: a staging tree in the store's temporary area, exported
//     by layer::export_layer straight into a blob. `COPY --from` reads the root filesystem of a
//     stage or stored image, materialised by applying its layers in the temporary area.
//   - RUN runs in the sandbox (runtime/sandbox.hpp) on an overlay of the stage's unpacked layers;
//     the upper dir is exported as the step's layer and adopted by the store as that layer's
//     unpacked tree, ready to be the next step's lower dir. A step that changes nothing adds
//     no layer (its history entry is empty_layer, as BuildKit does). A non-zero exit fails
//     the build with Code::build_failed, the exit code and the last lines of output.
//   - the target stage (the plan's last) becomes an OCI manifest + config written as blobs, its
//     names (-t) recorded in the store.
//
// With source_date_epoch set, two builds of the same Dockerfile and context produce
// byte-identical configs and manifests: every new history entry and `created` use the epoch,
// and layer mtimes are clamped to it.
//
// The caller opens the store and holds Store::lock(LockMode::shared) for the whole call.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/build/context.hpp>
#include <minibuild/dockerfile/plan.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/runtime/sandbox.hpp>
#include <minibuild/runtime/security.hpp>
#include <minibuild/store/build_cache.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::store {
class Store;
}

namespace minibuild::build {

/// Receives what the build is doing, in BuildKit's terms: numbered vertices (a FROM, a COPY, a
/// WORKDIR, "exporting to image") that start, log lines, and finish or fail. With parallel
/// stages (ExecutorOptions::jobs) calls come from several threads, never two at once.
/// Step names number stages and steps as buildah does (docs/cli.md, "Progress"): the stage
/// among the stages built, then the step within the stage, FROM being step 1; instructions
/// that only change the config (ENV, LABEL, ...) have no vertex, so their numbers are skipped.
class ProgressSink {
public:
  virtual ~ProgressSink() = default;
  /// Vertex `id` (1, 2, ...) started; `name` is e.g. "[2/3] STEP 4/7: COPY app /app" for a
  /// step, "[2/3] STEP 1/7: FROM scratch AS app" for a stage's FROM, or "exporting to image".
  virtual void started(int id, std::string_view name) = 0;
  /// A line of output of a running vertex ("writing image sha256:… done").
  virtual void log(int id, std::string_view line) = 0;
  virtual void done(int id, std::chrono::nanoseconds elapsed) = 0;
  virtual void failed(int id, const Error& error) = 0;
  /// Vertex `id` was answered by the build cache: nothing ran. Ends the vertex like done().
  virtual void cached(int id) { done(id, {}); }
};

/// The plain progress format ("--progress plain"), written to `out`: BuildKit's "#N" lines
/// with buildah's step numbers, one line per event,
///   #3 [2/3] STEP 4/7: COPY app /app
///   #3 DONE 0.1s
/// (or "#3 CACHED", "#3 ERROR: ...", output lines "#3 ..."), with an empty line between
/// vertices. Does not own `out`.
class PlainProgress : public ProgressSink {
public:
  explicit PlainProgress(std::FILE* out) : m_out(out) {}
  void started(int id, std::string_view name) override;
  void log(int id, std::string_view line) override;
  void done(int id, std::chrono::nanoseconds elapsed) override;
  void failed(int id, const Error& error) override;
  void cached(int id) override;

private:
  std::FILE* m_out;
  bool m_first = true;
};

/// What --squash asks for (docs/squash.md).
enum class SquashMode {
  none,
  stage, ///< --squash: the target stage's own layers become one, its base layers stay
  all,   ///< --squash-all: the whole target image is one layer
};

/// How RUN steps get their root filesystem (docs/run.md, "Storage drivers").
enum class StorageDriver {
  auto_,   ///< overlay; vfs for the rest of the build when the kernel refuses overlay
  overlay, ///< overlayfs on the stage's unpacked layers
  vfs,     ///< a plain copy of the stage's root filesystem; changes found by comparison
};

struct ExecutorOptions {
  /// Names to give the result, "repository:tag" (already normalised: the caller appends
  /// ":latest" where needed).
  std::vector<std::string> tags;
  /// SOURCE_DATE_EPOCH: the time of every new history entry and of `created`, and the clamp
  /// for layer mtimes. nullopt: the current time.
  std::optional<std::int64_t> source_date_epoch;
  oci::Compression compression = oci::Compression::gzip;
  std::optional<int> compression_level; ///< layer::ExportOptions::level
  /// `--label` values, applied to the target image after everything else (BuildKit does so).
  std::map<std::string, std::string> labels;
  /// --no-cache: run every step (results are still recorded in the cache).
  bool no_cache = false;
  /// --no-cache-filter: stages (lower-case names, or indexes) whose steps always run.
  std::set<std::string> no_cache_filter;
  /// --debug-cache-key DIR: write the text behind every key to DIR/<key hex>.txt.
  std::string debug_cache_key_dir;
  ProgressSink* progress = nullptr; ///< may be null
  /// --jobs: how many stages may build at once. Stages start in Dockerfile order once the
  /// stages they use (FROM, COPY --from, RUN --mount from=) are built; 1 builds one stage after
  /// the other. 0 means 1.
  unsigned jobs = 1;
  /// Brings an image into the store (the registry pull): called with the reference as written
  /// in FROM or `COPY --from` and the stage's platform. Null: images must already be stored.
  std::function<Result<void>(const std::string& reference, const oci::Platform& platform)>
      fetch_image;
  /// --pull=always: fetch every image reference once per build before using the stored copy.
  /// Otherwise (--pull=missing) fetch only a reference the store cannot resolve.
  bool always_fetch = false;

  // ---- RUN steps (runtime/sandbox.hpp) ----
  /// The network of RUN steps without `RUN --network` (--network on the command line).
  runtime::NetworkMode network = runtime::NetworkMode::host;
  /// The seccomp profile of RUN steps; nullopt: the default profile (docs/security.md).
  std::optional<runtime::SeccompProfile> seccomp_profile;
  /// --security-opt seccomp=unconfined: no filter at all.
  bool seccomp_unconfined = false;
  StorageDriver storage_driver = StorageDriver::auto_;
  /// COPY, WORKDIR and `COPY --from` read a stage's files through a read-only overlay view of
  /// its unpacked layers instead of a copy. Only when the process has a mount namespace of its
  /// own (the CLI makes one), so the mounts never reach the host; a refused mount falls back
  /// to the copy.
  bool mount_views = false;
  SquashMode squash = SquashMode::none;
  /// --squash-stage: stages (lower-case names, or indexes) whose own layers are folded into
  /// one when the stage ends, whether or not it is the target.
  std::set<std::string> squash_stages;
  /// Capabilities of a step running as root (Docker's default set).
  runtime::CapabilitySet capabilities = runtime::default_capabilities();
  /// `--secret id=ID,src=FILE|env=VAR`: the secrets `RUN --mount=type=secret` can use, by id.
  /// They reach the step as a read-only file (or an environment variable with env=) and never
  /// a layer, the history or the config.
  std::map<std::string, std::string> secrets;

  // ---- a shared cache (--cache-from; docs/cache.md, "Sharing the cache") ----
  /// Entries imported from elsewhere (a registry or a directory), looked up after the local
  /// cache misses. Their layer blobs are fetched only when an entry is used.
  std::vector<store::CacheEntry> imported_cache;
  /// Brings a layer blob of an imported entry into the store (verified). Null: imported
  /// entries whose blob is not already stored are misses.
  std::function<Result<void>(const oci::Descriptor& blob)> fetch_blob;
};

/// What a build produced. The image id (as docker shows it) is the config digest.
struct BuildResult {
  oci::Digest manifest_digest;
  oci::Digest config_digest;
  oci::ImageManifest manifest;
  oci::ImageConfig config;
  std::vector<std::string> tags; ///< the names recorded
  /// The cache entries this build used or made, for --cache-to: those of the target stage
  /// (mode=min) and, flagged, those of the other stages (mode=max adds them).
  struct UsedEntry {
    store::CacheEntry entry;
    bool target_stage = false;
  };
  std::vector<UsedEntry> cache_entries;
  /// The ids of the RUN --mount=type=cache directories (store cache/mounts/<sha256 of id>) that
  /// the steps which ran used, sorted, each once; for --cache-to ...,cache-mounts=true.
  std::vector<std::string> cache_mounts;
};

/// Runs `plan` (every planned stage, in order; the last one is the target) and stores the
/// image. `context` is the build context for COPY/ADD without --from. On failure nothing is
/// named; blobs already written stay until prune. Errors carry the failing instruction's
/// location (Error::at): Code::build_failed for a failing RUN, Code::sandbox when the
/// kernel refused a sandbox step, Code::not_found for a base image missing
/// from the store, the copy engine's codes for COPY/ADD (copy.hpp), Code::io / Code::corrupt
/// from the store and layer modules.
Result<BuildResult> execute(const dockerfile::Plan& plan, const BuildContext& context,
                            store::Store& store, const ExecutorOptions& options);

/// Looks an image up in the store the way FROM and `COPY --from` do: the name as given, with
/// ":latest" when it has no tag, then with Docker Hub's "docker.io/library/" or "docker.io/"
/// prefix; "name@sha256:…" by digest. Returns the candidates in lookup order (for tests and
/// messages).
std::vector<std::string> store_name_candidates(std::string_view reference);

} // namespace minibuild::build
