// Build plan: stages, global ARGs, the stage graph and target pruning. The rules mirror
// BuildKit's dockerfile2llb (toDispatchState, buildMetaArgs, dispatchArg, toCommand,
// detectRunMount); the places minibuild differs are listed in docs/dockerfile.md.
#include <minibuild/dockerfile/plan.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <utility>

namespace minibuild::dockerfile {

namespace {

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The proxy variables Docker passes to RUN without an ARG declaration.
constexpr std::array<std::string_view, 10> k_proxy_args = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy"};

constexpr std::array<std::string_view, 9> k_platform_args = {
    "BUILDPLATFORM", "BUILDOS",    "BUILDARCH",     "BUILDVARIANT", "TARGETPLATFORM",
    "TARGETOS",      "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE"};

bool is_one_of(std::string_view name, const auto& list) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

bool is_integer(std::string_view text) {
  std::size_t start = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (start == text.size() || text.size() - start > 9) {
    return false;
  }
  return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

tl::unexpected<Error> fail_at(const SourceRange& location, std::string message,
                              Code code = Code::dockerfile) {
  Error error(code, std::move(message));
  error.at(location);
  return tl::unexpected<Error>(std::move(error));
}

// Attaches the instruction's location and name to an error raised below it (e.g. by the lexer).
Error located(Error error, const Instruction& instruction) {
  error.at(instruction.location);
  return error;
}

std::string quote(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::string stage_label(int index, std::string_view name) {
  std::string label = "stage " + std::to_string(index);
  if (!name.empty()) {
    label += " " + quote(name);
  }
  return label;
}

// containerd's normalizeArch, on an architecture and variant pair.
void normalize_architecture(std::string& arch, std::string& variant) {
  oci::Platform platform = oci::make_platform("linux", arch, variant);
  platform = oci::normalize(std::move(platform));
  arch = platform.architecture;
  variant = platform.variant;
}

bool known_os(std::string_view os) {
  static constexpr std::array<std::string_view, 16> k_os = {
      "aix", "android", "darwin", "dragonfly", "freebsd", "hurd",  "illumos", "ios",
      "js",  "linux",   "nacl",   "netbsd",    "openbsd", "plan9", "solaris", "windows"};
  return is_one_of(os, k_os);
}

bool known_architecture(std::string_view arch) {
  static constexpr std::array<std::string_view, 26> k_arch = {
      "386",     "amd64",   "amd64p32", "arm",    "armbe",    "arm64",     "arm64be",
      "loong64", "mips",    "mipsle",   "mips64", "mips64le", "mips64p32", "mips64p32le",
      "ppc",     "ppc64",   "ppc64le",  "riscv",  "riscv64",  "s390",      "s390x",
      "sparc",   "sparc64", "wasm",     "x86_64", "aarch64"};
  return is_one_of(arch, k_arch);
}

bool platform_component(std::string_view part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

// Global args: BuildKit's defaultArgs (platform args, overridable by --build-arg) followed by
// buildMetaArgs over the ARGs before the first FROM.
struct GlobalScope {
  Environment env;
  std::set<std::string> declared; // names of global ARGs
};

Result<GlobalScope> resolve_global_args(const std::vector<Instruction>& arg_instructions,
                                        const PlanOptions& options, std::string_view target_name,
                                        const ShellLexer& lexer) {
  GlobalScope global;
  const auto& build = options.build_platform;
  const auto& target = options.target_platform;
  const std::pair<std::string_view, std::string> defaults[] = {
      {"BUILDPLATFORM", oci::to_string(build)},   {"BUILDOS", build.os},
      {"BUILDARCH", build.architecture},          {"BUILDVARIANT", build.variant},
      {"TARGETPLATFORM", oci::to_string(target)}, {"TARGETOS", target.os},
      {"TARGETARCH", target.architecture},        {"TARGETVARIANT", target.variant},
      {"TARGETSTAGE", std::string(target_name)}};
  for (const auto& [name, value] : defaults) {
    const auto override_value = options.build_args.find(std::string(name));
    global.env.set(std::string(name),
                   override_value != options.build_args.end() ? override_value->second : value);
  }
  for (const auto& instruction : arg_instructions) {
    for (const auto& declaration : instruction.as<ArgInstruction>().args) {
      global.declared.insert(declaration.name);
      std::optional<std::string> value;
      if (auto given = options.build_args.find(declaration.name);
          given != options.build_args.end()) {
        value = given->second;
      } else if (declaration.default_value) {
        auto expanded = lexer.process_word(*declaration.default_value, global.env);
        if (!expanded) {
          return tl::unexpected<Error>(
              located(std::move(expanded).error().wrap("ARG"), instruction));
        }
        value = std::move(expanded->word);
      }
      if (value) {
        global.env.set(declaration.name, std::move(*value));
      }
    }
  }
  return global;
}

// Per-stage working state while the graph is built.
struct StageWork {
  PlanStage stage;
  StageScope final_scope;
  std::optional<Error> error; // raised only if the stage turns out to build
};

// Resolves a COPY --from / RUN --mount=from value to a source. `current` is the referring
// stage's index; BuildKit refuses a stage that is not defined before it.
Result<StageSource> resolve_reference(const std::string& reference, SourceUse use,
                                      const Instruction& instruction, int current,
                                      const std::vector<StageWork>& stages,
                                      std::optional<Error>& stage_error) {
  StageSource source;
  source.use = use;
  source.location = instruction.location;
  const auto& current_name = stages[static_cast<std::size_t>(current)].stage.name;
  const std::string verb = use == SourceUse::copy_from ? "copy from" : "mount from";
  auto refuse_forward = [&](int index) {
    // A later (or the same) stage: BuildKit fails when it dispatches this stage, so this is
    // an error only if the stage builds.
    if (!stage_error) {
      Error error(Code::dockerfile,
                  "cannot " + verb + " stage " + quote(reference) +
                      ", it needs to be defined before current stage " +
                      quote(current_name.empty() ? std::to_string(current) : current_name));
      stage_error = located(std::move(error), instruction);
    }
    source.kind = SourceKind::stage;
    source.stage = index;
  };
  if (is_integer(reference)) {
    const int index = std::stoi(reference);
    if (index < 0 || index >= static_cast<int>(stages.size())) {
      return fail_at(instruction.location, "invalid stage index " + reference);
    }
    if (index >= current) {
      refuse_forward(index);
      return source;
    }
    source.kind = SourceKind::stage;
    source.stage = index;
    return source;
  }
  const auto lower = to_lower(reference);
  for (const auto& work : stages) {
    if (!work.stage.name.empty() && work.stage.name == lower) {
      if (work.stage.index >= current) {
        refuse_forward(work.stage.index);
        return source;
      }
      source.kind = SourceKind::stage;
      source.stage = work.stage.index;
      return source;
    }
  }
  if (reference == "scratch") {
    source.kind = SourceKind::scratch;
    return source;
  }
  source.kind = SourceKind::image;
  source.image = reference;
  return source;
}

// Walks one stage's instructions: ARG/ENV scope and the sources of COPY --from and
// RUN --mount=from. Errors in here belong to the stage (stored, raised only if it builds),
// except an invalid stage index, which BuildKit reports for every stage.
Result<void> walk_stage(std::vector<StageWork>& stages, int current, const Plan& plan,
                        const ShellLexer& lexer) {
  auto& work = stages[static_cast<std::size_t>(current)];
  StageScope scope = work.stage.initial_scope;
  auto stage_failed = [&](Error error) {
    if (!work.error) {
      work.error = std::move(error);
    }
  };
  for (const auto& instruction : work.stage.instructions) {
    if (work.error) {
      break;
    }
    switch (instruction.kind()) {
    case InstructionKind::arg:
      if (auto applied = apply_arg(scope, instruction, plan.global_args, plan.build_args, lexer);
          !applied) {
        stage_failed(std::move(applied).error());
      }
      break;
    case InstructionKind::env:
      if (auto applied = apply_env(scope, instruction, lexer); !applied) {
        stage_failed(std::move(applied).error());
      }
      break;
    case InstructionKind::copy: {
      std::string from = instruction.as<CopyInstruction>().from;
      if (from.empty()) {
        break;
      }
      // BuildKit resolves --from as written; minibuild also expands variables in it (with the
      // stage's scope), as Docker's classic builder did. A literal value resolves the same.
      if (from.find('$') != std::string::npos) {
        auto expanded = lexer.process_word(from, scope.expansion_environment());
        if (!expanded) {
          stage_failed(located(std::move(expanded).error().wrap("COPY"), instruction));
          break;
        }
        from = std::move(expanded->word);
        if (from.empty()) {
          stage_failed(located(Error(Code::dockerfile, "COPY --from expands to an empty value"),
                               instruction));
          break;
        }
      }
      MB_TRY_ASSIGN(auto source, resolve_reference(from, SourceUse::copy_from, instruction, current,
                                                   stages, work.error));
      work.stage.sources.push_back(std::move(source));
      break;
    }
    case InstructionKind::run:
      for (const auto& mount : instruction.as<RunInstruction>().mounts) {
        // A cache mount without from= starts empty and a tmpfs ignores from=; neither reads
        // another stage (BuildKit detectRunMount).
        if (mount.from.empty() || mount.type == MountType::tmpfs) {
          continue;
        }
        MB_TRY_ASSIGN(auto source, resolve_reference(mount.from, SourceUse::mount_from, instruction,
                                                     current, stages, work.error));
        work.stage.sources.push_back(std::move(source));
      }
      break;
    case InstructionKind::from:
    case InstructionKind::cmd:
    case InstructionKind::label:
    case InstructionKind::maintainer:
    case InstructionKind::expose:
    case InstructionKind::add:
    case InstructionKind::entrypoint:
    case InstructionKind::volume:
    case InstructionKind::user:
    case InstructionKind::workdir:
    case InstructionKind::onbuild:
    case InstructionKind::stopsignal:
    case InstructionKind::healthcheck:
    case InstructionKind::shell:
      break;
    }
  }
  work.final_scope = std::move(scope);
  std::set<int> depends;
  for (const auto& source : work.stage.sources) {
    if (source.kind == SourceKind::stage) {
      depends.insert(source.stage);
    }
  }
  work.stage.depends_on.assign(depends.begin(), depends.end());
  return {};
}

// The graph only has edges to lower indexes unless a forward reference was recorded as a stage
// error; check anyway, so a bug can never send the executor into a loop.
Result<void> check_acyclic(const std::vector<StageWork>& stages) {
  std::vector<int> state(stages.size(), 0); // 0 new, 1 on path, 2 done
  std::function<bool(int)> visit = [&](int index) {
    auto& mark = state[static_cast<std::size_t>(index)];
    if (mark == 1) {
      return false;
    }
    if (mark == 2) {
      return true;
    }
    mark = 1;
    for (int dep : stages[static_cast<std::size_t>(index)].stage.depends_on) {
      if (!stages[static_cast<std::size_t>(index)].error && !visit(dep)) {
        return false;
      }
    }
    mark = 2;
    return true;
  };
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (!visit(static_cast<int>(i))) {
      return fail_at(stages[i].stage.location,
                     "circular dependency detected on " +
                         stage_label(static_cast<int>(i), stages[i].stage.name),
                     Code::internal);
    }
  }
  return {};
}

// Escapes control characters so that every dump entry stays on one line.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\\':
      out += "\\\\";
      break;
    default:
      out += c;
    }
  }
  return out;
}

std::string describe_source(const StageSource& source, const Plan& plan) {
  switch (source.kind) {
  case SourceKind::stage: {
    std::string name;
    if (const auto* stage = plan.stage(source.stage)) {
      name = stage->name;
    }
    return stage_label(source.stage, name);
  }
  case SourceKind::image:
    return "image " + source.image;
  case SourceKind::scratch:
    return "scratch";
  }
  return "?";
}

std::string_view use_name(SourceUse use) {
  switch (use) {
  case SourceUse::base:
    return "base";
  case SourceUse::copy_from:
    return "copy-from";
  case SourceUse::mount_from:
    return "mount-from";
  }
  return "?";
}

} // namespace

Result<Platform> parse_platform(std::string_view text, const Platform& defaults) {
  const auto invalid = [&](std::string_view why) {
    return fail(Code::dockerfile, "invalid platform " + quote(text) + ": " + std::string(why));
  };
  if (text.empty()) {
    return invalid("empty value");
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto slash = text.find('/', start);
    parts.push_back(to_lower(text.substr(start, slash - start)));
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  if (parts.size() > 3) {
    return invalid("expected os/arch[/variant]");
  }
  for (const auto& part : parts) {
    if (!platform_component(part)) {
      return invalid("expected os/arch[/variant]");
    }
  }
  Platform platform;
  if (parts.size() == 1) {
    if (parts[0] == "local") {
      return defaults;
    }
    if (parts[0] == "macos") {
      parts[0] = "darwin";
    }
    if (known_os(parts[0])) {
      platform.os = parts[0];
      platform.architecture = defaults.architecture;
      platform.variant = defaults.variant;
    } else {
      platform.os = defaults.os;
      platform.architecture = parts[0];
      std::string variant = platform.variant;
      normalize_architecture(platform.architecture, variant);
      if (!known_architecture(platform.architecture)) {
        return invalid("unknown operating system or architecture");
      }
    }
  } else {
    platform.os = parts[0] == "macos" ? "darwin" : parts[0];
    platform.architecture = parts[1];
    if (parts.size() == 3) {
      platform.variant = parts[2];
    }
    if (!known_os(platform.os)) {
      return invalid("unknown operating system " + quote(platform.os));
    }
  }
  normalize_architecture(platform.architecture, platform.variant);
  if (!known_architecture(platform.architecture)) {
    return invalid("unknown architecture " + quote(platform.architecture));
  }
  return platform;
}

void StageScope::declare_arg(const std::string& name, std::optional<std::string> value) {
  if (m_declared.insert(name).second) {
    m_declared_order.push_back(name);
  }
  if (value) {
    m_args.set(name, std::move(*value));
  }
}

void StageScope::set_env(std::string name, std::string value) {
  m_env.set(std::move(name), std::move(value));
}

Environment StageScope::expansion_environment() const {
  Environment merged = m_args;
  for (const auto& [name, value] : m_env.entries()) {
    merged.set(name, value);
  }
  return merged;
}

Result<void> apply_arg(StageScope& scope, const Instruction& arg, const Environment& global_args,
                       const std::map<std::string, std::string>& build_args,
                       const ShellLexer& lexer) {
  for (const auto& declaration : arg.as<ArgInstruction>().args) {
    std::optional<std::string> value;
    if (auto given = build_args.find(declaration.name); given != build_args.end()) {
      value = given->second;
    } else if (declaration.default_value) {
      auto expanded = lexer.process_word(*declaration.default_value, scope.expansion_environment());
      if (!expanded) {
        return tl::unexpected<Error>(located(std::move(expanded).error().wrap("ARG"), arg));
      }
      value = std::move(expanded->word);
    } else if (auto global = global_args.get(declaration.name)) {
      // `ARG NAME` inside a stage takes the global value: how a pre-FROM ARG (or a platform
      // ARG such as TARGETARCH) becomes visible in a stage.
      value = std::string(*global);
    }
    scope.declare_arg(declaration.name, std::move(value));
  }
  return {};
}

Result<void> apply_env(StageScope& scope, const Instruction& env, const ShellLexer& lexer) {
  MB_TRY_ASSIGN(auto expanded, expand_instruction(env, scope.expansion_environment(), lexer));
  for (auto& variable : expanded.as<EnvInstruction>().variables) {
    scope.set_env(std::move(variable.key), std::move(variable.value));
  }
  return {};
}

const PlanStage* Plan::stage(int index) const {
  for (const auto& planned : stages) {
    if (planned.index == index) {
      return &planned;
    }
  }
  return nullptr;
}

Result<Plan> make_plan(const ParsedDockerfile& parsed, const PlanOptions& options) {
  Plan plan;
  plan.file = parsed.file;
  plan.directives = parsed.directives;
  plan.build_args = options.build_args;
  plan.warnings = parsed.warnings;
  if (parsed.directives.syntax) {
    // BuildKit would fetch this frontend image; minibuild has its frontend built in.
    plan.warnings.push_back(
        {"the syntax directive " + quote(*parsed.directives.syntax) +
             " is recorded but not used: minibuild builds with its own Dockerfile frontend",
         SourceRange{parsed.file, 0, 0, 0}});
  }
  const ShellLexer lexer(parsed.directives.escape);

  // 1. Typed instructions, split into global ARGs and stages.
  std::vector<StageWork> stages;
  for (const auto& node : parsed.instructions) {
    MB_TRY_ASSIGN(auto instruction, parse_instruction(node, parsed.file, &plan.warnings));
    const auto kind = instruction.kind();
    if (kind == InstructionKind::from) {
      StageWork work;
      work.stage.index = static_cast<int>(stages.size());
      work.stage.name = instruction.as<FromInstruction>().stage_name;
      work.stage.location = instruction.location;
      work.stage.from = std::move(instruction);
      stages.push_back(std::move(work));
    } else if (stages.empty()) {
      if (kind != InstructionKind::arg) {
        return fail_at(instruction.location,
                       "no build stage in current context: " + std::string(instruction_name(kind)) +
                           " comes before the first FROM (only ARG may)");
      }
      plan.global_arg_instructions.push_back(std::move(instruction));
    } else {
      stages.back().stage.instructions.push_back(std::move(instruction));
    }
  }
  if (stages.empty()) {
    return fail_at(SourceRange{parsed.file, 0, 0, 0}, "dockerfile contains no stages to build");
  }
  plan.stage_count = static_cast<int>(stages.size());

  // 2. Names: duplicates, reserved names, the target.
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto& stage = stages[i].stage;
    if (stage.name.empty()) {
      continue;
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (stages[j].stage.name == stage.name) {
        return fail_at(stage.location, "duplicate stage name " + quote(stage.name) +
                                           ": already defined on line " +
                                           std::to_string(stages[j].stage.location.line));
      }
    }
    if (stage.name == "scratch" || stage.name == "context") {
      plan.warnings.push_back({"ReservedStageName: " + quote(stage.name) +
                                   " is reserved and should not be used as a stage name",
                               stage.location});
    }
  }
  int target = static_cast<int>(stages.size()) - 1;
  if (!options.target.empty()) {
    const auto wanted = to_lower(options.target);
    const auto found = std::find_if(stages.begin(), stages.end(), [&](const StageWork& work) {
      return work.stage.name == wanted;
    });
    if (found == stages.end()) {
      std::string names;
      for (const auto& work : stages) {
        if (!work.stage.name.empty()) {
          names += (names.empty() ? "" : ", ") + work.stage.name;
        }
      }
      return fail(Code::not_found,
                  "target stage " + quote(options.target) + " could not be found (stages: " +
                      (names.empty() ? std::string("none is named") : names) + ")");
    }
    target = found->stage.index;
  }
  plan.target = target;

  // 3. Global ARGs, then every FROM line: BuildKit expands all of them, built or not.
  MB_TRY_ASSIGN(auto global,
                resolve_global_args(plan.global_arg_instructions, options,
                                    stages[static_cast<std::size_t>(target)].stage.name, lexer));
  plan.global_args = global.env;
  for (auto& work : stages) {
    auto& stage = work.stage;
    const auto& from = stage.from.as<FromInstruction>();
    auto base = lexer.process_word(from.base, plan.global_args);
    if (!base) {
      return tl::unexpected<Error>(located(std::move(base).error().wrap("FROM"), stage.from));
    }
    for (const auto& name : base->unmatched) {
      if (!global.declared.count(name) && !is_one_of(name, k_platform_args)) {
        auto message = "UndefinedArgInFrom: FROM argument '" + name + "' is not declared";
        std::vector<std::string> known(global.declared.begin(), global.declared.end());
        if (auto near = suggest_nearest(name, known)) {
          message += " (did you mean " + *near + "?)";
        }
        plan.warnings.push_back({message, stage.location});
      }
    }
    if (base->word.empty()) {
      return fail_at(stage.location, "base name (" + from.base + ") should not be blank");
    }
    stage.base.use = SourceUse::base;
    stage.base.location = stage.location;
    // A FROM names a stage only if that stage is defined earlier; otherwise it is an image,
    // even if a later stage has that name (BuildKit's dispatchStates.addState).
    const auto earlier =
        std::find_if(stages.begin(), stages.begin() + stage.index, [&](const StageWork& other) {
          return !other.stage.name.empty() && other.stage.name == base->word;
        });
    if (earlier != stages.begin() + stage.index) {
      stage.base.kind = SourceKind::stage;
      stage.base.stage = earlier->stage.index;
    } else if (base->word == "scratch") {
      stage.base.kind = SourceKind::scratch;
    } else {
      stage.base.kind = SourceKind::image;
      stage.base.image = base->word;
    }
    if (from.platform) {
      auto platform = lexer.process_word(*from.platform, plan.global_args);
      if (!platform) {
        return tl::unexpected<Error>(
            located(std::move(platform).error().wrap("FROM --platform"), stage.from));
      }
      if (platform->word.empty()) {
        return fail_at(stage.location, "empty platform value from expression " + *from.platform);
      }
      auto parsed_platform = parse_platform(platform->word, options.target_platform);
      if (!parsed_platform) {
        return tl::unexpected<Error>(located(
            std::move(parsed_platform).error().wrap("failed to parse platform " + *from.platform),
            stage.from));
      }
      stage.platform_flag = *parsed_platform;
    }
    if (stage.base.kind == SourceKind::stage) {
      stage.platform = stages[static_cast<std::size_t>(stage.base.stage)].stage.platform;
    } else {
      stage.platform = stage.platform_flag.value_or(options.target_platform);
    }
  }

  // 4. Scope and sources, stage by stage (a stage's base is always walked before it).
  for (auto& work : stages) {
    auto& stage = work.stage;
    if (stage.base.kind == SourceKind::stage) {
      stage.initial_scope = stages[static_cast<std::size_t>(stage.base.stage)].final_scope;
    }
    stage.sources.push_back(stage.base);
    MB_TRY(walk_stage(stages, stage.index, plan, lexer));
  }
  MB_TRY(check_acyclic(stages));

  // 5. Keep what the target needs.
  std::vector<bool> needed(stages.size(), false);
  std::vector<int> pending = {target};
  while (!pending.empty()) {
    const int index = pending.back();
    pending.pop_back();
    if (needed[static_cast<std::size_t>(index)]) {
      continue;
    }
    needed[static_cast<std::size_t>(index)] = true;
    for (int dep : stages[static_cast<std::size_t>(index)].stage.depends_on) {
      pending.push_back(dep);
    }
  }
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (needed[i] && stages[i].error) {
      return fail(std::move(*stages[i].error));
    }
  }
  std::set<std::string> consumed(global.declared.begin(), global.declared.end());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (!needed[i]) {
      continue;
    }
    auto& stage = stages[i].stage;
    for (const auto& source : stage.sources) {
      if (source.kind == SourceKind::image &&
          std::find(plan.images.begin(), plan.images.end(), source.image) == plan.images.end()) {
        plan.images.push_back(source.image);
      }
    }
    for (const auto& name : stages[i].final_scope.declared_args()) {
      consumed.insert(name);
    }
    plan.stages.push_back(std::move(stage));
  }

  // 6. Build args: proxies go to RUN; any other one no ARG declared is reported.
  std::vector<std::string> unused;
  for (const auto& [name, value] : options.build_args) {
    if (is_one_of(name, k_proxy_args)) {
      plan.proxy_env.set(name, value);
    } else if (!consumed.count(name) && !is_one_of(name, k_platform_args)) {
      unused.push_back(name);
    }
  }
  if (!unused.empty()) {
    std::string list;
    for (const auto& name : unused) {
      list += (list.empty() ? "" : " ") + name;
    }
    plan.warnings.push_back(
        {"One or more build-args [" + list + "] were not consumed", {parsed.file, 0, 0, 0}});
  }
  return plan;
}

std::string dump_plan(const Plan& plan) {
  std::string out;
  auto line = [&out](int indent, const std::string& text) {
    out.append(static_cast<std::size_t>(indent) * 2, ' ');
    out += text;
    out += '\n';
  };
  auto env_lines = [&](int indent, const Environment& env, std::string_view prefix) {
    for (const auto& [name, value] : env.entries()) {
      line(indent, std::string(prefix) + name + "=" + printable(value));
    }
  };
  const auto* target = plan.stage(plan.target);
  line(0, "file: " + plan.file);
  line(0, "target: " + stage_label(plan.target, target != nullptr ? target->name : ""));
  line(0, "stages: " + std::to_string(plan.stages.size()) + " of " +
              std::to_string(plan.stage_count) + " build");
  line(0, "build-args:");
  for (const auto& [name, value] : plan.build_args) {
    line(1, name + "=" + printable(value));
  }
  line(0, "global-args:");
  env_lines(1, plan.global_args, "");
  line(0, "proxy-env:");
  env_lines(1, plan.proxy_env, "");
  for (const auto& stage : plan.stages) {
    line(0, stage_label(stage.index, stage.name) + " (line " + std::to_string(stage.location.line) +
                ")");
    line(1, "from: " + describe_source(stage.base, plan) + "  # " + printable(stage.from.original));
    line(1, "platform: " + oci::to_string(stage.platform) +
                (stage.platform_flag ? " (--platform)" : ""));
    std::string depends;
    for (int dep : stage.depends_on) {
      depends += (depends.empty() ? "" : ", ") + std::to_string(dep);
    }
    line(1, "depends-on: " + (depends.empty() ? std::string("none") : depends));
    line(1, "sources:");
    for (const auto& source : stage.sources) {
      line(2, std::string(use_name(source.use)) + " " + describe_source(source, plan) + " (line " +
                  std::to_string(source.location.line) + ")");
    }
    line(1, "scope:");
    for (const auto& name : stage.initial_scope.declared_args()) {
      const auto value = stage.initial_scope.args().get(name);
      line(2, "arg " + name + (value ? "=" + printable(*value) : std::string(" (no value)")));
    }
    env_lines(2, stage.initial_scope.env(), "env ");
    line(1, "instructions:");
    for (const auto& instruction : stage.instructions) {
      line(2, std::to_string(instruction.location.line) + ": " + printable(instruction.original));
    }
  }
  line(0, "images:");
  for (const auto& image : plan.images) {
    line(1, image);
  }
  line(0, "warnings:");
  for (const auto& warning : plan.warnings) {
    std::string where = warning.location.file;
    if (warning.location.line > 0) {
      where += ":" + std::to_string(warning.location.line);
    }
    line(1, where + ": " + printable(warning.message));
  }
  return out;
}

} // namespace minibuild::dockerfile
