// The image config a Dockerfile stage produces, instruction by instruction, as BuildKit's
// dockerfile2llb writes it (frontend/dockerfile/dockerfile2llb/convert.go: the dispatch*
// functions and commitToHistory; convert_copy.go; convert_expose.go).
//
// The builder is pure: it changes an oci::ImageConfig and appends history entries; it never
// touches files. The executor (executor.cpp) decides which steps make a layer and hands the
// builder already expanded instructions. The rules kept here, all BuildKit's:
//   - every instruction except ONBUILD, FROM and RUN-that-failed appends one history entry with
//     comment "buildkit.dockerfile.v0"; metadata-only steps have empty_layer = true;
//   - created_by is BuildKit's commit message: "ENV A=b C=d", "LABEL k=v", "ARG A=1 B",
//     `CMD ["/bin/sh" "-c" "x"]` (Go %q of the argv), "SHELL [/bin/bash -c]" (Go %v),
//     "EXPOSE [80/tcp]", "VOLUME [/data]", "USER app", "STOPSIGNAL SIGTERM", "MAINTAINER x",
//     "WORKDIR /app" (normalised path), "HEALTHCHECK {Test:[...] Interval:30s ...}" (Go %+v of
//     the health config), and for COPY/ADD "COPY [--parents] [--chown=..] [--chmod=..] src...
//     <<heredoc... dest # buildkit" (the " # buildkit" suffix marks a step that has an LLB state);
//   - CMD sets ArgsEscaped (BuildKit does, on every OS); ENTRYPOINT clears an inherited CMD
//     unless this stage set CMD before it; shell forms are wrapped in the config's SHELL, or
//     ["/bin/sh", "-c"];
//   - ENV replaces an existing key in place and appends new ones; LABEL, EXPOSE and VOLUME merge
//     into their maps.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/dockerfile/go_quote.hpp>
#include <minibuild/dockerfile/instructions.hpp>
#include <minibuild/dockerfile/plan.hpp>
#include <minibuild/oci/image_config.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minibuild::build {

/// BuildKit's system.DefaultPathEnv("linux"), set when the base image has no PATH.
inline constexpr std::string_view k_default_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The history comment of every Dockerfile step (BuildKit's historyComment).
inline constexpr std::string_view k_history_comment = "buildkit.dockerfile.v0";

/// Go's strconv.Quote, the front end's implementation (one set of Unicode tables).
using dockerfile::go_quote;
/// Go's fmt %q of a []string: `["a" "b"]`.
std::string go_quoted_list(const std::vector<std::string>& items);
/// Go's fmt %v of a []string: `[a b]`.
std::string go_list(const std::vector<std::string>& items);
/// Go's time.Duration.String(): "0s", "300ms", "1.5µs", "1m30s", "2h0m0s".
std::string go_duration(std::int64_t nanoseconds);

/// RFC 3339 in UTC as Go marshals a time.Time: "2023-11-14T22:13:20Z", with the fraction of a
/// second (trailing zeros dropped) only when `nanoseconds` is not 0.
std::string rfc3339_utc(std::int64_t seconds, std::int64_t nanoseconds = 0);

/// WORKDIR resolution (BuildKit system.NormalizeWorkdir on Linux): a relative `requested` is
/// joined to `current` (empty means "/"), and the result is cleaned like Go's path.Clean.
std::string normalize_workdir(std::string_view current, std::string_view requested);

/// The "port/proto" entries an EXPOSE word stands for: "80" → {"80/tcp"}, "8000-8001/UDP" →
/// {"8000/udp", "8001/udp"}. The word has been checked by expand_instruction().
std::vector<std::string> expand_port_spec(std::string_view spec);

/// History text of an expanded COPY or ADD (without the " # buildkit" suffix).
std::string copy_created_by(const dockerfile::CopyInstruction& copy);
std::string add_created_by(const dockerfile::AddInstruction& add);

/// One ARG name and the value BuildKit records for it in history (nullopt: declared only).
using ArgRecord = std::pair<std::string, std::optional<std::string>>;

/// Builds one stage's image config. Not thread-safe; one builder per stage.
class ImageConfigBuilder {
public:
  /// Starts from `base` (the base image's config, an earlier stage's config, or
  /// empty_image()). Nothing is changed until a method is called.
  explicit ImageConfigBuilder(oci::ImageConfig base) : m_config(std::move(base)) {}

  /// The config of `FROM scratch` (BuildKit emptyImage): platform set, rootfs type "layers",
  /// WorkingDir "/", Env PATH.
  static oci::ImageConfig empty_image(const dockerfile::Platform& platform);

  /// What BuildKit does to a base before the first instruction: drops fields its image type
  /// does not model (unknown top-level and config fields, e.g. "container_config"), the
  /// creation time and the ONBUILD triggers (the caller runs them), sets os / architecture /
  /// variant from the stage platform and adds PATH when the Env has none.
  void start_stage(const dockerfile::Platform& platform);

  /// The time written into the "created" of history entries added from now on (RFC 3339;
  /// empty: omitted).
  void set_history_time(std::string created) { m_history_time = std::move(created); }

  /// Applies a metadata-only instruction, already expanded: CMD, LABEL, MAINTAINER, EXPOSE, ENV,
  /// ENTRYPOINT, VOLUME, USER, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD. Adds its history entry
  /// (none for ONBUILD). Fails with Code::dockerfile for an empty VOLUME path and with
  /// Code::internal for other kinds (they need the executor).
  Result<void> apply(const dockerfile::Instruction& expanded);

  /// Records an ARG instruction in history ("ARG A=1 B").
  void add_arg(const std::vector<ArgRecord>& args);

  /// WORKDIR: sets WorkingDir to the normalised path and returns it. The caller adds the
  /// history entry with add_workdir_history() once it knows whether a layer was made.
  std::string set_workdir(std::string_view path);
  void add_workdir_history(const std::string& workdir, bool layer);

  /// A step that produced a layer: appends its diffID and a history entry with
  /// `created_by` + " # buildkit".
  void add_layer(const oci::Digest& diff_id, const std::string& created_by);

  /// A history entry as BuildKit's commitToHistory writes it.
  void add_history(std::string created_by, bool empty_layer);

  const oci::ImageConfig& config() const { return m_config; }
  oci::ImageConfig& config() { return m_config; }

private:
  std::vector<std::string> with_shell(const dockerfile::CommandLine& command) const;

  oci::ImageConfig m_config;
  std::string m_history_time;
  bool m_cmd_set = false; ///< this stage ran CMD (so ENTRYPOINT keeps it)
};

} // namespace minibuild::build
