// The exporters (build/outputs.hpp): the --output parser, OCI layouts, oci-archive and
// docker-archive, against a real store holding images with real gzip/zstd/plain layers.
#include "build/output_tar.hpp"
#include "store/store_test_support.hpp"

#include <minibuild/build/outputs.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <sys/stat.h>

using namespace minibuild;
using minibuild::store::testing::open_store;
using minibuild::store::testing::put_text;
using minibuild::store::testing::slurp;
using minibuild::store::testing::spit;
using minibuild::store::testing::TempDir;

namespace {

// ---- a tiny tar reader, independent of the writer under test ----

struct TarEntry {
  std::string name;
  char type = '0';
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  unsigned mode = 0;
  unsigned uid = 0;
  unsigned gid = 0;
  std::string content;
};

std::uint64_t octal(const char* field, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width && field[i] >= '0' && field[i] <= '7'; ++i) {
    value = value * 8 + static_cast<std::uint64_t>(field[i] - '0');
  }
  return value;
}

std::vector<TarEntry> read_tar(const std::string& bytes) {
  std::vector<TarEntry> entries;
  std::size_t at = 0;
  REQUIRE(bytes.size() % 512 == 0);
  while (at + 512 <= bytes.size()) {
    const char* header = bytes.data() + at;
    if (std::all_of(header, header + 512, [](char c) { return c == '\0'; })) {
      // The end: two zero blocks, nothing after them.
      REQUIRE(at + 1024 == bytes.size());
      return entries;
    }
    unsigned sum = 0;
    for (std::size_t i = 0; i < 512; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
    }
    REQUIRE(octal(header + 148, 8) == sum);
    REQUIRE(std::string(header + 257, 5) == "ustar");
    TarEntry entry;
    entry.name = std::string(header, strnlen(header, 100));
    entry.mode = static_cast<unsigned>(octal(header + 100, 8));
    entry.uid = static_cast<unsigned>(octal(header + 108, 8));
    entry.gid = static_cast<unsigned>(octal(header + 116, 8));
    entry.size = octal(header + 124, 12);
    entry.mtime = static_cast<std::int64_t>(octal(header + 136, 12));
    entry.type = header[156];
    at += 512;
    entry.content = bytes.substr(at, entry.size);
    at += (entry.size + 511) / 512 * 512;
    entries.push_back(std::move(entry));
  }
  FAIL("tar without its end blocks");
  return entries;
}

std::vector<std::string> names_of(const std::vector<TarEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& entry : entries) {
    names.push_back(entry.name);
  }
  return names;
}

const TarEntry& entry_named(const std::vector<TarEntry>& entries, const std::string& name) {
  for (const auto& entry : entries) {
    if (entry.name == name) {
      return entry;
    }
  }
  FAIL("no tar entry " << name);
  return entries.front();
}

// ---- images with real layers in a real store ----

struct Layer {
  oci::Descriptor descriptor;
  oci::Digest diff_id;
};

Layer put_layer(store::Store& store, const TempDir& scratch, const std::string& dir_name,
                std::map<std::string, std::string> files, oci::Compression compression) {
  const std::string dir = scratch / dir_name;
  std::filesystem::create_directories(dir);
  for (const auto& [path, content] : files) {
    std::filesystem::create_directories(
        std::filesystem::path(dir / std::filesystem::path(path)).parent_path());
    spit(dir + "/" + path, content);
  }
  layer::ExportOptions options;
  options.compression = compression;
  options.source_date_epoch = 1700000000;
  auto writer = store.blobs().open_writer({});
  REQUIRE(writer);
  auto exported = layer::export_layer(dir, options, **writer);
  REQUIRE(exported);
  auto committed = (*writer)->commit();
  REQUIRE(committed);
  Layer result;
  result.descriptor.media_type = exported->media_type;
  result.descriptor.digest = exported->digest;
  result.descriptor.size = static_cast<std::int64_t>(exported->size);
  result.diff_id = exported->diff_id;
  return result;
}

struct Image {
  oci::Descriptor manifest;
  oci::Descriptor config;
  std::string config_text;
  std::vector<Layer> layers;
};

Image put_image(store::Store& store, const std::vector<Layer>& layers, std::string user = "") {
  Image image;
  image.layers = layers;
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.created = "2023-11-14T22:13:20Z";
  config.config.user = std::move(user);
  config.config.cmd = {"/bin/sh"};
  oci::ImageManifest manifest;
  manifest.media_type = std::string(oci::k_oci_manifest);
  for (const auto& layer : layers) {
    config.rootfs.diff_ids.push_back(layer.diff_id);
    manifest.layers.push_back(layer.descriptor);
  }
  image.config_text = oci::serialize(config);
  image.config = oci::make_descriptor(std::string(oci::k_oci_config), image.config_text);
  put_text(store, image.config_text);
  manifest.config = image.config;
  const std::string manifest_text = oci::serialize(manifest);
  image.manifest = oci::make_descriptor(std::string(oci::k_oci_manifest), manifest_text);
  put_text(store, manifest_text);
  return image;
}

build::ImageToExport to_export(const Image& image, std::vector<std::string> names) {
  return {image.manifest.digest, image.manifest.media_type, std::move(names)};
}

std::string blob_path(const std::string& layout, const oci::Digest& digest) {
  return layout + "/blobs/sha256/" + digest.hex();
}

oci::ImageIndex read_index(const std::string& layout) {
  auto index = oci::parse<oci::ImageIndex>(slurp(layout + "/index.json"));
  REQUIRE(index);
  return *index;
}

std::vector<std::string> ref_names(const oci::ImageIndex& index) {
  std::vector<std::string> refs;
  for (const auto& entry : index.manifests) {
    auto ref = entry.annotations.find(std::string(build::k_ref_name_annotation));
    refs.push_back(ref == entry.annotations.end() ? "<none>" : ref->second);
  }
  return refs;
}

// A store with a two-layer image (gzip + zstd) and a one-layer image (uncompressed).
struct Fixture {
  TempDir dir;
  std::unique_ptr<store::Store> store = open_store(dir / "root");
  Image app;
  Image other;

  Fixture() {
    Layer base = put_layer(*store, dir, "l1", {{"bin/tool", "#!/bin/sh\necho tool\n"}},
                           oci::Compression::gzip);
    Layer top =
        put_layer(*store, dir, "l2", {{"etc/app.conf", "key=value\n"}}, oci::Compression::zstd);
    Layer plain =
        put_layer(*store, dir, "l3", {{"data/file", "plain layer\n"}}, oci::Compression::none);
    app = put_image(*store, {base, top});
    other = put_image(*store, {plain}, "nobody");
  }
};

void check_error(const Result<build::OutputSpec>& parsed, const std::string& fragment) {
  REQUIRE_FALSE(parsed);
  CHECK(parsed.error().code() == Code::usage);
  CHECK_THAT(parsed.error().message(), Catch::Contains(fragment));
}

} // namespace

TEST_CASE("output specs parse type and dest in any order", "[build][outputs]") {
  auto oci = build::parse_output_spec("type=oci,dest=out/layout");
  REQUIRE(oci);
  CHECK(*oci == build::OutputSpec{build::OutputType::oci_layout, "out/layout"});
  auto archive = build::parse_output_spec("dest=/tmp/a.tar,type=oci-archive");
  REQUIRE(archive);
  CHECK(*archive == build::OutputSpec{build::OutputType::oci_archive, "/tmp/a.tar"});
  auto docker = build::parse_output_spec("type=docker-archive,dest=-");
  REQUIRE(docker);
  CHECK(*docker == build::OutputSpec{build::OutputType::docker_archive, "-"});
  // CSV quoting, as docker buildx reads --output: a quoted field may hold commas and quotes.
  auto quoted = build::parse_output_spec(R"(type=oci,"dest=a,b ""c""")");
  REQUIRE(quoted);
  CHECK(quoted->dest == "a,b \"c\"");
  CHECK(build::output_type_name(build::OutputType::docker_archive) == "docker-archive");
}

TEST_CASE("output spec errors are usage errors that say what is wrong", "[build][outputs]") {
  check_error(build::parse_output_spec("type=local,dest=x"), "unknown output type \"local\"");
  check_error(build::parse_output_spec("type=oci"), "missing dest=PATH");
  check_error(build::parse_output_spec("type=oci,dest="), "missing dest=PATH");
  check_error(build::parse_output_spec("dest=x"), "missing type=");
  check_error(build::parse_output_spec("type=oci,dest=x,name=app"), "unknown key \"name\"");
  check_error(build::parse_output_spec("type=oci,dest=x,tar=false"), "unknown key \"tar\"");
  check_error(build::parse_output_spec("type=oci,dest=x,dest=y"), "\"dest\" is given twice");
  check_error(build::parse_output_spec("out/dir"), "is not KEY=VALUE");
  check_error(build::parse_output_spec("type=oci,dest=-"), "cannot go to standard output");
  check_error(build::parse_output_spec("type=oci,\"dest=x"), "unterminated quote");
  check_error(build::parse_output_spec("type=oci,dest=a\"b"), "quote inside an unquoted field");
  auto error = build::parse_output_spec("type=zip,dest=x");
  REQUIRE_FALSE(error);
  CHECK_THAT(error.error().message(), Catch::StartsWith("--output \"type=zip,dest=x\": "));

  auto several = build::parse_output_specs({"type=oci,dest=a", "type=oci-archive,dest=b.tar"});
  REQUIRE(several);
  CHECK(several->size() == 2);
  auto two_stdout =
      build::parse_output_specs({"type=oci-archive,dest=-", "type=docker-archive,dest=-"});
  REQUIRE_FALSE(two_stdout);
  CHECK(two_stdout.error().code() == Code::usage);
  auto one_bad = build::parse_output_specs({"type=oci,dest=a", "type=nope,dest=b"});
  REQUIRE_FALSE(one_bad);
  CHECK_THAT(one_bad.error().message(), Catch::Contains("nope"));
}

TEST_CASE("familiar names drop Docker Hub prefixes", "[build][outputs]") {
  CHECK(build::familiar_name("docker.io/library/app:1") == "app:1");
  CHECK(build::familiar_name("docker.io/user/app:1") == "user/app:1");
  CHECK(build::familiar_name("docker.io/library/a/b:1") == "library/a/b:1");
  CHECK(build::familiar_name("localhost:5000/app:1") == "localhost:5000/app:1");
  CHECK(build::familiar_name("app:1") == "app:1");
}

TEST_CASE("an OCI layout holds oci-layout, index.json and every blob", "[build][outputs]") {
  Fixture fixture;
  const std::string layout = fixture.dir / "out/layout";
  auto written =
      build::write_oci_layout(fixture.store->blobs(), to_export(fixture.app, {"app:1"}), layout);
  REQUIRE(written);

  auto layout_file = nlohmann::json::parse(slurp(layout + "/oci-layout"));
  CHECK(layout_file == nlohmann::json{{"imageLayoutVersion", "1.0.0"}});
  oci::ImageIndex index = read_index(layout);
  CHECK(index.schema_version == 2);
  CHECK(index.media_type == oci::k_oci_index);
  REQUIRE(index.manifests.size() == 1);
  const oci::Descriptor& entry = index.manifests[0];
  CHECK(entry.digest == fixture.app.manifest.digest);
  CHECK(entry.size == fixture.app.manifest.size);
  CHECK(entry.media_type == oci::k_oci_manifest);
  // The ref name is the tag (what `skopeo oci:DIR:1` and `umoci --image DIR:1` look up).
  CHECK(entry.annotations.at(std::string(build::k_ref_name_annotation)) == "1");
  CHECK(entry.annotations.at(std::string(build::k_image_name_annotation)) == "app:1");

  // Every blob is there, under the digest of its content, and nothing else is.
  std::vector<std::string> expected = {fixture.app.manifest.digest.hex(),
                                       fixture.app.config.digest.hex()};
  for (const auto& layer : fixture.app.layers) {
    expected.push_back(layer.descriptor.digest.hex());
  }
  std::sort(expected.begin(), expected.end());
  CHECK(store::testing::entries_of(layout + "/blobs/sha256") == expected);
  for (const auto& hex : expected) {
    auto digest = oci::Digest::from_hex(oci::DigestAlgorithm::sha256, hex);
    REQUIRE(digest);
    CHECK(oci::sha256_of(slurp(blob_path(layout, *digest))) == *digest);
  }
  // No temporary file is left behind.
  CHECK(store::testing::entries_of(layout) ==
        std::vector<std::string>{"blobs", "index.json", "oci-layout"});
}

TEST_CASE("writing into a layout replaces the tag and keeps other entries", "[build][outputs]") {
  Fixture fixture;
  auto& blobs = fixture.store->blobs();
  const std::string layout = fixture.dir / "layout";
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.app, {"app:1"}), layout));
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.other, {"other:2"}), layout));
  // An unnamed entry (another tool's) must survive as well.
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.other, {}), layout));
  CHECK(ref_names(read_index(layout)) == std::vector<std::string>{"1", "2", "<none>"});

  // Re-tag "1" to the other image: the old "1" entry goes, "2" and the unnamed one stay.
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.other, {"app:1"}), layout));
  oci::ImageIndex index = read_index(layout);
  REQUIRE(ref_names(index) == std::vector<std::string>{"2", "<none>", "1"});
  CHECK(index.manifests[2].digest == fixture.other.manifest.digest);
  CHECK(index.manifests[0].digest == fixture.other.manifest.digest);
  // Blobs of the image that lost its tag stay (a layout is not garbage collected here).
  CHECK(std::filesystem::exists(blob_path(layout, fixture.app.manifest.digest)));

  // Writing the same unnamed image again does not duplicate its entry; several names with the
  // same tag give one entry, the last name winning.
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.other, {}), layout));
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.app, {"a:9", "b:9"}), layout));
  index = read_index(layout);
  REQUIRE(ref_names(index) == std::vector<std::string>{"2", "<none>", "1", "9"});
  CHECK(index.manifests[3].annotations.at(std::string(build::k_image_name_annotation)) == "b:9");
}

TEST_CASE("an OCI layout is only written into an empty directory or a layout", "[build][outputs]") {
  Fixture fixture;
  auto& blobs = fixture.store->blobs();
  const std::string empty = fixture.dir / "empty";
  std::filesystem::create_directories(empty);
  CHECK(build::write_oci_layout(blobs, to_export(fixture.app, {"app:1"}), empty));

  const std::string busy = fixture.dir / "busy";
  std::filesystem::create_directories(busy);
  spit(busy + "/notes.txt", "mine");
  auto refused = build::write_oci_layout(blobs, to_export(fixture.app, {"app:1"}), busy);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::usage);
  CHECK(store::testing::entries_of(busy) == std::vector<std::string>{"notes.txt"});

  const std::string future = fixture.dir / "future";
  std::filesystem::create_directories(future);
  spit(future + "/oci-layout", R"({"imageLayoutVersion":"2.0.0"})");
  auto newer = build::write_oci_layout(blobs, to_export(fixture.app, {"app:1"}), future);
  REQUIRE_FALSE(newer);
  CHECK(newer.error().code() == Code::unsupported);

  auto untagged = build::write_oci_layout(blobs, to_export(fixture.app, {"app"}), empty);
  REQUIRE_FALSE(untagged);
  CHECK(untagged.error().code() == Code::usage);
}

TEST_CASE("a corrupt store blob fails the export and leaves the layout unchanged",
          "[build][outputs]") {
  Fixture fixture;
  const std::string layout = fixture.dir / "layout";
  const auto& layer = fixture.app.layers[1].descriptor;
  std::string stored = fixture.dir / ("root/blobs/sha256/" + layer.digest.hex());
  std::string content = slurp(stored);
  content[content.size() / 2] ^= 1;
  ::chmod(stored.c_str(), 0644);
  spit(stored, content);

  auto written =
      build::write_oci_layout(fixture.store->blobs(), to_export(fixture.app, {"app:1"}), layout);
  REQUIRE_FALSE(written);
  CHECK(written.error().code() == Code::corrupt);
  CHECK_THAT(written.error().what(), Catch::Contains(layer.digest.to_string()));
  CHECK_FALSE(std::filesystem::exists(layout + "/index.json"));
  CHECK_FALSE(std::filesystem::exists(blob_path(layout, layer.digest)));
  for (const auto& name : store::testing::entries_of(layout)) {
    CHECK(name.rfind(".minibuild-", 0) != 0); // no temporary file left
  }

  const std::string archive = fixture.dir / "app.tar";
  auto archived =
      build::write_oci_archive(fixture.store->blobs(), to_export(fixture.app, {"app:1"}), archive);
  REQUIRE_FALSE(archived);
  CHECK(archived.error().code() == Code::corrupt);
  CHECK_FALSE(std::filesystem::exists(archive));
  CHECK(store::testing::entries_of(fixture.dir.path()) ==
        std::vector<std::string>{"l1", "l2", "l3", "layout", "root"});
}

TEST_CASE("an oci-archive is the layout as a deterministic tar", "[build][outputs]") {
  Fixture fixture;
  auto& blobs = fixture.store->blobs();
  const std::string first = fixture.dir / "first.tar";
  const std::string second = fixture.dir / "second.tar";
  build::OutputOptions options;
  options.archive_mtime = 1700000000;
  REQUIRE(build::write_oci_archive(blobs, to_export(fixture.app, {"app:1"}), first, options));
  REQUIRE(build::write_oci_archive(blobs, to_export(fixture.app, {"app:1"}), second, options));
  CHECK(slurp(first) == slurp(second));

  auto entries = read_tar(slurp(first));
  std::vector<std::string> blob_names;
  for (const auto& digest :
       {fixture.app.manifest.digest, fixture.app.config.digest,
        fixture.app.layers[0].descriptor.digest, fixture.app.layers[1].descriptor.digest}) {
    blob_names.push_back("blobs/sha256/" + digest.hex());
  }
  std::sort(blob_names.begin(), blob_names.end());
  std::vector<std::string> expected = {"blobs/", "blobs/sha256/"};
  expected.insert(expected.end(), blob_names.begin(), blob_names.end());
  expected.push_back("index.json");
  expected.push_back("oci-layout");
  CHECK(names_of(entries) == expected);
  for (const auto& entry : entries) {
    CHECK(entry.mtime == 1700000000);
    CHECK(entry.uid == 0);
    CHECK(entry.gid == 0);
    CHECK(entry.mode == (entry.type == '5' ? 0755U : 0644U));
    if (entry.name.rfind("blobs/sha256/", 0) == 0 && entry.type == '0') {
      CHECK(oci::sha256_of(entry.content).hex() == entry.name.substr(13));
    }
  }
  // The same files a layout directory gets.
  const std::string layout = fixture.dir / "layout";
  REQUIRE(build::write_oci_layout(blobs, to_export(fixture.app, {"app:1"}), layout));
  CHECK(entry_named(entries, "index.json").content == slurp(layout + "/index.json"));
  CHECK(entry_named(entries, "oci-layout").content == slurp(layout + "/oci-layout"));

  // Another mtime changes only the headers; an existing file is replaced.
  REQUIRE(build::write_oci_archive(blobs, to_export(fixture.app, {"app:1"}), second));
  auto at_zero = read_tar(slurp(second));
  CHECK(at_zero.front().mtime == 0);
  CHECK(names_of(at_zero) == expected);

  auto into_directory =
      build::write_oci_archive(blobs, to_export(fixture.app, {"app:1"}), fixture.dir.path());
  REQUIRE_FALSE(into_directory);
  CHECK(into_directory.error().code() == Code::usage);
  auto no_parent = build::write_oci_archive(blobs, to_export(fixture.app, {"app:1"}),
                                            fixture.dir / "missing/dir/a.tar");
  REQUIRE_FALSE(no_parent);
  CHECK(no_parent.error().code() == Code::not_found);
}

TEST_CASE("a docker-archive has docker save's shape and uncompressed layers", "[build][outputs]") {
  Fixture fixture;
  auto& blobs = fixture.store->blobs();
  const std::string file = fixture.dir / "app.docker.tar";
  REQUIRE(build::write_docker_archive(
      blobs, to_export(fixture.app, {"docker.io/library/app:1", "registry.example/team/app:2"}),
      file));
  auto entries = read_tar(slurp(file));
  const std::string config_name = fixture.app.config.digest.hex() + ".json";
  const std::string l1 = fixture.app.layers[0].diff_id.hex();
  const std::string l2 = fixture.app.layers[1].diff_id.hex();
  CHECK(names_of(entries) == std::vector<std::string>{config_name, l1 + "/", l1 + "/layer.tar",
                                                      l2 + "/", l2 + "/layer.tar", "manifest.json",
                                                      "repositories"});
  // The config is the stored blob, byte for byte (its digest is the image id).
  CHECK(entry_named(entries, config_name).content == fixture.app.config_text);
  // Each layer.tar is the uncompressed layer: its sha256 is the diffID.
  for (const auto& layer : fixture.app.layers) {
    const auto& tar = entry_named(entries, layer.diff_id.hex() + "/layer.tar");
    CHECK(oci::sha256_of(tar.content) == layer.diff_id);
    CHECK(tar.size == tar.content.size());
  }
  auto manifest = nlohmann::json::parse(entry_named(entries, "manifest.json").content);
  nlohmann::json expected_manifest =
      nlohmann::json::array({{{"Config", config_name},
                              {"RepoTags", {"app:1", "registry.example/team/app:2"}},
                              {"Layers", {l1 + "/layer.tar", l2 + "/layer.tar"}}}});
  CHECK(manifest == expected_manifest);
  auto repositories = nlohmann::json::parse(entry_named(entries, "repositories").content);
  CHECK(repositories ==
        nlohmann::json{{"app", {{"1", l2}}}, {"registry.example/team/app", {{"2", l2}}}});

  // Deterministic, like the oci-archive.
  const std::string again = fixture.dir / "again.tar";
  REQUIRE(build::write_docker_archive(
      blobs, to_export(fixture.app, {"docker.io/library/app:1", "registry.example/team/app:2"}),
      again));
  CHECK(slurp(again) == slurp(file));
}

TEST_CASE("a docker-archive writes a repeated layer once and lists it twice", "[build][outputs]") {
  Fixture fixture;
  Layer same = fixture.other.layers[0];
  Image twice = put_image(*fixture.store, {same, same});
  const std::string file = fixture.dir / "twice.tar";
  REQUIRE(build::write_docker_archive(fixture.store->blobs(), to_export(twice, {}), file));
  auto entries = read_tar(slurp(file));
  const std::string path = same.diff_id.hex() + "/layer.tar";
  auto names = names_of(entries);
  CHECK(std::count(names.begin(), names.end(), path) == 1);
  auto manifest = nlohmann::json::parse(entry_named(entries, "manifest.json").content);
  CHECK(manifest[0]["Layers"] == nlohmann::json{path, path});
  CHECK(manifest[0]["RepoTags"] == nlohmann::json::array());
  // No names: no repositories file.
  CHECK(std::find(names.begin(), names.end(), "repositories") == names.end());
}

TEST_CASE("a docker-archive refuses a layer that does not match its diffID", "[build][outputs]") {
  Fixture fixture;
  Layer wrong = fixture.app.layers[0];
  wrong.diff_id = fixture.app.layers[1].diff_id; // the config lies about the content
  Image liar = put_image(*fixture.store, {wrong});
  const std::string file = fixture.dir / "liar.tar";
  auto written =
      build::write_docker_archive(fixture.store->blobs(), to_export(liar, {"x:1"}), file);
  REQUIRE_FALSE(written);
  CHECK(written.error().code() == Code::corrupt);
  CHECK_THAT(written.error().what(), Catch::Contains("diffID"));
  CHECK_FALSE(std::filesystem::exists(file));
}

TEST_CASE("an index exports with its stored manifests", "[build][outputs]") {
  Fixture fixture;
  auto& blobs = fixture.store->blobs();
  oci::ImageIndex index;
  index.media_type = std::string(oci::k_oci_index);
  oci::Descriptor stored = fixture.app.manifest;
  stored.platform = oci::Platform{"linux", "amd64", "", "", {}};
  oci::Descriptor absent = oci::make_descriptor(std::string(oci::k_oci_manifest), "not stored");
  absent.platform = oci::Platform{"linux", "arm64", "", "", {}};
  index.manifests = {stored, absent};
  const std::string index_text = oci::serialize(index);
  put_text(*fixture.store, index_text);
  build::ImageToExport image{oci::sha256_of(index_text), "", {"multi:1"}};

  const std::string layout = fixture.dir / "layout";
  REQUIRE(build::write_oci_layout(blobs, image, layout));
  oci::ImageIndex top = read_index(layout);
  REQUIRE(top.manifests.size() == 1);
  CHECK(top.manifests[0].media_type == oci::k_oci_index); // sniffed from the document
  CHECK(std::filesystem::exists(blob_path(layout, oci::sha256_of(index_text))));
  CHECK(std::filesystem::exists(blob_path(layout, fixture.app.manifest.digest)));
  CHECK(std::filesystem::exists(blob_path(layout, fixture.app.layers[1].descriptor.digest)));
  CHECK_FALSE(std::filesystem::exists(blob_path(layout, absent.digest)));

  // The docker archive takes the one stored manifest.
  const std::string file = fixture.dir / "multi.tar";
  REQUIRE(build::write_docker_archive(blobs, image, file));
  auto manifest =
      nlohmann::json::parse(entry_named(read_tar(slurp(file)), "manifest.json").content);
  CHECK(manifest[0]["Config"] == fixture.app.config.digest.hex() + ".json");

  // A blob that is not a manifest or index is refused.
  build::ImageToExport config_only{fixture.app.config.digest, "", {}};
  auto refused = build::write_oci_layout(blobs, config_only, fixture.dir / "x");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Code::unsupported);
}

TEST_CASE("write_output dispatches and names the output in errors", "[build][outputs]") {
  Fixture fixture;
  auto& blobs = fixture.store->blobs();
  const std::string file = fixture.dir / "o.tar";
  REQUIRE(build::write_output(blobs, to_export(fixture.app, {"app:1"}),
                              {build::OutputType::oci_archive, file}));
  CHECK(names_of(read_tar(slurp(file))).back() == "oci-layout");
  build::ImageToExport missing{oci::sha256_of("nothing"), "", {}};
  auto failed = build::write_output(blobs, missing, {build::OutputType::oci_layout, "x"});
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == Code::not_found);
  CHECK_THAT(failed.error().what(), Catch::StartsWith("output type=oci,dest=x: "));
}

TEST_CASE("tar headers are valid ustar, with base-256 sizes beyond 8 GiB", "[build][outputs]") {
  std::string header = build::tar_header("blobs/", '5', 0, 1700000000);
  REQUIRE(header.size() == 512);
  CHECK(header.substr(257, 6) == std::string("ustar\0", 6));
  CHECK(header.substr(263, 2) == "00");
  CHECK(header.substr(136, 12) == std::string("14524770400") + '\0');
  std::string big = build::tar_header("big", '0', 10ULL << 30, 0);
  CHECK(static_cast<unsigned char>(big[124]) == 0x80);
  std::uint64_t size = 0;
  for (int i = 125; i < 136; ++i) {
    size = (size << 8) | static_cast<unsigned char>(big[i]);
  }
  CHECK(size == (10ULL << 30));
}
