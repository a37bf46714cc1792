// Argument parsing and dispatch. Every command returns Result<void>-like status through
// run_command; only this file turns an Error into text on stderr and an exit code.
#include "command_cache.hpp"
#include "command_store.hpp"
#include "commands.hpp"
#include "diagnostics.hpp"
#include "exit_code.hpp"
#include "options.hpp"
#include "rootless.hpp"

#include <minibuild/cli/app.hpp>
#include <minibuild/runtime/sandbox.hpp>
#include <minibuild/version.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace minibuild::cli {

namespace {

constexpr std::array k_command_names = {"build",   "parse",   "pull",    "push",  "run",   "images",
                                        "inspect", "history", "rmi",     "prune", "login", "logout",
                                        "fsck",    "save",    "version", "help",  "cache"};

// Global options that take a value as the next word; the short-form rewrite must skip it.
constexpr std::array k_global_options_with_value = {"--root", "--registry-ca",
                                                    "--insecure-registry"};

bool is_command_name(std::string_view word) {
  return std::find(k_command_names.begin(), k_command_names.end(), word) != k_command_names.end();
}

// `minibuild -f Dockerfile -t app:tag .` is `minibuild build -f Dockerfile -t app:tag .`:
// when the first word that is not a global option is not a command name, insert "build" there.
std::vector<std::string> with_implicit_build(int argc, char* argv[]) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (is_command_name(word) || word == "--help" || word == "-h" || word == "--version") {
      return args;
    }
    bool takes_value =
        std::find(k_global_options_with_value.begin(), k_global_options_with_value.end(), word) !=
        k_global_options_with_value.end();
    if (takes_value) {
      ++i;
      continue;
    }
    if (word == "--debug" || word.rfind("--root=", 0) == 0 ||
        word.rfind("--registry-ca=", 0) == 0 || word.rfind("--insecure-registry=", 0) == 0) {
      continue;
    }
    args.insert(args.begin() + static_cast<std::ptrdiff_t>(i), "build");
    return args;
  }
  return args;
}

void add_sandbox_options(CLI::App& command, SandboxCliOptions& options) {
  command.add_option("--network", options.network, "Network of RUN steps: host (default), none")
      ->check(CLI::IsMember({"host", "none", "default"}));
  command
      .add_option("--storage-driver", options.storage_driver,
                  "Root filesystem of RUN steps: auto (default: overlay, else vfs), overlay, vfs")
      ->check(CLI::IsMember({"auto", "overlay", "vfs"}));
  command
      .add_option("--security-opt", options.security_opts,
                  "seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges (repeatable)")
      ->allow_extra_args(false);
  command
      .add_option("--cap-add", options.cap_add,
                  "Add a capability to Docker's default set for root steps (NAME or ALL)")
      ->allow_extra_args(false);
  command
      .add_option("--cap-drop", options.cap_drop,
                  "Drop a capability from the default set (NAME or ALL)")
      ->allow_extra_args(false);
}

void add_build_options(CLI::App& command, BuildOptions& options) {
  command.add_option("-f,--file", options.dockerfile,
                     "Dockerfile to build (default: CONTEXT/Dockerfile; - reads stdin)");
  command.add_option("-t,--tag", options.tags, "Name the image NAME[:TAG] (repeatable)")
      ->allow_extra_args(false);
  command
      .add_option("--build-arg", options.build_args,
                  "Set a build argument KEY=VALUE, or KEY to take it from the environment")
      ->allow_extra_args(false);
  command.add_option("--target", options.target, "Build this stage and what it needs");
  command.add_flag("--no-cache", options.no_cache, "Do not use the layer cache");
  command
      .add_option("--no-cache-filter", options.no_cache_filter,
                  "Do not use the cache for this stage (name or index; repeatable)")
      ->allow_extra_args(false);
  command.add_option("--debug-cache-key", options.debug_cache_key,
                     "Write the text behind every cache key to DIR/<key>.txt");
  command.add_flag("--squash", options.squash,
                   "Fold the target stage's own layers into one (its base layers stay shared)");
  command.add_flag("--squash-all", options.squash_all, "Make the whole image one layer");
  command
      .add_option("--squash-stage", options.squash_stages,
                  "Fold this stage's own layers into one (name or index; repeatable)")
      ->allow_extra_args(false);
  command
      .add_option("-j,--jobs", options.jobs,
                  "Build at most N independent stages at once (default: the number of CPUs)")
      ->check(CLI::Range(1u, 256u));
  command.add_flag("--push", options.push, "Push every -t name to its registry");
  command
      .add_option("-o,--output", options.outputs,
                  "Also write type=oci|oci-archive|docker-archive,dest=PATH (repeatable)")
      ->allow_extra_args(false);
  command.add_option("--platform", options.platform, "Target platform os/arch[/variant]");
  command.add_option("--progress", options.progress, "Progress output: auto, plain, tty, quiet")
      ->check(CLI::IsMember({"auto", "plain", "tty", "quiet"}));
  command.add_option("--iidfile", options.iidfile, "Write the image id to this file");
  command.add_option("--source-date-epoch", options.source_date_epoch,
                     "Clamp timestamps to this Unix time (default: $SOURCE_DATE_EPOCH)");
  command.add_option("--compression", options.compression, "Layer compression: gzip, zstd, none")
      ->check(CLI::IsMember({"gzip", "zstd", "none"}));
  command.add_option("--compression-level", options.compression_level, "Compression level");
  command.add_option("--pull", options.pull, "Base images: missing (default), always, never")
      ->check(CLI::IsMember({"missing", "always", "never"}));
  command
      .add_option("--max-concurrent-downloads", options.max_concurrent_downloads,
                  "Layers of base images downloaded at once (default 4)")
      ->check(CLI::Range(1, 64));
  command.add_option("--label", options.labels, "Add a label KEY=VALUE to the image")
      ->allow_extra_args(false);
  command.add_flag("-q,--quiet", options.quiet, "Print only the image id");
  add_sandbox_options(command, options.sandbox);
  command
      .add_option("--secret", options.secrets,
                  "Secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
      ->allow_extra_args(false);
  command
      .add_option("--cache-to", options.cache_to,
                  "Export the build cache: type=registry,ref=REF or type=local,dest=DIR "
                  "[,mode=min|max] (repeatable)")
      ->allow_extra_args(false);
  command
      .add_option("--cache-from", options.cache_from,
                  "Import a build cache: type=registry,ref=REF or type=local,src=DIR "
                  "(repeatable)")
      ->allow_extra_args(false);
  command.add_option("context", options.context, "Build context directory (default: .)");
}

} // namespace

std::string resolve_store_root(const std::string& root_option, const char* xdg_data_home,
                               const char* home, bool is_root) {
  if (!root_option.empty()) {
    return root_option;
  }
  if (is_root) {
    return "/var/lib/minibuild";
  }
  if (xdg_data_home != nullptr && xdg_data_home[0] == '/') {
    return std::string(xdg_data_home) + "/minibuild";
  }
  return std::string(home != nullptr ? home : "") + "/.local/share/minibuild";
}

int run(int argc, char* argv[]) {
  CLI::App app{"minibuild: build container images from Dockerfiles, without a daemon or root",
               "minibuild"};
  app.set_version_flag("--version", std::string("minibuild version ") + k_version);
  app.require_subcommand(0, 1);
  // Options declared on the top-level app are accepted after the command name too.
  app.fallthrough();
  app.footer("Exit codes: see docs/cli.md. `minibuild COMMAND --help` describes a command.\n"
             "The short form `minibuild -f Dockerfile -t NAME .` means `minibuild build ...`.");

  GlobalOptions global;
  app.add_option("--root", global.root,
                 "Store directory (default: /var/lib/minibuild for root, "
                 "~/.local/share/minibuild otherwise)")
      ->envname("MINIBUILD_ROOT");
  app.add_option("--registry-ca", global.registry_ca_files,
                 "Trust this CA certificate file for registries (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--insecure-registry", global.insecure_registries,
                 "Allow plain HTTP for this registry HOST[:PORT] (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--debug", global.debug, "Print more detail");

  BuildOptions build_options;
  auto* build = app.add_subcommand("build", "Build an image from a Dockerfile");
  add_build_options(*build, build_options);

  ParseOptions parse_options;
  auto* parse = app.add_subcommand("parse", "Parse a Dockerfile and print it");
  parse->add_option("-f,--file", parse_options.dockerfile, "Dockerfile to parse (- for stdin)");
  parse
      ->add_option("--format", parse_options.format,
                   "buildkit (BuildKit's AST dump), json (docs/parse-json.md), plan (stages)")
      ->check(CLI::IsMember({"buildkit", "json", "plan"}));
  parse->add_option("--build-arg", parse_options.build_args, "Build argument KEY[=VALUE]")
      ->allow_extra_args(false);
  parse->add_option("--target", parse_options.target, "Plan only for this stage");
  parse->add_option("--platform", parse_options.platform, "Target platform os/arch[/variant]");

  auto* version = app.add_subcommand("version", "Print version information");
  std::string version_format = "text";
  version->add_option("--format", version_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));

  PullCommandOptions pull_options;
  auto* pull = app.add_subcommand("pull", "Pull an image from a registry");
  pull->add_option("image", pull_options.image, "Image reference")->required();
  pull->add_option("--platform", pull_options.platform,
                   "Platform os/arch[/variant] (default: the host's)");
  pull->add_option("--max-concurrent-downloads", pull_options.max_concurrent_downloads,
                   "Layers downloaded at once (default 4)")
      ->check(CLI::Range(1, 64));
  pull->add_flag("-q,--quiet", pull_options.quiet, "Print only the image id");

  PushCommandOptions push_options;
  auto* push = app.add_subcommand("push", "Push an image to a registry");
  push->add_option("image", push_options.image, "Local image name or id")->required();
  push->add_option("destination", push_options.destination,
                   "Destination REGISTRY/REPO[:TAG] (default: the name)");
  push->add_flag("-q,--quiet", push_options.quiet, "Print only the pushed digest");
  push->add_option("--digestfile", push_options.digestfile, "Write the pushed digest here");

  LoginOptions login_options;
  auto* login = app.add_subcommand("login", "Save credentials for a registry");
  login->add_option("server", login_options.server, "Registry host[:port]")->required();
  login->add_option("-u,--username", login_options.username, "User name");
  login->add_option("-p,--password", login_options.password,
                    "Password (visible in the process list: prefer --password-stdin)");
  login->add_flag("--password-stdin", login_options.password_stdin, "Read the password from stdin");

  LogoutOptions logout_options;
  auto* logout = app.add_subcommand("logout", "Remove saved credentials for a registry");
  logout->add_option("server", logout_options.server, "Registry host[:port]")->required();

  RunCommandOptions run_options;
  auto* run_command = app.add_subcommand("run", "Run a command in a container of an image");
  run_command->add_flag("--rm", run_options.remove,
                        "Remove the container afterwards (always done: none is kept)");
  run_command->add_flag("-i,--interactive", run_options.interactive,
                        "Keep stdin attached (always done)");
  run_command->add_option("--entrypoint", run_options.entrypoint, "Replace the entrypoint");
  run_command->add_option("-e,--env", run_options.env, "Set KEY=VALUE (or KEY from here)")
      ->allow_extra_args(false);
  run_command->add_option("-u,--user", run_options.user, "Run as USER[:GROUP]");
  run_command->add_option("-w,--workdir", run_options.workdir, "Working directory");
  run_command->add_option("--platform", run_options.platform, "Platform os/arch[/variant]");
  run_command->add_option("--pull", run_options.pull, "missing (default), always, never")
      ->check(CLI::IsMember({"missing", "always", "never"}));
  add_sandbox_options(*run_command, run_options.sandbox);
  run_command->add_option("image", run_options.image, "Image")->required();
  run_command->add_option("command", run_options.command, "Command and arguments");
  // Everything after the image belongs to the command, options included (`run img ls -l`).
  run_command->positionals_at_end();
  run_command->prefix_command(false);

  // The store commands (command_store.hpp).
  ImagesOptions images_options;
  auto* images = app.add_subcommand("images", "List local images");
  images->add_flag("-q,--quiet", images_options.quiet, "Only image ids");
  images->add_option("--format", images_options.format, "table (default) or json (JSON lines)")
      ->check(CLI::IsMember({"table", "json"}));

  InspectOptions inspect_options;
  auto* inspect = app.add_subcommand("inspect", "Show an image's manifest and config");
  inspect->add_option("image", inspect_options.image, "Image")->required();

  HistoryOptions history_options;
  auto* history = app.add_subcommand("history", "Show an image's history");
  history->add_option("image", history_options.image, "Image")->required();
  history->add_flag("--no-trunc", history_options.no_trunc, "Do not truncate output");

  RmiOptions rmi_options;
  auto* rmi = app.add_subcommand("rmi", "Remove image names");
  rmi->add_option("images", rmi_options.images, "Images")->required();
  rmi->add_flag("-f,--force", rmi_options.force, "Do not fail when a name does not exist");

  PruneCommandOptions prune_options;
  auto* prune =
      app.add_subcommand("prune", "Remove what no image name or build cache entry references");
  prune->add_flag("-a,--all", prune_options.all,
                  "Also empty the build cache, RUN --mount=type=cache directories included");

  FsckOptions fsck_options;
  auto* fsck = app.add_subcommand("fsck", "Verify every blob and unpacked layer in the store");
  fsck->add_flag("--repair", fsck_options.repair, "Remove corrupt entries");

  SaveOptions save_options;
  auto* save = app.add_subcommand("save", "Write an image to an archive");
  save->add_option("image", save_options.image, "Image")->required();
  save->add_option("-o,--output", save_options.output, "Archive file (- for standard output)")
      ->required();
  save->add_option("--format", save_options.format, "oci-archive (default) or docker-archive")
      ->check(CLI::IsMember({"oci-archive", "docker-archive"}));

  // The build cache (docs/cache.md, "Commands").
  auto* cache = app.add_subcommand("cache", "Manage the build cache");
  cache->require_subcommand(1);
  CacheLsOptions cache_ls_options;
  auto* cache_ls = cache->add_subcommand("ls", "List build cache entries");
  cache_ls->add_option("--format", cache_ls_options.format, "table (default) or json (JSON lines)")
      ->check(CLI::IsMember({"table", "json"}));
  CachePruneCommandOptions cache_prune_options;
  auto* cache_prune = cache->add_subcommand("prune", "Remove build cache entries, then collect");
  cache_prune->add_option("--keep-duration", cache_prune_options.keep_duration,
                          "Remove entries unused for longer than this (e.g. 168h, 7d)");
  cache_prune->add_option("--keep-storage", cache_prune_options.keep_storage,
                          "Then remove the least recently used until layers fit (e.g. 10GB)");
  cache_prune->add_flag("-a,--all", cache_prune_options.all,
                        "Remove every entry and RUN --mount=type=cache directory");
  CacheGcOptions cache_gc_options;
  auto* cache_gc =
      cache->add_subcommand("gc", "Remove old entries from a shared cache (--cache-to artifact)");
  cache_gc
      ->add_option("target", cache_gc_options.target,
                   "REG/REPO[:TAG], type=registry,ref=REF or type=local,src=DIR[,tag=T]")
      ->required();
  cache_gc
      ->add_option("--keep-duration", cache_gc_options.keep_duration,
                   "Remove entries last used longer ago than this (e.g. 168h, 7d)")
      ->required();

  std::vector<std::string> args = with_implicit_build(argc, argv);
  if (args.size() == 1) {
    std::fputs(app.help().c_str(), stderr);
    return k_exit_usage;
  }
  try {
    // CLI11 wants the arguments reversed when given as a vector (it pops from the back).
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
    app.parse(reversed);
  } catch (const CLI::ParseError& error) {
    // Help and --version are "errors" with exit code 0 in CLI11.
    int code = app.exit(error);
    return code == 0 ? k_exit_ok : k_exit_usage;
  }

  // Store and registry commands of an unprivileged caller run in its user namespace (issue #5).
  // Before anything starts a thread (curl, parallel pulls): unshare refuses threaded processes.
  const bool uses_store = build->parsed() || pull->parsed() || push->parsed() || images->parsed() ||
                          inspect->parsed() || history->parsed() || rmi->parsed() ||
                          prune->parsed() || fsck->parsed() || save->parsed() ||
                          run_command->parsed() || cache->parsed();
  if (uses_store) {
    if (auto entered = enter_rootless_namespace(global); !entered) {
      std::fputs(format_error(entered.error(), {}).c_str(), stderr);
      return exit_code_for(entered.error().code());
    }
  }
  // A signal during a RUN step ends the step and unwinds the command (runtime/sandbox.hpp).
  runtime::install_interrupt_handlers();
  Context context(global, ::isatty(STDERR_FILENO) != 0);
  Result<void> outcome;
  if (build->parsed()) {
    outcome = run_build(context, build_options);
  } else if (parse->parsed()) {
    outcome = run_parse(context, parse_options);
  } else if (version->parsed()) {
    outcome = run_version(context, version_format);
  } else if (images->parsed()) {
    outcome = run_images(context, images_options);
  } else if (inspect->parsed()) {
    outcome = run_inspect(context, inspect_options);
  } else if (history->parsed()) {
    outcome = run_history(context, history_options);
  } else if (rmi->parsed()) {
    outcome = run_rmi(context, rmi_options);
  } else if (prune->parsed()) {
    outcome = run_prune(context, prune_options);
  } else if (fsck->parsed()) {
    outcome = run_fsck(context, fsck_options);
  } else if (save->parsed()) {
    outcome = run_save(context, save_options);
  } else if (cache_ls->parsed()) {
    outcome = run_cache_ls(context, cache_ls_options);
  } else if (cache_prune->parsed()) {
    outcome = run_cache_prune(context, cache_prune_options);
  } else if (cache_gc->parsed()) {
    outcome = run_cache_gc(context, cache_gc_options);
  } else if (pull->parsed()) {
    outcome = run_pull(context, pull_options);
  } else if (push->parsed()) {
    outcome = run_push(context, push_options);
  } else if (login->parsed()) {
    outcome = run_login(context, login_options);
  } else if (logout->parsed()) {
    outcome = run_logout(context, logout_options);
  } else if (run_command->parsed()) {
    auto exit_code = run_run(context, run_options);
    if (exit_code) {
      return *exit_code;
    }
    outcome = fail(std::move(exit_code).error());
    // As `docker run`: a command that cannot be found or executed exits 127 or 126.
    const bool not_found = outcome.error().has_tag(runtime::k_command_not_found);
    if (not_found || outcome.error().has_tag(runtime::k_command_not_executable)) {
      std::fputs(format_error(outcome.error(), {}).c_str(), stderr);
      return not_found ? 127 : 126;
    }
  }
  if (outcome) {
    return k_exit_ok;
  }
  std::fputs(format_error(outcome.error(), context.source_text_for(outcome.error())).c_str(),
             stderr);
  return exit_code_for(outcome.error().code());
}

} // namespace minibuild::cli
