// `minibuild build`: Dockerfile → plan → executor (build/executor.hpp) → image in the store,
// then the optional --output exports and --iidfile.
#include "build_summary.hpp"
#include "cache_transfer.hpp"
#include "commands.hpp"
#include "diagnostics.hpp"
#include "plan_options.hpp"
#include "progress_tty.hpp"
#include "registry_access.hpp"
#include "rootless.hpp"
#include "sandbox_options.hpp"
#include "store_access.hpp"

#include <minibuild/base/cpus.hpp>
#include <minibuild/base/file.hpp>
#include <minibuild/build/context.hpp>
#include <minibuild/build/executor.hpp>
#include <minibuild/build/outputs.hpp>
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/registry/reference.hpp>
#include <minibuild/store/name_store.hpp>
#include <minibuild/store/store.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace minibuild::cli {

namespace {

// `--secret id=ID,src=FILE` (also source=), `id=ID,env=VAR`, or `id=ID` alone: the variable ID
// when it is set, as buildx does. Read now, so a missing file fails before the build.
Result<std::map<std::string, std::string>> parse_secrets(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> secrets;
  for (const auto& spec : specs) {
    std::string id, src, env;
    std::size_t start = 0;
    while (start <= spec.size()) {
      const std::size_t end = std::min(spec.find(',', start), spec.size());
      const std::string field = spec.substr(start, end - start);
      const std::size_t eq = field.find('=');
      const std::string key = field.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : field.substr(eq + 1);
      if (key == "id") {
        id = value;
      } else if (key == "src" || key == "source") {
        src = value;
      } else if (key == "env") {
        env = value;
      } else if (key != "type" || (value != "file" && value != "env")) {
        return fail(Code::usage, "--secret " + spec + ": unknown field \"" + field + "\"");
      }
      start = end + 1;
    }
    if (id.empty()) {
      return fail(Code::usage, "--secret " + spec + ": id= is required");
    }
    if (!src.empty()) {
      MB_TRY_ASSIGN(secrets[id], read_file(src));
      continue;
    }
    const std::string variable = env.empty() ? id : env;
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) {
      return fail(Code::usage, "--secret " + spec + ": the environment has no " + variable);
    }
    secrets[id] = value;
  }
  return secrets;
}

// Docker resolves -f relative to the working directory and defaults to CONTEXT/Dockerfile;
// buildah and podman also accept CONTEXT/Containerfile, so do we when there is no Dockerfile.
std::string dockerfile_path(const BuildOptions& options) {
  if (!options.dockerfile.empty()) {
    return options.dockerfile;
  }
  std::filesystem::path context(options.context);
  if (!std::filesystem::exists(context / "Dockerfile") &&
      std::filesystem::exists(context / "Containerfile")) {
    return (context / "Containerfile").string();
  }
  return (context / "Dockerfile").string();
}

// "-t app" means app:latest, as in docker build. The store does not normalise further
// (docker.io/library/ prefixes come with the registry's reference parser).
Result<std::string> tag_name(const std::string& tag) {
  std::string name = tag;
  const auto slash = name.rfind('/');
  const auto colon = name.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    name += ":latest";
  }
  MB_TRY_CONTEXT(store::split_name(name), "-t " + tag);
  return name;
}

Result<oci::Compression> compression_of(const std::string& name) {
  if (name == "gzip") {
    return oci::Compression::gzip;
  }
  if (name == "zstd") {
    return oci::Compression::zstd;
  }
  if (name == "none") {
    return oci::Compression::none;
  }
  return fail(Code::usage, "--compression: unknown compression \"" + name + "\"");
}

// --source-date-epoch, else a SOURCE_DATE_EPOCH build argument (BuildKit reads that one), else
// the SOURCE_DATE_EPOCH environment variable.
Result<std::optional<std::int64_t>>
source_date_epoch(const BuildOptions& options, const std::map<std::string, std::string>& args) {
  if (options.source_date_epoch) {
    if (*options.source_date_epoch < 0) {
      return fail(Code::usage, "--source-date-epoch must not be negative");
    }
    return std::optional<std::int64_t>(*options.source_date_epoch);
  }
  if (const auto arg = args.find("SOURCE_DATE_EPOCH"); arg != args.end()) {
    MB_TRY_CONTEXT(layer::parse_source_date_epoch(arg->second), "--build-arg SOURCE_DATE_EPOCH");
    return layer::parse_source_date_epoch(arg->second);
  }
  const char* env = std::getenv("SOURCE_DATE_EPOCH");
  if (env == nullptr) {
    return std::optional<std::int64_t>();
  }
  auto parsed = layer::parse_source_date_epoch(env);
  if (!parsed) {
    return fail(std::move(parsed).error().wrap("environment variable SOURCE_DATE_EPOCH"));
  }
  return parsed;
}

Result<std::map<std::string, std::string>> parse_labels(const std::vector<std::string>& values) {
  std::map<std::string, std::string> labels;
  for (const auto& value : values) {
    const auto eq = value.find('=');
    const std::string key = value.substr(0, eq);
    if (key.empty()) {
      return fail(Code::usage, "--label \"" + value + "\": the key is empty");
    }
    labels[key] = eq == std::string::npos ? std::string() : value.substr(eq + 1);
  }
  return labels;
}

} // namespace

Result<void> run_build(Context& context, const BuildOptions& options) {
  // What this version cannot do, and what cannot work, fails before any work.
  if (options.squash && options.squash_all) {
    return fail(Code::usage, "--squash and --squash-all exclude each other");
  }
  MB_TRY_ASSIGN(auto outputs, build::parse_output_specs(options.outputs));
  std::vector<CacheSpec> cache_to, cache_from;
  for (const auto& value : options.cache_to) {
    MB_TRY_ASSIGN(CacheSpec spec, parse_cache_spec(value, CacheDirection::to));
    cache_to.push_back(std::move(spec));
  }
  for (const auto& value : options.cache_from) {
    MB_TRY_ASSIGN(CacheSpec spec, parse_cache_spec(value, CacheDirection::from));
    cache_from.push_back(std::move(spec));
  }
  if (!std::filesystem::is_directory(options.context)) {
    return fail(Code::not_found, "build context \"" + options.context + "\" is not a directory");
  }

  std::string path = dockerfile_path(options);
  std::string display_name = path == "-" ? "<stdin>" : path;
  MB_TRY_ASSIGN(std::string text, context.read_user_file(path, display_name));
  MB_TRY_ASSIGN(auto plan_options,
                make_plan_options(options.build_args, options.target, options.platform));
  MB_TRY_ASSIGN(auto parsed, dockerfile::parse_dockerfile(text, display_name));
  MB_TRY_ASSIGN(auto plan, dockerfile::make_plan(parsed, plan_options));
  for (const auto& warning : plan.warnings) {
    std::fputs(format_warning(warning.location, warning.message).c_str(), stderr);
  }

  build::ExecutorOptions executor_options;
  std::vector<registry::Reference> push_destinations;
  for (const auto& tag : options.tags) {
    MB_TRY_ASSIGN(std::string name, tag_name(tag));
    if (options.push) {
      // Every name must be pushable before the build starts, not after it ran for an hour.
      MB_TRY_CONTEXT(registry::parse_reference(name), "--push -t " + tag);
      push_destinations.push_back(*registry::parse_reference(name));
    }
    executor_options.tags.push_back(std::move(name));
  }
  if (options.push && push_destinations.empty()) {
    return fail(Code::usage, "--push needs at least one -t REGISTRY/REPOSITORY[:TAG]");
  }
  MB_TRY_ASSIGN(executor_options.compression, compression_of(options.compression));
  executor_options.compression_level = options.compression_level;
  MB_TRY_ASSIGN(executor_options.source_date_epoch,
                source_date_epoch(options, plan_options.build_args));
  MB_TRY_ASSIGN(executor_options.labels, parse_labels(options.labels));
  executor_options.no_cache = options.no_cache;
  if (!options.debug_cache_key.empty()) {
    std::error_code error;
    std::filesystem::create_directories(options.debug_cache_key, error);
    if (error) {
      return fail(Code::io,
                  "--debug-cache-key " + options.debug_cache_key + ": " + error.message());
    }
    executor_options.debug_cache_key_dir = options.debug_cache_key;
  }
  executor_options.squash = options.squash_all ? build::SquashMode::all
                            : options.squash   ? build::SquashMode::stage
                                               : build::SquashMode::none;
  for (std::string stage : options.squash_stages) {
    std::transform(stage.begin(), stage.end(), stage.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    executor_options.squash_stages.insert(std::move(stage));
  }
  executor_options.jobs = options.jobs ? *options.jobs : usable_cpus();
  for (std::string stage : options.no_cache_filter) {
    std::transform(stage.begin(), stage.end(), stage.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    executor_options.no_cache_filter.insert(std::move(stage));
  }
  MB_TRY_ASSIGN(SandboxSettings sandbox, sandbox_settings(options.sandbox));
  executor_options.network = sandbox.network;
  executor_options.seccomp_profile = std::move(sandbox.seccomp_profile);
  executor_options.seccomp_unconfined = sandbox.seccomp_unconfined;
  executor_options.capabilities = sandbox.capabilities;
  executor_options.storage_driver = sandbox.storage_driver;
  executor_options.mount_views = in_private_mount_namespace();
  MB_TRY_ASSIGN(executor_options.secrets, parse_secrets(options.secrets));
  const bool quiet = options.quiet || options.progress == "quiet";
  // auto: the live view on a terminal, BuildKit's plain lines elsewhere (CI logs, pipes).
  const bool tty_view =
      !quiet && (options.progress == "tty" ||
                 (options.progress == "auto" &&
                  tty_progress_wanted(context.stderr_is_tty(), std::getenv("TERM"))));
  build::PlainProgress plain_progress(stderr);
  std::optional<TtyProgress> tty_progress;
  if (tty_view) {
    TtyProgress::Options tty_options;
    tty_options.ticker = Ticker::yes;
    tty_progress.emplace(stderr, std::move(tty_options));
  }
  RecordingProgress progress(tty_progress ? static_cast<build::ProgressSink&>(*tty_progress)
                                          : plain_progress);
  if (!quiet) {
    executor_options.progress = &progress;
  }

  // The build writes blobs before it names them: hold the store lock shared for the whole
  // run so prune cannot remove them in between.
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(store::StoreLock lock, store->lock(store::LockMode::shared, store::Wait::yes));

  build::ContextOptions context_options;
  context_options.dockerfile_path = path == "-" ? std::string() : path;
  MB_TRY_ASSIGN(build::BuildContext build_context,
                build::BuildContext::open(options.context, context_options));

  // Base images missing from the store (or every one, with --pull=always) come from their
  // registries; the registry plumbing is set up on first use only.
  // Parallel stages (--jobs) pull at the same time: the lazy set-up and the client map are
  // guarded; the clients themselves are thread-safe.
  std::unique_ptr<RegistryAccess> access;
  std::mutex access_mutex;
  auto registry_access = [&]() -> Result<RegistryAccess*> {
    const std::lock_guard access_lock(access_mutex);
    if (!access) {
      MB_TRY_ASSIGN(access, RegistryAccess::open(context));
      if (tty_progress) {
        // Retry notices go above the live view instead of through it.
        access->set_log([&](std::string_view line) { tty_progress->message(line); });
      }
    }
    return access.get();
  };
  auto client_for = [&](const registry::Reference& reference) -> Result<registry::RegistryClient*> {
    MB_TRY_ASSIGN(RegistryAccess * registries, registry_access());
    const std::lock_guard access_lock(access_mutex);
    return registries->client_for(reference);
  };
  if (options.pull != "never") {
    executor_options.always_fetch = options.pull == "always";
    // The pull's progress follows the build's: a vertex of the live view (its own redrawn
    // block would fight the view's), plain lines otherwise (even on a terminal), or nothing.
    executor_options.fetch_image = [&](const std::string& reference_text,
                                       const oci::Platform& platform) -> Result<void> {
      MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(reference_text));
      MB_TRY_ASSIGN(registry::RegistryClient * client, client_for(reference));
      registry::PullOptions pull_options;
      pull_options.platform = platform;
      pull_options.max_concurrent_downloads = options.max_concurrent_downloads;
      std::optional<TtyPull> tty_pull;
      std::optional<PullDisplay> plain_pull;
      if (tty_progress) {
        pull_options.progress = &tty_pull.emplace(*tty_progress, "pull " + reference.to_string());
      } else if (!quiet) {
        pull_options.progress = &plain_pull.emplace(stderr);
      }
      auto pulled = registry::pull_image(*client, *store, reference, pull_options);
      if (tty_pull) {
        tty_pull->end(pulled.has_value());
      }
      if (!pulled) {
        return fail(std::move(pulled).error().wrap("pull " + reference.to_string()));
      }
      if (plain_pull) {
        plain_pull->finish(*pulled);
      }
      return {};
    };
  }
  // The imported entries are only looked up after a local miss; their layers are fetched
  // when used (cache_transfer.hpp).
  if (!cache_from.empty()) {
    MB_TRY_ASSIGN(ImportedCache imported,
                  import_caches(cache_from, *store, registry_access, stderr));
    executor_options.imported_cache = std::move(imported.entries);
    executor_options.fetch_blob = std::move(imported.fetch_blob);
  }
  MB_TRY_ASSIGN(build::BuildResult result,
                build::execute(plan, build_context, *store, executor_options));
  for (const auto& spec : cache_to) {
    MB_TRY(export_cache(spec, result, *store, registry_access, stderr));
  }

  const std::string image_id = result.config_digest.to_string();
  bool stdout_taken = false;
  for (const auto& spec : outputs) {
    build::ImageToExport image;
    image.digest = result.manifest_digest;
    image.media_type = result.manifest.media_type;
    image.names = result.tags;
    build::OutputOptions output_options;
    output_options.archive_mtime = executor_options.source_date_epoch.value_or(0);
    MB_TRY(build::write_output(store->blobs(), image, spec, output_options));
    stdout_taken = stdout_taken || spec.dest == "-";
  }
  if (!options.iidfile.empty()) {
    MB_TRY(write_result_file("--iidfile", options.iidfile, image_id));
  }
  for (const auto& destination : push_destinations) {
    oci::Descriptor image;
    image.digest = result.manifest_digest;
    image.media_type = result.manifest.media_type;
    MB_TRY_ASSIGN(auto stat, store->blobs().stat(result.manifest_digest));
    image.size = stat ? static_cast<std::int64_t>(stat->size) : 0;
    MB_TRY_ASSIGN(RegistryAccess * registries, registry_access());
    MB_TRY(push_from_store(*registries, *store, image, destination, quiet));
  }
  if (quiet && !stdout_taken) {
    std::printf("%s\n", image_id.c_str());
  }
  if (tty_progress) {
    tty_progress->finish(); // the block ends before the summary starts
  }
  if (!quiet) {
    print_build_summary(stderr, result, progress.steps());
  }
  return {};
}

} // namespace minibuild::cli
