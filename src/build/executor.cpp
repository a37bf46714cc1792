#include "fs_ops.hpp"
#include "image_config_builder.hpp"
#include "run_step.hpp"
#include "stored_image.hpp"
#include "tree_diff.hpp"

#include <minibuild/base/file.hpp>
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
  Result<void> run_step(StageState& st, const Command& command);
  Result<void> run_step_with(StageState& st, const Command& command, int vertex, bool vfs);
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
  /// The compiled seccomp filter of RUN steps, made at the first RUN (nullopt inside: none).
  std::optional<std::optional<runtime::SeccompProgram>> m_seccomp;
  /// RUN steps use the vfs driver (asked for, or overlay was refused once in this build).
  bool m_vfs = false;
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
    if (m_options.seccomp_unconfined) {
      m_seccomp.emplace();
    } else {
      runtime::SeccompProfile profile;
      if (m_options.seccomp_profile) {
        profile = *m_options.seccomp_profile;
      } else {
        MB_TRY_ASSIGN(profile, runtime::default_seccomp_profile());
      }
      MB_TRY_ASSIGN(runtime::SeccompProgram program,
                    runtime::compile_seccomp(profile, m_options.capabilities));
      m_seccomp.emplace(std::move(program));
    }
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
    if (!m_vfs) {
      auto ran = run_step_with(st, command, vertex, false);
      // Kernels before 5.11 refuse overlay in a user namespace: fall back to copies once.
      if (ran || m_options.storage_driver != StorageDriver::auto_ ||
          ran.error().code() != Code::sandbox ||
          ran.error().message().find("mount the overlay root filesystem") == std::string::npos) {
        return ran;
      }
      log(vertex, "notice: overlayfs refused (" + ran.error().message() +
                      "); using the vfs driver for this build: copies, slower (docs/run.md)");
      m_vfs = true;
    }
    return run_step_with(st, command, vertex, true);
  }();
  end_vertex(vertex, outcome);
  return outcome;
}

Result<void> Executor::run_step_with(StageState& st, const Command& command, int vertex, bool vfs) {
  const auto& run = command.instruction.as<dockerfile::RunInstruction>();
  std::vector<std::string> lowers;
  BaseFileReader reader;
  TreeSnapshot before;
  if (vfs) {
    MB_TRY(ensure_rootfs(st));
    reader = base_image_of(st.root).read_file;
    MB_TRY_ASSIGN(before, snapshot_tree(m_scratch->absolute(st.rootfs_rel)));
  } else {
    MB_TRY_ASSIGN(lowers,
                  unpacked_lower_dirs(m_store, st.layers, st.builder.config().rootfs.diff_ids));
    reader = [&lowers](const std::string& path) { return read_file_from_layers(lowers, path); };
  }
  const oci::ContainerConfig& config = st.builder.config().config;
  MB_TRY_ASSIGN(RunUser user, resolve_run_user(config.user, reader));

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
  runtime::SandboxSpec spec;
  MB_TRY_ASSIGN(std::string run_rel, m_scratch->new_dir("run"));
  const std::string run_dir = m_scratch->absolute(run_rel);
  spec.scratch_dir = run_dir + "/sandbox";
  std::vector<std::string> dirs = {spec.scratch_dir};
  if (vfs) {
    spec.rootfs.plain_dir = m_scratch->absolute(st.rootfs_rel);
  } else {
    spec.rootfs.lower_dirs = lowers;
    spec.rootfs.upper_dir = run_dir + "/upper";
    spec.rootfs.work_dir = run_dir + "/work";
    dirs.push_back(spec.rootfs.upper_dir);
    dirs.push_back(spec.rootfs.work_dir);
  }
  for (const auto& dir : dirs) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return fail_errno(errno, "mkdir \"" + dir + "\"");
    }
  }
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
  spec.output = [&](std::string_view chunk) { tail.feed(chunk, to_progress); };
  auto ran = runtime::run_in_sandbox(spec);
  tail.finish(to_progress);
  auto stubs = read_file(spec.scratch_dir + "/stubs");
  const std::string stubs_text = stubs ? *stubs : std::string();
  if (vfs) {
    // The root is the stage's own: mount points go whatever happened. Empty directories that
    // held them are the image's, not copies, so they stay.
    MB_TRY(remove_mount_stubs(spec.rootfs.plain_dir, stubs_text, StubParents::keep));
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
                layer::export_layer(layer_tree, export_options, *writer));
  for (const auto& warning : exported.warnings) {
    log(vertex, "warning: " + warning);
  }
  if (exported.entries == 0) {
    // Nothing changed: BuildKit keeps the history entry and drops the empty layer.
    st.builder.add_history(created_by + " # buildkit", true);
    m_scratch->remove(run_rel);
    return {};
  }
  MB_TRY_ASSIGN(store::BlobInfo info, writer->commit());
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
    runtime::finish_sandbox_teardown();
    MB_TRY(m_store.layers().adopt(exported.diff_id, layer_tree));
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
      if (!flag.read_only) {
        return fail(Code::unsupported,
                    "--mount=" + flag.spec + ": read-write bind mounts are not supported yet");
      }
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
        MB_TRY_ASSIGN(UniqueFd lock,
                      m_store.fs().lock(rel, store::LockMode::exclusive, store::Wait::yes));
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
  auto result = executor.run();
  // No helper of a finished step outlives the build (docs/run.md).
  runtime::finish_sandbox_teardown();
  return result;
}

} // namespace minibuild::build
