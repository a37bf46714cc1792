// The build plan: which stages a build runs, in which order, from which bases, with which
// ARG/ENV scope — everything that can be known from the Dockerfile and the build options alone,
// before any image is pulled or any step runs.
//
// make_plan() takes a parsed Dockerfile through typed instructions (instructions.hpp), resolves
// the global ARGs (those before the first FROM), expands every FROM line, resolves stage
// references (FROM <stage>, COPY --from, RUN --mount=from) into a dependency graph and keeps the
// stages the target needs. Rules follow BuildKit's dockerfile2llb; docs/dockerfile.md lists
// them, and where minibuild differs.
//
// Pure: no I/O, no host probing (the platforms come in through PlanOptions), never prints.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/dockerfile/ast.hpp>
#include <minibuild/dockerfile/instructions.hpp>
#include <minibuild/dockerfile/shell_lexer.hpp>
#include <minibuild/oci/platform.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace minibuild::dockerfile {

/// Platforms are oci::Platform, normalised as containerd does (oci::normalize): lower-case os
/// and architecture, `x86_64` → `amd64`, `aarch64` → `arm64` (variant v8 dropped), `arm` →
/// variant v7 by default.
using Platform = oci::Platform;

/// Parses "os/arch[/variant]", "os" or "arch"; a missing part comes from `defaults`. Fails with
/// Code::dockerfile for an empty or malformed value or an unknown os/architecture name.
Result<Platform> parse_platform(std::string_view text, const Platform& defaults);

/// What the caller decides: build arguments, target stage, platforms.
struct PlanOptions {
  /// `--build-arg` values by name (the CLI resolves repeats: last one wins).
  std::map<std::string, std::string> build_args;
  /// Stage name to build (case-insensitive); empty builds the last stage.
  std::string target;
  /// The platform the image is built for (TARGETPLATFORM) and the one the build runs on
  /// (BUILDPLATFORM). The caller supplies them; the plan never probes the host.
  Platform target_platform = oci::make_platform("linux", "amd64");
  Platform build_platform = oci::make_platform("linux", "amd64");
};

/// The ARG and ENV variables visible at one point of a stage. ENV always wins over an ARG of
/// the same name (Docker's documented rule), whatever their order.
class StageScope {
public:
  /// Records `ARG name` with its resolved value; nullopt declares it without a value, which
  /// leaves an earlier value of the same ARG in place.
  void declare_arg(const std::string& name, std::optional<std::string> value);
  void set_env(std::string name, std::string value);

  bool declared(std::string_view name) const { return m_declared.count(std::string(name)) != 0; }
  /// Declared ARG names, in first-declaration order.
  const std::vector<std::string>& declared_args() const { return m_declared_order; }
  const Environment& args() const { return m_args; }
  const Environment& env() const { return m_env; }
  /// What `$NAME` expands to here: ARG values overlaid with ENV values.
  Environment expansion_environment() const;

private:
  std::set<std::string> m_declared;
  std::vector<std::string> m_declared_order;
  Environment m_args;
  Environment m_env;
};

/// Applies an in-stage ARG instruction to `scope` as BuildKit's dispatchArg does: for each
/// name, a --build-arg value wins; else the default, expanded in the current scope; else the
/// global (pre-FROM or platform) value of that name; else the name is declared without value.
/// Used by make_plan and, with the same rules, by the executor.
Result<void> apply_arg(StageScope& scope, const Instruction& arg, const Environment& global_args,
                       const std::map<std::string, std::string>& build_args,
                       const ShellLexer& lexer);

/// Applies an ENV instruction: every key and value is expanded with the scope as it was before
/// the instruction (`ENV a=1 b=$a` sees the old `a`), then set.
Result<void> apply_env(StageScope& scope, const Instruction& env, const ShellLexer& lexer);

/// What a stage reads from: its FROM base, a `COPY --from`, or a `RUN --mount=from=`.
enum class SourceUse { base, copy_from, mount_from };
/// Where that content comes from.
enum class SourceKind { stage, image, scratch };

struct StageSource {
  SourceUse use = SourceUse::base;
  SourceKind kind = SourceKind::image;
  int stage = -1;       ///< for SourceKind::stage: the stage's index in the Dockerfile
  std::string image;    ///< for SourceKind::image: the reference, expanded
  SourceRange location; ///< the FROM, COPY or RUN that reads it

  bool operator==(const StageSource&) const = default;
};

/// One FROM and the instructions up to the next FROM.
struct PlanStage {
  int index = 0;    ///< position among all stages of the Dockerfile (0-based)
  std::string name; ///< `AS name`, lower-cased; empty when unnamed
  Instruction from; ///< the FROM instruction, unexpanded
  StageSource base; ///< the expanded FROM: an earlier stage, an image or scratch
  std::optional<Platform> platform_flag; ///< FROM --platform, expanded and parsed
  /// The platform the stage builds for: a base stage's platform, else --platform, else the
  /// target platform.
  Platform platform;
  std::vector<Instruction> instructions; ///< after FROM, typed and unexpanded
  /// The ARG/ENV scope when the stage starts: a base stage's final scope, or empty for an
  /// image or scratch base (the image's own ENV is added by the executor once it is pulled).
  StageScope initial_scope;
  /// Every source the stage reads (base first, then COPY --from and RUN --mount in order).
  std::vector<StageSource> sources;
  /// Indexes of the stages this one needs, ascending, unique; all lower than `index`.
  std::vector<int> depends_on;
  SourceRange location; ///< the FROM line
};

struct Plan {
  std::string file;
  Directives directives;
  /// ARG instructions before the first FROM.
  std::vector<Instruction> global_arg_instructions;
  /// The global scope FROM lines expand with: the automatic platform ARGs (BUILDPLATFORM ...
  /// TARGETSTAGE), then each global ARG that has a value, --build-arg values applied.
  Environment global_args;
  /// The --build-arg values, for in-stage ARG resolution (apply_arg).
  std::map<std::string, std::string> build_args;
  /// Proxy variables (HTTP_PROXY, no_proxy, ...) given as --build-arg: set in the environment
  /// of every RUN without an ARG declaration, never used for expansion (as BuildKit does).
  Environment proxy_env;
  /// The stages that build, in Dockerfile order; the target is the last one.
  std::vector<PlanStage> stages;
  int target = 0;      ///< index of the target stage
  int stage_count = 0; ///< number of stages in the Dockerfile, built or not
  /// External images the build needs (bases, COPY --from and RUN --mount sources), expanded,
  /// without `scratch`, in order of first use.
  std::vector<std::string> images;
  /// Parser warnings, then instruction warnings, then plan warnings (unconsumed build args).
  std::vector<Warning> warnings;

  /// The planned stage with this Dockerfile index, or null if it does not build.
  const PlanStage* stage(int index) const;
};

/// Plans a build. Fails with Code::dockerfile (and the offending line) for an invalid
/// instruction, an instruction other than ARG before the first FROM, a duplicate stage name, a
/// stage reference to a later stage or an invalid index, a FROM that expands to nothing or to a
/// bad platform; with Code::not_found when `options.target` names no stage (the message lists
/// the stage names).
Result<Plan> make_plan(const ParsedDockerfile& parsed, const PlanOptions& options);

/// A readable, stable text dump of a plan (`minibuild parse --format plan`, golden tests): one
/// section per stage with base, platform, dependencies, sources, initial scope and
/// instructions, then the images and warnings. Same plan, same bytes.
std::string dump_plan(const Plan& plan);

} // namespace minibuild::dockerfile
