// Typed Dockerfile instructions: the stage between the syntax tree (ast.hpp) and the build plan
// (plan.hpp).
//
// parse_instruction() turns one Node into one Instruction: it validates the flags each
// instruction accepts (names, value types, repeatability, as BuildKit's bflag does), the number
// and form of the arguments, stage and ARG names, and RUN --mount specs. Words stay exactly as
// written: variables are expanded later by expand_instruction(), once the caller (the plan or the
// executor) knows the ARG/ENV scope. Which fields expand follows BuildKit's `Expand` methods; see
// docs/dockerfile.md for the list.
//
// Nothing here does I/O or prints. Errors have Code::dockerfile and the instruction's
// SourceRange; warnings (deprecated MAINTAINER, stage-name casing, ...) are appended to the
// caller's vector.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/dockerfile/ast.hpp>
#include <minibuild/dockerfile/shell_lexer.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace minibuild::dockerfile {

/// The 18 Dockerfile instructions. The order is the order of Instruction::Payload's
/// alternatives; code that dispatches on it must `switch` exhaustively without `default:` so
/// that -Wswitch flags every place a new instruction has to be handled.
enum class InstructionKind {
  from,
  run,
  cmd,
  label,
  maintainer,
  expose,
  env,
  add,
  copy,
  entrypoint,
  volume,
  user,
  workdir,
  arg,
  onbuild,
  stopsignal,
  healthcheck,
  shell,
};

/// The upper-case keyword ("FROM").
std::string_view instruction_name(InstructionKind kind);

/// The kind for a keyword in any case ("run", "Run"), or nullopt for an unknown keyword.
std::optional<InstructionKind> instruction_kind(std::string_view keyword);

/// A RUN, CMD, ENTRYPOINT or HEALTHCHECK command line. In exec (JSON) form `args` is the argv;
/// in shell form it holds one element, the script, which the executor hands to the SHELL.
struct CommandLine {
  std::vector<std::string> args;
  bool shell_form = true;        ///< prepend the stage's SHELL (BuildKit PrependShell)
  std::vector<Heredoc> heredocs; ///< RUN only: bodies of `<<EOF` words, in order

  bool operator==(const CommandLine&) const = default;
};

enum class MountType { bind, cache, tmpfs, secret, ssh };
enum class MountSharing { shared, private_, locked };
enum class RunNetwork { default_, none, host };
enum class RunSecurity { sandbox, insecure };

std::string_view mount_type_name(MountType type);
std::string_view mount_sharing_name(MountSharing sharing);
std::string_view run_network_name(RunNetwork network);
std::string_view run_security_name(RunSecurity security);

/// One `RUN --mount=<spec>`, as BuildKit's parseMount reads the CSV spec. Values that contain a
/// variable (`target=$DIR`) are only checked once expand_instruction() has expanded them; until
/// then `resolved` is false and the typed fields hold the unexpanded words.
struct RunMount {
  std::string spec; ///< the flag value as written, kept for re-parsing after expansion
  MountType type = MountType::bind;
  std::string from;      ///< stage name, stage index or image; empty = build context (bind)
  std::string source;    ///< `source=`/`src=`
  std::string target;    ///< `target=`/`dst=`/`destination=`
  std::string id;        ///< `id=` (cache id, secret id, ssh id)
  bool read_only = true; ///< default: true for bind/secret/ssh, false for cache/tmpfs
  bool required = false; ///< secret/ssh only
  std::optional<MountSharing> sharing; ///< cache only; nullopt = shared
  std::optional<std::int64_t> size;    ///< tmpfs only, bytes
  std::optional<std::uint32_t> mode;   ///< secret/ssh/cache only, octal in the spec
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> gid;
  std::optional<std::string> env; ///< secret only: expose the secret as this variable
  bool resolved = true;           ///< false while some value still holds a `$variable`

  bool operator==(const RunMount&) const = default;
};

/// A heredoc used as a COPY/ADD source (`COPY <<EOF /dest`): a file named `name` with `content`.
struct InlineSource {
  std::string name;    ///< the heredoc delimiter, used as the file name
  std::string content; ///< the body (tabs stripped for `<<-`)
  bool expand = true;  ///< expand variables in the body (delimiter was not quoted)

  bool operator==(const InlineSource&) const = default;
};

struct KeyValue {
  std::string key;
  std::string value;   ///< raw: quotes and escapes are removed by expansion
  bool legacy = false; ///< written as `ENV key value` (no '='), BuildKit's LegacyKeyValueFormat

  bool operator==(const KeyValue&) const = default;
};

struct ArgDeclaration {
  std::string name;
  std::optional<std::string> default_value; ///< raw; nullopt for `ARG NAME` without '='

  bool operator==(const ArgDeclaration&) const = default;
};

struct FromInstruction {
  std::string base;                    ///< image reference, earlier stage name or "scratch"
  std::string stage_name;              ///< `AS name`, lower-cased; empty when unnamed
  std::optional<std::string> platform; ///< `--platform` value

  bool operator==(const FromInstruction&) const = default;
};

struct RunInstruction {
  CommandLine command;
  std::vector<RunMount> mounts;
  RunNetwork network = RunNetwork::default_;
  RunSecurity security = RunSecurity::sandbox;

  bool operator==(const RunInstruction&) const = default;
};

struct CmdInstruction {
  CommandLine command;

  bool operator==(const CmdInstruction&) const = default;
};

struct LabelInstruction {
  std::vector<KeyValue> labels;

  bool operator==(const LabelInstruction&) const = default;
};

struct MaintainerInstruction {
  std::string name;

  bool operator==(const MaintainerInstruction&) const = default;
};

struct ExposeInstruction {
  std::vector<std::string> ports; ///< `80`, `8000-8010/udp`; as written, in order

  bool operator==(const ExposeInstruction&) const = default;
};

struct EnvInstruction {
  std::vector<KeyValue> variables;

  bool operator==(const EnvInstruction&) const = default;
};

struct AddInstruction {
  std::vector<std::string> sources; ///< paths, URLs, git URLs
  std::vector<InlineSource> inline_sources;
  std::string dest;
  std::string chown;
  std::string chmod;
  std::string checksum;
  bool link = false;
  bool keep_git_dir = false;
  std::optional<bool> unpack; ///< nullopt: BuildKit's default (unpack local archives only)
  std::vector<std::string> excludes;

  bool operator==(const AddInstruction&) const = default;
};

struct CopyInstruction {
  std::vector<std::string> sources;
  std::vector<InlineSource> inline_sources;
  std::string dest;
  std::string from; ///< empty = build context; else stage name, stage index or image
  std::string chown;
  std::string chmod;
  bool link = false;
  bool parents = false;
  std::vector<std::string> excludes;

  bool operator==(const CopyInstruction&) const = default;
};

struct EntrypointInstruction {
  CommandLine command; ///< empty args: `ENTRYPOINT []` resets the entrypoint

  bool operator==(const EntrypointInstruction&) const = default;
};

struct VolumeInstruction {
  std::vector<std::string> paths;

  bool operator==(const VolumeInstruction&) const = default;
};

struct UserInstruction {
  std::string user; ///< `user[:group]`

  bool operator==(const UserInstruction&) const = default;
};

struct WorkdirInstruction {
  std::string path;

  bool operator==(const WorkdirInstruction&) const = default;
};

struct ArgInstruction {
  std::vector<ArgDeclaration> args;

  bool operator==(const ArgInstruction&) const = default;
};

/// `ONBUILD <instruction>`: recorded in the image config and run by a later build that uses the
/// image as its base. The trigger is validated here but never dispatched by this build.
struct OnbuildInstruction {
  std::string expression; ///< the trigger text (ONBUILD removed), heredoc bodies appended
  Node trigger;           ///< the wrapped instruction as parsed

  bool operator==(const OnbuildInstruction&) const = default;
};

struct StopsignalInstruction {
  std::string signal; ///< `SIGTERM`, `TERM`, `15`, ...

  bool operator==(const StopsignalInstruction&) const = default;
};

enum class HealthcheckType { none, cmd, cmd_shell };

/// HEALTHCHECK as Docker's HealthConfig: `test` is ["NONE"], ["CMD", argv...] or
/// ["CMD-SHELL", script]. A zero duration or retry count means "inherit the default".
struct HealthcheckInstruction {
  HealthcheckType type = HealthcheckType::none;
  std::vector<std::string> test;
  std::chrono::nanoseconds interval{0};
  std::chrono::nanoseconds timeout{0};
  std::chrono::nanoseconds start_period{0};
  std::chrono::nanoseconds start_interval{0};
  int retries = 0;

  bool operator==(const HealthcheckInstruction&) const = default;
};

struct ShellInstruction {
  std::vector<std::string> shell; ///< always from JSON form

  bool operator==(const ShellInstruction&) const = default;
};

/// One typed instruction. `payload` holds the alternative for kind(); the alternatives are in
/// InstructionKind order.
struct Instruction {
  using Payload =
      std::variant<FromInstruction, RunInstruction, CmdInstruction, LabelInstruction,
                   MaintainerInstruction, ExposeInstruction, EnvInstruction, AddInstruction,
                   CopyInstruction, EntrypointInstruction, VolumeInstruction, UserInstruction,
                   WorkdirInstruction, ArgInstruction, OnbuildInstruction, StopsignalInstruction,
                   HealthcheckInstruction, ShellInstruction>;

  std::string original; ///< the instruction text as written (Node::original)
  SourceRange location; ///< file, first and last line; column 1
  Payload payload;
  /// Node::squash_group: instructions of one stage with the same n > 0 fold into one layer
  /// (docs/squash.md); 0 when the instruction is not inside a `# minibuild:squash` run.
  int squash_group = 0;

  InstructionKind kind() const { return static_cast<InstructionKind>(payload.index()); }

  /// The payload as `T`; T must be the alternative for kind() (switch on kind() first).

  template <typename T>
  const T& as() const {
    return std::get<T>(payload);
  }
  template <typename T>
  T& as() {
    return std::get<T>(payload);
  }

  bool operator==(const Instruction&) const = default;
};

/// Converts one syntax-tree node. `file` names the Dockerfile in errors and warnings. Warnings
/// (deprecated MAINTAINER, a stage name that is not lower-case, legacy `ENV k v`) are appended
/// to `warnings` when it is not null. Fails with Code::dockerfile and the node's SourceRange
/// (column: the offending word where the node is on one line, else 1), e.g.
/// `unknown instruction "RUNN" (did you mean RUN?)`, `COPY: unknown flag: --frm (did you mean
/// --from?)`, `FROM requires either one or three arguments`.
Result<Instruction> parse_instruction(const Node& node, std::string_view file,
                                      std::vector<Warning>* warnings = nullptr);

/// Returns a copy of `instruction` with variables expanded in exactly the fields Docker expands:
/// FROM base and --platform; ENV and LABEL keys and values; ARG names and defaults; EXPOSE
/// ports (split into words); USER; WORKDIR; STOPSIGNAL; VOLUME paths; ADD/COPY sources, dest,
/// --chown, --chmod, --checksum, --exclude, COPY --from; COPY/ADD heredoc bodies whose delimiter
/// was not quoted (quotes kept, as BuildKit does); RUN --mount values (the mount is then
/// re-validated). RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK commands, MAINTAINER and ONBUILD are
/// left for the shell or the later build. Values that can only be checked after expansion
/// (ports, signals, --chmod, --checksum, mounts) are checked here. Names looked up and found
/// are added to `used_names` when it is not null. Errors carry the instruction's location.
Result<Instruction> expand_instruction(const Instruction& instruction, const Environment& env,
                                       const ShellLexer& lexer,
                                       std::set<std::string>* used_names = nullptr);

/// Go's time.ParseDuration ("1m30s", "1.5h", "300ms", "0"), as HEALTHCHECK flags use it.
/// Fails with Code::dockerfile on a malformed value or an overflow.
Result<std::chrono::nanoseconds> parse_go_duration(std::string_view text);

/// Parses a RUN --mount spec (`type=cache,target=/root/.cache,sharing=locked`). Values holding
/// a `$` are kept unexpanded and unchecked, and the result is marked unresolved.
Result<RunMount> parse_run_mount(std::string_view spec);

/// The nearest of `candidates` to `word` by edit distance (case-insensitive) when it is close
/// enough to be a plausible typo, as BuildKit's "did you mean" suggestions.
std::optional<std::string> suggest_nearest(std::string_view word,
                                           const std::vector<std::string>& candidates);

} // namespace minibuild::dockerfile
