// Option values the subcommands share, filled by CLI11 in app.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace minibuild::cli {

/// Options accepted before or after the command name (`minibuild --root X build` and
/// `minibuild build --root X` mean the same).
struct GlobalOptions {
  std::string root;                             ///< --root or MINIBUILD_ROOT; empty = default
  std::vector<std::string> registry_ca_files;   ///< --registry-ca FILE (repeatable)
  std::vector<std::string> insecure_registries; ///< --insecure-registry HOST[:PORT]
  bool debug = false;                           ///< --debug: more detail in logs
};

/// The store root: --root, else MINIBUILD_ROOT, else /var/lib/minibuild for root, else
/// ${XDG_DATA_HOME:-~/.local/share}/minibuild. Pure function of its inputs for testing.
std::string resolve_store_root(const std::string& root_option, const char* xdg_data_home,
                               const char* home, bool is_root);

/// The sandbox options `build` and `run` share (docs/security.md).
struct SandboxCliOptions {
  std::string network = "host";           ///< --network host|none
  std::string storage_driver = "auto";    ///< --storage-driver auto|overlay|vfs
  std::vector<std::string> security_opts; ///< --security-opt seccomp=unconfined|FILE, ...
  std::vector<std::string> cap_add;       ///< --cap-add NAME|ALL, repeatable
  std::vector<std::string> cap_drop;      ///< --cap-drop NAME|ALL, repeatable
};

/// `minibuild build` options, named as `docker build` names them.
struct BuildOptions {
  std::string context = ".";
  std::string dockerfile;              ///< -f; empty = CONTEXT/Dockerfile (or Containerfile)
  std::vector<std::string> tags;       ///< -t NAME[:TAG], repeatable
  std::vector<std::string> build_args; ///< --build-arg KEY[=VALUE], repeatable
  std::string target;                  ///< --target STAGE
  bool no_cache = false;
  std::vector<std::string> no_cache_filter; ///< --no-cache-filter STAGE, repeatable
  std::string debug_cache_key;              ///< --debug-cache-key DIR
  bool squash = false;
  bool squash_all = false;                ///< --squash-all
  std::vector<std::string> squash_stages; ///< --squash-stage NAME, repeatable
  std::optional<unsigned> jobs;           ///< --jobs N; unset: the CPUs this process may use
  bool push = false;
  std::vector<std::string> outputs; ///< --output type=...,dest=...
  std::string platform;             ///< --platform os/arch[/variant]
  std::string progress = "auto";    ///< auto|plain|tty|quiet
  std::string iidfile;
  std::optional<long long> source_date_epoch;
  std::string compression = "gzip";
  std::optional<int> compression_level;
  std::string pull = "missing"; ///< missing|always|never
  int max_concurrent_downloads = 4;
  std::vector<std::string> labels; ///< --label KEY=VALUE
  bool quiet = false;
  SandboxCliOptions sandbox;
  std::vector<std::string> secrets;    ///< --secret id=ID[,src=FILE|,env=VAR]
  std::vector<std::string> cache_to;   ///< --cache-to type=registry|local,..., repeatable
  std::vector<std::string> cache_from; ///< --cache-from type=registry|local,..., repeatable
};

struct ParseOptions {
  std::string dockerfile = "Dockerfile";
  std::string format = "buildkit"; ///< buildkit|json|plan
  std::vector<std::string> build_args;
  std::string target;
  std::string platform;
};

} // namespace minibuild::cli

namespace minibuild::cli {

/// `minibuild pull`.
struct PullCommandOptions {
  std::string image;
  std::string platform; ///< os/arch[/variant]; empty = the host's
  int max_concurrent_downloads = 4;
  bool quiet = false;
};

/// `minibuild push NAME [DEST]`.
struct PushCommandOptions {
  std::string image;
  std::string destination; ///< empty = the name itself
  bool quiet = false;
  std::string digestfile; ///< write the pushed digest here
};

/// `minibuild login [-u USER] [--password-stdin] SERVER`.
struct LoginOptions {
  std::string server;
  std::string username;
  std::string password; ///< -p: accepted as docker does, with a warning
  bool password_stdin = false;
};

/// `minibuild logout SERVER`.
struct LogoutOptions {
  std::string server;
};

/// `minibuild run [OPTIONS] IMAGE [COMMAND...]`, named as `docker run` names them.
struct RunCommandOptions {
  std::string image;
  std::vector<std::string> command;
  bool remove = false;      ///< accepted: containers are never kept
  bool interactive = false; ///< accepted: stdin is always attached
  std::optional<std::string> entrypoint;
  std::vector<std::string> env; ///< -e KEY=VALUE or KEY (from the environment)
  std::optional<std::string> user;
  std::optional<std::string> workdir;
  std::string platform;
  std::string pull = "missing"; ///< missing|always|never
  SandboxCliOptions sandbox;
};

/// `minibuild cache ls` (docs/cache.md, "Commands").
struct CacheLsOptions {
  std::string format = "table"; ///< table | json (JSON lines)
};

/// `minibuild cache prune`: at least one of the three must be given.
struct CachePruneCommandOptions {
  std::string keep_duration; ///< --keep-duration: "168h", "30m", "7d"; empty = no age bound
  std::string keep_storage;  ///< --keep-storage: "10GB", "500MB", "1.5GiB"; empty = no bound
  bool all = false;          ///< -a: every entry and the cache mounts
};

} // namespace minibuild::cli
