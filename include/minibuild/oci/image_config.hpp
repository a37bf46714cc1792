// The image configuration blob (config.md; Go specs.Image extended by docker-image-spec's
// DockerOCIImage): how to run the image, its layers' diffIDs and its history. The same JSON
// serves as OCI config (k_oci_config) and Docker container config (k_docker_config).
//
// A base image's config is read, changed by the build and written again. Nothing the build does
// not change may be lost on the way, so the reader keeps every field it does not model (Docker's
// "container_config", "docker_version", config.Hostname, …) in `unknown_fields` and the writer
// puts them back, and modelled values keep their original text (timestamps are strings, not
// re-formatted times). Docker-only fields (Healthcheck, OnBuild, Shell) are modelled and are
// written in OCI configs too, as BuildKit does.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/json.hpp>
#include <minibuild/oci/platform.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace minibuild::oci {

/// Fields a reader did not model: key → the value's canonical JSON text (`"{\"a\":1}"`). A
/// writer emits them unchanged next to the modelled fields; a caller may erase entries it wants
/// gone (a builder dropping "container_config").
using UnknownFields = std::map<std::string, std::string>;

/// Docker's HEALTHCHECK settings ("Healthcheck"). Durations are integer nanoseconds; 0 means
/// "inherit" and, like an empty `test`, is omitted from JSON.
struct HealthConfig {
  /// {} inherit, {"NONE"} disable, {"CMD", args…} exec, {"CMD-SHELL", command} shell.
  std::vector<std::string> test;
  std::int64_t interval = 0;       ///< "Interval"
  std::int64_t timeout = 0;        ///< "Timeout"
  std::int64_t start_period = 0;   ///< "StartPeriod"
  std::int64_t start_interval = 0; ///< "StartInterval"
  int retries = 0;                 ///< "Retries"

  bool operator==(const HealthConfig&) const = default;
};

/// The execution parameters ("config"): OCI's ImageConfig plus Docker's extensions. Every
/// field is omitted from JSON when empty/false (Go `omitempty`); a present `healthcheck` is
/// written even when all its fields are zero (Go pointer semantics).
struct ContainerConfig {
  std::string user;                          ///< "User"
  std::set<std::string> exposed_ports;       ///< "ExposedPorts": {"80/tcp": {}}
  std::vector<std::string> env;              ///< "Env": "KEY=value"
  std::vector<std::string> entrypoint;       ///< "Entrypoint"
  std::vector<std::string> cmd;              ///< "Cmd"
  std::set<std::string> volumes;             ///< "Volumes": {"/data": {}}
  std::string working_dir;                   ///< "WorkingDir"
  std::map<std::string, std::string> labels; ///< "Labels"
  std::string stop_signal;                   ///< "StopSignal"
  bool args_escaped = false;                 ///< "ArgsEscaped" (Windows, deprecated)
  std::optional<HealthConfig> healthcheck;   ///< "Healthcheck" (Docker)
  std::vector<std::string> on_build;         ///< "OnBuild" (Docker)
  std::vector<std::string> shell;            ///< "Shell" (Docker)
  UnknownFields unknown_fields;              ///< e.g. "Hostname", "Image", "AttachStdin"

  bool operator==(const ContainerConfig&) const = default;
};

/// "rootfs": the uncompressed digests (diffIDs) of the layers, base first.
struct RootFs {
  std::string type = "layers";  ///< "type": must be "layers"
  std::vector<Digest> diff_ids; ///< "diff_ids": always written, [] when empty

  bool operator==(const RootFs&) const = default;
};

/// One "history" entry; one per Dockerfile step, layers or not. Empty fields are omitted.
struct History {
  std::string created;      ///< "created": RFC 3339, kept as read
  std::string created_by;   ///< "created_by"
  std::string author;       ///< "author"
  std::string comment;      ///< "comment"
  bool empty_layer = false; ///< "empty_layer": the step added no layer

  bool operator==(const History&) const = default;
};

struct ImageConfig {
  std::string created;                  ///< "created": RFC 3339, kept as read; omitted if empty
  std::string author;                   ///< "author"; omitted if empty
  std::string architecture;             ///< "architecture"; required
  std::string os;                       ///< "os"; required
  std::string variant;                  ///< "variant"; omitted if empty
  std::string os_version;               ///< "os.version"; omitted if empty
  std::vector<std::string> os_features; ///< "os.features"; omitted if empty
  ContainerConfig config;               ///< "config"; always written (a Go struct)
  RootFs rootfs;                        ///< "rootfs"; required
  std::vector<History> history;         ///< "history"; omitted if empty
  UnknownFields unknown_fields;         ///< e.g. "container_config", "docker_version"

  bool operator==(const ImageConfig&) const = default;
};

/// The platform an image config describes (os, architecture, variant, os.version, features).
Platform platform_of(const ImageConfig& config);

/// Reads a config. Requires architecture, os (strings) and rootfs {type "layers", diff_ids}.
/// Rejects with Code::corrupt, naming the field: wrong JSON types (config.User a number,
/// Volumes an array, history a string, …), "created" that is not an RFC 3339 date-time, bad
/// diff_ids. null reads as absent wherever Go accepts it (Docker Hub configs have "Cmd": null,
/// "Volumes": null). Unmodelled fields at the top level and inside "config" go to
/// unknown_fields; unmodelled fields inside history entries, rootfs and Healthcheck are dropped.
template <>
Result<ImageConfig> from_json<ImageConfig>(const nlohmann::json& json);

/// The modelled fields (omitempty as documented above) plus unknown_fields. A modelled field
/// always wins over an unknown field of the same name.
nlohmann::json to_json(const ImageConfig& config);

/// Canonical bytes (see json.hpp): the config blob to store and whose digest the manifest names.
std::string serialize(const ImageConfig& config);

/// True when `text` is an RFC 3339 date-time ("2015-10-31T22:22:56.015925234Z",
/// "2016-06-10T18:44:03+02:00"), with calendar and clock ranges checked.
bool is_rfc3339_date_time(std::string_view text);

} // namespace minibuild::oci
