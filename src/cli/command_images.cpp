// `minibuild images`, `inspect` and `history`: read-only views of the store.
#include "command_store.hpp"
#include "store_access.hpp"
#include "store_format.hpp"

#include <minibuild/build/outputs.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/store.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

namespace minibuild::cli {

namespace {

constexpr std::size_t k_max_document = 4U << 20U;
// docker history cuts CREATED BY to 45 characters unless --no-trunc.
constexpr std::size_t k_created_by_width = 45;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// The id docker would show: the config digest, or for an index (no single config) the index
// digest itself, as podman does.
const oci::Digest& shown_id(const store::ImageSummary& row) {
  return row.image_id.empty() ? row.manifest_digest : row.image_id;
}

// A stored document as JSON, keys in their stored order.
Result<nlohmann::ordered_json> read_json(store::Store& store, const oci::Digest& digest) {
  MB_TRY_ASSIGN(std::string bytes, store.blobs().read(digest, k_max_document));
  auto json = nlohmann::ordered_json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return fail(Code::corrupt, digest.to_string() + " is not valid JSON");
  }
  return json;
}

// The manifest and config an image name stands for; an index resolves to its only stored child
// manifest (a single-platform pull), and is refused when the store holds several.
struct ImageDocuments {
  oci::Digest manifest_digest;
  oci::ImageManifest manifest;
  oci::ImageConfig config;
};

Result<ImageDocuments> read_image(store::Store& store, const ImageRef& image) {
  MB_TRY_ASSIGN(std::string bytes, store.blobs().read(image.digest, k_max_document));
  oci::Digest digest = image.digest;
  auto manifest = oci::parse<oci::ImageManifest>(bytes);
  if (!manifest) {
    MB_TRY_ASSIGN(auto index, oci::parse<oci::ImageIndex>(bytes));
    std::vector<oci::Descriptor> stored;
    for (const auto& child : index.manifests) {
      MB_TRY_ASSIGN(auto info, store.blobs().stat(child.digest));
      if (info && oci::is_manifest(child.media_type)) {
        stored.push_back(child);
      }
    }
    if (stored.size() != 1) {
      return fail(Code::unsupported, "index " + image.digest.to_string() + " has " +
                                         std::to_string(stored.size()) +
                                         " manifests in the store; name one by digest");
    }
    digest = stored.front().digest;
    MB_TRY_ASSIGN(bytes, store.blobs().read(digest, k_max_document));
    manifest = oci::parse<oci::ImageManifest>(bytes);
    if (!manifest) {
      return fail(std::move(manifest).error().wrap("manifest " + digest.to_string()));
    }
  }
  MB_TRY_ASSIGN(std::string config_bytes,
                store.blobs().read(manifest->config.digest, k_max_document));
  auto config = oci::parse<oci::ImageConfig>(config_bytes);
  if (!config) {
    return fail(std::move(config).error().wrap("config " + manifest->config.digest.to_string()));
  }
  return ImageDocuments{digest, std::move(*manifest), std::move(*config)};
}

} // namespace

std::string render_images(const std::vector<store::ImageSummary>& rows,
                          const ImagesOptions& options, std::int64_t now) {
  std::string out;
  if (options.quiet) {
    for (const auto& row : rows) {
      out += short_id(shown_id(row).to_string()) + "\n";
    }
    return out;
  }
  if (options.format == "json") {
    for (const auto& row : rows) {
      nlohmann::ordered_json line = {
          {"Name", row.tag.empty() ? row.repository : row.repository + ":" + row.tag},
          {"Repository", row.repository},
          {"Tag", row.tag},
          {"ID", row.image_id.to_string()},
          {"Digest", row.manifest_digest.to_string()},
          {"MediaType", row.media_type},
          {"CreatedAt", row.created},
          {"Size", row.size},
      };
      if (!row.problem.empty()) {
        line["Problem"] = row.problem;
      }
      out += line.dump() + "\n";
    }
    return out;
  }
  std::vector<std::vector<std::string>> table;
  table.push_back({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"});
  for (const auto& row : rows) {
    table.push_back({build::familiar_name(row.repository), row.tag.empty() ? "<none>" : row.tag,
                     short_id(shown_id(row).to_string()), created_column(row.created, now),
                     row.problem.empty() ? human_size(row.size) : "N/A"});
  }
  return format_table(table);
}

std::string render_history(const oci::ImageConfig& config, const oci::ImageManifest& manifest,
                           const oci::Digest& image_id, bool no_trunc, std::int64_t now) {
  struct Row {
    std::string created, created_by, comment;
    std::uint64_t size = 0;
  };
  std::vector<Row> rows;
  std::size_t layer = 0;
  for (const auto& entry : config.history) {
    Row row{entry.created, entry.created_by, entry.comment, 0};
    if (!entry.empty_layer && layer < manifest.layers.size()) {
      row.size = static_cast<std::uint64_t>(manifest.layers[layer++].size);
    }
    rows.push_back(std::move(row));
  }
  if (config.history.empty()) {
    // No history recorded (some hand-made images): one row per layer, as docker shows them.
    for (const auto& descriptor : manifest.layers) {
      rows.push_back({config.created, "", "", static_cast<std::uint64_t>(descriptor.size)});
    }
  }
  std::vector<std::vector<std::string>> table;
  table.push_back({"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"});
  for (std::size_t i = rows.size(); i-- > 0;) {
    const Row& row = rows[i];
    std::string id = "<missing>";
    if (i + 1 == rows.size()) {
      id = no_trunc ? image_id.to_string() : short_id(image_id.to_string());
    }
    table.push_back({id, created_column(row.created, now),
                     ellipsis(row.created_by, no_trunc ? 0 : k_created_by_width),
                     human_size(row.size), row.comment});
  }
  return format_table(table);
}

Result<void> run_images(Context& context, const ImagesOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(auto rows, store::list_images(*store));
  for (const auto& row : rows) {
    if (!row.problem.empty()) {
      std::fprintf(stderr, "minibuild: warning: %s:%s: %s\n", row.repository.c_str(),
                   row.tag.c_str(), row.problem.c_str());
    }
  }
  print(render_images(rows, options, now_seconds()));
  return {};
}

Result<void> run_inspect(Context& context, const InspectOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(ImageRef image, find_image(*store, options.image, ById::yes));
  MB_TRY_ASSIGN(auto document, read_json(*store, image.digest));
  nlohmann::ordered_json out;
  out["Name"] = image.name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(image.name);
  out["Digest"] = image.digest.to_string();
  std::string media_type = image.media_type;
  if (media_type.empty() && document.contains("mediaType") && document["mediaType"].is_string()) {
    media_type = document["mediaType"].get<std::string>();
  }
  out["MediaType"] = media_type;
  out["Id"] = nullptr;
  out["Manifest"] = document;
  out["Config"] = nullptr;
  auto manifest = oci::from_json<oci::ImageManifest>(nlohmann::json::parse(document.dump()));
  if (manifest) {
    out["Id"] = manifest->config.digest.to_string();
    auto config = read_json(*store, manifest->config.digest);
    if (!config) {
      return fail(std::move(config).error().wrap("inspect " + options.image));
    }
    out["Config"] = std::move(*config);
  }
  print(out.dump(2) + "\n");
  return {};
}

Result<void> run_history(Context& context, const HistoryOptions& options) {
  MB_TRY_ASSIGN(auto store, open_store(context));
  MB_TRY_ASSIGN(auto lock, store->lock(store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(ImageRef image, find_image(*store, options.image, ById::yes));
  auto documents = read_image(*store, image);
  if (!documents) {
    return fail(std::move(documents).error().wrap("history " + options.image));
  }
  print(render_history(documents->config, documents->manifest, documents->manifest.config.digest,
                       options.no_trunc, now_seconds()));
  return {};
}

} // namespace minibuild::cli
