// Shared-cache plumbing on real stores and layouts in temporary directories: RUN
// --mount=type=cache directories exported as layers and imported into another store
// (export_cache_mount / import_cache_mount), and `cache gc` of a layout (gc_cache).
#include "cli/cache_transfer.hpp"
#include "cli/command_cache.hpp"
#include "support/temp_dir.hpp"

#include <minibuild/build/outputs.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::cli;
using minibuild::test::TempDir;

namespace {

constexpr std::int64_t k_now = 1'700'000'000;
constexpr std::int64_t k_day = 86'400;

std::unique_ptr<store::Store> open_store(const std::string& root) {
  auto store = store::Store::open(root);
  REQUIRE(store);
  return std::move(*store);
}

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string mount_rel(std::string_view id) {
  return "cache/mounts/" + cache_mount_dir(id);
}

// Leftover temporary trees of an import (".import-…") in a store's cache/mounts.
int leftovers(const std::string& root) {
  int count = 0;
  std::error_code error;
  for (const auto& item : std::filesystem::directory_iterator(root + "/cache/mounts", error)) {
    count += item.path().filename().string().rfind(".import-", 0) == 0 ? 1 : 0;
  }
  return count;
}

// Reads the blob of `mount` from `from`'s store, verified, as a registry import would.
MountBlobOpener opener_from(store::Store& from, const CacheMountLayer& mount) {
  return [&from, mount]() -> Result<std::unique_ptr<oci::ByteSource>> {
    MB_TRY_ASSIGN(auto source, from.blobs().get(mount.layer.digest,
                                                static_cast<std::uint64_t>(mount.layer.size)));
    return std::unique_ptr<oci::ByteSource>(std::move(source));
  };
}

oci::Descriptor put_blob(store::Store& store, std::string_view media_type,
                         const std::string& bytes) {
  oci::StringSource source(bytes);
  REQUIRE(store.blobs().put(source));
  return oci::make_descriptor(std::string(media_type), bytes);
}

} // namespace

TEST_CASE("a cache mount travels to a fresh store and a present one is left alone",
          "[cli][cache-mounts]") {
  TempDir dir("cache-mounts");
  auto a = open_store(dir / "a");
  const std::string id = "/var/cache/x";
  const std::string source_root = (dir / "a") + "/" + mount_rel(id);
  write_text(source_root + "/sub/f", "hello");
  REQUIRE(::symlink("sub/f", (source_root + "/link").c_str()) == 0);
  REQUIRE(::chmod(source_root.c_str(), 0750) == 0);

  auto exported = export_cache_mount(*a, cache_mount_dir(id), id, 1234);
  REQUIRE(exported);
  REQUIRE(*exported);
  const CacheMountLayer& mount = **exported;
  CHECK(mount.dir == cache_mount_dir(id));
  CHECK(mount.id == id);
  CHECK(mount.mode == 0750);
  CHECK(mount.uid == ::getuid());
  CHECK(mount.last_used == 1234);
  CHECK(mount.layer.media_type == oci::k_oci_layer_tar_gzip);
  auto stored = a->blobs().stat(mount.layer.digest);
  REQUIRE(stored);
  REQUIRE(*stored);
  CHECK((*stored)->size == static_cast<std::uint64_t>(mount.layer.size));

  auto b = open_store(dir / "b");
  const std::string target = (dir / "b") + "/" + mount_rel(id);
  auto filled = import_cache_mount(*b, mount, opener_from(*a, mount));
  REQUIRE(filled);
  CHECK(*filled == MountImport::filled);
  CHECK(read_text(target + "/sub/f") == "hello");
  CHECK(std::filesystem::read_symlink(target + "/link") == "sub/f");
  struct stat info {};
  REQUIRE(::stat(target.c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0750);
  CHECK(leftovers(dir / "b") == 0);

  // A local mount with content wins over the imported one, whatever it holds.
  write_text(target + "/sub/f", "local");
  auto again = import_cache_mount(*b, mount, opener_from(*a, mount));
  REQUIRE(again);
  CHECK(*again == MountImport::present);
  CHECK(read_text(target + "/sub/f") == "local");
}

TEST_CASE("an empty cache mount is filled; one a running step holds is left alone",
          "[cli][cache-mounts]") {
  TempDir dir("cache-mounts");
  auto a = open_store(dir / "a");
  const std::string id = "pip";
  write_text((dir / "a") + "/" + mount_rel(id) + "/wheel", "w");
  auto exported = export_cache_mount(*a, cache_mount_dir(id), id, 1);
  REQUIRE(exported);
  REQUIRE(*exported);

  auto c = open_store(dir / "c");
  const std::string empty = (dir / "c") + "/" + mount_rel(id);
  std::filesystem::create_directories(empty);
  auto filled = import_cache_mount(*c, **exported, opener_from(*a, **exported));
  REQUIRE(filled);
  CHECK(*filled == MountImport::filled);
  CHECK(read_text(empty + "/wheel") == "w");

  auto d = open_store(dir / "d");
  const std::string held = (dir / "d") + "/" + mount_rel(id);
  std::filesystem::create_directories(held);
  // A sharing=locked step holds the directory's flock (another open file: it conflicts).
  auto lock = d->fs().lock(mount_rel(id), store::LockMode::exclusive, store::Wait::no);
  REQUIRE(lock);
  auto busy = import_cache_mount(*d, **exported, opener_from(*a, **exported));
  REQUIRE(busy);
  CHECK(*busy == MountImport::busy);
  CHECK(std::filesystem::is_empty(held));
}

TEST_CASE("a cache mount layer that fails verification leaves nothing behind",
          "[cli][cache-mounts]") {
  TempDir dir("cache-mounts");
  auto a = open_store(dir / "a");
  const std::string id = "npm";
  write_text((dir / "a") + "/" + mount_rel(id) + "/pkg", "p");
  auto exported = export_cache_mount(*a, cache_mount_dir(id), id, 1);
  REQUIRE(exported);
  REQUIRE(*exported);
  auto bytes = a->blobs().read((*exported)->layer.digest, 1 << 20);
  REQUIRE(bytes);

  auto e = open_store(dir / "e");
  // The right bytes, checked against another digest: as a tampered registry blob would be.
  MountBlobOpener tampered = [&]() -> Result<std::unique_ptr<oci::ByteSource>> {
    return std::unique_ptr<oci::ByteSource>(
        std::make_unique<oci::VerifiedSource>(std::make_unique<oci::StringSource>(*bytes),
                                              oci::sha256_of("something else"), bytes->size()));
  };
  auto failed = import_cache_mount(*e, **exported, tampered);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == Code::corrupt);
  CHECK_FALSE(std::filesystem::exists((dir / "e") + "/" + mount_rel(id)));
  CHECK(leftovers(dir / "e") == 0);
}

TEST_CASE("empty and missing cache mounts are not exported", "[cli][cache-mounts]") {
  TempDir dir("cache-mounts");
  auto a = open_store(dir / "a");
  auto missing = export_cache_mount(*a, cache_mount_dir("none"), "none", 1);
  REQUIRE(missing);
  CHECK_FALSE(*missing);
  std::filesystem::create_directories((dir / "a") + "/" + mount_rel("empty"));
  auto empty = export_cache_mount(*a, cache_mount_dir("empty"), "empty", 1);
  REQUIRE(empty);
  CHECK_FALSE(*empty);
}

TEST_CASE("cache gc of a layout drops old entries and the blobs nothing else reaches",
          "[cli][cache-gc]") {
  TempDir dir("cache-gc");
  auto store = open_store(dir / "store");
  const std::string layout = dir / "layout";
  const std::string gzip(oci::k_oci_layer_tar_gzip);

  auto entry = [&](std::string_view name, std::int64_t last_used) {
    store::CacheEntry e;
    e.key = oci::sha256_of("key " + std::string(name));
    e.kind = "run";
    e.layer = put_blob(*store, gzip, "layer " + std::string(name));
    e.diff_id = oci::sha256_of("diff " + std::string(name));
    e.size = static_cast<std::uint64_t>(e.layer->size);
    e.created = "2024-01-02T03:04:05Z";
    e.created_by = "RUN " + std::string(name);
    e.last_used = last_used;
    return e;
  };
  const auto old_entry = entry("old", k_now - 3 * k_day);
  const auto fresh = entry("fresh", k_now - 60);
  const auto shared = entry("shared", k_now - 3 * k_day); // its layer: also in image other:1
  CacheMountLayer mount;
  mount.dir = cache_mount_dir("/var/cache/x");
  mount.id = "/var/cache/x";
  mount.last_used = k_now - 2 * k_day;
  mount.layer = put_blob(*store, gzip, "mount tree");

  const CacheArtifact artifact = make_cache_artifact({old_entry, fresh, shared}, {mount});
  const auto config = put_blob(*store, k_cache_config_media_type, artifact.config);
  put_blob(*store, oci::k_oci_manifest, artifact.manifest);
  build::ImageToExport cache_image{artifact.manifest_descriptor.digest,
                                   std::string(oci::k_oci_manifest),
                                   {"minibuild-cache:latest"}};
  REQUIRE(build::write_oci_layout(store->blobs(), cache_image, layout));
  // Another image of the same layout shares a layer with the cache.
  oci::ImageManifest other;
  other.media_type = std::string(oci::k_oci_manifest);
  other.config = put_blob(*store, oci::k_oci_config, "{}");
  other.layers = {*shared.layer};
  const std::string other_bytes = oci::serialize(other);
  const auto other_manifest = put_blob(*store, oci::k_oci_manifest, other_bytes);
  REQUIRE(build::write_oci_layout(
      store->blobs(), {other_manifest.digest, std::string(oci::k_oci_manifest), {"other:1"}},
      layout));

  const RegistryAccessor no_registry = []() -> Result<RegistryAccess*> {
    return fail(Code::internal, "a layout needs no registry");
  };
  auto spec = parse_cache_gc_target("type=local,src=" + layout);
  REQUIRE(spec);
  // gc runs with another store, which holds none of the layout's blobs (as on a CI runner).
  auto runner = open_store(dir / "runner");
  auto report = gc_cache(*spec, k_day, k_now, *runner, no_registry);
  REQUIRE(report);
  CHECK(report->rewritten);
  CHECK(report->old_manifest == artifact.manifest_descriptor.digest);
  CHECK(report->new_manifest != report->old_manifest);
  CHECK(report->selection.removed.size() == 2);
  CHECK(report->selection.removed_mounts.size() == 1);
  CHECK(report->selection.kept.size() == 1);
  CHECK(report->selection.removed_layers.size() == 3); // old, shared and the mount's
  // Deleted: the old manifest and config, the old entry's layer and the mount's; the shared
  // layer stays for other:1.
  CHECK(report->blobs_deleted == 4);
  const auto blob = [&](const oci::Digest& digest) {
    return layout + "/blobs/sha256/" + digest.hex();
  };
  CHECK_FALSE(std::filesystem::exists(blob(old_entry.layer->digest)));
  CHECK_FALSE(std::filesystem::exists(blob(mount.layer.digest)));
  CHECK_FALSE(std::filesystem::exists(blob(artifact.manifest_descriptor.digest)));
  CHECK_FALSE(std::filesystem::exists(blob(config.digest)));
  CHECK(std::filesystem::exists(blob(shared.layer->digest)));
  CHECK(std::filesystem::exists(blob(fresh.layer->digest)));
  CHECK(std::filesystem::exists(blob(other_manifest.digest)));

  const auto index = nlohmann::json::parse(read_text(layout + "/index.json"));
  std::map<std::string, std::string> names;
  for (const auto& item : index["manifests"]) {
    names[item["annotations"]["org.opencontainers.image.ref.name"]] = item["digest"];
  }
  CHECK(names["latest"] == report->new_manifest.to_string());
  CHECK(names["1"] == other_manifest.digest.to_string()); // ref.name is the tag
  auto rewritten = oci::parse<oci::ImageManifest>(read_text(blob(report->new_manifest)));
  REQUIRE(rewritten);
  REQUIRE(rewritten->layers.size() == 1);
  CHECK(rewritten->layers[0] == *fresh.layer);

  const std::string out = render_cache_gc(*report, k_now);
  CHECK_THAT(out, Catch::Contains("removed cache entry " + old_entry.key.to_string() +
                                  " (run, 9B, last used 3 days ago)"));
  CHECK_THAT(out, Catch::Contains("removed cache mount /var/cache/x (10B, exported 2 days ago)"));
  CHECK_THAT(out, Catch::Contains(layout + ": removed 2 cache entries and 1 cache mounts, 3 "
                                           "layers (31B) no longer listed; kept 1 cache entries"));
  CHECK_THAT(out, Catch::Contains("deleted 4 blobs from the layout"));

  // Nothing left to remove: the tag keeps its manifest.
  auto second = gc_cache(*spec, k_day, k_now, *runner, no_registry);
  REQUIRE(second);
  CHECK_FALSE(second->rewritten);
  CHECK(second->new_manifest == report->new_manifest);
  CHECK_THAT(render_cache_gc(*second, k_now), Catch::Contains("nothing to remove"));

  // A tag that is not there.
  auto elsewhere = parse_cache_gc_target("type=local,src=" + layout + ",tag=none");
  REQUIRE(elsewhere);
  auto missing = gc_cache(*elsewhere, k_day, k_now, *runner, no_registry);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::not_found);
}

TEST_CASE("cache export with cache-mounts=true holds the mounts the build used",
          "[cli][cache-mounts]") {
  TempDir dir("cache-mounts");
  auto store = open_store(dir / "store");
  write_text((dir / "store") + "/" + mount_rel("/var/cache/x") + "/pkg", "used");
  write_text((dir / "store") + "/" + mount_rel("other-project") + "/secret", "not ours");
  store::CacheEntry entry;
  entry.key = oci::sha256_of("key");
  entry.kind = "run";
  entry.layer = put_blob(*store, oci::k_oci_layer_tar_gzip, "layer");
  entry.diff_id = oci::sha256_of("diff");
  entry.created = "2024-01-02T03:04:05Z";
  entry.created_by = "RUN make";
  build::BuildResult result;
  result.cache_entries = {{entry, true}};
  result.cache_mounts = {"/var/cache/x"};
  const RegistryAccessor no_registry = []() -> Result<RegistryAccess*> {
    return fail(Code::internal, "a layout needs no registry");
  };

  // Reads back what a layout export wrote: the mount layers of its manifest.
  const auto mounts_in = [&](const std::string& layout) {
    const auto index = nlohmann::json::parse(read_text(layout + "/index.json"));
    const std::string hex = index["manifests"][0]["digest"].get<std::string>().substr(7);
    auto manifest = oci::parse<oci::ImageManifest>(read_text(layout + "/blobs/sha256/" + hex));
    REQUIRE(manifest);
    std::vector<CacheMountLayer> found;
    for (const auto& layer : manifest->layers) {
      auto mount = parse_mount_layer(layer);
      REQUIRE(mount);
      if (*mount) {
        found.push_back(**mount);
      }
    }
    return found;
  };

  std::FILE* log = std::tmpfile();
  REQUIRE(log != nullptr);
  auto with_ids = parse_cache_spec("type=local,dest=" + (dir / "used") + ",cache-mounts=true",
                                   CacheDirection::to);
  REQUIRE(with_ids);
  REQUIRE(export_cache(*with_ids, result, *store, no_registry, log));
  const auto used = mounts_in(dir / "used");
  REQUIRE(used.size() == 1);
  CHECK(used[0].id == "/var/cache/x");
  CHECK(used[0].last_used > 0);

  // Without cache-mounts=true: no mount layer at all.
  auto plain = parse_cache_spec("type=local,dest=" + (dir / "plain"), CacheDirection::to);
  REQUIRE(plain);
  REQUIRE(export_cache(*plain, result, *store, no_registry, log));
  CHECK(mounts_in(dir / "plain").empty());
  std::fclose(log);
}
