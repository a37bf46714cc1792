// `minibuild rmi`, `prune`, `fsck` and `save`: commands that change the store or copy out of it.
#include "command_store.hpp"

#include "store_access.hpp"
#include "store_format.hpp"

#include <minibuild/build/outputs.hpp>
#include <minibuild/store/store.hpp>

#include <cstdio>

namespace minibuild::cli {

namespace {

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

} // namespace

std::string render_prune(const store::PruneReport& report) {
  std::string out;
  for (const auto& entry : report.removed_cache_entries) {
    out += "deleted cache entry " + entry.key.to_string() + " (" + entry.kind +
           (entry.layer ? ", " + human_size(entry.size) : "") + ")\n";
  }
  if (report.broken_cache_entries_removed > 0) {
    out += "removed " + std::to_string(report.broken_cache_entries_removed) +
           " unreadable cache entries\n";
  }
  if (report.cache_mounts_removed > 0) {
    out += "removed " + std::to_string(report.cache_mounts_removed) + " cache mounts\n";
  }
  for (const auto& blob : report.removed_blobs) {
    out += "deleted blob " + blob.digest.to_string() + " (" + human_size(blob.size) + ")\n";
  }
  for (const auto& layer : report.removed_layers) {
    out += "deleted unpacked layer " + layer.to_string() + "\n";
  }
  if (report.temp_entries_removed > 0) {
    out += "removed " + std::to_string(report.temp_entries_removed) + " stale temporary entries\n";
  }
  out += "Total reclaimed space: " + human_size(report.freed_bytes) + "\n";
  return out;
}

std::string render_fsck(const store::FsckReport& report) {
  std::string out;
  std::size_t repaired = 0;
  for (const auto& problem : report.problems) {
    out += std::string(store::kind_name(problem.kind)) + " " + problem.subject + ": " +
           problem.detail + (problem.repaired ? " (repaired)" : "") + "\n";
    repaired += problem.repaired ? 1 : 0;
  }
  out += "checked " + std::to_string(report.blobs_checked) + " blobs, " +
         std::to_string(report.layers_checked) + " unpacked layers, " +
         std::to_string(report.names_checked) + " names, " +
         std::to_string(report.cache_entries_checked) + " cache entries: ";
  if (report.problems.empty()) {
    out += "no problems";
  } else {
    out += std::to_string(report.problems.size()) + " problems, " + std::to_string(repaired) +
           " repaired";
  }
  if (report.temp_entries_removed > 0) {
    out += "; removed " + std::to_string(report.temp_entries_removed) + " stale temporary entries";
  }
  return out + "\n";
}

Result<void> run_rmi(Context& context, const RmiOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  // Name changes hold the store lock shared (docs/store.md); the names file has its own lock.
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  std::vector<std::string> missing;
  for (const auto& image : options.images) {
    auto found = find_image(*store, image, ById::no);
    if (!found) {
      if (found.error().code() != Code::not_found) {
        return fail(std::move(found).error());
      }
      missing.push_back(image);
      continue;
    }
    MB_TRY_ASSIGN(bool removed, store->names().untag(found->name));
    if (removed) {
      print("Untagged: " + found->name + "\n");
    }
  }
  if (!missing.empty() && !options.force) {
    std::string list;
    for (const auto& name : missing) {
      list += (list.empty() ? "" : ", ") + name;
    }
    return fail(Code::not_found, "no such image: " + list);
  }
  return {};
}

Result<void> run_prune(Context& context, const PruneCommandOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  // Cache entries are roots (gc.hpp), so plain prune keeps the build cache usable; --all
  // empties the cache, cache mounts included, before collecting.
  store::PruneOptions prune_options;
  if (options.all) {
    prune_options.cache = store::CachePrunePolicy{true, std::nullopt, std::nullopt};
    prune_options.cache_mounts = store::CacheMounts::remove;
  }
  MB_TRY_ASSIGN(auto report, store::prune(*store, prune_options));
  for (const auto& warning : report.warnings) {
    std::fprintf(stderr, "minibuild: warning: %s\n", warning.c_str());
  }
  print(render_prune(report));
  return {};
}

Result<void> run_fsck(Context& context, const FsckOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto report,
                store::fsck(*store, options.repair ? store::Repair::yes : store::Repair::no));
  print(render_fsck(report));
  if (!report.clean()) {
    using Kind = store::FsckProblem::Kind;
    std::size_t open = 0;
    bool repairable = false;
    for (const auto& problem : report.problems) {
      if (problem.repaired) {
        continue;
      }
      ++open;
      repairable = repairable || problem.kind == Kind::corrupt_blob ||
                   problem.kind == Kind::stray_blob_entry || problem.kind == Kind::corrupt_layer ||
                   problem.kind == Kind::stray_layer_entry ||
                   problem.kind == Kind::broken_cache_entry ||
                   problem.kind == Kind::dangling_cache_entry;
    }
    // --repair only removes entries; a name left without its content needs the user.
    std::string hint = repairable && !options.repair
                           ? " (`minibuild fsck --repair` removes corrupt, stray and dangling "
                             "entries)"
                           : " (rebuild the images concerned, or remove them with `minibuild rmi`)";
    return fail(Code::corrupt, "the store \"" + store->root() + "\" has " + std::to_string(open) +
                                   " unrepaired problems" + hint);
  }
  return {};
}

Result<void> run_save(Context& context, const SaveOptions& options) {
  build::OutputSpec spec;
  spec.type = options.format == "docker-archive" ? build::OutputType::docker_archive
                                                 : build::OutputType::oci_archive;
  spec.dest = options.output;
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(ImageRef image, find_image(*store, options.image, ById::yes));
  build::ImageToExport source;
  source.digest = image.digest;
  source.media_type = image.media_type;
  if (!image.name.empty()) {
    source.names.push_back(image.name);
  }
  auto written = build::write_output(store->blobs(), source, spec);
  if (!written) {
    return fail(std::move(written).error().wrap("save " + options.image));
  }
  return {};
}

} // namespace minibuild::cli
