// --cache-to / --cache-from (cache_transfer.hpp; docs/cache.md, "Sharing the cache").
#include "cache_transfer.hpp"

#include "store_format.hpp"

#include <minibuild/base/unique_fd.hpp>
#include <minibuild/build/outputs.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/byte_source.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/registry/reference.hpp>
#include <minibuild/store/store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <ctime>
#include <fcntl.h>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sys/stat.h>
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
  // Optional: artifacts written before it existed are undated (0).
  if (json.contains("lastUsed")) {
    const auto& last_used = json["lastUsed"];
    if (!last_used.is_number_integer() || last_used.get<std::int64_t>() < 0) {
      return fail(Code::corrupt, "lastUsed: not a non-negative integer");
    }
    entry.last_used = last_used.get<std::int64_t>();
  }
  return entry;
}

// A cache artifact as read from a registry or a layout.
struct ReadArtifact {
  oci::Descriptor manifest; ///< the manifest's own descriptor
  oci::Descriptor config;
  std::vector<store::CacheEntry> entries;
  std::vector<CacheMountLayer> mounts;
};

// The artifact of a manifest already fetched: checks that it is ours, reads the cache-mount
// layers, then the config through `read_config`.
Result<ReadArtifact>
artifact_of(std::string_view manifest_bytes, oci::Descriptor manifest_descriptor,
            const std::string& origin,
            const std::function<Result<std::string>(const oci::Descriptor&)>& read_config) {
  auto manifest = oci::parse<oci::ImageManifest>(manifest_bytes);
  if (!manifest) {
    return fail(std::move(manifest).error().wrap("cache " + origin + ": manifest"));
  }
  if (manifest->config.media_type != k_cache_config_media_type) {
    return fail(Code::corrupt, "cache " + origin + ": not a minibuild cache (config media type \"" +
                                   manifest->config.media_type + "\")");
  }
  ReadArtifact artifact;
  artifact.manifest = std::move(manifest_descriptor);
  artifact.config = manifest->config;
  for (std::size_t i = 0; i < manifest->layers.size(); ++i) {
    auto mount = parse_mount_layer(manifest->layers[i]);
    if (!mount) {
      return fail(std::move(mount).error().wrap("cache " + origin + ": manifest: layers[" +
                                                std::to_string(i) + "]"));
    }
    if (*mount) {
      artifact.mounts.push_back(std::move(**mount));
    }
  }
  auto config = read_config(manifest->config);
  if (!config) {
    return fail(std::move(config).error().wrap("cache " + origin + ": config"));
  }
  MB_TRY_ASSIGN(artifact.entries, parse_cache_config(*config, origin));
  return artifact;
}

// One cache source after reading: how to fetch the blobs it lists.
struct Source {
  CacheSpec spec;
  registry::RegistryClient* client = nullptr; // type=registry
  std::string repository;                     // type=registry
};

// The artifact a registry ref names; nullopt, with the registry's answer in `missing`, when the
// registry does not know it.
Result<std::optional<ReadArtifact>> read_registry(Source& source, store::Store& store,
                                                  const RegistryAccessor& registries,
                                                  std::string& missing) {
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
      missing = fetched.error().what();
      return std::optional<ReadArtifact>();
    }
    return fail(std::move(fetched).error().wrap("cache " + ref));
  }
  oci::Descriptor descriptor;
  descriptor.media_type = fetched->media_type;
  descriptor.digest = fetched->digest;
  descriptor.size = static_cast<std::int64_t>(fetched->bytes.size());
  MB_TRY_ASSIGN(ReadArtifact artifact,
                artifact_of(fetched->bytes, descriptor, ref,
                            [&](const oci::Descriptor& config) -> Result<std::string> {
                              // Through the store's writer, which checks size and digest before
                              // anything is read back.
                              MB_TRY_ASSIGN(
                                  auto writer,
                                  store.blobs().open_writer(
                                      {config.digest, static_cast<std::uint64_t>(config.size)}));
                              MB_TRY(source.client->fetch_blob(source.repository, config, *writer));
                              MB_TRY(writer->commit());
                              return store.blobs().read(config.digest, k_max_document_bytes);
                            }));
  return std::optional<ReadArtifact>(std::move(artifact));
}

// The artifact a layout's tag names; nullopt, with the reason in `missing`, when the layout or
// the tag does not exist.
Result<std::optional<ReadArtifact>> read_local(const Source& source, std::string& missing) {
  const std::string& dir = source.spec.dir;
  auto index_file = open_file(dir + "/index.json");
  if (!index_file && index_file.error().code() == Code::not_found) {
    missing = "no index.json";
    return std::optional<ReadArtifact>();
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
    missing = "no entry named \"" + source.spec.tag + "\" in index.json";
    return std::optional<ReadArtifact>();
  }
  MB_TRY_ASSIGN(std::string manifest, read_layout_blob(dir, *chosen).map_error([&](Error error) {
    return std::move(error).wrap("cache " + dir + ": manifest");
  }));
  oci::Descriptor descriptor = *chosen;
  descriptor.annotations.clear();
  MB_TRY_ASSIGN(ReadArtifact artifact,
                artifact_of(manifest, descriptor, dir, [&](const oci::Descriptor& config) {
                  return read_layout_blob(dir, config);
                }));
  return std::optional<ReadArtifact>(std::move(artifact));
}

// Reads a cache-mount layer of `source`: a registry's through the store (whose writer checks
// it), a layout's straight from its file; either way through a reader that checks size and
// digest at its end.
MountBlobOpener mount_opener(const Source& source, store::Store& store,
                             const oci::Descriptor& blob) {
  return [&source, &store, blob]() -> Result<std::unique_ptr<oci::ByteSource>> {
    const auto size = static_cast<std::uint64_t>(blob.size);
    if (source.spec.type == CacheType::local) {
      MB_TRY_ASSIGN(auto file, open_file(blob_path(source.spec.dir, blob.digest)));
      return std::unique_ptr<oci::ByteSource>(
          std::make_unique<oci::VerifiedSource>(std::move(file), blob.digest, size));
    }
    MB_TRY_ASSIGN(auto stat, store.blobs().stat(blob.digest));
    if (!stat) {
      MB_TRY_ASSIGN(auto writer, store.blobs().open_writer({blob.digest, size}));
      MB_TRY(source.client->fetch_blob(source.repository, blob, *writer));
      MB_TRY(writer->commit());
    }
    MB_TRY_ASSIGN(auto verified, store.blobs().get(blob.digest, size));
    return std::unique_ptr<oci::ByteSource>(std::move(verified));
  };
}

// Whether the open descriptor `fd` is the file `path` names now.
Result<bool> same_file(int fd, const std::string& path) {
  struct stat held {};
  struct stat named {};
  if (::fstat(fd, &held) != 0) {
    return fail_errno(errno, "fstat \"" + path + "\"");
  }
  if (::stat(path.c_str(), &named) != 0) {
    if (errno == ENOENT) {
      return false;
    }
    return fail_errno(errno, "stat \"" + path + "\"");
  }
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

// An unsigned decimal (or octal) number that is all of `text`, at most `max`.
std::optional<std::uint64_t> parse_number(std::string_view text, int base, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || error != std::errc() || stop != end || value > max) {
    return std::nullopt;
  }
  return value;
}

bool is_hex_name(std::string_view name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string mounts_dir() {
  return std::string(store::BuildCache::k_mounts_dir);
}

// Every blob the layout's index.json reaches: its manifests and indexes, their configs,
// layers and children. A descriptor of another media type counts as a leaf.
Result<std::set<oci::Digest>> layout_reachable(const std::string& dir) {
  MB_TRY_ASSIGN(auto index_file, open_file(dir + "/index.json"));
  MB_TRY_ASSIGN(std::string index_text, oci::read_all(*index_file, k_max_document_bytes));
  MB_TRY_ASSIGN(oci::ImageIndex index, oci::parse<oci::ImageIndex>(index_text));
  std::set<oci::Digest> seen;
  std::vector<oci::Descriptor> pending = index.manifests;
  while (!pending.empty()) {
    const oci::Descriptor next = std::move(pending.back());
    pending.pop_back();
    if (!seen.insert(next.digest).second) {
      continue;
    }
    const bool is_manifest =
        next.media_type == oci::k_oci_manifest || next.media_type == oci::k_docker_manifest;
    const bool is_index =
        next.media_type == oci::k_oci_index || next.media_type == oci::k_docker_manifest_list;
    if (!is_manifest && !is_index) {
      continue;
    }
    MB_TRY_ASSIGN(std::string text, read_layout_blob(dir, next));
    if (is_manifest) {
      MB_TRY_ASSIGN(oci::ImageManifest manifest, oci::parse<oci::ImageManifest>(text));
      seen.insert(manifest.config.digest);
      for (const auto& layer : manifest.layers) {
        seen.insert(layer.digest);
      }
    } else {
      MB_TRY_ASSIGN(oci::ImageIndex child, oci::parse<oci::ImageIndex>(text));
      pending.insert(pending.end(), child.manifests.begin(), child.manifests.end());
    }
  }
  return seen;
}

// Writes `bytes` as DIR/NAME, complete or absent: a temporary file at the top of DIR, fsync,
// rename, fsync of NAME's directory.
Result<void> write_layout_file(const std::string& dir, const std::string& name,
                               std::string_view bytes) {
  const std::string temp = dir + "/.minibuild-tmp-" + std::to_string(::getpid());
  const std::string path = dir + "/" + name;
  UniqueFd file(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!file) {
    return fail_errno(errno, "create \"" + temp + "\"");
  }
  struct Remove {
    const std::string& path;
    bool armed = true;
    ~Remove() {
      if (armed) {
        ::unlink(path.c_str());
      }
    }
  } remove{temp};
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(file.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno(errno, "write \"" + temp + "\"");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(file.get()) != 0) {
    return fail_errno(errno, "fsync \"" + temp + "\"");
  }
  file.reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return fail_errno(errno, "rename \"" + temp + "\" to \"" + path + "\"");
  }
  remove.armed = false;
  const std::string parent = path.substr(0, path.rfind('/'));
  UniqueFd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd || ::fsync(parent_fd.get()) != 0) {
    return fail_errno(errno, "fsync \"" + parent + "\"");
  }
  return {};
}

// Points the layout's entry for `tag` at `artifact`: its config and manifest blobs first, then
// index.json (replaced atomically, other entries and the entry's annotations kept), so a reader
// never sees the new manifest without its blobs. The layers it lists are already there: they
// are a subset of the old manifest's.
Result<void> rewrite_layout_tag(const std::string& dir, const std::string& tag,
                                const CacheArtifact& artifact) {
  const std::pair<const std::string*, const oci::Descriptor*> blobs[] = {
      {&artifact.config, &artifact.config_descriptor},
      {&artifact.manifest, &artifact.manifest_descriptor}};
  for (const auto& [bytes, descriptor] : blobs) {
    MB_TRY(write_layout_file(dir, "blobs/sha256/" + descriptor->digest.hex(), *bytes));
  }
  MB_TRY_ASSIGN(auto index_file, open_file(dir + "/index.json"));
  MB_TRY_ASSIGN(std::string index_text, oci::read_all(*index_file, k_max_document_bytes));
  MB_TRY_ASSIGN(oci::ImageIndex index, oci::parse<oci::ImageIndex>(index_text));
  for (auto& entry : index.manifests) {
    const auto name = entry.annotations.find(std::string(build::k_ref_name_annotation));
    if (name != entry.annotations.end() && name->second == tag) {
      entry.media_type = artifact.manifest_descriptor.media_type;
      entry.digest = artifact.manifest_descriptor.digest;
      entry.size = artifact.manifest_descriptor.size;
    }
  }
  return write_layout_file(dir, "index.json", oci::serialize(index));
}

// Writes `artifact` into the store and to the registry tag or the layout tag of `spec`.
// Returns how the destination is named in messages.
Result<std::string> write_artifact(const CacheSpec& spec, const CacheArtifact& artifact,
                                   store::Store& store, const RegistryAccessor& registries) {
  for (const auto* blob : {&artifact.config, &artifact.manifest}) {
    oci::StringSource source(*blob);
    MB_TRY(store.blobs().put(source));
  }
  if (spec.type == CacheType::registry) {
    MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(spec.ref));
    MB_TRY_ASSIGN(RegistryAccess * access, registries());
    MB_TRY(push_from_store(*access, store, artifact.manifest_descriptor, reference,
                           /*quiet=*/true));
    return reference.to_string();
  }
  build::ImageToExport image;
  image.digest = artifact.manifest_descriptor.digest;
  image.media_type = artifact.manifest_descriptor.media_type;
  image.names = {std::string(k_layout_repository) + ":" + spec.tag};
  MB_TRY(build::write_oci_layout(store.blobs(), image, spec.dir));
  return spec.dir;
}

Result<void> export_with_mounts(const CacheSpec& spec, const build::BuildResult& result,
                                store::Store& store, const RegistryAccessor& registries,
                                std::FILE* log) {
  const std::vector<build::BuildResult::UsedEntry>& used = result.cache_entries;
  const std::string what = "--cache-to " + spec.display();
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  // Every exported entry was used (hit or made) by this build: its last use is now.
  std::vector<store::CacheEntry> entries = select_cache_entries(used, spec.mode);
  for (auto& entry : entries) {
    entry.last_used = now;
  }
  std::vector<CacheMountLayer> mounts;
  std::uint64_t mount_bytes = 0;
  if (spec.cache_mounts) {
    // Only the mounts this build used: a runner's store may hold other projects' caches.
    for (const auto& id : result.cache_mounts) {
      const std::string dir = cache_mount_dir(id);
      MB_TRY_ASSIGN(auto mount, export_cache_mount(store, dir, id, now).map_error([&](Error e) {
        return std::move(e).wrap(what + ": cache mount " + id);
      }));
      if (mount) {
        mount_bytes += static_cast<std::uint64_t>(mount->layer.size);
        mounts.push_back(std::move(*mount));
      }
    }
  }
  const CacheArtifact artifact = make_cache_artifact(std::move(entries), std::move(mounts));
  MB_TRY_ASSIGN(const std::string destination,
                write_artifact(spec, artifact, store, registries).map_error([&](Error e) {
                  return std::move(e).wrap(what);
                }));
  std::string with_mounts;
  if (spec.cache_mounts) {
    with_mounts = " and " + std::to_string(artifact.mounts) + " cache mounts (" +
                  human_size(mount_bytes) + ")";
  }
  std::fprintf(log, "exported %zu cache entries (%zu layers)%s to %s\n", artifact.entries,
               artifact.layers, with_mounts.c_str(), destination.c_str());
  return {};
}

} // namespace

Result<CacheSpec> parse_cache_spec(std::string_view value, CacheDirection direction) {
  const std::string option = direction == CacheDirection::to     ? "--cache-to"
                             : direction == CacheDirection::from ? "--cache-from"
                                                                 : "cache gc";
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
    allowed.insert({"mode", "cache-mounts"});
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
  if (fields.count("cache-mounts") != 0) {
    if (fields["cache-mounts"] == "true") {
      spec.cache_mounts = true;
    } else if (fields["cache-mounts"] != "false") {
      return usage("cache-mounts must be true or false");
    }
  }
  return spec;
}

Result<CacheSpec> parse_cache_gc_target(std::string_view value) {
  if (value.empty()) {
    return fail(Code::usage, "cache gc: empty cache reference");
  }
  // A registry reference never holds '=': anything with one is a spec.
  if (value.find('=') != std::string_view::npos) {
    return parse_cache_spec(value, CacheDirection::gc);
  }
  CacheSpec spec;
  spec.type = CacheType::registry;
  spec.ref = std::string(value);
  return spec;
}

std::string cache_mount_dir(std::string_view id) {
  return oci::sha256_of(id).hex();
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
    nlohmann::json item = {
        {"key", entry.key.to_string()},
        {"kind", entry.kind},
        {"layer", entry.layer ? oci::to_json(*entry.layer) : nlohmann::json()},
        {"diffID", entry.diff_id.empty() ? std::string() : entry.diff_id.to_string()},
        {"created", entry.created},
        {"createdBy", entry.created_by}};
    if (entry.last_used != 0) {
      item["lastUsed"] = entry.last_used;
    }
    list.push_back(std::move(item));
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

oci::Descriptor mount_layer_descriptor(const CacheMountLayer& mount) {
  oci::Descriptor layer = mount.layer;
  auto& notes = layer.annotations;
  notes[std::string(k_mount_dir_annotation)] = mount.dir;
  if (!mount.id.empty()) {
    notes[std::string(k_mount_id_annotation)] = mount.id;
  }
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(mount.mode));
  notes[std::string(k_mount_mode_annotation)] = mode;
  notes[std::string(k_mount_uid_annotation)] = std::to_string(mount.uid);
  notes[std::string(k_mount_gid_annotation)] = std::to_string(mount.gid);
  if (mount.last_used != 0) {
    notes[std::string(k_mount_last_used_annotation)] = std::to_string(mount.last_used);
  }
  return layer;
}

Result<std::optional<CacheMountLayer>> parse_mount_layer(const oci::Descriptor& layer) {
  const auto& notes = layer.annotations;
  const auto get = [&](std::string_view key) -> const std::string* {
    const auto found = notes.find(std::string(key));
    return found == notes.end() ? nullptr : &found->second;
  };
  const std::string* dir = get(k_mount_dir_annotation);
  if (dir == nullptr) {
    return std::optional<CacheMountLayer>();
  }
  const auto bad = [](std::string_view key, const std::string& value, std::string_view why) {
    return fail(Code::corrupt,
                "annotation " + std::string(key) + " \"" + value + "\": " + std::string(why));
  };
  CacheMountLayer mount;
  if (!is_hex_name(*dir)) {
    return bad(k_mount_dir_annotation, *dir, "not 64 lowercase hex digits");
  }
  mount.dir = *dir;
  if (const std::string* id = get(k_mount_id_annotation)) {
    if (cache_mount_dir(*id) != mount.dir) {
      return bad(k_mount_id_annotation, *id, "its sha256 is not the directory name");
    }
    mount.id = *id;
  }
  struct Number {
    std::string_view key;
    int base;
    std::uint64_t max;
    std::uint64_t value;
  };
  constexpr std::uint64_t k_max_id = std::numeric_limits<std::uint32_t>::max();
  Number numbers[] = {
      {k_mount_mode_annotation, 8, 07777, 0755},
      {k_mount_uid_annotation, 10, k_max_id, 0},
      {k_mount_gid_annotation, 10, k_max_id, 0},
      {k_mount_last_used_annotation, 10,
       static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), 0},
  };
  for (Number& number : numbers) {
    if (const std::string* text = get(number.key)) {
      const auto parsed = parse_number(*text, number.base, number.max);
      if (!parsed) {
        return bad(number.key, *text,
                   number.base == 8 ? "not an octal mode up to 07777" : "not a decimal number");
      }
      number.value = *parsed;
    }
  }
  mount.mode = static_cast<std::uint32_t>(numbers[0].value);
  mount.uid = static_cast<std::uint32_t>(numbers[1].value);
  mount.gid = static_cast<std::uint32_t>(numbers[2].value);
  mount.last_used = static_cast<std::int64_t>(numbers[3].value);
  mount.layer = layer;
  mount.layer.annotations.clear();
  return std::optional<CacheMountLayer>(std::move(mount));
}

CacheArtifact make_cache_artifact(std::vector<store::CacheEntry> entries,
                                  std::vector<CacheMountLayer> mounts) {
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
  // After the entries' layers, so that an artifact without mounts is what it always was.
  std::stable_sort(mounts.begin(), mounts.end(),
                   [](const auto& a, const auto& b) { return a.dir < b.dir; });
  mounts.erase(std::unique(mounts.begin(), mounts.end(),
                           [](const auto& a, const auto& b) { return a.dir == b.dir; }),
               mounts.end());
  for (const auto& mount : mounts) {
    manifest.layers.push_back(mount_layer_descriptor(mount));
  }
  artifact.mounts = mounts.size();
  artifact.manifest = oci::serialize(manifest);
  artifact.manifest_descriptor =
      oci::make_descriptor(std::string(oci::k_oci_manifest), artifact.manifest);
  return artifact;
}

CacheGcSelection select_cache_gc(std::vector<store::CacheEntry> entries,
                                 std::vector<CacheMountLayer> mounts, std::int64_t keep_duration,
                                 std::int64_t now) {
  // The rule of `cache prune --keep-duration` (BuildCache::prune); undated items stay.
  const auto expired = [&](std::int64_t last_used) {
    return last_used != 0 && now - last_used > keep_duration;
  };
  CacheGcSelection selection;
  std::set<oci::Digest> live;
  for (auto& entry : sorted_unique(std::move(entries))) {
    if (expired(entry.last_used)) {
      selection.removed.push_back(std::move(entry));
      continue;
    }
    selection.undated += entry.last_used == 0 ? 1 : 0;
    if (entry.layer) {
      live.insert(entry.layer->digest);
    }
    selection.kept.push_back(std::move(entry));
  }
  for (auto& mount : mounts) {
    if (expired(mount.last_used)) {
      selection.removed_mounts.push_back(std::move(mount));
      continue;
    }
    selection.undated += mount.last_used == 0 ? 1 : 0;
    live.insert(mount.layer.digest);
    selection.kept_mounts.push_back(std::move(mount));
  }
  std::map<oci::Digest, oci::Descriptor> gone;
  for (const auto& entry : selection.removed) {
    if (entry.layer && live.count(entry.layer->digest) == 0) {
      gone.emplace(entry.layer->digest, *entry.layer);
    }
  }
  for (const auto& mount : selection.removed_mounts) {
    if (live.count(mount.layer.digest) == 0) {
      gone.emplace(mount.layer.digest, mount.layer);
    }
  }
  for (auto& [digest, layer] : gone) {
    selection.removed_bytes += static_cast<std::uint64_t>(layer.size);
    selection.removed_layers.push_back(std::move(layer));
  }
  return selection;
}

Result<void> export_cache(const CacheSpec& spec, const build::BuildResult& result,
                          store::Store& store, const RegistryAccessor& registries, std::FILE* log) {
  return export_with_mounts(spec, result, store, registries, log);
}

Result<std::optional<CacheMountLayer>> export_cache_mount(store::Store& store,
                                                          const std::string& dir,
                                                          const std::string& id, std::int64_t now) {
  const std::string rel = mounts_dir() + "/" + dir;
  const std::string path = store.fs().absolute(rel);
  MB_TRY_ASSIGN(auto stat, store.fs().stat(rel));
  if (!stat) {
    return std::optional<CacheMountLayer>(); // pruned since, or never made
  }
  // A step with sharing=locked or private holds it exclusively while it runs: wait for it, so
  // that the tree does not change while it is read.
  MB_TRY_ASSIGN(UniqueFd lock, store.fs().lock(rel, store::LockMode::shared, store::Wait::yes));
  MB_TRY_ASSIGN(auto listed, store.fs().list(rel));
  if (listed.empty()) {
    return std::optional<CacheMountLayer>();
  }
  struct stat info {};
  if (::fstat(lock.get(), &info) != 0) {
    return fail_errno(errno, "fstat \"" + path + "\"");
  }
  CacheMountLayer mount;
  mount.dir = dir;
  mount.id = id;
  mount.mode = info.st_mode & 07777;
  mount.uid = info.st_uid;
  mount.gid = info.st_gid;
  mount.last_used = now;
  // A plain tree, real mtimes (package managers compare them), gzip as layers default to.
  MB_TRY_ASSIGN(auto writer, store.blobs().open_writer({}));
  MB_TRY_ASSIGN(layer::ExportResult exported,
                layer::export_layer(path, layer::ExportOptions{}, *writer));
  MB_TRY_ASSIGN(store::BlobInfo blob, writer->commit());
  mount.layer.media_type = exported.media_type;
  mount.layer.digest = blob.digest;
  mount.layer.size = static_cast<std::int64_t>(blob.size);
  return std::optional<CacheMountLayer>(std::move(mount));
}

Result<MountImport> import_cache_mount(store::Store& store, const CacheMountLayer& mount,
                                       const MountBlobOpener& open) {
  store::StoreFs& fs = store.fs();
  const std::string rel = mounts_dir() + "/" + mount.dir;
  const std::string path = fs.absolute(rel);
  MB_TRY(fs.make_dir("cache"));
  MB_TRY(fs.make_dir(mounts_dir()));
  bool created = false;
  UniqueFd lock;
  for (int attempt = 0;; ++attempt) {
    MB_TRY_ASSIGN(auto stat, fs.stat(rel));
    if (stat && stat->type != store::EntryType::directory) {
      return fail(Code::corrupt, "\"" + path + "\" is not a directory");
    }
    if (stat) {
      MB_TRY_ASSIGN(auto listed, fs.list(rel));
      if (!listed.empty()) {
        return MountImport::present;
      }
    } else {
      // The lock is a flock on the directory itself (as RUN steps take it): it must exist.
      MB_TRY(fs.make_dir(rel));
      created = true;
    }
    auto locked = fs.lock(rel, store::LockMode::exclusive, store::Wait::no);
    if (!locked) {
      if (locked.error().sys_errno() == EWOULDBLOCK) {
        return MountImport::busy;
      }
      return fail(std::move(locked).error());
    }
    // Another import may have renamed its tree over the directory between the stat and the
    // lock: the lock counts only on what the path names now.
    MB_TRY_ASSIGN(const bool same, same_file(locked->get(), path));
    if (same) {
      lock = std::move(*locked);
      break;
    }
    if (attempt == 3) {
      return fail(Code::io, "lock \"" + path + "\": the directory keeps being replaced");
    }
  }
  // A step with sharing=shared takes no lock: it may have filled the directory meanwhile.
  MB_TRY_ASSIGN(auto listed, fs.list(rel));
  if (!listed.empty()) {
    return MountImport::present;
  }

  const std::string temp_rel = mounts_dir() + "/.import-" + mount.dir + "-" +
                               std::to_string(static_cast<long long>(::getpid()));
  const std::string temp = fs.absolute(temp_rel);
  // Removes what a failure leaves: the temporary tree, and the directory this call made (an
  // executor that finds no directory gives it the mode and owner its RUN flags ask for).
  struct Cleanup {
    store::StoreFs& fs;
    const std::string& temp_rel;
    const std::string& path;
    bool created;
    bool armed = true;
    ~Cleanup() {
      if (armed) {
        (void)fs.remove_tree(temp_rel);
        if (created) {
          ::rmdir(path.c_str()); // only while empty
        }
      }
    }
  } cleanup{fs, temp_rel, path, created};
  MB_TRY(fs.remove_tree(temp_rel)); // a dead process of the same pid left it
  MB_TRY(fs.make_dir(temp_rel));
  MB_TRY_ASSIGN(auto source, open().map_error([](Error e) { return std::move(e).wrap("open"); }));
  layer::ApplyOptions options;
  options.device_nodes = layer::DeviceNodes::create_or_skip;
  MB_TRY_ASSIGN(const layer::ApplyResult applied,
                layer::apply_layer(*source, temp, options).map_error([&](Error e) {
                  return std::move(e).wrap("extract " + mount.layer.digest.to_string());
                }));
  (void)applied;
  // The layer holds what is below the directory; the directory itself is restored from the
  // annotations. An owner this user namespace cannot hold is left as it is, as apply_layer
  // does for the files.
  if (::lchown(temp.c_str(), mount.uid, mount.gid) != 0 && errno != EPERM && errno != EINVAL) {
    return fail_errno(errno, "chown \"" + temp + "\"");
  }
  if (::chmod(temp.c_str(), mount.mode) != 0) {
    return fail_errno(errno, "chmod \"" + temp + "\"");
  }
  MB_TRY(fs.sync_fs());
  auto renamed = fs.rename(temp_rel, rel);
  if (!renamed) {
    const int error = renamed.error().sys_errno();
    if (error == ENOTEMPTY || error == EEXIST) {
      return MountImport::present; // filled by a step meanwhile
    }
    return fail(std::move(renamed).error());
  }
  cleanup.armed = false;
  MB_TRY(fs.sync_dir(mounts_dir()));
  return MountImport::filled;
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
  std::set<std::string> mount_dirs; // the first source listing a mount wins
  for (const auto& spec : specs) {
    state->sources.push_back(Source{spec, nullptr, {}});
    Source& source = state->sources.back();
    std::string missing;
    std::optional<ReadArtifact> artifact;
    if (spec.type == CacheType::registry) {
      MB_TRY_ASSIGN(artifact, read_registry(source, store, registries, missing));
    } else {
      MB_TRY_ASSIGN(artifact, read_local(source, missing));
    }
    if (!artifact) {
      std::fprintf(log, "WARNING: no cache at %s: %s\n", spec.display().c_str(), missing.c_str());
      continue;
    }
    for (const auto& mount : artifact->mounts) {
      if (!mount_dirs.insert(mount.dir).second) {
        continue;
      }
      const std::string what = "cache " + spec.display() + ": cache mount " + mount.display();
      MB_TRY_ASSIGN(const MountImport outcome,
                    import_cache_mount(store, mount, mount_opener(source, store, mount.layer))
                        .map_error([&](Error e) { return std::move(e).wrap(what); }));
      switch (outcome) {
      case MountImport::filled:
        std::fprintf(log, "cache: filled cache mount %s from %s (%s)\n", mount.display().c_str(),
                     spec.display().c_str(),
                     human_size(static_cast<std::uint64_t>(mount.layer.size)).c_str());
        break;
      case MountImport::present:
        std::fprintf(log,
                     "cache: cache mount %s is not empty here: left alone (not imported from "
                     "%s)\n",
                     mount.display().c_str(), spec.display().c_str());
        break;
      case MountImport::busy:
        std::fprintf(log,
                     "cache: cache mount %s is in use by a running step: left alone (not "
                     "imported from %s)\n",
                     mount.display().c_str(), spec.display().c_str());
        break;
      }
    }
    std::vector<store::CacheEntry>& entries = artifact->entries;
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

Result<CacheGcReport> gc_cache(const CacheSpec& spec, std::int64_t keep_duration, std::int64_t now,
                               store::Store& store, const RegistryAccessor& registries) {
  const std::string what = "cache gc " + spec.display();
  CacheGcReport report;
  report.target = spec.display();
  Source source{spec, nullptr, {}};
  std::string missing;
  std::optional<ReadArtifact> artifact;
  if (spec.type == CacheType::registry) {
    MB_TRY_ASSIGN(registry::Reference reference, registry::parse_reference(spec.ref));
    if (reference.digest) {
      return fail(Code::usage, what + ": a reference pinned by digest cannot be rewritten; name "
                                      "the tag that points at the cache");
    }
    MB_TRY_ASSIGN(artifact, read_registry(source, store, registries, missing));
  } else {
    MB_TRY_ASSIGN(artifact, read_local(source, missing));
  }
  if (!artifact) {
    return fail(Code::not_found, what + ": no cache there: " + missing);
  }
  report.old_manifest = artifact->manifest.digest;
  report.new_manifest = report.old_manifest;
  report.selection = select_cache_gc(std::move(artifact->entries), std::move(artifact->mounts),
                                     keep_duration, now);
  if (report.selection.removed.empty() && report.selection.removed_mounts.empty()) {
    return report; // nothing goes: the tag keeps its manifest
  }
  const CacheArtifact rewritten =
      make_cache_artifact(report.selection.kept, report.selection.kept_mounts);
  report.rewritten = true;
  report.new_manifest = rewritten.manifest_descriptor.digest;
  if (spec.type == CacheType::registry) {
    // Pushed from the store, which needs only the config and the manifest: the registry has
    // the layers (push checks with HEAD before it reads a blob).
    MB_TRY(write_artifact(spec, rewritten, store, registries).map_error([&](Error e) {
      return std::move(e).wrap(what);
    }));
    return report; // the registry frees unreferenced blobs at its own garbage collection
  }
  // The store holds none of the layout's layers, so write_oci_layout (which copies from the
  // store) cannot be used: the two new blobs and index.json are written in place.
  MB_TRY(rewrite_layout_tag(spec.dir, spec.tag, rewritten).map_error([&](Error e) {
    return std::move(e).wrap(what);
  }));
  // A layout is ours to clean: delete what the old manifest held and no index entry reaches
  // any more (other entries of the layout may share blobs).
  MB_TRY_ASSIGN(const std::set<oci::Digest> reachable,
                layout_reachable(spec.dir).map_error([&](Error e) {
                  return std::move(e).wrap(what + ": the new manifest is in place, but the "
                                                  "layout's blobs could not be walked");
                }));
  std::vector<oci::Descriptor> candidates = {artifact->manifest, artifact->config};
  candidates.insert(candidates.end(), report.selection.removed_layers.begin(),
                    report.selection.removed_layers.end());
  std::set<oci::Digest> done;
  for (const auto& blob : candidates) {
    if (reachable.count(blob.digest) != 0 || !done.insert(blob.digest).second) {
      continue;
    }
    const std::string path = blob_path(spec.dir, blob.digest);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) {
        continue;
      }
      return fail_errno(errno, what + ": remove \"" + path + "\"");
    }
    ++report.blobs_deleted;
    report.bytes_deleted += static_cast<std::uint64_t>(blob.size);
  }
  return report;
}

} // namespace minibuild::cli
