#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using namespace minibuild;
using namespace minibuild::oci;

namespace {

const std::string k_digest =
    "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

std::string with(const std::string& fields) {
  return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7682,"digest":")" +
         k_digest + "\"" + fields + "}";
}

} // namespace

TEST_CASE("a descriptor with every field round-trips", "[oci]") {
  Descriptor descriptor;
  descriptor.media_type = std::string(k_oci_manifest);
  descriptor.digest = Digest::parse(k_digest).value();
  descriptor.size = 7682;
  descriptor.urls = {"https://example.com/a", "https://example.com/b"};
  descriptor.annotations = {{"org.opencontainers.image.ref.name", "v1"}, {"a", "b"}};
  descriptor.data = std::string("\x00\x01{}\xff", 5);
  descriptor.platform = Platform{"linux", "arm64", "v8", "", {}};
  descriptor.artifact_type = "application/vnd.example.sbom.v1";
  auto text = serialize(descriptor);
  auto back = parse<Descriptor>(text);
  REQUIRE(back);
  CHECK(*back == descriptor);
  CHECK(serialize(*back) == text);
}

TEST_CASE("a minimal descriptor serialises to exactly its three required fields, sorted", "[oci]") {
  auto descriptor = make_descriptor(std::string(k_oci_empty_json), "{}");
  CHECK(serialize(descriptor) ==
        R"({"digest":")" + std::string(k_oci_empty_json_digest) +
            R"(","mediaType":"application/vnd.oci.empty.v1+json","size":2})");
  descriptor.data = "{}";
  CHECK(to_json(descriptor)["data"] == "e30=");
}

TEST_CASE("descriptor reader rejects bad input, naming the field", "[oci]") {
  struct Case {
    std::string text;
    std::string message;
    Code code = Code::corrupt;
  };
  const std::vector<Case> cases = {
      {R"({"size":1,"digest":")" + k_digest + "\"}", "mediaType: required field is missing"},
      {R"({"mediaType":"a/b","digest":")" + k_digest + "\"}", "size: required field is missing"},
      {R"({"mediaType":"a/b","size":1})", "digest: required field is missing"},
      {R"({"mediaType":"a/b","size":-1,"digest":")" + k_digest + "\"}", "size: negative size -1"},
      {R"({"mediaType":"a/b","size":1.5,"digest":")" + k_digest + "\"}",
       "size: expected an integer, found number"},
      {R"({"mediaType":"a/b","size":1,"digest":"sha256:abc"})", ""},
      {R"({"mediaType":"a/b","size":1,"digest":"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCL"})", "",
       Code::unsupported},
      {with(R"(,"urls":"https://x")"), "urls: expected an array of strings, found string"},
      {with(R"(,"urls":["https://x",3])"), "urls[1]: expected a string, found number"},
      {with(R"(,"annotations":{"a":1})"), "annotations.a: expected a string, found number"},
      {with(R"(,"data":"aHR0cHM6Ly9naXRodWIuY29tL29wZW5jb250YWluZXJzCg")"), ""},
      {with(R"(,"platform":{"os":"linux"})"), "platform.architecture: required field is missing"},
      {R"([1,2])", "descriptor must be a JSON object, found array"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto descriptor = parse<Descriptor>(c.text);
    REQUIRE_FALSE(descriptor);
    CHECK(descriptor.error().code() == c.code);
    if (!c.message.empty()) {
      CHECK(descriptor.error().message() == c.message);
    }
  }
}

TEST_CASE("descriptor reader: nulls read as absent, unknown fields are ignored", "[oci]") {
  auto descriptor = parse<Descriptor>(with(R"(,"urls":null,"annotations":null,"x-extra":[1])"));
  REQUIRE(descriptor);
  CHECK(descriptor->urls.empty());
  CHECK(descriptor->size == 7682);
  auto invalid_json = parse<Descriptor>("{\"mediaType\":");
  REQUIRE_FALSE(invalid_json);
  CHECK(invalid_json.error().code() == Code::corrupt);
  CHECK(invalid_json.error().message().rfind("invalid JSON", 0) == 0);
  auto deep = parse<Descriptor>(std::string(100000, '['));
  REQUIRE_FALSE(deep);
  CHECK(deep.error().message().find("nested deeper") != std::string::npos);
}

TEST_CASE("base64 is standard and padded", "[oci]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("\xff\xfe") == "//4=");
  for (std::string text : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    CHECK(base64_decode(base64_encode(text)).value() == text);
  }
  for (std::string bad : {"Zg", "Zg=", "Z===", "Zm9v\n", "Zm-v", "Zm_v", "Zh==", "=Zm9"}) {
    INFO(bad);
    CHECK_FALSE(base64_decode(bad));
  }
}
