#include <minibuild/oci/index.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using namespace minibuild;
using namespace minibuild::oci;

namespace {

Descriptor entry(const char* content, const char* platform) {
  auto descriptor = make_descriptor(std::string(k_oci_manifest), content);
  if (platform != nullptr) {
    descriptor.platform = parse_platform(platform).value();
  }
  return descriptor;
}

ImageIndex sample_index() {
  ImageIndex index;
  index.media_type = std::string(k_oci_index);
  index.manifests = {entry("amd64", "linux/amd64"), entry("arm64", "linux/arm64/v8"),
                     entry("armv7", "linux/arm/v7"), entry("attestation", nullptr)};
  index.manifests[3].annotations["vnd.docker.reference.type"] = "attestation-manifest";
  index.annotations["org.opencontainers.image.ref.name"] = "latest";
  return index;
}

} // namespace

TEST_CASE("index round trip and deterministic bytes", "[oci]") {
  auto index = sample_index();
  auto text = serialize(index);
  CHECK(text == serialize(sample_index()));
  auto back = parse<ImageIndex>(text);
  REQUIRE(back);
  CHECK(*back == index);
  CHECK(serialize(*back) == text);
  CHECK(
      text.rfind(
          R"({"annotations":{"org.opencontainers.image.ref.name":"latest"},"manifests":[{"digest":"sha256:)",
          0) == 0);
  CHECK(text.find(R"("platform":{"architecture":"amd64","os":"linux"})") != std::string::npos);

  index.subject = entry("subject", nullptr);
  index.artifact_type = "application/vnd.example";
  CHECK(parse<ImageIndex>(serialize(index)).value() == index);
}

TEST_CASE("find_manifests picks entries by platform", "[oci]") {
  auto index = sample_index();
  auto arm64 = find_manifests(index, parse_platform("linux/arm64").value());
  REQUIRE(arm64.size() == 1);
  CHECK(arm64[0].digest == sha256_of("arm64"));
  auto arm = find_manifests(index, Platform{"linux", "arm", "", "", {}});
  REQUIRE(arm.size() == 1);
  CHECK(arm[0].digest == sha256_of("armv7"));
  CHECK(find_manifests(index, parse_platform("linux/s390x").value()).empty());
  CHECK(find_manifests(index, parse_platform("linux/arm/v6").value()).empty());
}

TEST_CASE("a Docker manifest list reads as an index", "[oci]") {
  auto index = parse<ImageIndex>(R"({"schemaVersion":2,
    "mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":2094,
      "digest":"sha256:7820f9a86d4ad15a2c4f0c0e5479298df2aa7c2f6871288e2ef8546f3e7b6783",
      "platform":{"architecture":"arm","os":"linux","variant":"v7","features":["sse4"]}}]})");
  REQUIRE(index);
  CHECK(index->media_type == k_docker_manifest_list);
  REQUIRE(index->manifests.size() == 1);
  CHECK(index->manifests[0].platform->variant == "v7");
}

TEST_CASE("index reader rejects bad documents", "[oci]") {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"schemaVersion":2})", "manifests: required field is missing"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]})",
       "mediaType: \"application/vnd.oci.image.manifest.v1+json\" is not an image index media "
       "type"},
      {R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","size":"1","digest":"sha256:7820f9a86d4ad15a2c4f0c0e5479298df2aa7c2f6871288e2ef8546f3e7b6783"}]})",
       "manifests[0].size: expected an integer, found string"},
      {R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","size":1}]})",
       "manifests[0].digest: required field is missing"},
      {R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","size":1,"digest":"sha256:7820f9a86d4ad15a2c4f0c0e5479298df2aa7c2f6871288e2ef8546f3e7b6783","platform":{"os":"linux"}}]})",
       "manifests[0].platform.architecture: required field is missing"},
      {R"("index")", "image index must be a JSON object, found string"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto index = parse<ImageIndex>(c.text);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == Code::corrupt);
    CHECK(index.error().message() == c.message);
  }
}
