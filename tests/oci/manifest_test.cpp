#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using namespace minibuild;
using namespace minibuild::oci;

namespace {

ImageManifest sample_manifest() {
  ImageManifest manifest;
  manifest.media_type = std::string(k_oci_manifest);
  manifest.config = make_descriptor(std::string(k_oci_config), R"({"architecture":"amd64"})");
  manifest.layers.push_back(make_descriptor(std::string(k_oci_layer_tar_gzip), "layer one"));
  manifest.layers.push_back(make_descriptor(std::string(k_oci_layer_tar_zstd), "layer two"));
  manifest.annotations["org.opencontainers.image.created"] = "2024-01-02T03:04:05Z";
  manifest.annotations["com.example.b"] = "2";
  return manifest;
}

} // namespace

TEST_CASE("manifest round trip, with and without the optional fields", "[oci]") {
  auto manifest = sample_manifest();
  auto back = parse<ImageManifest>(serialize(manifest));
  REQUIRE(back);
  CHECK(*back == manifest);

  manifest.artifact_type = "application/vnd.example+type";
  manifest.subject = make_descriptor(std::string(k_oci_manifest), "{}");
  auto back2 = parse<ImageManifest>(serialize(manifest));
  REQUIRE(back2);
  CHECK(*back2 == manifest);
}

TEST_CASE("manifest serialisation is deterministic: same bytes, sorted keys, no spaces", "[oci]") {
  auto manifest = sample_manifest();
  auto first = serialize(manifest);
  CHECK(first == serialize(sample_manifest()));
  CHECK(first.find(' ') == std::string::npos);
  CHECK(first.find('\n') == std::string::npos);
  CHECK(first.rfind(R"({"annotations":{"com.example.b":"2","org.opencontainers)", 0) == 0);
  auto config = first.find("\"config\"");
  auto layers = first.find("\"layers\"");
  auto media_type = first.find("\"mediaType\":\"application/vnd.oci.image.manifest");
  auto schema = first.find("\"schemaVersion\":2");
  CHECK(config < layers);
  CHECK(layers < media_type);
  CHECK(media_type < schema);
  CHECK(sha256_of(first) == sha256_of(serialize(manifest)));

  ImageManifest bare;
  bare.config = manifest.config;
  auto text = serialize(bare);
  CHECK(text.find("mediaType\":\"application/vnd.oci.image.manifest") == std::string::npos);
  CHECK(text.find("\"layers\":[]") != std::string::npos);
  CHECK(text.find("annotations") == std::string::npos);
  CHECK(text.find("subject") == std::string::npos);
  CHECK(text.find("artifactType") == std::string::npos);
}

TEST_CASE("a Docker schema 2 manifest reads like an OCI one", "[oci]") {
  const std::string text = R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
              "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
   "layers": [{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "size": 32654, "urls": ["https://mcr.microsoft.com/blob"],
               "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"}]
  })";
  auto manifest = parse<ImageManifest>(text);
  REQUIRE(manifest);
  CHECK(manifest->media_type == k_docker_manifest);
  CHECK(is_config(manifest->config.media_type));
  REQUIRE(manifest->layers.size() == 1);
  CHECK(is_nondistributable_layer(manifest->layers[0].media_type));
  CHECK(manifest->layers[0].urls == std::vector<std::string>{"https://mcr.microsoft.com/blob"});
}

TEST_CASE("manifest reader rejects bad documents, naming the field", "[oci]") {
  const std::string config =
      R"("config":{"mediaType":"a/b","size":1,"digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"})";
  struct Case {
    std::string text;
    std::string message;
    Code code = Code::corrupt;
  };
  const std::vector<Case> cases = {
      {R"({"schemaVersion":2,"layers":[]})", "config: required field is missing"},
      {R"({"schemaVersion":2,)" + config + "}", "layers: required field is missing"},
      {R"({)" + config + R"(,"layers":[]})", "schemaVersion: required field is missing"},
      {R"({"schemaVersion":3,)" + config + R"(,"layers":[]})",
       "schemaVersion: unsupported schema version 3 (expected 2)"},
      {R"({"schemaVersion":1,)" + config + R"(,"layers":[]})",
       "schemaVersion: unsupported schema version 1 (expected 2)", Code::unsupported},
      {R"({"schemaVersion":"2",)" + config + R"(,"layers":[]})",
       "schemaVersion: expected an integer, found string"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)" + config +
           R"(,"layers":[]})",
       "mediaType: \"application/vnd.oci.image.index.v1+json\" is not an image manifest media "
       "type"},
      {R"({"schemaVersion":2,)" + config + R"(,"layers":{}})",
       "layers: expected an array, found object"},
      {R"({"schemaVersion":2,)" + config +
           R"(,"layers":[{"mediaType":"a/b","size":-5,"digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"}]})",
       "layers[0].size: negative size -5"},
      {R"({"schemaVersion":2,)" + config +
           R"(,"layers":[{"mediaType":"a/b","size":5,"digest":"sha256:B5B2B2C507A0944348E0303114D8D93AAAA081732B86451D9BCE1F432A537BC7"}]})",
       ""},
      {R"({"schemaVersion":2,)" + config + R"(,"layers":[],"annotations":[]})",
       "annotations: expected an object of strings, found array"},
      {R"({"schemaVersion":2,)" + config + R"(,"layers":[],"subject":"sha256:x"})",
       "subject: expected an object, found string"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto manifest = parse<ImageManifest>(c.text);
    REQUIRE_FALSE(manifest);
    CHECK(manifest.error().code() == c.code);
    if (!c.message.empty()) {
      CHECK(manifest.error().message() == c.message);
    } else {
      CHECK(manifest.error().message().rfind("layers[0].digest: invalid digest", 0) == 0);
    }
  }
}
