#include "fs_ops.hpp"
#include "image_config_builder.hpp"
#include "run_step.hpp"
#include "staging.hpp"
#include "stored_image.hpp"
#include "tree_diff.hpp"

#include <minibuild/base/file.hpp>
#include <minibuild/base/in_root.hpp>
#include <minibuild/build/cache_key.hpp>
#include <minibuild/build/copy.hpp>
#include <minibuild/build/copy_sources.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/build/owner.hpp>
#include <minibuild/build/squash.hpp>
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/store/build_cache.hpp>
#include <minibuild/store/stat_cache.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace minibuild::build {

namespace {

using dockerfile::Instruction;
using dockerfile::InstructionKind;
using dockerfile::PlanStage;
using dockerfile::SourceKind;

constexpr std::size_t k_max_base_file = 16u << 20; // /etc/passwd and /etc/group of a base

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (end > start) {
      parts.emplace_back(path.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

std::string join_parts(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count && i < parts.size(); ++i) {
    out += (i == 0 ? "" : "/") + parts[i];
  }
  return out;
}

struct Moment {
  std::int64_t seconds = 0;
  std::int64_t nanoseconds = 0;
};

std::int64_t wall_clock_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Moment now() {
  const auto since = std::chrono::system_clock::now().time_since_epoch();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(since).count();
  return {ns / 1000000000, ns % 1000000000};
}

// ---- root filesystems ----------------------------------------------------------------------

// The copy engine's view of a base image, answered from its materialised root filesystem.
BaseImage base_image_of(const std::shared_ptr<const InRoot>& root) {
  BaseImage base;
  base.is_directory = [root](const std::string& path) {
    auto found = root->locate(path, FollowFinal::yes);
    return found && S_ISDIR(found->st.st_mode);
  };
  base.resolve = [root](const std::string& path) {
    // The longest existing prefix with its symlinks resolved, the rest appended as written.
    const auto parts = split_path(path);
    for (std::size_t count = parts.size() + 1; count-- > 0;) {
      auto found = root->locate(join_parts(parts, count), FollowFinal::yes);
      if (!found) {
        continue;
      }
      std::string out = "/" + found->physical;
      for (std::size_t i = count; i < parts.size(); ++i) {
        out += (out.back() == '/' ? "" : "/") + parts[i];
      }
      return out;
    }
    return path;
  };
  base.read_file = [root](const std::string& path) -> Result<std::optional<std::string>> {
    auto found = root->locate(path, FollowFinal::yes);
    if (!found) {
      if (found.error().sys_errno() == ENOENT || found.error().sys_errno() == ENOTDIR) {
        return std::optional<std::string>();
      }
      return fail(std::move(found).error());
    }
    if (!S_ISREG(found->st.st_mode)) {
      return std::optional<std::string>();
    }
    MB_TRY_ASSIGN(UniqueFd fd, root->open_for_reading(*found));
    MB_TRY_ASSIGN(std::string text, read_all(fd.get(), path, k_max_base_file));
    return std::optional<std::string>(std::move(text));
  };
  return base;
}

// ---- ownership of a staging tree ----------------------------------------------------------

// Metadata an entry of a staging tree must carry into the layer instead of the step's default.
struct EntryOverride {
  std::string rel; ///< relative to the staging root
  Owner owner;
  std::optional<std::uint32_t> mode;
  std::optional<struct timespec> mtime;
};

// Applies the overrides' modes and mtimes to the staging tree and returns the owners the layer
// writer must write: the step's owner for every entry, the overrides' owners for theirs. Owners
// never touch the tree (no chown), so root and unprivileged builds write the same layer.
Result<layer::OwnerOverride> settle_metadata(const std::string& root, const Owner& owner,
                                             const std::vector<EntryOverride>& overrides) {
  layer::OwnerOverride owners;
  owners.all = layer::EntryOwner{owner.uid, owner.gid};
  for (const auto& entry : overrides) {
    const std::string path = root + "/" + entry.rel;
    owners.by_path[entry.rel] = layer::EntryOwner{entry.owner.uid, entry.owner.gid};
    if (entry.mode && ::chmod(path.c_str(), *entry.mode) != 0) {
      return fail_errno(errno, "chmod \"" + path + "\"");
    }
    if (entry.mtime) {
      const struct timespec times[2] = {{0, UTIME_OMIT}, *entry.mtime};
      if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail_errno(errno, "set the mtime of \"" + path + "\"");
      }
    }
  }
  return owners;
}

// The metadata a base-image entry has, for an override.
Result<EntryOverride> base_metadata(const InRoot& root, const std::string& rel) {
  MB_TRY_ASSIGN(Located found, root.locate(rel, FollowFinal::no));
  EntryOverride entry;
  entry.rel = rel;
  entry.owner = Owner{found.st.st_uid, found.st.st_gid};
  // An unprivileged apply left the image's owner in an xattr instead of chown'ing.
  const std::string path = root.path() + "/" + found.physical;
  char value[64] = {};
  const ssize_t size = ::lgetxattr(path.c_str(), layer::k_owner_xattr, value, sizeof value - 1);
  unsigned uid = 0;
  unsigned gid = 0;
  if (size > 0 && std::sscanf(value, "%u:%u", &uid, &gid) == 2) {
    entry.owner = Owner{uid, gid};
  }
  entry.mode = found.st.st_mode & 07777;
  entry.mtime = found.st.st_mtim;
  return entry;
}

// An ONBUILD trigger ("COPY . /app") as an instruction of its own.
Result<Instruction> parse_trigger(const std::string& trigger, const std::string& file) {
  MB_TRY_ASSIGN(dockerfile::ParsedDockerfile parsed, dockerfile::parse_dockerfile(trigger, file));
  if (parsed.instructions.size() != 1) {
    return fail(Code::dockerfile, "onbuild trigger should be a single expression");
  }
  return dockerfile::parse_instruction(parsed.instructions.front(), file);
}

// ---- the executor -------------------------------------------------------------------------

struct StageState {
  StageState(const PlanStage& stage_, oci::ImageConfig config)
      : stage(&stage_), builder(std::move(config)) {}

  const PlanStage* stage;
  ImageConfigBuilder builder;
  std::vector<oci::Descriptor> layers;
  dockerfile::StageScope scope;
  /// The stage's root filesystem, materialised on first need and kept current.
  std::string rootfs_rel;
  std::shared_ptr<const InRoot> root;
  /// `root` is a read-only overlay view of the stage's unpacked layers (mount_view), not a
  /// copy: it is dropped, not updated, when a layer is added.
  bool root_is_view = false;
  /// The stage as people name it ("builder", "stage-1"); empty in a one-stage build.
  std::string display;
  /// The step being dispatched (FROM is 1, then each trigger and instruction, as buildah
  /// counts) and how many the stage has: the "STEP I/J" of progress names (step_name).
  int step_index = 0;
  int step_total = 0;
  /// The cache key of the stage's filesystem so far (docs/cache.md): the parent of the next
  /// step's key.
  oci::Digest cache_key;
  /// False when the stage's steps must not be looked up (--no-cache, --no-cache-filter).
  bool use_cache = true;
  /// How many of `layers` the stage started with (its base's): squash leaves them alone.
  std::size_t base_layers = 0;
  /// The stage's clock for history entries (docs/cache.md, "Times"): the time of its last step
  /// that ran, or the cached time of its last step that hit; unset before the first one. Each
  /// stage has its own, so parallel stages cannot change each other's history.
  std::optional<std::string> clock;
  /// Its value before any step: the base image's `created` (stable across rebuilds), the base
  /// stage's clock, or the latest clock of the stages a scratch stage copies from.
  std::optional<std::string> start_clock;
};

struct Command {
  Instruction instruction;
  bool onbuild = false;
};

class Executor {
public:
  Executor(const dockerfile::Plan& plan, const BuildContext& context, store::Store& store,
           const ExecutorOptions& options, std::unique_ptr<Scratch> scratch)
      : m_plan(plan), m_context(context), m_store(store), m_options(options),
        m_scratch(std::move(scratch)), m_lexer(plan.directives.escape) {}

  ~Executor() {
    // Before the scratch directory goes: its removal must not walk into a mounted view.
    for (const auto& view : m_views) {
      ::umount2(view.c_str(), MNT_DETACH);
    }
  }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  Result<BuildResult> run();

private:
  Result<void> run_stage(const PlanStage& stage);
  Result<void> dispatch(StageState& st, const Command& command);
  Result<void> workdir_step(StageState& st, const Command& command, const Instruction& expanded);
  Result<void> copy_step(StageState& st, const Command& command, const Instruction& expanded);
  Result<void> arg_step(StageState& st, const Instruction& instruction);
  Result<void> run_step(StageState& st, const Command& command);
  Result<void> run_step_with(StageState& st, const Command& command, int vertex, bool vfs);
  Result<void> run_step_once(StageState& st, const Command& command, int vertex);
  /// The build args a RUN step sees: (those its history records, those its process gets:
  /// the first plus proxy variables).
  std::pair<dockerfile::Environment, dockerfile::Environment>
  step_arguments(const StageState& st) const;
  /// What `RUN --mount` flags need: mounts for the sandbox, environment entries (secret env=)
  /// and the cache-mount locks to hold while the step runs.
  struct RunMounts {
    std::vector<runtime::MountSpec> mounts;
    std::vector<std::string> env;
    std::vector<UniqueFd> locks;
  };
  Result<RunMounts> run_mounts(StageState& st, const Command& command, const std::string& run_dir);
  Result<std::optional<runtime::SeccompProgram>> seccomp_program();
  Result<void> ensure_rootfs(StageState& st);
  Result<std::string> mount_view(const std::vector<std::string>& lowers);
  Result<void> advance_rootfs(StageState& st, const oci::Descriptor& blob,
                              const oci::Digest& diff_id);
  void drop_view(StageState& st);
  Result<LoadedImage> resolve_image(const std::string& reference,
                                    const dockerfile::Platform& platform);
  Result<std::string> source_root(StageState& st, const std::string& from,
                                  const SourceRange& location);
  /// Exports a COPY/WORKDIR staging tree as the step's layer blob, then hands the tree to the
  /// store as that layer's unpacked tree (it is gone afterwards).
  Result<oci::Descriptor> export_staging(const std::string& staging_rel, const Owner& owner,
                                         const std::vector<EntryOverride>& overrides, int vertex,
                                         oci::Digest& diff_id);
  Result<void> add_layer(StageState& st, const oci::Descriptor& blob, const oci::Digest& diff_id,
                         const std::string& created_by);
  Result<BuildResult> finish(StageState& target);
  bool squashes(const PlanStage& stage) const;
  /// Folds the stage's layers from index `first` to the end into one (squash.hpp); their
  /// history entries stay, marked empty_layer, and one entry for the new layer follows.
  Result<void> fold_layers(StageState& st, std::size_t first, std::string_view why);

  std::string history_time(const StageState& st) const;
  void step_runs(StageState& st);
  // ---- parallel stages (ExecutorOptions::jobs) ----
  // One lock, m_mutex, guards all of the executor's state; a stage's thread holds it except
  // around the long operations that touch only the step's own files (a RUN's process, layer
  // export, the copy, unpacking, a pull), which run through unlocked(). The code between them
  // reads as sequential code, and parallel stages overlap exactly where the time goes.
  template <typename Operation>
  auto unlocked(Operation&& operation) {
    m_mutex.unlock();
    struct Relock {
      std::mutex& mutex;
      ~Relock() { mutex.lock(); }
    } relock{m_mutex};
    return operation();
  }
  /// Waits on m_changed until `ready()`; the caller holds m_mutex (as everywhere but in
  /// unlocked()) without a unique_lock of its own.
  template <typename Predicate>
  void wait_until(Predicate&& ready) {
    std::unique_lock lock(m_mutex, std::adopt_lock);
    m_changed.wait(lock, ready);
    (void)lock.release();
  }
  Result<void> run_stages_in_parallel(std::unique_lock<std::mutex>& lock);
  void stage_thread(const PlanStage& stage);
  bool dependencies_built(const PlanStage& stage) const;
  /// Waits (holding no job slot) until stage `index` is built or the build failed.
  void wait_for_stage(int index);
  /// On a cache hit for `key`: applies the cached result (layer, history) to the stage, says
  /// CACHED and returns true.
  Result<bool> use_cached(StageState& st, const oci::Digest& key, int vertex);
  /// After a step ran: records its result under `key` (nullopt: not cacheable) and moves the
  /// stage's key on.
  Result<void> record_cached(StageState& st, const std::optional<oci::Digest>& key,
                             std::string_view kind, std::size_t layers_before);
  Result<std::optional<store::CacheEntry>> local_or_imported(const oci::Digest& key, int vertex);
  oci::Digest dump_key(const CacheKey& key);
  Result<void> cached_step(StageState& st, const std::optional<oci::Digest>& key, int vertex,
                           std::string_view kind, const std::function<Result<void>()>& body);
  void remember_used(const StageState& st, const store::CacheEntry& entry);
  std::optional<oci::Digest> run_cache_key(const StageState& st, const Command& command);
  /// The stat cache of the context (content digests by stat), loaded at its first use.
  Result<void> load_stat_cache();
  Result<std::optional<oci::Digest>> copy_cache_key(const StageState& st, const Command& command,
                                                    const Instruction& expanded);
  Error missing_from_source(const Instruction& expanded, const BuildContext& source,
                            const Error& original) const;
  std::string step_name(StageState& st, std::string_view text, bool onbuild);
  std::string expanded_text(const StageState& st, const Instruction& instruction) const;
  int start_vertex(std::string name);
  void log(int vertex, std::string_view line);
  void end_vertex(int vertex, const Result<void>& outcome);

  const dockerfile::Plan& m_plan;
  const BuildContext& m_context;
  store::Store& m_store;
  const ExecutorOptions& m_options;
  std::unique_ptr<Scratch> m_scratch;
  dockerfile::ShellLexer m_lexer;
  std::map<int, StageState> m_stages;
  std::map<std::string, std::string> m_image_roots; ///< COPY --from=<image>: rootfs (rel)
  std::set<std::string> m_fetched; ///< "reference platform" already fetched in this build
  /// The compiled seccomp filter of RUN steps, made at the first RUN (nullopt inside: none).
  std::optional<std::optional<runtime::SeccompProgram>> m_seccomp;
  /// RUN steps use the vfs driver (asked for, or overlay was refused once in this build).
  bool m_vfs = false;
  std::set<int> m_cached_vertices; ///< vertices answered by the cache (already reported)
  std::map<std::string, store::CacheEntry> m_imported; ///< --cache-from entries by key
  std::vector<BuildResult::UsedEntry> m_used_entries;  ///< for --cache-to
  std::set<std::string> m_used_cache_mounts;           ///< ids, for --cache-to cache-mounts=true
  std::vector<std::string> m_views; ///< mounted overlay views (absolute), unmounted at the end
  bool m_options_views_refused = false;
  /// Content digests of context files by stat, loaded at the first COPY, saved at the end.
  std::optional<store::StatCache> m_stat_cache;
  std::int64_t m_build_start_ns = wall_clock_ns();
  int m_vertices = 0;
  std::map<int, std::chrono::steady_clock::time_point> m_started;

  std::mutex m_mutex;                ///< see unlocked()
  std::condition_variable m_changed; ///< a stage finished, a job slot freed, a pull ended
  std::set<int> m_built;             ///< stages whose state is final in m_stages
  unsigned m_running = 0;            ///< stages holding a job slot
  std::optional<Error> m_failure;   ///< the first stage failure; the others stop at their next step
  std::set<std::string> m_fetching; ///< pulls under way ("reference platform")
};

std::string Executor::history_time(const StageState& st) const {
  if (m_options.source_date_epoch) {
    return rfc3339_utc(*m_options.source_date_epoch);
  }
  if (st.clock) {
    return *st.clock;
  }
  if (st.start_clock) {
    return *st.start_clock;
  }
  const Moment moment = now();
  return rfc3339_utc(moment.seconds, moment.nanoseconds);
}

// A step that runs moves the build's clock to now; history entries written after it use it.
void Executor::step_runs(StageState& st) {
  if (!m_options.source_date_epoch) {
    const Moment moment = now();
    st.clock = rfc3339_utc(moment.seconds, moment.nanoseconds);
  }
  st.builder.set_history_time(history_time(st));
}

// ---- the build cache (docs/cache.md) --------------------------------------------------------

Result<bool> Executor::use_cached(StageState& st, const oci::Digest& key, int vertex) {
  if (!st.use_cache) {
    return false;
  }
  auto found = local_or_imported(key, vertex);
  if (!found) {
    if (found.error().code() != Code::corrupt) {
      return fail(std::move(found).error());
    }
    // A damaged entry is a miss: the step runs and its put() replaces the file.
    log(vertex, "warning: " + found.error().what());
    return false;
  }
  const auto& entry = *found;
  if (!entry) {
    return false;
  }
  if (entry->layer) {
    MB_TRY_ASSIGN(auto stat, m_store.blobs().stat(entry->layer->digest));
    if (!stat) {
      return false; // pruned: run the step again
    }
  }
  if (!m_options.source_date_epoch) {
    st.clock = entry->created;
  }
  st.builder.set_history_time(history_time(st));
  if (entry->layer) {
    st.layers.push_back(*entry->layer);
    st.builder.config().rootfs.diff_ids.push_back(entry->diff_id);
    st.builder.add_history(entry->created_by, false);
    MB_TRY(advance_rootfs(st, *entry->layer, entry->diff_id));
  } else {
    st.builder.add_history(entry->created_by, true);
  }
  (void)m_store.cache().touch(key, now().seconds); // last use only feeds pruning
  remember_used(st, *entry);
  st.cache_key = key;
  m_cached_vertices.insert(vertex);
  if (m_options.progress != nullptr) {
    m_options.progress->cached(vertex);
  }
  return true;
}

// --debug-cache-key DIR: the text each key hashes, as DIR/<hex>.txt, so two builds' keys can
// be compared with diff (docs/cache.md). Best effort: the build does not depend on it.
oci::Digest Executor::dump_key(const CacheKey& key) {
  const oci::Digest digest = key.digest();
  if (!m_options.debug_cache_key_dir.empty()) {
    const std::string path = m_options.debug_cache_key_dir + "/" + digest.hex() + ".txt";
    if (std::FILE* file = std::fopen(path.c_str(), "w")) {
      std::fwrite(key.text().data(), 1, key.text().size(), file);
      std::fclose(file);
    }
  }
  return digest;
}

// A step that changes the filesystem: answered by the cache when `key` hits, else run by `body`
// on the build's clock and recorded under `key` (nullopt: not cacheable, see record_cached).
Result<void> Executor::cached_step(StageState& st, const std::optional<oci::Digest>& key,
                                   int vertex, std::string_view kind,
                                   const std::function<Result<void>()>& body) {
  if (key) {
    MB_TRY_ASSIGN(const bool hit, use_cached(st, *key, vertex));
    if (hit) {
      return {};
    }
  }
  const std::size_t layers_before = st.layers.size();
  step_runs(st);
  MB_TRY(body());
  return record_cached(st, key, kind, layers_before);
}

// The local cache first; on a miss, an entry imported with --cache-from, whose layer blob is
// fetched now (and the entry then kept locally, so the next build needs no import).
Result<std::optional<store::CacheEntry>> Executor::local_or_imported(const oci::Digest& key,
                                                                     int vertex) {
  auto local = m_store.cache().get(key);
  if (!local || *local || m_imported.empty()) {
    return local;
  }
  const auto imported = m_imported.find(key.to_string());
  if (imported == m_imported.end()) {
    return local;
  }
  store::CacheEntry entry = imported->second;
  if (entry.layer) {
    MB_TRY_ASSIGN(auto stat, m_store.blobs().stat(entry.layer->digest));
    if (!stat) {
      if (!m_options.fetch_blob) {
        return std::optional<store::CacheEntry>();
      }
      log(vertex, "importing cached layer " + entry.layer->digest.to_string());
      MB_TRY_CONTEXT(m_options.fetch_blob(*entry.layer),
                     "import the cached layer " + entry.layer->digest.to_string());
    }
  }
  entry.last_used = now().seconds;
  MB_TRY(m_store.cache().put(entry));
  return std::optional<store::CacheEntry>(std::move(entry));
}

void Executor::remember_used(const StageState& st, const store::CacheEntry& entry) {
  BuildResult::UsedEntry used;
  used.entry = entry;
  used.target_stage = st.stage->index == m_plan.stages.back().index;
  m_used_entries.push_back(std::move(used));
}

Result<void> Executor::record_cached(StageState& st, const std::optional<oci::Digest>& key,
                                     std::string_view kind, std::size_t layers_before) {
  const auto& config = st.builder.config();
  const bool made_layer = st.layers.size() > layers_before;
  if (!key) {
    // Not cacheable (e.g. it read the context through a bind mount): later steps chain on
    // what it produced.
    CacheKey result("result");
    result.add("parent", st.cache_key.to_string());
    result.add("layer", made_layer ? config.rootfs.diff_ids.back().to_string() : "");
    st.cache_key = result.digest();
    return {};
  }
  st.cache_key = *key;
  if (config.history.empty()) {
    return {};
  }
  store::CacheEntry entry;
  entry.key = *key;
  entry.kind = std::string(kind);
  if (made_layer) {
    entry.layer = st.layers.back();
    entry.diff_id = config.rootfs.diff_ids.back();
    entry.size = static_cast<std::uint64_t>(st.layers.back().size);
  }
  entry.created = config.history.back().created;
  entry.created_by = config.history.back().created_by;
  entry.last_used = now().seconds;
  remember_used(st, entry);
  return m_store.cache().put(entry);
}

int Executor::start_vertex(std::string name) {
  const int id = ++m_vertices;
  m_started[id] = std::chrono::steady_clock::now();
  if (m_options.progress != nullptr) {
    m_options.progress->started(id, name);
  }
  return id;
}

void Executor::log(int vertex, std::string_view line) {
  if (m_options.progress != nullptr) {
    m_options.progress->log(vertex, line);
  }
}

void Executor::end_vertex(int vertex, const Result<void>& outcome) {
  if (m_options.progress == nullptr || (outcome && m_cached_vertices.contains(vertex))) {
    return;
  }
  if (outcome) {
    m_options.progress->done(vertex, std::chrono::steady_clock::now() - m_started[vertex]);
  } else {
    m_options.progress->failed(vertex, outcome.error());
  }
}

// buildah's numbering (docs/cli.md, "Progress"): "[2/3] STEP 4/7: RUN make", the stage among
// the stages built and the step within the stage, "ONBUILD " before a trigger. Always with the
// stage counter, even for one stage, so that a log has one shape to grep.
std::string Executor::step_name(StageState& st, std::string_view text, bool onbuild) {
  if (st.step_total == 0) {
    return std::string(text);
  }
  const auto position =
      std::find_if(m_plan.stages.begin(), m_plan.stages.end(),
                   [&](const PlanStage& s) { return s.index == st.stage->index; });
  char counter[96];
  std::snprintf(counter, sizeof(counter),
                "[%d/%zu] STEP %d/%d: ", static_cast<int>(position - m_plan.stages.begin()) + 1,
                m_plan.stages.size(), st.step_index, st.step_total);
  return counter + std::string(onbuild ? "ONBUILD " : "") + std::string(text);
}

// The instruction as written with variables expanded, as BuildKit names its vertices
// (processCmdEnv); the text as written when it does not expand.
std::string Executor::expanded_text(const StageState& st, const Instruction& instruction) const {
  auto expanded = m_lexer.process_word(instruction.original, st.scope.expansion_environment());
  std::string text = expanded ? expanded->word : instruction.original;
  const auto space = text.find(' ');
  for (std::size_t i = 0; i < std::min(space, text.size()); ++i) {
    if (text[i] >= 'a' && text[i] <= 'z') {
      text[i] = static_cast<char>(text[i] - 'a' + 'A');
    }
  }
  return text;
}

Result<BuildResult> Executor::run() {
  for (const auto& entry : m_options.imported_cache) {
    m_imported.emplace(entry.key.to_string(), entry);
  }
  if (m_plan.stages.empty()) {
    return fail(Code::dockerfile, "the Dockerfile has no stage to build");
  }
  std::unique_lock lock(m_mutex);
  if (m_options.jobs > 1 && m_plan.stages.size() > 1) {
    MB_TRY(run_stages_in_parallel(lock));
  } else {
    for (const auto& stage : m_plan.stages) {
      MB_TRY(run_stage(stage));
      m_built.insert(stage.index);
    }
  }
  if (m_stat_cache) {
    // Only an accelerator: a failure to save costs the next build some reading.
    if (auto saved = m_stat_cache->save(); !saved) {
      log(0, "warning: " + saved.error().what());
    }
  }
  return finish(m_stages.at(m_plan.stages.back().index));
}

// Every stage gets a thread at once; each waits for the stages it uses, then for a job slot,
// in Dockerfile order of arrival. A stage that fails stops the others: their running steps are
// killed and they end before their next instruction. The first failure is the build's error.
Result<void> Executor::run_stages_in_parallel(std::unique_lock<std::mutex>& lock) {
  std::vector<std::thread> threads;
  for (const auto& stage : m_plan.stages) {
    try {
      threads.emplace_back([this, &stage] { stage_thread(stage); });
    } catch (const std::system_error& error) {
      // The threads already started see the failure and end without building.
      m_failure = Error(Code::io, std::string("start a thread for a stage: ") + error.what());
      break;
    }
  }
  m_changed.notify_all();
  lock.unlock();
  for (auto& thread : threads) {
    thread.join();
  }
  lock.lock();
  if (m_failure) {
    return fail(*m_failure);
  }
  return {};
}

bool Executor::dependencies_built(const PlanStage& stage) const {
  if (stage.base.kind == SourceKind::stage && !m_built.contains(stage.base.stage)) {
    return false;
  }
  return std::all_of(stage.sources.begin(), stage.sources.end(), [&](const auto& source) {
    return source.kind != SourceKind::stage || m_built.contains(source.stage);
  });
}

void Executor::stage_thread(const PlanStage& stage) {
  std::unique_lock lock(m_mutex);
  const unsigned jobs = std::max(1u, m_options.jobs);
  m_changed.wait(lock, [&] { return m_failure || dependencies_built(stage); });
  m_changed.wait(lock, [&] { return m_failure || m_running < jobs; });
  if (!m_failure) {
    ++m_running;
    auto built = run_stage(stage);
    --m_running;
    if (!built && !m_failure) {
      m_failure = std::move(built).error();
      runtime::cancel_running_sandboxes();
    }
  }
  m_built.insert(stage.index);
  m_changed.notify_all();
}

void Executor::wait_for_stage(int index) {
  if (m_built.contains(index) || m_running == 0) {
    return; // built, or not in a stage thread (one stage after the other)
  }
  const unsigned jobs = std::max(1u, m_options.jobs);
  --m_running;
  m_changed.notify_all();
  wait_until([&] { return m_failure || m_built.contains(index); });
  wait_until([&] { return m_failure || m_running < jobs; });
  ++m_running;
}

Result<void> Executor::run_stage(const PlanStage& stage) {
  std::vector<std::string> triggers;
  std::optional<StageState> state;
  std::optional<LoadedImage> image;
  switch (stage.base.kind) {
  case SourceKind::scratch:
    state.emplace(stage, ImageConfigBuilder::empty_image(stage.platform));
    state->scope = stage.initial_scope;
    break;
  case SourceKind::stage: {
    const auto base = m_stages.find(stage.base.stage);
    if (base == m_stages.end()) {
      return fail(Error(Code::internal, "stage " + std::to_string(stage.base.stage) +
                                            " was not built before the stage using it")
                      .at(stage.location));
    }
    state.emplace(stage, base->second.builder.config());
    // An earlier stage's own ONBUILD lines fire here (BuildKit initOnBuildTriggers).
    triggers = base->second.builder.config().config.on_build;
    state->layers = base->second.layers;
    state->scope = base->second.scope;
    break;
  }
  case SourceKind::image: {
    auto loaded = resolve_image(stage.base.image, stage.platform);
    if (!loaded) {
      return fail(std::move(loaded).error().at(stage.location));
    }
    image = std::move(*loaded);
    triggers = image->config.config.on_build;
    state.emplace(stage, image->config);
    // The base's layer blobs stay as they are; only Docker media types are written as their
    // OCI equivalents, as BuildKit's exporter converts them for an OCI manifest.
    for (auto layer : image->manifest.layers) {
      layer.media_type = std::string(oci::to_oci(layer.media_type));
      state->layers.push_back(std::move(layer));
    }
    state->scope = stage.initial_scope;
    break;
  }
  }
  StageState& st = *state;
  // The stage's first cache key: what it starts from (docs/cache.md).
  if (stage.base.kind == SourceKind::stage) {
    st.cache_key = m_stages.at(stage.base.stage).cache_key;
  } else {
    CacheKey from("from");
    from.add("platform", oci::to_string(stage.platform));
    // What shapes every layer of the build without being an instruction: mtimes clamped to
    // the epoch, and the blob's compression.
    from.add("source-date-epoch",
             m_options.source_date_epoch ? std::to_string(*m_options.source_date_epoch) : "");
    from.add("compression",
             std::string(oci::compression_name(m_options.compression)) + " " +
                 (m_options.compression_level ? std::to_string(*m_options.compression_level)
                                              : std::string("default")));
    from.add("base", image ? image->manifest_digest.to_string() : std::string("scratch"));
    st.cache_key = dump_key(from);
  }
  if (stage.base.kind == SourceKind::stage) {
    const StageState& base = m_stages.at(stage.base.stage);
    st.start_clock = base.clock ? base.clock : base.start_clock;
  } else if (image && !image->config.created.empty()) {
    st.start_clock = image->config.created;
  } else {
    for (const auto& source : stage.sources) {
      const auto found =
          source.kind == SourceKind::stage ? m_stages.find(source.stage) : m_stages.end();
      if (found != m_stages.end()) {
        const auto& clock = found->second.clock ? found->second.clock : found->second.start_clock;
        if (clock && (!st.start_clock || *clock > *st.start_clock)) {
          st.start_clock = clock;
        }
      }
    }
  }
  st.use_cache = !m_options.no_cache && !m_options.no_cache_filter.contains(to_lower(stage.name)) &&
                 !m_options.no_cache_filter.contains(std::to_string(stage.index));
  st.builder.start_stage(stage.platform);
  if (stage.base.kind != SourceKind::stage) {
    for (const auto& entry : st.builder.config().config.env) {
      const auto eq = entry.find('=');
      st.scope.set_env(entry.substr(0, eq), eq == std::string::npos ? "" : entry.substr(eq + 1));
    }
  }
  if (st.builder.config().config.working_dir.empty()) {
    st.builder.config().config.working_dir = "/";
  } else {
    st.builder.config().config.working_dir =
        normalize_workdir("/", st.builder.config().config.working_dir);
  }

  // The commands: ONBUILD triggers first, located at the FROM line as BuildKit does.
  std::vector<Command> commands;
  for (const auto& trigger : triggers) {
    auto instruction = parse_trigger(trigger, m_plan.file);
    if (!instruction) {
      return fail(std::move(instruction)
                      .error()
                      .wrap("ONBUILD trigger \"" + trigger + "\"")
                      .at(stage.location));
    }
    instruction->location = stage.location;
    commands.push_back({std::move(*instruction), true});
  }
  for (const auto& instruction : stage.instructions) {
    commands.push_back({instruction, false});
  }

  // Progress names count as buildah does: FROM, every trigger, every instruction. Every stage
  // opens with its FROM line, which alone carries the stage's name (docs/cli.md, "Progress").
  st.display = m_plan.stage_count <= 1 ? std::string()
               : !stage.name.empty()   ? stage.name
                                       : "stage-" + std::to_string(stage.index);
  st.step_total = 1 + static_cast<int>(commands.size());
  st.step_index = 1;
  {
    std::string from = "FROM scratch";
    if (image) {
      from = "FROM " + image->reference + "@" + image->manifest_digest.to_string();
    } else if (stage.base.kind == SourceKind::stage) {
      const PlanStage* base = m_plan.stage(stage.base.stage);
      from = "FROM " + (base != nullptr && !base->name.empty() ? base->name
                                                               : std::to_string(stage.base.stage));
    }
    if (!stage.name.empty()) {
      from += " AS " + stage.name;
    }
    end_vertex(start_vertex(step_name(st, from, false)), {});
  }

  st.base_layers = st.layers.size();
  // `# minibuild:squash` ... `# minibuild:layer` (docs/squash.md): the layers of a group are
  // folded into one when the group ends.
  int group = 0;
  std::size_t group_start = 0;
  for (const auto& command : commands) {
    const int command_group = command.onbuild ? 0 : command.instruction.squash_group;
    if (command_group != group) {
      if (group != 0) {
        MB_TRY(fold_layers(st, group_start, "squash group"));
      }
      group = command_group;
      group_start = st.layers.size();
    }
    if (m_failure) {
      return fail(Code::interrupted, "stopped: another stage failed");
    }
    st.builder.set_history_time(history_time(st));
    ++st.step_index; // its "STEP I/J" (step_name)
    auto outcome = dispatch(st, command);
    if (!outcome) {
      return fail(std::move(outcome).error().at(command.instruction.location));
    }
  }
  if (group != 0) {
    MB_TRY(fold_layers(st, group_start, "squash group"));
  }
  if (squashes(stage)) {
    const bool whole =
        m_options.squash == SquashMode::all && stage.index == m_plan.stages.back().index;
    MB_TRY(fold_layers(st, whole ? 0 : st.base_layers, whole ? "squash-all" : "squash"));
  }
  m_stages.erase(stage.index);
  m_stages.emplace(stage.index, std::move(st));
  return {};
}

Result<void> Executor::dispatch(StageState& st, const Command& command) {
  const Instruction& instruction = command.instruction;
  switch (instruction.kind()) {
  case InstructionKind::from:
    return fail(Code::internal, "FROM inside a stage");
  case InstructionKind::run:
    return run_step(st, command);
  case InstructionKind::arg:
    return arg_step(st, instruction);
  case InstructionKind::env: {
    MB_TRY_ASSIGN(
        Instruction expanded,
        dockerfile::expand_instruction(instruction, st.scope.expansion_environment(), m_lexer));
    MB_TRY(dockerfile::apply_env(st.scope, instruction, m_lexer));
    return st.builder.apply(expanded);
  }
  case InstructionKind::workdir: {
    MB_TRY_ASSIGN(
        Instruction expanded,
        dockerfile::expand_instruction(instruction, st.scope.expansion_environment(), m_lexer));
    return workdir_step(st, command, expanded);
  }
  case InstructionKind::copy:
  case InstructionKind::add: {
    MB_TRY_ASSIGN(
        Instruction expanded,
        dockerfile::expand_instruction(instruction, st.scope.expansion_environment(), m_lexer));
    return copy_step(st, command, expanded);
  }
  case InstructionKind::cmd:
  case InstructionKind::label:
  case InstructionKind::maintainer:
  case InstructionKind::expose:
  case InstructionKind::entrypoint:
  case InstructionKind::volume:
  case InstructionKind::user:
  case InstructionKind::onbuild:
  case InstructionKind::stopsignal:
  case InstructionKind::healthcheck:
  case InstructionKind::shell: {
    MB_TRY_ASSIGN(
        Instruction expanded,
        dockerfile::expand_instruction(instruction, st.scope.expansion_environment(), m_lexer));
    return st.builder.apply(expanded);
  }
  }
  return fail(Code::internal, "unknown instruction kind");
}

Result<std::optional<runtime::SeccompProgram>> Executor::seccomp_program() {
  if (!m_seccomp) {
    MB_TRY_ASSIGN(auto program,
                  sandbox_seccomp(m_options.seccomp_profile, m_options.seccomp_unconfined,
                                  m_options.capabilities));
    m_seccomp.emplace(std::move(program));
  }
  return *m_seccomp;
}

// RUN. With the overlay driver the stage's layers (unpacked in the store) are the lower dirs and
// the upper dir becomes the step's layer and, adopted by the store, the next step's top lower
// dir. With the vfs driver the step runs on the stage's materialised root filesystem and its
// layer is what changed there (tree_diff.hpp).
Result<void> Executor::run_step(StageState& st, const Command& command) {
  const auto& run = command.instruction.as<dockerfile::RunInstruction>();
  // The command is the shell's to expand, not the builder's: show it as written.
  std::string text = command.instruction.original;
  for (std::size_t i = 0; i < std::min(text.find(' '), text.size()); ++i) {
    if (text[i] >= 'a' && text[i] <= 'z') {
      text[i] = static_cast<char>(text[i] - 'a' + 'A');
    }
  }
  const int vertex = start_vertex(step_name(st, text, command.onbuild));
  auto outcome = [&]() -> Result<void> {
    if (run.security == dockerfile::RunSecurity::insecure) {
      return fail(Code::unsupported, "RUN --security=insecure is not supported: steps always "
                                     "run in the sandbox (docs/security.md)");
    }
    if (m_options.storage_driver == StorageDriver::vfs) {
      m_vfs = true;
    }
    // Cache mounts the build uses travel with --cache-to ...,cache-mounts=true, whether the
    // step runs or hits: a fully cached build must not drop them from the exported cache.
    for (const auto& flag : run.mounts) {
      if (flag.type == dockerfile::MountType::cache) {
        m_used_cache_mounts.insert(flag.id.empty() ? flag.target : flag.id);
      }
    }
    return cached_step(st, run_cache_key(st, command), vertex, "run",
                       [&] { return run_step_once(st, command, vertex); });
  }();
  end_vertex(vertex, outcome);
  return outcome;
}

std::pair<dockerfile::Environment, dockerfile::Environment>
Executor::step_arguments(const StageState& st) const {
  // Build args reach the step's environment, never the config; ENV of the same name wins.
  dockerfile::Environment visible_args;
  for (const auto& [name, value] : st.scope.args().entries()) {
    if (!st.scope.env().contains(name)) {
      visible_args.set(name, value);
    }
  }
  // Proxy --build-args reach every step without an ARG, and not the history (BuildKit).
  dockerfile::Environment step_args = visible_args;
  for (const auto& [name, value] : m_plan.proxy_env.entries()) {
    if (!step_args.contains(name) && !st.scope.env().contains(name)) {
      step_args.set(name, value);
    }
  }
  return {visible_args, step_args};
}

// One RUN with the build's storage driver, falling back from overlay to vfs when allowed.
Result<void> Executor::run_step_once(StageState& st, const Command& command, int vertex) {
  {
    if (!m_vfs) {
      auto ran = run_step_with(st, command, vertex, false);
      // Kernels before 5.11 refuse overlay in a user namespace: fall back to copies once.
      if (ran || m_options.storage_driver != StorageDriver::auto_ ||
          !ran.error().has_tag(runtime::k_overlay_refused)) {
        return ran;
      }
      log(vertex, "notice: overlayfs refused (" + ran.error().message() +
                      "); using the vfs driver for this build: copies, slower (docs/run.md)");
      m_vfs = true;
    }
    return run_step_with(st, command, vertex, true);
  }
}

// RUN's cache key (docs/cache.md): what the command, its environment and its mounts are, on
// top of the stage's filesystem so far. nullopt: not cacheable yet (a bind mount of the
// build context, whose content is not keyed).
std::optional<oci::Digest> Executor::run_cache_key(const StageState& st, const Command& command) {
  const auto& run = command.instruction.as<dockerfile::RunInstruction>();
  const oci::ContainerConfig& config = st.builder.config().config;
  CacheKey key("run");
  key.add("parent", st.cache_key.to_string());
  key.add("platform", oci::to_string(st.stage->platform));
  key.add_list("argv", command_argv(run.command, config.shell));
  std::vector<std::string> heredocs;
  for (const auto& heredoc : run.command.heredocs) {
    heredocs.push_back(heredoc.content);
  }
  key.add_list("heredocs", heredocs);
  const auto [visible_args, step_args] = step_arguments(st);
  key.add_list("env", run_environment(config.env, step_args, "$HOME"));
  key.add_list("history-args", run_environment({}, visible_args, ""));
  key.add("user", config.user);
  key.add("workdir", config.working_dir);
  const runtime::NetworkMode network =
      run.network == dockerfile::RunNetwork::none   ? runtime::NetworkMode::none
      : run.network == dockerfile::RunNetwork::host ? runtime::NetworkMode::host
                                                    : m_options.network;
  key.add("network", network == runtime::NetworkMode::none ? "none" : "host");
  if (m_options.capabilities != runtime::default_capabilities()) {
    // Only when --cap-add/--cap-drop changed them, so that the keys of other builds stay.
    key.add("capabilities", runtime::format_capabilities(m_options.capabilities));
  }
  for (const auto& mount : run.mounts) {
    key.add("mount", mount.spec);
    if (mount.type == dockerfile::MountType::bind && mount.from.empty()) {
      // The step reads the context below `source` as it is on disk (.dockerignore does not
      // hide files from a bind mount): the key holds all of it, as a COPY of it would.
      if (!load_stat_cache()) {
        return std::nullopt; // no key: the step runs
      }
      ContextOptions options;
      options.ignore = IgnoreFiles::none;
      auto context = BuildContext::open(m_context.path(), options);
      CopyStep whole;
      whole.sources = {mount.source.empty() ? std::string(".") : mount.source};
      whole.dest = "/mount/";
      auto digest = context ? copy_sources_digest(*context, whole, &*m_stat_cache)
                            : Result<oci::Digest>(fail(std::move(context).error()));
      if (!digest) {
        return std::nullopt; // the mount itself will report what is wrong
      }
      key.add("mount-context", digest->to_string());
      continue;
    }
    if (!mount.from.empty()) {
      // A stage's content is its key; an image is named (its digest is pinned by the store).
      std::string from_key = "image " + mount.from;
      for (const auto& [index, state] : m_stages) {
        if (std::to_string(index) == mount.from || state.stage->name == to_lower(mount.from)) {
          from_key = "stage " + state.cache_key.to_string();
        }
      }
      key.add("mount-from", from_key);
    }
  }
  return dump_key(key);
}

Result<void> Executor::run_step_with(StageState& st, const Command& command, int vertex, bool vfs) {
  const auto& run = command.instruction.as<dockerfile::RunInstruction>();
  std::vector<std::string> lowers;
  BaseFileReader reader;
  TreeSnapshot before;
  if (vfs) {
    drop_view(st); // the vfs driver changes the root in place: it must be a copy
    MB_TRY(ensure_rootfs(st));
    reader = base_image_of(st.root).read_file;
    MB_TRY_ASSIGN(before, snapshot_tree(m_scratch->absolute(st.rootfs_rel)));
  } else {
    MB_TRY_ASSIGN(lowers, unlocked([&] {
                    return unpacked_lower_dirs(m_store, st.layers,
                                               st.builder.config().rootfs.diff_ids);
                  }));
    reader = [&lowers](const std::string& path) { return read_file_from_layers(lowers, path); };
  }
  const oci::ContainerConfig& config = st.builder.config().config;
  MB_TRY_ASSIGN(RunUser user, resolve_run_user(config.user, reader));

  const auto [visible_args, step_args] = step_arguments(st);
  runtime::SandboxSpec spec;
  MB_TRY_ASSIGN(std::string run_rel, m_scratch->new_dir("run"));
  const std::string run_dir = m_scratch->absolute(run_rel);
  spec.scratch_dir = run_dir + "/sandbox";
  if (vfs) {
    spec.rootfs.plain_dir = m_scratch->absolute(st.rootfs_rel);
  } else {
    spec.rootfs.lower_dirs = lowers;
    spec.rootfs.upper_dir = run_dir + "/upper";
    spec.rootfs.work_dir = run_dir + "/work";
  }
  // The plain dir (vfs) is the stage's root and exists already.
  MB_TRY(make_dirs({&spec.scratch_dir, &spec.rootfs.upper_dir, &spec.rootfs.work_dir}));
  MB_TRY_ASSIGN(RunMounts mounts, run_mounts(st, command, run_dir));
  spec.mounts = std::move(mounts.mounts);
  spec.process.argv = command_argv(run.command, config.shell);
  const auto& heredocs = run.command.heredocs;
  if (run.command.shell_form && heredocs.size() == 1 && run.command.args.size() == 1 &&
      heredocs.front().content.rfind("#!", 0) == 0) {
    // A script with a shebang runs as a file, so its interpreter is the one it names
    // (BuildKit does the same). It lives on the step's /dev tmpfs: never in the layer.
    const std::string script = run_dir + "/heredoc";
    UniqueFd file(::open(script.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755));
    const std::string& body = heredocs.front().content;
    if (!file ||
        ::write(file.get(), body.data(), body.size()) != static_cast<ssize_t>(body.size())) {
      return fail_errno(errno, "write \"" + script + "\"");
    }
    runtime::MountSpec mount;
    mount.source = script;
    mount.target = "/dev/minibuild-heredoc";
    mount.read_only = true;
    spec.mounts.push_back(std::move(mount));
    spec.process.argv = {"/dev/minibuild-heredoc"};
  }
  spec.process.env = run_environment(config.env, step_args, user.home);
  spec.process.env.insert(spec.process.env.end(), mounts.env.begin(), mounts.env.end());
  spec.process.cwd = config.working_dir.empty() ? "/" : config.working_dir;
  spec.process.uid = user.uid;
  spec.process.gid = user.gid;
  spec.process.supplementary_gids = user.groups;
  spec.process.capabilities = m_options.capabilities;
  MB_TRY_ASSIGN(spec.process.seccomp, seccomp_program());
  spec.network = run.network == dockerfile::RunNetwork::none   ? runtime::NetworkMode::none
                 : run.network == dockerfile::RunNetwork::host ? runtime::NetworkMode::host
                                                               : m_options.network;
  OutputTail tail(10);
  const auto to_progress = [&](std::string_view line) { log(vertex, line); };
  spec.output = [&](std::string_view chunk) {
    const std::lock_guard relock(m_mutex); // called while unlocked() runs the step
    tail.feed(chunk, to_progress);
  };
  auto ran = unlocked([&] { return runtime::run_in_sandbox(spec); });
  tail.finish(to_progress);
  auto stubs = read_file(spec.scratch_dir + "/stubs");
  const std::string stubs_text = stubs ? *stubs : std::string();
  if (vfs) {
    // The root is the stage's own: mount points go whatever happened. Empty directories that
    // held them are the image's, not copies, so they stay.
    MB_TRY(remove_mount_stubs(spec.rootfs.plain_dir, stubs_text, StubParents::keep));
  }
  if (m_failure) {
    // Killed by cancel_running_sandboxes(), or ended on its own while another stage failed.
    return fail(Code::interrupted, "cancelled: another stage failed");
  }
  if (!ran) {
    // A command missing from the image is the step failing, not a name the user gave us.
    Error error = std::move(ran).error();
    return fail(error.code() == Code::not_found ? std::move(error).with_code(Code::build_failed)
                                                : std::move(error));
  }
  const std::string created_by = run_created_by(spec.process.argv, visible_args);
  if (ran->exit_code != 0) {
    std::string message = "process \"" + created_by.substr(4) +
                          "\" did not complete successfully: exit code " +
                          std::to_string(ran->exit_code);
    if (ran->signal != 0) {
      message += " (killed by signal " + std::to_string(ran->signal) + ")";
    }
    if (!tail.lines().empty()) {
      message += "\nlast lines of its output:";
      for (const auto& line : tail.lines()) {
        message += "\n  " + line;
      }
    }
    if (vfs) {
      // The copy changed in place: materialise it again at the next step that needs it.
      st.root.reset();
    }
    return fail(Code::build_failed, message);
  }

  std::string layer_tree = spec.rootfs.upper_dir;
  if (vfs) {
    layer_tree = run_dir + "/changes";
    if (::mkdir(layer_tree.c_str(), 0755) != 0) {
      return fail_errno(errno, "mkdir \"" + layer_tree + "\"");
    }
    MB_TRY(stage_changes(spec.rootfs.plain_dir, before, layer_tree));
  } else {
    MB_TRY(remove_mount_stubs(layer_tree, stubs_text));
  }
  layer::ExportOptions export_options;
  export_options.kind = layer::TreeKind::overlay_upper;
  export_options.compression = m_options.compression;
  export_options.level = m_options.compression_level;
  export_options.source_date_epoch = m_options.source_date_epoch;
  MB_TRY_ASSIGN(auto writer, m_store.blobs().open_writer({}));
  MB_TRY_ASSIGN(layer::ExportResult exported,
                unlocked([&] { return layer::export_layer(layer_tree, export_options, *writer); }));
  for (const auto& warning : exported.warnings) {
    log(vertex, "warning: " + warning);
  }
  if (exported.entries == 0) {
    // Nothing changed: BuildKit keeps the history entry and drops the empty layer.
    st.builder.add_history(created_by + " # buildkit", true);
    m_scratch->remove(run_rel);
    return {};
  }
  MB_TRY_ASSIGN(store::BlobInfo info, unlocked([&] { return writer->commit(); }));
  oci::Descriptor blob;
  blob.media_type = exported.media_type;
  blob.digest = info.digest;
  blob.size = static_cast<std::int64_t>(info.size);
  if (vfs) {
    // The materialised root already holds the change: record the layer without applying it.
    st.layers.push_back(blob);
    st.builder.add_layer(exported.diff_id, created_by);
  } else {
    // The upper dir becomes a lower dir: its overlay mount must be gone first.
    MB_TRY(unlocked([&]() -> Result<store::LayerInfo> {
      runtime::finish_sandbox_teardown();
      return m_store.layers().adopt(exported.diff_id, layer_tree);
    }));
    MB_TRY(add_layer(st, blob, exported.diff_id, created_by));
  }
  m_scratch->remove(run_rel);
  return {};
}

// RUN --mount (BuildKit's forms, docs/dockerfile.md): bind from the context or a stage (read-only),
// cache directories kept in the store, secrets from --secret, tmpfs.
Result<Executor::RunMounts> Executor::run_mounts(StageState& st, const Command& command,
                                                 const std::string& run_dir) {
  RunMounts result;
  const auto& run = command.instruction.as<dockerfile::RunInstruction>();
  std::size_t counter = 0;
  for (const auto& flag : run.mounts) {
    if (!flag.resolved) {
      return fail(Code::unsupported, "--mount=" + flag.spec +
                                         ": variables in --mount are not "
                                         "supported yet");
    }
    runtime::MountSpec mount;
    mount.target = flag.target;
    switch (flag.type) {
    case dockerfile::MountType::tmpfs:
      mount.kind = runtime::MountSpec::Kind::tmpfs;
      mount.options = flag.size ? "size=" + std::to_string(*flag.size) : "";
      break;
    case dockerfile::MountType::bind: {
      std::string root = std::filesystem::absolute(m_context.path()).lexically_normal().string();
      if (!flag.from.empty()) {
        MB_TRY_ASSIGN(root, source_root(st, flag.from, command.instruction.location));
      }
      MB_TRY_ASSIGN(InRoot in_root, InRoot::open(root, Resolution::auto_detect));
      std::string rel = flag.source;
      while (!rel.empty() && rel.front() == '/') {
        rel.erase(0, 1);
      }
      auto found = in_root.locate(rel, FollowFinal::yes);
      if (!found) {
        return fail(Code::build_failed,
                    "--mount=" + flag.spec + ": " + (flag.source.empty() ? "/" : flag.source) +
                        " not found in " +
                        (flag.from.empty() ? "the build context" : "stage " + flag.from));
      }
      mount.source = root + "/" + found->physical;
      mount.read_only = true;
      if (!flag.read_only) {
        // `rw` (BuildKit): the step may write, and its writes are thrown away with the step.
        // It gets a copy of the source, made by the copy engine as `COPY <source> /` would.
        ContextOptions options;
        options.ignore = IgnoreFiles::none;
        MB_TRY_ASSIGN(BuildContext source_context, BuildContext::open(root, options));
        CopyStep whole;
        whole.sources = {rel.empty() ? std::string(".") : rel};
        whole.dest = "/";
        const std::string copy = run_dir + "/bind-" + std::to_string(++counter);
        if (::mkdir(copy.c_str(), 0755) != 0) {
          return fail_errno(errno, "mkdir \"" + copy + "\"");
        }
        MB_TRY_CONTEXT(
            unlocked([&] { return stage_copy(source_context, whole, BaseImage{}, copy); }),
            "--mount=" + flag.spec + ": copy the source for a writable bind mount");
        // A file lands under its name as written (a symlink source is copied as its target).
        const std::string name = std::filesystem::path(rel).lexically_normal().filename();
        mount.source = S_ISDIR(found->st.st_mode) ? copy : copy + "/" + name;
        mount.read_only = false;
      }
      break;
    }
    case dockerfile::MountType::cache: {
      // One directory per id (the target when no id is given), kept under the store root.
      const std::string id = flag.id.empty() ? flag.target : flag.id;
      const std::string rel = "cache/mounts/" + oci::sha256_of(id).hex();
      MB_TRY(m_store.fs().make_dir("cache"));
      MB_TRY(m_store.fs().make_dir("cache/mounts"));
      auto stat = m_store.fs().stat(rel);
      MB_TRY(stat);
      const std::string path = m_store.fs().absolute(rel);
      if (!*stat) {
        MB_TRY(m_store.fs().make_dir(rel));
        if (::chmod(path.c_str(), flag.mode.value_or(0755)) != 0 ||
            ::chown(path.c_str(), flag.uid.value_or(0), flag.gid.value_or(0)) != 0) {
          return fail_errno(errno, "prepare the cache mount \"" + path + "\"");
        }
      }
      const auto sharing = flag.sharing.value_or(dockerfile::MountSharing::shared);
      mount.source = path;
      if (sharing == dockerfile::MountSharing::locked) {
        // A parallel stage may hold it for a whole RUN: wait without the executor's lock.
        MB_TRY_ASSIGN(UniqueFd lock, unlocked([&] {
                        return m_store.fs().lock(rel, store::LockMode::exclusive, store::Wait::yes);
                      }));
        result.locks.push_back(std::move(lock));
      } else if (sharing == dockerfile::MountSharing::private_) {
        auto lock = m_store.fs().lock(rel, store::LockMode::exclusive, store::Wait::no);
        if (lock) {
          result.locks.push_back(std::move(*lock));
        } else {
          // In use by another build: this step gets a fresh, throw-away directory.
          mount.source = run_dir + "/cache-" + std::to_string(++counter);
          if (::mkdir(mount.source.c_str(), flag.mode.value_or(0755)) != 0) {
            return fail_errno(errno, "mkdir \"" + mount.source + "\"");
          }
        }
      }
      break;
    }
    case dockerfile::MountType::secret: {
      const std::string id =
          flag.id.empty() ? flag.target.substr(flag.target.rfind('/') + 1) : flag.id;
      const auto secret = m_options.secrets.find(id);
      if (secret == m_options.secrets.end()) {
        if (flag.required) {
          return fail(Code::build_failed, "--mount=" + flag.spec + ": secret \"" + id +
                                              "\" was not given (--secret id=" + id + ",...)");
        }
        continue;
      }
      if (flag.env) {
        result.env.push_back(*flag.env + "=" + secret->second);
        if (flag.target.empty()) {
          continue;
        }
      }
      mount.target = flag.target.empty() ? "/run/secrets/" + id : flag.target;
      mount.source = run_dir + "/secret-" + std::to_string(++counter);
      UniqueFd file(::open(mount.source.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                           flag.mode.value_or(0400)));
      if (!file || ::write(file.get(), secret->second.data(), secret->second.size()) !=
                       static_cast<ssize_t>(secret->second.size())) {
        return fail_errno(errno, "write the secret \"" + id + "\"");
      }
      if (::fchown(file.get(), flag.uid.value_or(0), flag.gid.value_or(0)) != 0 ||
          ::fchmod(file.get(), flag.mode.value_or(0400)) != 0) {
        return fail_errno(errno, "set the owner of the secret \"" + id + "\"");
      }
      mount.read_only = true;
      break;
    }
    case dockerfile::MountType::ssh:
      return fail(Code::unsupported, "--mount=type=ssh is not supported yet");
    }
    if (mount.target.empty() || mount.target.front() != '/') {
      mount.target = normalize_workdir(st.builder.config().config.working_dir, mount.target);
    }
    result.mounts.push_back(std::move(mount));
  }
  return result;
}

Result<void> Executor::arg_step(StageState& st, const Instruction& instruction) {
  MB_TRY(
      dockerfile::apply_arg(st.scope, instruction, m_plan.global_args, m_plan.build_args, m_lexer));
  // The value BuildKit's dispatchArg records: --build-arg, else the default as expanded, else
  // the global value, else none.
  std::vector<ArgRecord> records;
  for (const auto& declaration : instruction.as<dockerfile::ArgInstruction>().args) {
    std::optional<std::string> value;
    if (const auto given = m_plan.build_args.find(declaration.name);
        given != m_plan.build_args.end()) {
      value = given->second;
    } else if (declaration.default_value) {
      if (const auto resolved = st.scope.args().get(declaration.name)) {
        value = std::string(*resolved);
      }
    } else if (const auto global = m_plan.global_args.get(declaration.name)) {
      value = std::string(*global);
    }
    records.emplace_back(declaration.name, std::move(value));
  }
  st.builder.add_arg(records);
  return {};
}

// The store's copy of an image, fetched first (--pull=always) or when the store lacks it
// (--pull=missing), at most once per reference and platform in a build.
Result<LoadedImage> Executor::resolve_image(const std::string& reference,
                                            const dockerfile::Platform& platform) {
  const std::string key = reference + " " + oci::to_string(platform);
  // A parallel stage pulling the same reference: use what it brings.
  wait_until([&] { return !m_fetching.contains(key); });
  const bool can_fetch = m_options.fetch_image && !m_fetched.contains(key);
  const auto fetch = [&]() -> Result<void> {
    m_fetched.insert(key);
    m_fetching.insert(key);
    auto fetched = unlocked([&] { return m_options.fetch_image(reference, platform); });
    m_fetching.erase(key);
    m_changed.notify_all();
    return fetched;
  };
  if (can_fetch && m_options.always_fetch) {
    MB_TRY(fetch());
    return load_image(m_store, reference, platform);
  }
  auto loaded = load_image(m_store, reference, platform);
  if (loaded || loaded.error().code() != Code::not_found || !can_fetch) {
    return loaded;
  }
  MB_TRY(fetch());
  return load_image(m_store, reference, platform);
}

Result<void> Executor::ensure_rootfs(StageState& st) {
  if (st.root) {
    return {};
  }
  if (!m_vfs && m_options.mount_views) {
    // A view of the unpacked layers costs a mount; a copy costs every file of the image.
    auto lowers = unlocked([&] {
      return unpacked_lower_dirs(m_store, st.layers, st.builder.config().rootfs.diff_ids);
    });
    MB_TRY(lowers);
    auto view = mount_view(*lowers);
    if (view) {
      MB_TRY_ASSIGN(InRoot root, InRoot::open(m_scratch->absolute(*view), Resolution::auto_detect));
      st.rootfs_rel = *view;
      st.root = std::make_shared<const InRoot>(std::move(root));
      st.root_is_view = true;
      return {};
    }
    m_options_views_refused = true; // one refusal is enough: copies from now on
  }
  MB_TRY_ASSIGN(std::string rel, m_scratch->new_dir("rootfs"));
  const std::string dir = m_scratch->absolute(rel);
  MB_TRY_CONTEXT(unlocked([&] {
                   return apply_layers(m_store, st.layers, st.builder.config().rootfs.diff_ids,
                                       dir);
                 }),
                 "materialise the root filesystem of stage " + std::to_string(st.stage->index));
  MB_TRY_ASSIGN(InRoot root, InRoot::open(dir, Resolution::auto_detect));
  st.rootfs_rel = rel;
  st.root = std::make_shared<const InRoot>(std::move(root));
  st.root_is_view = false;
  return {};
}

// A read-only overlay of `lowers` (top first) in the scratch directory, with empty directories
// below them: an overlay without an upper dir needs two lower dirs (a stage may have one or
// none).
Result<std::string> Executor::mount_view(const std::vector<std::string>& lowers) {
  if (m_options_views_refused) {
    return fail(Code::sandbox, "overlay views were refused earlier in this build");
  }
  // A lower dir that was a step's upper dir must be free of its overlay first.
  runtime::finish_sandbox_teardown();
  MB_TRY_ASSIGN(std::string rel, m_scratch->new_dir("view"));
  MB_TRY_ASSIGN(std::string empty, m_scratch->new_dir("view-base"));
  std::vector<std::string> all = lowers;
  all.push_back(m_scratch->absolute(empty));
  if (all.size() < 2) {
    // Without an upper dir overlayfs wants two lower dirs at least (FROM scratch has none).
    MB_TRY_ASSIGN(std::string second, m_scratch->new_dir("view-base"));
    all.push_back(m_scratch->absolute(second));
  }
  MB_TRY(runtime::mount_overlay_view(all, m_scratch->absolute(rel)));
  m_views.push_back(m_scratch->absolute(rel));
  return rel;
}

// After a new layer: a copy takes the layer on; a view is dropped and mounted again on demand.
Result<void> Executor::advance_rootfs(StageState& st, const oci::Descriptor& blob,
                                      const oci::Digest& diff_id) {
  if (!st.root) {
    return {};
  }
  if (st.root_is_view) {
    drop_view(st);
    return {};
  }
  return apply_layers(m_store, {blob}, {diff_id}, m_scratch->absolute(st.rootfs_rel));
}

void Executor::drop_view(StageState& st) {
  if (!st.root_is_view) {
    return;
  }
  const std::string dir = m_scratch->absolute(st.rootfs_rel);
  st.root.reset();
  st.root_is_view = false;
  ::umount2(dir.c_str(), MNT_DETACH);
  std::erase(m_views, dir);
}

// The root filesystem `COPY --from=<from>` reads: an earlier stage (by name or index), a
// stored image, or scratch.
Result<std::string> Executor::source_root(StageState& st, const std::string& from,
                                          const SourceRange& location) {
  std::optional<dockerfile::StageSource> source;
  for (const auto& candidate : st.stage->sources) {
    if (candidate.use == dockerfile::SourceUse::copy_from && candidate.location == location) {
      source = candidate;
      break;
    }
  }
  if (!source) {
    // ONBUILD triggers are not in the plan: resolve as the plan would.
    source.emplace();
    const bool numeric = !from.empty() && from.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) {
      source->kind = SourceKind::stage;
      source->stage = std::stoi(from);
    } else if (to_lower(from) == "scratch") {
      source->kind = SourceKind::scratch;
    } else {
      source->kind = SourceKind::image;
      source->image = from;
      // Earlier stages only, as a Dockerfile's own COPY --from sees them.
      for (const auto& candidate : m_plan.stages) {
        if (candidate.index < st.stage->index && candidate.name == to_lower(from)) {
          source->kind = SourceKind::stage;
          source->stage = candidate.index;
        }
      }
    }
  }
  switch (source->kind) {
  case SourceKind::scratch:
    return m_scratch->new_dir("scratch").map(
        [&](const std::string& rel) { return m_scratch->absolute(rel); });
  case SourceKind::stage: {
    wait_for_stage(source->stage);
    const auto found = m_stages.find(source->stage);
    if (found == m_stages.end()) {
      return fail(Code::not_found, "COPY --from=" + from + ": stage " +
                                       std::to_string(source->stage) + " has not been built");
    }
    MB_TRY(ensure_rootfs(found->second));
    return m_scratch->absolute(found->second.rootfs_rel);
  }
  case SourceKind::image: {
    if (const auto cached = m_image_roots.find(source->image); cached != m_image_roots.end()) {
      return m_scratch->absolute(cached->second);
    }
    MB_TRY_ASSIGN(LoadedImage image, resolve_image(source->image, st.stage->platform));
    std::vector<oci::Descriptor> layers = image.manifest.layers;
    if (m_options.mount_views) {
      MB_TRY_ASSIGN(auto lowers,
                    unpacked_lower_dirs(m_store, layers, image.config.rootfs.diff_ids));
      if (auto view = mount_view(lowers)) {
        m_image_roots[source->image] = *view;
        return m_scratch->absolute(*view);
      }
      m_options_views_refused = true;
    }
    MB_TRY_ASSIGN(std::string rel, m_scratch->new_dir("image"));
    MB_TRY_CONTEXT(
        apply_layers(m_store, layers, image.config.rootfs.diff_ids, m_scratch->absolute(rel)),
        "materialise the root filesystem of " + source->image);
    m_image_roots[source->image] = rel;
    return m_scratch->absolute(rel);
  }
  }
  return fail(Code::internal, "unknown source kind");
}

Result<oci::Descriptor> Executor::export_staging(const std::string& staging_rel, const Owner& owner,
                                                 const std::vector<EntryOverride>& overrides,
                                                 int vertex, oci::Digest& diff_id) {
  const std::string staging = m_scratch->absolute(staging_rel);
  MB_TRY_ASSIGN(layer::OwnerOverride owners, settle_metadata(staging, owner, overrides));
  layer::ExportOptions export_options;
  export_options.compression = m_options.compression;
  export_options.level = m_options.compression_level;
  export_options.source_date_epoch = m_options.source_date_epoch;
  export_options.owners = owners;
  MB_TRY_ASSIGN(auto writer, m_store.blobs().open_writer({}));
  MB_TRY_ASSIGN(layer::ExportResult exported,
                unlocked([&] { return layer::export_layer(staging, export_options, *writer); }));
  MB_TRY_ASSIGN(store::BlobInfo info, unlocked([&] { return writer->commit(); }));
  for (const auto& warning : exported.warnings) {
    log(vertex, "warning: " + warning);
  }
  if (info.digest != exported.digest) {
    return fail(Code::internal, "the layer writer reported " + exported.digest.to_string() +
                                    " but the store received " + info.digest.to_string());
  }
  // The staging tree becomes the layer's unpacked tree, which the next RUN or view needs:
  // unpacking the blob again would write every file a second time (bench/README.md, cold build).
  MB_TRY(unlocked([&] {
    return give_owners(staging, owners).and_then([&] {
      return m_store.layers().adopt(exported.diff_id, staging);
    });
  }));
  oci::Descriptor descriptor;
  descriptor.media_type = exported.media_type;
  descriptor.digest = info.digest;
  descriptor.size = static_cast<std::int64_t>(info.size);
  diff_id = exported.diff_id;
  return descriptor;
}

Result<void> Executor::add_layer(StageState& st, const oci::Descriptor& blob,
                                 const oci::Digest& diff_id, const std::string& created_by) {
  st.layers.push_back(blob);
  st.builder.add_layer(diff_id, created_by);
  // Keep the stage's root current for the next step that looks at it.
  MB_TRY(advance_rootfs(st, blob, diff_id));
  return {};
}

Result<void> Executor::workdir_step(StageState& st, const Command& command,
                                    const Instruction& expanded) {
  const std::string workdir =
      st.builder.set_workdir(expanded.as<dockerfile::WorkdirInstruction>().path);
  if (workdir == "/") {
    st.builder.add_workdir_history(workdir, false);
    return {};
  }
  const int vertex =
      start_vertex(step_name(st, expanded_text(st, command.instruction), command.onbuild));
  auto body = [&]() -> Result<void> {
    // BuildKit runs `mkdir -p` as the config's USER with the epoch as creation time, and always
    // commits a layer: an existing directory gives an empty one. The layer holds the created
    // directories and, with the base's metadata, the existing directories above them.
    MB_TRY(ensure_rootfs(st));
    const auto parts = split_path(workdir);
    std::size_t existing = 0;
    std::string physical;
    for (; existing < parts.size(); ++existing) {
      auto found = st.root->locate(join_parts(parts, existing + 1), FollowFinal::yes);
      if (!found) {
        const int err = found.error().sys_errno();
        if (err == ENOENT) {
          break;
        }
        return fail(std::move(found).error().wrap("mkdir " + workdir));
      }
      if (!S_ISDIR(found->st.st_mode)) {
        return fail(Code::build_failed, "mkdir " + workdir + ": /" +
                                            join_parts(parts, existing + 1) +
                                            " is not a directory");
      }
      physical = found->physical;
    }
    MB_TRY_ASSIGN(std::string staging_rel, m_scratch->new_dir("workdir"));
    const std::string staging = m_scratch->absolute(staging_rel);
    std::vector<EntryOverride> overrides;
    Owner owner;
    if (existing < parts.size()) {
      const BaseImage base = base_image_of(st.root);
      MB_TRY_ASSIGN(owner, resolve_owner(st.builder.config().config.user, base.read_file));
      const auto above = split_path(physical);
      for (std::size_t i = 1; i <= above.size(); ++i) {
        const std::string rel = join_parts(above, i);
        if (::mkdir((staging + "/" + rel).c_str(), 0755) != 0) {
          return fail_errno(errno, "mkdir \"" + staging + "/" + rel + "\"");
        }
        MB_TRY_ASSIGN(EntryOverride entry, base_metadata(*st.root, rel));
        overrides.push_back(std::move(entry));
      }
      const Moment moment =
          m_options.source_date_epoch ? Moment{*m_options.source_date_epoch, 0} : now();
      std::string rel = physical;
      for (std::size_t i = existing; i < parts.size(); ++i) {
        rel += (rel.empty() ? "" : "/") + parts[i];
        if (::mkdir((staging + "/" + rel).c_str(), 0755) != 0) {
          return fail_errno(errno, "mkdir \"" + staging + "/" + rel + "\"");
        }
        EntryOverride entry;
        entry.rel = rel;
        entry.owner = owner;
        entry.mode = 0755;
        entry.mtime =
            timespec{static_cast<time_t>(moment.seconds), static_cast<long>(moment.nanoseconds)};
        overrides.push_back(std::move(entry));
      }
      // Directory mtimes last: creating the children changed them.
      std::reverse(overrides.begin(), overrides.end());
    }
    oci::Digest diff_id;
    MB_TRY_ASSIGN(oci::Descriptor blob,
                  export_staging(staging_rel, owner, overrides, vertex, diff_id));
    st.layers.push_back(blob);
    st.builder.config().rootfs.diff_ids.push_back(diff_id);
    st.builder.add_workdir_history(workdir, true);
    MB_TRY(advance_rootfs(st, blob, diff_id));
    return {};
  };
  auto outcome = [&]() -> Result<void> {
    // WORKDIR makes its directories as the config's USER: both are the key.
    CacheKey workdir_key("workdir");
    workdir_key.add("parent", st.cache_key.to_string());
    workdir_key.add("path", workdir);
    workdir_key.add("user", st.builder.config().config.user);
    const std::optional<oci::Digest> key = dump_key(workdir_key);
    return cached_step(st, key, vertex, "workdir", body);
  }();
  end_vertex(vertex, outcome);
  return outcome;
}

// A COPY --from source that is not there: say where the path was looked for and what is there
// instead (issue #6): "COPY --from=0 hello .: /hello not found in stage 0; its WORKDIR is /go
// and /go/hello exists".
Error Executor::missing_from_source(const Instruction& expanded, const BuildContext& source,
                                    const Error& original) const {
  const auto& copy = expanded.as<dockerfile::CopyInstruction>();
  const std::string& from = copy.from;
  std::string stage_name;
  std::string workdir = "/";
  for (const auto& [index, state] : m_stages) {
    if (std::to_string(index) == from || state.stage->name == to_lower(from)) {
      stage_name = "stage " + from;
      workdir = state.builder.config().config.working_dir;
    }
  }
  if (stage_name.empty()) {
    stage_name = "image " + from;
  }
  auto root = InRoot::open(source.path(), Resolution::auto_detect);
  std::string message;
  for (const auto& raw : copy.sources) {
    const std::string path = raw.empty() || raw.front() != '/' ? "/" + raw : raw;
    if (root && root->locate(path.substr(1), FollowFinal::yes)) {
      continue;
    }
    message += (message.empty() ? "" : "; ") + path + " not found in " + stage_name;
    if (workdir != "/") {
      const std::string in_workdir = workdir + path;
      const bool there = root && root->locate(in_workdir.substr(1), FollowFinal::yes);
      message +=
          "; its WORKDIR is " + workdir +
          (there ? " and " + in_workdir + " exists (paths of COPY --from are absolute)" : "");
    }
    // What the directory that should hold it has, so a typo shows.
    const std::size_t slash = path.rfind('/');
    const std::string parent = path.substr(0, slash == 0 ? 1 : slash);
    std::error_code error;
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(source.path() + parent, error)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    if (!names.empty()) {
      message += "; " + parent + " holds: ";
      for (std::size_t i = 0; i < names.size() && i < 12; ++i) {
        message += (i == 0 ? "" : " ") + names[i];
      }
      if (names.size() > 12) {
        message += " … (" + std::to_string(names.size()) + " entries)";
      }
    }
  }
  if (message.empty()) {
    return original;
  }
  std::string step = "COPY --from=" + from;
  for (const auto& raw : copy.sources) {
    step += " " + raw;
  }
  return Error(original.code(), step + " " + copy.dest + ": " + message);
}

// COPY/ADD's cache key (docs/cache.md): from the build context, what the step selects there
// (copy_sources.hpp: paths, modes, content digests through the stat cache, the step's own
// flags); from a stage, that stage's key; from an image, its reference; always the step's
// expanded text and the workdir.
Result<void> Executor::load_stat_cache() {
  if (!m_stat_cache) {
    const auto context_dir =
        std::filesystem::absolute(m_context.path()).lexically_normal().string();
    MB_TRY_ASSIGN(store::StatCache loaded,
                  store::StatCache::load(store::StatCache::file_for(m_store.root(), context_dir),
                                         m_build_start_ns));
    m_stat_cache.emplace(std::move(loaded));
  }
  return {};
}

Result<std::optional<oci::Digest>> Executor::copy_cache_key(const StageState& st,
                                                            const Command& command,
                                                            const Instruction& expanded) {
  const bool is_add = expanded.kind() == InstructionKind::add;
  CacheKey key(is_add ? "add" : "copy");
  key.add("parent", st.cache_key.to_string());
  key.add("instruction", expanded_text(st, command.instruction));
  key.add("workdir", st.builder.config().config.working_dir);
  const std::string from = is_add ? std::string() : expanded.as<dockerfile::CopyInstruction>().from;
  if (!from.empty()) {
    std::string from_key = "image " + from;
    for (const auto& [index, state] : m_stages) {
      if (std::to_string(index) == from || state.stage->name == to_lower(from)) {
        from_key = "stage " + state.cache_key.to_string();
      }
    }
    key.add("from", from_key);
    return std::optional<oci::Digest>(dump_key(key));
  }
  MB_TRY(load_stat_cache());
  const std::string workdir = st.builder.config().config.working_dir;
  const CopyStep step = is_add
                            ? CopyStep::from(expanded.as<dockerfile::AddInstruction>(), workdir)
                            : CopyStep::from(expanded.as<dockerfile::CopyInstruction>(), workdir);
  auto sources = copy_sources_digest(m_context, step, &*m_stat_cache);
  if (!sources) {
    // Whatever the copy itself would say about these sources, it says better: run it.
    return std::optional<oci::Digest>();
  }
  key.add("sources", sources->to_string());
  return std::optional<oci::Digest>(dump_key(key));
}

Result<void> Executor::copy_step(StageState& st, const Command& command,
                                 const Instruction& expanded) {
  const bool is_add = expanded.kind() == InstructionKind::add;
  const int vertex =
      start_vertex(step_name(st, expanded_text(st, command.instruction), command.onbuild));
  auto body = [&]() -> Result<void> {
    const std::string workdir = st.builder.config().config.working_dir;
    const CopyStep step = is_add
                              ? CopyStep::from(expanded.as<dockerfile::AddInstruction>(), workdir)
                              : CopyStep::from(expanded.as<dockerfile::CopyInstruction>(), workdir);
    const BuildContext* source = &m_context;
    std::optional<BuildContext> from_context;
    if (!is_add && !expanded.as<dockerfile::CopyInstruction>().from.empty()) {
      const std::string& from = expanded.as<dockerfile::CopyInstruction>().from;
      MB_TRY_ASSIGN(std::string root, source_root(st, from, command.instruction.location));
      ContextOptions options;
      options.ignore = IgnoreFiles::none;
      MB_TRY_ASSIGN(BuildContext opened, BuildContext::open(root, options));
      from_context.emplace(std::move(opened));
      source = &*from_context;
    }
    MB_TRY(ensure_rootfs(st));
    const BaseImage base = base_image_of(st.root);
    MB_TRY_ASSIGN(std::string staging_rel, m_scratch->new_dir("copy"));
    const std::string staging = m_scratch->absolute(staging_rel);
    auto copied = unlocked([&] { return stage_copy(*source, step, base, staging); });
    if (!copied && from_context && copied.error().has_tag(k_source_not_found)) {
      return fail(missing_from_source(expanded, *from_context, copied.error()));
    }
    MB_TRY_ASSIGN(StagedCopy staged, std::move(copied));
    for (const auto& warning : staged.warnings) {
      log(vertex, "warning: " + warning);
    }
    std::vector<EntryOverride> overrides;
    for (const auto& exception : staged.owner_exceptions) {
      EntryOverride entry;
      entry.rel = exception.path.substr(1);
      entry.owner = exception.owner;
      overrides.push_back(std::move(entry));
    }
    // Base directories deepest first, so a parent's mtime is set after its children's.
    for (auto it = staged.base_directories.rbegin(); it != staged.base_directories.rend(); ++it) {
      const std::string rel = it->substr(1);
      if (rel.empty()) {
        continue;
      }
      MB_TRY_ASSIGN(EntryOverride entry, base_metadata(*st.root, rel));
      overrides.push_back(std::move(entry));
    }
    oci::Digest diff_id;
    MB_TRY_ASSIGN(oci::Descriptor blob,
                  export_staging(staging_rel, staged.owner, overrides, vertex, diff_id));
    const std::string created_by =
        is_add ? add_created_by(expanded.as<dockerfile::AddInstruction>())
               : copy_created_by(expanded.as<dockerfile::CopyInstruction>());
    return add_layer(st, blob, diff_id, created_by);
  };
  auto outcome = [&]() -> Result<void> {
    MB_TRY_ASSIGN(const std::optional<oci::Digest> key, copy_cache_key(st, command, expanded));
    return cached_step(st, key, vertex, "copy", body);
  }();
  end_vertex(vertex, outcome);
  return outcome;
}

// docs/squash.md: --squash folds the target stage's own layers, --squash-stage NAME the named
// stages' (so stages built FROM them inherit one layer), --squash-all the whole target image.
// Stage squash happens when the stage ends, so a later stage sees the folded layer.
bool Executor::squashes(const PlanStage& stage) const {
  const bool target = stage.index == m_plan.stages.back().index;
  return (target &&
          (m_options.squash == SquashMode::stage || m_options.squash == SquashMode::all)) ||
         m_options.squash_stages.contains(to_lower(stage.name)) ||
         m_options.squash_stages.contains(std::to_string(stage.index));
}

Result<void> Executor::fold_layers(StageState& st, std::size_t first, std::string_view why) {
  const bool whole = first == 0;
  const auto& diff_ids = st.builder.config().rootfs.diff_ids;
  if (st.layers.size() < first + (whole ? 1u : 2u)) {
    return {}; // nothing to fold: one layer already is its own squash
  }
  const int vertex =
      start_vertex(std::string(why) + ": folding " + std::to_string(st.layers.size() - first) +
                   " layers" + (st.display.empty() ? std::string() : " of " + st.display));
  auto outcome = [&]() -> Result<void> {
    const std::vector<oci::Descriptor> base_layers(st.layers.begin(),
                                                   st.layers.begin() + static_cast<long>(first));
    const std::vector<oci::Digest> base_ids(diff_ids.begin(),
                                            diff_ids.begin() + static_cast<long>(first));
    MB_TRY_ASSIGN(const std::vector<std::string> base_lowers,
                  unlocked([&] { return unpacked_lower_dirs(m_store, base_layers, base_ids); }));
    const std::vector<oci::Descriptor> folded(st.layers.begin() + static_cast<long>(first),
                                              st.layers.end());
    const std::vector<oci::Digest> folded_ids(diff_ids.begin() + static_cast<long>(first),
                                              diff_ids.end());
    layer::ExportOptions export_options;
    export_options.compression = m_options.compression;
    export_options.level = m_options.compression_level;
    export_options.source_date_epoch = m_options.source_date_epoch;
    MB_TRY_ASSIGN(SquashResult squashed, unlocked([&] {
                    return squash_layers(m_store, base_lowers, folded, folded_ids, export_options);
                  }));
    for (const auto& warning : squashed.warnings) {
      log(vertex, "warning: " + warning);
    }
    // History: every entry of the folded steps stays, marked empty_layer; one entry for the
    // squashed layer follows them (Docker's --squash does the same).
    auto& config = st.builder.config();
    std::size_t layer_entries = 0;
    for (auto& entry : config.history) {
      if (!entry.empty_layer && layer_entries++ >= first) {
        entry.empty_layer = true;
      }
    }
    st.layers.resize(first);
    config.rootfs.diff_ids.resize(first);
    const std::string what = "squash of " + std::to_string(folded.size()) + " layers";
    if (squashed.entries == 0) {
      st.builder.add_history("minibuild " + what + ": no change", true);
    } else {
      st.layers.push_back(squashed.layer);
      config.rootfs.diff_ids.push_back(squashed.diff_id);
      st.builder.add_history("minibuild " + what, false);
    }
    log(vertex, what + ": " + std::to_string(squashed.entries) + " entries, " +
                    std::to_string(squashed.layer.size) + " bytes");
    // The squashed stage is a new filesystem state for the cache chain and COPY --from.
    CacheKey key("squash");
    key.add("parent", st.cache_key.to_string());
    key.add("layer", squashed.diff_id.to_string());
    st.cache_key = key.digest();
    if (st.root_is_view) {
      drop_view(st);
    }
    st.root.reset();
    return {};
  }();
  end_vertex(vertex, outcome);
  return outcome;
}

Result<BuildResult> Executor::finish(StageState& target) {
  const int vertex = start_vertex("exporting to image");
  BuildResult result;
  auto outcome = [&]() -> Result<void> {
    oci::ImageConfig config = target.builder.config();
    for (const auto& [key, value] : m_options.labels) {
      config.config.labels[key] = value;
    }
    // The image was made when its latest step was, whichever stage ran it.
    std::string created = history_time(target);
    for (const auto& [index, state] : m_stages) {
      if (!m_options.source_date_epoch && state.clock && *state.clock > created) {
        created = *state.clock;
      }
    }
    config.created = created;
    log(vertex, "exporting layers done");

    const std::string config_bytes = oci::serialize(config);
    oci::StringSource config_source(config_bytes);
    MB_TRY_ASSIGN(store::BlobInfo config_info, m_store.blobs().put(config_source));
    oci::ImageManifest manifest;
    manifest.media_type = std::string(oci::k_oci_manifest);
    manifest.config.media_type = std::string(oci::k_oci_config);
    manifest.config.digest = config_info.digest;
    manifest.config.size = static_cast<std::int64_t>(config_info.size);
    manifest.layers = target.layers;
    const std::string manifest_bytes = oci::serialize(manifest);
    oci::StringSource manifest_source(manifest_bytes);
    MB_TRY_ASSIGN(store::BlobInfo manifest_info, m_store.blobs().put(manifest_source));
    log(vertex, "exporting manifest " + manifest_info.digest.to_string() + " done");
    log(vertex, "exporting config " + config_info.digest.to_string() + " done");
    for (const auto& tag : m_options.tags) {
      MB_TRY_CONTEXT(m_store.names().tag(tag, manifest_info.digest, oci::k_oci_manifest),
                     "name the image " + tag);
      log(vertex, "naming to " + tag + " done");
      result.tags.push_back(tag);
    }
    result.manifest_digest = manifest_info.digest;
    result.config_digest = config_info.digest;
    result.manifest = std::move(manifest);
    result.config = std::move(config);
    result.cache_entries = m_used_entries;
    result.cache_mounts.assign(m_used_cache_mounts.begin(), m_used_cache_mounts.end());
    return {};
  }();
  end_vertex(vertex, outcome);
  if (!outcome) {
    return fail(std::move(outcome).error());
  }
  return result;
}

} // namespace

void PlainProgress::started(int id, std::string_view name) {
  if (!m_first) {
    std::fputc('\n', m_out);
  }
  m_first = false;
  std::fprintf(m_out, "#%d %.*s\n", id, static_cast<int>(name.size()), name.data());
  std::fflush(m_out);
}

void PlainProgress::log(int id, std::string_view line) {
  std::fprintf(m_out, "#%d %.*s\n", id, static_cast<int>(line.size()), line.data());
  std::fflush(m_out);
}

void PlainProgress::done(int id, std::chrono::nanoseconds elapsed) {
  std::fprintf(m_out, "#%d DONE %.1fs\n", id, std::chrono::duration<double>(elapsed).count());
  std::fflush(m_out);
}

void PlainProgress::cached(int id) {
  std::fprintf(m_out, "#%d CACHED\n", id);
  std::fflush(m_out);
}

void PlainProgress::failed(int id, const Error& error) {
  std::fprintf(m_out, "#%d ERROR: %s\n", id, error.what().c_str());
  std::fflush(m_out);
}

std::vector<std::string> store_name_candidates(std::string_view reference) {
  std::string name(reference);
  const auto slash = name.rfind('/');
  const auto colon = name.rfind(':');
  const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged) {
    name += ":latest";
  }
  std::vector<std::string> out{name};
  const auto first_slash = name.find('/');
  if (first_slash == std::string::npos) {
    out.push_back("docker.io/library/" + name);
  } else {
    const std::string first = name.substr(0, first_slash);
    const bool has_registry =
        first.find_first_of(".:") != std::string::npos || first == "localhost";
    if (!has_registry) {
      out.push_back("docker.io/" + name);
    } else if (name.rfind("docker.io/library/", 0) == 0) {
      out.push_back(name.substr(std::string_view("docker.io/library/").size()));
    } else if (name.rfind("docker.io/", 0) == 0) {
      out.push_back(name.substr(std::string_view("docker.io/").size()));
    }
  }
  return out;
}

Result<BuildResult> execute(const dockerfile::Plan& plan, const BuildContext& context,
                            store::Store& store, const ExecutorOptions& options) {
  MB_TRY_ASSIGN(auto scratch, Scratch::create(store.fs()));
  Executor executor(plan, context, store, options, std::move(scratch));
  auto result = executor.run();
  // No helper of a finished step outlives the build (docs/run.md).
  runtime::finish_sandbox_teardown();
  return result;
}

} // namespace minibuild::build
