// --cache-to / --cache-from (cache_transfer.hpp; docs/cache.md, "Sharing the cache").
#include "cache_transfer.hpp"

#include "store_format.hpp"

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/build/outputs.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/reference.hpp>
#include <minibuild/store/store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <map>
#include <memory>
#include <set>
#include <unistd.h>

namespace minibuild::cli {

namespace {

// Manifests and configs are small; a cache of many thousand entries still fits.
constexpr std::size_t k_max_document_bytes = 16u << 20;
// The layout name write_oci_layout records; only its tag is read back (ref.name).
constexpr std::string_view k_layout_repository = "minibuild-cache";

std::string short_hex(const oci::Digest& digest) {
  return digest.hex().substr(0, 12);
}

// A regular file as a ByteSource, for copying a layout's blobs through the verifying paths.
class FileSource : public oci::ByteSource {
public:
  explicit FileSource(UniqueFd fd) : m_fd(std::move(fd)) {}
  Result<std::size_t> read(std::span<char> buffer) override {
    for (;;) {
      const ssize_t n = ::read(m_fd.get(), buffer.data(), buffer.size());
      if (n >= 0) {
        return static_cast<std::size_t>(n);
      }
      if (errno != EINTR) {
        return fail_errno(errno, "read");
      }
    }
  }

private:
  UniqueFd m_fd;
};

Result<std::unique_ptr<oci::ByteSource>> open_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int error = errno;
    auto failure = Error::from_errno(error, "open \"" + path + "\"");
    return fail(error == ENOENT ? std::move(failure).with_code(Code::not_found)
                                : std::move(failure));
  }
  return std::unique_ptr<oci::ByteSource>(std::make_unique<FileSource>(std::move(fd)));
}

std::string blob_path(const std::string& dir, const oci::Digest& digest) {
  return dir + "/blobs/" + std::string(oci::algorithm_name(digest.algorithm())) + "/" +
         digest.hex();
}

// A layout blob read whole and checked against its descriptor.
Result<std::string> read_layout_blob(const std::string& dir, const oci::Descriptor& blob) {
  if (blob.size < 0 || static_cast<std::uint64_t>(blob.size) > k_max_document_bytes) {
    return fail(Code::corrupt, "blob " + blob.digest.to_string() + " is too large");
  }
  MB_TRY_ASSIGN(auto file, open_file(blob_path(dir, blob.digest)));
  oci::VerifiedSource verified(std::move(file), blob.digest, static_cast<std::uint64_t>(blob.size));
  return oci::read_all(verified, k_max_document_bytes);
}

std::vector<store::CacheEntry> sorted_unique(std::vector<store::CacheEntry> entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.key.to_string() < b.key.to_string();
  });
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const auto& a, const auto& b) { return a.key == b.key; }),
                entries.end());
  return entries;
}

Result<oci::Digest> digest_field(const nlohmann::json& object, const char* name, bool allow_empty) {
  const auto& value = object.at(name);
  if (!value.is_string()) {
    return fail(Code::corrupt, std::string(name) + ": not a string");
  }
  const auto text = value.get<std::string>();
  if (text.empty() && allow_empty) {
    return oci::Digest();
  }
  auto digest = oci::Digest::parse(text);
  if (!digest) {
    return fail(std::move(digest).error().wrap(name));
  }
  return std::move(*digest);
}

Result<std::string> string_field(const nlohmann::json& object, const char* name) {
  const auto& value = object.at(name);
  if (!value.is_string()) {
    return fail(Code::corrupt, std::string(name) + ": not a string");
  }
  return value.get<std::string>();
}

Result<store::CacheEntry> parse_entry(const nlohmann::json& json) {
  if (!json.is_object()) {
    return fail(Code::corrupt, "not an object");
  }
  store::CacheEntry entry;
  MB_TRY_ASSIGN(entry.key, digest_field(json, "key", false));
  MB_TRY_ASSIGN(entry.kind, string_field(json, "kind"));
  const auto& layer = json.at("layer");
  if (!layer.is_null()) {
    auto descriptor = oci::from_json<oci::Descriptor>(layer);
    if (!descriptor) {
      return fail(std::move(descriptor).error().wrap("layer"));
    }
    entry.layer = std::move(*descriptor);
    entry.size = static_cast<std::uint64_t>(entry.layer->size);
  }
  MB_TRY_ASSIGN(entry.diff_id, digest_field(json, "diffID", true));
  if (entry.layer && entry.diff_id.empty()) {
    return fail(Code::corrupt, "diffID: missing for a layer");
  }
  MB_TRY_ASSIGN(entry.created, string_field(json, "created"));
  MB_TRY_ASSIGN(entry.created_by, string_field(json, "createdBy"));
  return entry;
}

// The entries of a manifest already fetched: checks that it is our artifact, then reads the
// config through `read_config`.
Result<std::vector<store::CacheEntry>>
entries_of(std::string_view manifest_bytes, const std::string& origin,
           const std::function<Result<std::string>(const oci::Descriptor&)>& read_config) {
  auto manifest = oci::parse<oci::ImageManifest>(manifest_bytes);
  if (!manifest) {
    return fail(std::move(manifest).error().wrap("cache " + origin + ": manifest"));
  }
  if (manifest->config.media_type != k_cache_config_media_type) {
    return fail(Code::corrupt, "cache " + origin + ": not a minibuild cache (config media type \"" +
                                   manifest->config.media_type + "\")");
  }
  auto config = read_config(manifest->config);
  if (!config) {
    return fail(std::move(config).error().wrap("cache " + origin + ": config"));
  }
  return parse_cache_config(*config, origin);
}

// One --cache-from source after reading: how to fetch the layers it lists.
struct Source {
  CacheSpec spec;
  registry::RegistryClient* client = nullptr; // type=registry
  std::string repository;                     // type=registry
};

Result<std::vector<store::CacheEntry>> import_registry(Source& source, store::Store& store,
                                                       const RegistryAccessor& registries,
                                                       std::FILE* log) {
  const std::string& ref = source.spec.ref;
  MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(ref));
  MB_TRY_ASSIGN(RegistryAccess * access, registries());
  MB_TRY_ASSIGN(source.client, access->client_for(reference));
  source.repository = reference.path;
  // get_manifest verifies the digest when the reference pins one.
  const std::string target =
      reference.digest ? reference.digest->to_string() : reference.tag.value_or("latest");
  auto fetched = source.client->get_manifest(source.repository, target);
  if (!fetched) {
    if (fetched.error().code() == Code::not_found) {
      std::fprintf(log, "WARNING: no cache at %s: %s\n", ref.c_str(),
                   fetched.error().what().c_str());
      return std::vector<store::CacheEntry>();
    }
    return fail(std::move(fetched).error().wrap("cache " + ref));
  }
  return entries_of(fetched->bytes, ref, [&](const oci::Descriptor& config) -> Result<std::string> {
    // Through the store's writer, which checks size and digest before anything is read back.
    MB_TRY_ASSIGN(auto writer, store.blobs().open_writer(
                                   {config.digest, static_cast<std::uint64_t>(config.size)}));
    MB_TRY(source.client->fetch_blob(source.repository, config, *writer));
    MB_TRY(writer->commit());
    return store.blobs().read(config.digest, k_max_document_bytes);
  });
}

Result<std::vector<store::CacheEntry>> import_local(const Source& source, std::FILE* log) {
  const std::string& dir = source.spec.dir;
  auto index_file = open_file(dir + "/index.json");
  if (!index_file && index_file.error().code() == Code::not_found) {
    std::fprintf(log, "WARNING: no cache at %s: no index.json\n", dir.c_str());
    return std::vector<store::CacheEntry>();
  }
  if (!index_file) {
    return fail(std::move(index_file).error().wrap("cache " + dir));
  }
  MB_TRY_ASSIGN(std::string index_text, oci::read_all(**index_file, k_max_document_bytes));
  auto index = oci::parse<oci::ImageIndex>(index_text);
  if (!index) {
    return fail(std::move(index).error().wrap("cache " + dir + ": index.json"));
  }
  const oci::Descriptor* chosen = nullptr;
  for (const auto& entry : index->manifests) {
    auto name = entry.annotations.find(std::string(build::k_ref_name_annotation));
    if (name != entry.annotations.end() && name->second == source.spec.tag) {
      chosen = &entry;
    }
  }
  if (chosen == nullptr) {
    std::fprintf(log, "WARNING: no cache at %s: no entry named \"%s\" in index.json\n", dir.c_str(),
                 source.spec.tag.c_str());
    return std::vector<store::CacheEntry>();
  }
  MB_TRY_ASSIGN(std::string manifest, read_layout_blob(dir, *chosen).map_error([&](Error error) {
    return std::move(error).wrap("cache " + dir + ": manifest");
  }));
  return entries_of(manifest, dir,
                    [&](const oci::Descriptor& config) { return read_layout_blob(dir, config); });
}

} // namespace

Result<CacheSpec> parse_cache_spec(std::string_view value, CacheDirection direction) {
  const std::string option = direction == CacheDirection::to ? "--cache-to" : "--cache-from";
  auto usage = [&](const std::string& why) {
    return fail(Code::usage, option + " \"" + std::string(value) + "\": " + why);
  };
  std::map<std::string, std::string> fields;
  std::size_t start = 0;
  while (start <= value.size()) {
    const std::size_t end = std::min(value.find(',', start), value.size());
    const std::string_view field = value.substr(start, end - start);
    const std::size_t equals = field.find('=');
    if (equals == std::string_view::npos) {
      return usage("field \"" + std::string(field) + "\" is not key=value");
    }
    const std::string key(field.substr(0, equals));
    if (!fields.emplace(key, std::string(field.substr(equals + 1))).second) {
      return usage("key \"" + key + "\" given twice");
    }
    start = end + 1;
  }
  CacheSpec spec;
  std::set<std::string> allowed = {"type"};
  const std::string type = fields.count("type") != 0 ? fields["type"] : std::string();
  if (type == "registry") {
    spec.type = CacheType::registry;
    allowed.insert("ref");
  } else if (type == "local") {
    spec.type = CacheType::local;
    allowed.insert({direction == CacheDirection::to ? "dest" : "src", "tag"});
  } else {
    return usage(type.empty() ? "missing type= (registry or local)"
                              : "unknown type \"" + type + "\" (registry or local)");
  }
  if (direction == CacheDirection::to) {
    allowed.insert("mode");
  }
  for (const auto& [key, field_value] : fields) {
    if (allowed.count(key) == 0) {
      return usage("unknown key \"" + key + "\"");
    }
  }
  if (spec.type == CacheType::registry) {
    spec.ref = fields["ref"];
    if (spec.ref.empty()) {
      return usage("missing ref=");
    }
  } else {
    spec.dir = fields[direction == CacheDirection::to ? "dest" : "src"];
    if (spec.dir.empty()) {
      return usage(direction == CacheDirection::to ? "missing dest=" : "missing src=");
    }
    spec.tag = fields.count("tag") != 0 ? fields["tag"] : "latest";
    if (spec.tag.empty()) {
      return usage("empty tag=");
    }
  }
  if (fields.count("mode") != 0) {
    if (fields["mode"] == "max") {
      spec.mode = CacheMode::max;
    } else if (fields["mode"] != "min") {
      return usage("mode must be min or max");
    }
  }
  return spec;
}

std::vector<store::CacheEntry>
select_cache_entries(const std::vector<build::BuildResult::UsedEntry>& used, CacheMode mode) {
  std::vector<store::CacheEntry> selected;
  for (const auto& item : used) {
    if (item.target_stage || mode == CacheMode::max) {
      selected.push_back(item.entry);
    }
  }
  return sorted_unique(std::move(selected));
}

std::string serialize_cache_config(std::vector<store::CacheEntry> entries) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& entry : sorted_unique(std::move(entries))) {
    list.push_back({{"key", entry.key.to_string()},
                    {"kind", entry.kind},
                    {"layer", entry.layer ? oci::to_json(*entry.layer) : nlohmann::json()},
                    {"diffID", entry.diff_id.empty() ? std::string() : entry.diff_id.to_string()},
                    {"created", entry.created},
                    {"createdBy", entry.created_by}});
  }
  // nlohmann objects keep keys sorted: dump() without indent is canonical.
  return nlohmann::json{{"version", k_cache_config_version}, {"entries", std::move(list)}}.dump();
}

Result<std::vector<store::CacheEntry>> parse_cache_config(std::string_view text,
                                                          std::string_view origin) {
  const std::string where = "cache " + std::string(origin) + ": config";
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    return fail(Code::corrupt, where + ": invalid JSON at byte " + std::to_string(error.byte));
  }
  if (!json.is_object() || !json.contains("version") || !json["version"].is_number_integer() ||
      !json.contains("entries") || !json["entries"].is_array()) {
    return fail(Code::corrupt, where + ": not {\"version\":N,\"entries\":[…]}");
  }
  if (json["version"].get<std::int64_t>() > k_cache_config_version) {
    return fail(Code::unsupported, where + ": version " + json["version"].dump() +
                                       " is newer than this minibuild reads (" +
                                       std::to_string(k_cache_config_version) + ")");
  }
  std::vector<store::CacheEntry> entries;
  std::set<oci::Digest> keys;
  const auto& list = json["entries"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string name = where + ": entries[" + std::to_string(i) + "]";
    Result<store::CacheEntry> entry = fail(Code::internal, "unset");
    try {
      entry = parse_entry(list[i]);
    } catch (const nlohmann::json::exception& error) {
      // at() on a missing field.
      entry = fail(Code::corrupt, error.what());
    }
    if (!entry) {
      return fail(std::move(entry).error().wrap(name).with_code(Code::corrupt));
    }
    if (!keys.insert(entry->key).second) {
      return fail(Code::corrupt, name + ": key " + entry->key.to_string() + " listed twice");
    }
    entries.push_back(std::move(*entry));
  }
  return sorted_unique(std::move(entries));
}

CacheArtifact make_cache_artifact(std::vector<store::CacheEntry> entries) {
  entries = sorted_unique(std::move(entries));
  CacheArtifact artifact;
  artifact.entries = entries.size();
  artifact.config = serialize_cache_config(entries);
  artifact.config_descriptor =
      oci::make_descriptor(std::string(k_cache_config_media_type), artifact.config);

  oci::ImageManifest manifest;
  manifest.media_type = std::string(oci::k_oci_manifest);
  manifest.artifact_type = std::string(k_cache_artifact_type);
  manifest.config = artifact.config_descriptor;
  std::map<oci::Digest, oci::Descriptor> layers; // by digest: a stable order
  for (const auto& entry : entries) {
    if (entry.layer) {
      layers.emplace(entry.layer->digest, *entry.layer);
    }
  }
  for (auto& [digest, layer] : layers) {
    manifest.layers.push_back(std::move(layer));
  }
  artifact.layers = manifest.layers.size();
  artifact.manifest = oci::serialize(manifest);
  artifact.manifest_descriptor =
      oci::make_descriptor(std::string(oci::k_oci_manifest), artifact.manifest);
  return artifact;
}

Result<void> export_cache(const CacheSpec& spec,
                          const std::vector<build::BuildResult::UsedEntry>& used,
                          store::Store& store, const RegistryAccessor& registries, std::FILE* log) {
  const std::string what = "--cache-to " + spec.display();
  const CacheArtifact artifact = make_cache_artifact(select_cache_entries(used, spec.mode));
  for (const auto* blob : {&artifact.config, &artifact.manifest}) {
    oci::StringSource source(*blob);
    MB_TRY_CONTEXT(store.blobs().put(source), what);
  }
  std::string destination;
  if (spec.type == CacheType::registry) {
    MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(spec.ref));
    MB_TRY_ASSIGN(RegistryAccess * access, registries());
    MB_TRY_CONTEXT(push_from_store(*access, store, artifact.manifest_descriptor, reference,
                                   /*quiet=*/true),
                   what);
    destination = reference.to_string();
  } else {
    build::ImageToExport image;
    image.digest = artifact.manifest_descriptor.digest;
    image.media_type = artifact.manifest_descriptor.media_type;
    image.names = {std::string(k_layout_repository) + ":" + spec.tag};
    MB_TRY_CONTEXT(build::write_oci_layout(store.blobs(), image, spec.dir), what);
    destination = spec.dir;
  }
  std::fprintf(log, "exported %zu cache entries (%zu layers) to %s\n", artifact.entries,
               artifact.layers, destination.c_str());
  return {};
}

Result<ImportedCache> import_caches(const std::vector<CacheSpec>& specs, store::Store& store,
                                    const RegistryAccessor& registries, std::FILE* log) {
  // Shared with fetch_blob, which outlives this call.
  struct State {
    std::vector<Source> sources;
    std::map<oci::Digest, std::size_t> layer_source; // layer digest → index in sources
  };
  auto state = std::make_shared<State>();
  ImportedCache imported;
  std::set<oci::Digest> keys;
  for (const auto& spec : specs) {
    state->sources.push_back(Source{spec, nullptr, {}});
    Source& source = state->sources.back();
    std::vector<store::CacheEntry> entries;
    if (spec.type == CacheType::registry) {
      MB_TRY_ASSIGN(entries, import_registry(source, store, registries, log));
    } else {
      MB_TRY_ASSIGN(entries, import_local(source, log));
    }
    std::size_t layers = 0;
    for (auto& entry : entries) {
      if (!keys.insert(entry.key).second) {
        continue;
      }
      if (entry.layer &&
          state->layer_source.emplace(entry.layer->digest, state->sources.size() - 1).second) {
        ++layers;
      }
      imported.entries.push_back(std::move(entry));
    }
    if (!entries.empty()) {
      std::fprintf(log, "imported %zu cache entries (%zu layers) from %s\n", entries.size(), layers,
                   spec.display().c_str());
    }
  }
  std::fflush(log);
  store::Store* target = &store;
  imported.fetch_blob = [state, target, log](const oci::Descriptor& blob) -> Result<void> {
    auto found = state->layer_source.find(blob.digest);
    if (found == state->layer_source.end()) {
      return fail(Code::not_found, "no cache source lists blob " + blob.digest.to_string());
    }
    const Source& source = state->sources[found->second];
    const std::string what =
        "fetch cache layer " + blob.digest.to_string() + " from " + source.spec.display();
    const store::BlobExpectation expected{blob.digest, static_cast<std::uint64_t>(blob.size)};
    if (source.spec.type == CacheType::registry) {
      MB_TRY_ASSIGN(auto writer, target->blobs().open_writer(expected).map_error(
                                     [&](Error error) { return std::move(error).wrap(what); }));
      MB_TRY_CONTEXT(source.client->fetch_blob(source.repository, blob, *writer), what);
      MB_TRY_CONTEXT(writer->commit(), what);
    } else {
      MB_TRY_ASSIGN(auto file,
                    open_file(blob_path(source.spec.dir, blob.digest)).map_error([&](Error error) {
                      return std::move(error).wrap(what);
                    }));
      MB_TRY_CONTEXT(target->blobs().put(*file, expected), what);
    }
    std::fprintf(log, "cache: imported layer %s (%s) from %s\n", short_hex(blob.digest).c_str(),
                 human_size(static_cast<std::uint64_t>(blob.size)).c_str(),
                 source.spec.display().c_str());
    return {};
  };
  return imported;
}

} // namespace minibuild::cli
