#include "fs_ops.hpp"
#include "image_config_builder.hpp"

#include <minibuild/base/in_root.hpp>
#include <minibuild/build/copy.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/build/owner.hpp>
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace minibuild::build {

namespace {

using dockerfile::Instruction;
using dockerfile::InstructionKind;
using dockerfile::PlanStage;
using dockerfile::SourceKind;

constexpr std::size_t k_max_document = 64u << 20;  // manifests, indexes and configs
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

Moment now() {
  const auto since = std::chrono::system_clock::now().time_since_epoch();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(since).count();
  return {ns / 1000000000, ns % 1000000000};
}

// ---- the build's scratch directory --------------------------------------------------------

// A directory below <root>/tmp/ for staging trees and materialised root filesystems. It follows
// the store's session protocol (docs/store.md): `tmp/<pid>-<random>` held under an exclusive
// flock for as long as it is in use, so `clean_temp()` of another process leaves it alone while
// this build runs and removes it if the build is killed. The store's own TempArea is private to
// src/store, hence this second session.
class Scratch {
public:
  static Result<std::unique_ptr<Scratch>> create(store::StoreFs& fs) {
    std::random_device device;
    for (int attempt = 0; attempt < 8; ++attempt) {
      char suffix[32];
      std::snprintf(suffix, sizeof(suffix), "%08x%08x", device(), device());
      const std::string rel = "tmp/" + std::to_string(::getpid()) + "-" + suffix;
      MB_TRY_CONTEXT(fs.make_dir(rel), "create the build's temporary directory");
      auto lock = fs.lock(rel, store::LockMode::exclusive, store::Wait::no);
      if (!lock) {
        if (lock.error().sys_errno() == EWOULDBLOCK || lock.error().code() == Code::not_found) {
          continue;
        }
        return fail(std::move(lock).error().wrap("lock the build's temporary directory"));
      }
      // A cleaner may have removed the directory between mkdir and flock: hold a linked one.
      struct stat st {};
      if (::fstat(lock->get(), &st) != 0 || st.st_nlink == 0) {
        continue;
      }
      return std::unique_ptr<Scratch>(new Scratch(fs, rel, std::move(*lock)));
    }
    return fail(Code::io, "create a temporary directory in " + fs.absolute("tmp") +
                              ": it keeps disappearing (another process cleaning?)");
  }

  ~Scratch() { (void)m_fs.remove_tree(m_rel); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  /// A new empty directory; returns its path relative to the store root.
  Result<std::string> new_dir(std::string_view prefix) {
    const std::string rel = m_rel + "/" + std::string(prefix) + "-" + std::to_string(++m_counter);
    MB_TRY(m_fs.make_dir(rel));
    return rel;
  }
  std::string absolute(const std::string& rel) const { return m_fs.absolute(rel); }
  /// Best effort: whatever stays is removed with the scratch directory.
  void remove(const std::string& rel) { (void)m_fs.remove_tree(rel); }

private:
  Scratch(store::StoreFs& fs, std::string rel, UniqueFd lock)
      : m_fs(fs), m_rel(std::move(rel)), m_lock(std::move(lock)) {}

  store::StoreFs& m_fs;
  std::string m_rel;
  UniqueFd m_lock;
  std::uint64_t m_counter = 0;
};

// ---- images in the store ------------------------------------------------------------------

struct LoadedImage {
  std::string reference;
  oci::Digest manifest_digest;
  oci::ImageManifest manifest;
  oci::ImageConfig config;
};

Result<std::string> read_blob(store::Store& store, const oci::Digest& digest,
                              std::string_view what) {
  auto bytes = store.blobs().read(digest, k_max_document);
  if (!bytes) {
    return fail(
        std::move(bytes).error().wrap("read " + std::string(what) + " " + digest.to_string()));
  }
  return std::move(*bytes);
}

Result<LoadedImage> load_image(store::Store& store, const std::string& reference,
                               const dockerfile::Platform& platform) {
  LoadedImage image;
  image.reference = reference;
  std::string media_type;
  bool found = false;
  if (const auto at = reference.find('@'); at != std::string::npos) {
    auto digest = oci::Digest::parse(reference.substr(at + 1));
    if (!digest) {
      return fail(Code::dockerfile,
                  "invalid image reference \"" + reference + "\": " + digest.error().message());
    }
    MB_TRY_ASSIGN(auto stat, store.blobs().stat(*digest));
    if (stat) {
      image.manifest_digest = *digest;
      found = true;
    }
  } else {
    for (const auto& name : store_name_candidates(reference)) {
      MB_TRY_ASSIGN(auto named, store.names().resolve(name));
      if (named) {
        image.manifest_digest = named->digest;
        media_type = named->media_type;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    return fail(Code::not_found, "image " + reference + " is not in the local store");
  }
  MB_TRY_ASSIGN(std::string bytes, read_blob(store, image.manifest_digest, "manifest"));
  auto manifest = oci::parse<oci::ImageManifest>(bytes);
  if (!manifest && (oci::is_index(media_type) || media_type.empty())) {
    // An index (a multi-platform image): take the stored manifest for the stage's platform.
    MB_TRY_ASSIGN(auto index, oci::parse<oci::ImageIndex>(bytes));
    oci::Platform wanted;
    wanted.os = platform.os;
    wanted.architecture = platform.architecture;
    wanted.variant = platform.variant;
    bool chosen = false;
    for (const auto& entry : oci::find_manifests(index, wanted)) {
      MB_TRY_ASSIGN(auto stat, store.blobs().stat(entry.digest));
      if (stat) {
        image.manifest_digest = entry.digest;
        chosen = true;
        break;
      }
    }
    if (!chosen) {
      return fail(Code::not_found, "image " + reference + " has no manifest for " +
                                       oci::to_string(platform) + " in the local store");
    }
    MB_TRY_ASSIGN(bytes, read_blob(store, image.manifest_digest, "manifest"));
    manifest = oci::parse<oci::ImageManifest>(bytes);
  }
  if (!manifest) {
    return fail(std::move(manifest).error().wrap("image " + reference + ": manifest " +
                                                 image.manifest_digest.to_string()));
  }
  image.manifest = std::move(*manifest);
  MB_TRY_ASSIGN(std::string config_bytes,
                read_blob(store, image.manifest.config.digest, "image config"));
  auto config = oci::parse<oci::ImageConfig>(config_bytes);
  if (!config) {
    return fail(std::move(config).error().wrap("image " + reference + ": config " +
                                               image.manifest.config.digest.to_string()));
  }
  image.config = std::move(*config);
  return image;
}

// ---- root filesystems ----------------------------------------------------------------------

// Applies stored layer blobs, bottom first, onto the empty directory `dir`, checking each tar
// against the config's diffID.
Result<void> apply_layers(store::Store& store, const std::vector<oci::Descriptor>& layers,
                          const std::vector<oci::Digest>& diff_ids, const std::string& dir) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& layer = layers[i];
    const std::string what = "apply layer " + layer.digest.to_string();
    auto source = store.blobs().get(layer.digest, static_cast<std::uint64_t>(layer.size));
    if (!source) {
      return fail(std::move(source).error().wrap(what));
    }
    // Unprivileged, apply cannot chown; the xattr record keeps base owners known to
    // base_metadata().
    layer::ApplyOptions apply_options;
    apply_options.record_owners = true;
    auto applied = layer::apply_layer(**source, dir, apply_options);
    if (!applied) {
      return fail(std::move(applied).error().wrap(what));
    }
    if (layers.size() == diff_ids.size() && applied->diff_id != diff_ids[i]) {
      return fail(Code::corrupt, what + ": its content has diffID " + applied->diff_id.to_string() +
                                     ", the config says " + diff_ids[i].to_string());
    }
  }
  return {};
}

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
  // BuildKit's progress prefix: "[name index/total] ".
  std::string display;
  int step_index = 0;
  int step_total = 0;
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

  Result<BuildResult> run();

private:
  Result<void> run_stage(const PlanStage& stage);
  Result<void> dispatch(StageState& st, const Command& command);
  Result<void> workdir_step(StageState& st, const Command& command, const Instruction& expanded);
  Result<void> copy_step(StageState& st, const Command& command, const Instruction& expanded);
  Result<void> arg_step(StageState& st, const Instruction& instruction);
  Result<void> ensure_rootfs(StageState& st);
  Result<LoadedImage> resolve_image(const std::string& reference,
                                    const dockerfile::Platform& platform);
  Result<std::string> source_root(StageState& st, const std::string& from,
                                  const SourceRange& location);
  Result<oci::Descriptor> export_staging(const std::string& staging_rel, const Owner& owner,
                                         const std::vector<EntryOverride>& overrides, int vertex,
                                         oci::Digest& diff_id);
  Result<void> add_layer(StageState& st, const oci::Descriptor& blob, const oci::Digest& diff_id,
                         const std::string& created_by);
  Result<BuildResult> finish(StageState& target);

  std::string history_time() const;
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
  int m_vertices = 0;
  std::map<int, std::chrono::steady_clock::time_point> m_started;
};

std::string Executor::history_time() const {
  if (m_options.source_date_epoch) {
    return rfc3339_utc(*m_options.source_date_epoch);
  }
  const Moment moment = now();
  return rfc3339_utc(moment.seconds, moment.nanoseconds);
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
  if (m_options.progress == nullptr) {
    return;
  }
  if (outcome) {
    m_options.progress->done(vertex, std::chrono::steady_clock::now() - m_started[vertex]);
  } else {
    m_options.progress->failed(vertex, outcome.error());
  }
}

// BuildKit's prefixCommand: "[stage-1 2/5] " (the index padded to the width of the total),
// "ONBUILD " for a trigger, nothing at all for a stage without counted steps.
std::string Executor::step_name(StageState& st, std::string_view text, bool onbuild) {
  if (st.step_total == 0) {
    return std::string(text);
  }
  ++st.step_index;
  const int width = static_cast<int>(1 + std::log10(static_cast<double>(st.step_total)));
  char counter[48];
  std::snprintf(counter, sizeof(counter), "%*d/%d] ", width, st.step_index, st.step_total);
  std::string out = "[";
  if (!st.display.empty()) {
    out += st.display + " ";
  }
  out += counter;
  if (onbuild) {
    out += "ONBUILD ";
  }
  return out + std::string(text);
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
  if (m_plan.stages.empty()) {
    return fail(Code::dockerfile, "the Dockerfile has no stage to build");
  }
  for (const auto& stage : m_plan.stages) {
    MB_TRY(run_stage(stage));
  }
  return finish(m_stages.at(m_plan.stages.back().index));
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

  // Progress names: BuildKit counts FROM <image>, every trigger, COPY, ADD, RUN and WORKDIR.
  st.display = m_plan.stage_count <= 1 ? std::string()
               : !stage.name.empty()   ? stage.name
                                       : "stage-" + std::to_string(stage.index);
  st.step_total = (image ? 1 : 0) + static_cast<int>(triggers.size());
  for (const auto& instruction : stage.instructions) {
    const auto kind = instruction.kind();
    if (kind == InstructionKind::copy || kind == InstructionKind::add ||
        kind == InstructionKind::run || kind == InstructionKind::workdir) {
      ++st.step_total;
    }
  }
  if (image) {
    const int vertex = start_vertex(step_name(
        st, "FROM " + image->reference + "@" + image->manifest_digest.to_string(), false));
    end_vertex(vertex, {});
  }

  for (const auto& command : commands) {
    st.builder.set_history_time(history_time());
    auto outcome = dispatch(st, command);
    if (!outcome) {
      return fail(std::move(outcome).error().at(command.instruction.location));
    }
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
  case InstructionKind::run: {
    const int vertex = start_vertex(step_name(st, expanded_text(st, instruction), command.onbuild));
    Result<void> outcome =
        fail(Code::unsupported, "RUN needs the rootless runtime, which is not implemented yet");
    end_vertex(vertex, outcome);
    return outcome;
  }
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
  const bool can_fetch = m_options.fetch_image && !m_fetched.contains(key);
  if (can_fetch && m_options.always_fetch) {
    m_fetched.insert(key);
    MB_TRY(m_options.fetch_image(reference, platform));
    return load_image(m_store, reference, platform);
  }
  auto loaded = load_image(m_store, reference, platform);
  if (loaded || loaded.error().code() != Code::not_found || !can_fetch) {
    return loaded;
  }
  m_fetched.insert(key);
  MB_TRY(m_options.fetch_image(reference, platform));
  return load_image(m_store, reference, platform);
}

Result<void> Executor::ensure_rootfs(StageState& st) {
  if (st.root) {
    return {};
  }
  MB_TRY_ASSIGN(std::string rel, m_scratch->new_dir("rootfs"));
  const std::string dir = m_scratch->absolute(rel);
  MB_TRY_CONTEXT(apply_layers(m_store, st.layers, st.builder.config().rootfs.diff_ids, dir),
                 "materialise the root filesystem of stage " + std::to_string(st.stage->index));
  MB_TRY_ASSIGN(InRoot root, InRoot::open(dir, Resolution::auto_detect));
  st.rootfs_rel = rel;
  st.root = std::make_shared<const InRoot>(std::move(root));
  return {};
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
      for (const auto& [index, state] : m_stages) {
        if (state.stage->name == to_lower(from)) {
          source->kind = SourceKind::stage;
          source->stage = index;
        }
      }
    }
  }
  switch (source->kind) {
  case SourceKind::scratch:
    return m_scratch->new_dir("scratch").map(
        [&](const std::string& rel) { return m_scratch->absolute(rel); });
  case SourceKind::stage: {
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
  export_options.owners = std::move(owners);
  MB_TRY_ASSIGN(auto writer, m_store.blobs().open_writer({}));
  MB_TRY_ASSIGN(layer::ExportResult exported,
                layer::export_layer(staging, export_options, *writer));
  MB_TRY_ASSIGN(store::BlobInfo info, writer->commit());
  for (const auto& warning : exported.warnings) {
    log(vertex, "warning: " + warning);
  }
  if (info.digest != exported.digest) {
    return fail(Code::internal, "the layer writer reported " + exported.digest.to_string() +
                                    " but the store received " + info.digest.to_string());
  }
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
  if (st.root) {
    // Keep the materialised root filesystem current for the next step that looks at it.
    MB_TRY(apply_layers(m_store, {blob}, {diff_id}, m_scratch->absolute(st.rootfs_rel)));
  }
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
  auto outcome = [&]() -> Result<void> {
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
    m_scratch->remove(staging_rel);
    st.layers.push_back(blob);
    st.builder.config().rootfs.diff_ids.push_back(diff_id);
    st.builder.add_workdir_history(workdir, true);
    if (st.root) {
      MB_TRY(apply_layers(m_store, {blob}, {diff_id}, m_scratch->absolute(st.rootfs_rel)));
    }
    return {};
  }();
  end_vertex(vertex, outcome);
  return outcome;
}

Result<void> Executor::copy_step(StageState& st, const Command& command,
                                 const Instruction& expanded) {
  const bool is_add = expanded.kind() == InstructionKind::add;
  const int vertex =
      start_vertex(step_name(st, expanded_text(st, command.instruction), command.onbuild));
  auto outcome = [&]() -> Result<void> {
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
    MB_TRY_ASSIGN(StagedCopy staged,
                  stage_copy(*source, step, base, m_scratch->absolute(staging_rel)));
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
    m_scratch->remove(staging_rel);
    const std::string created_by =
        is_add ? add_created_by(expanded.as<dockerfile::AddInstruction>())
               : copy_created_by(expanded.as<dockerfile::CopyInstruction>());
    return add_layer(st, blob, diff_id, created_by);
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
    config.created = history_time();
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
  return executor.run();
}

} // namespace minibuild::build
