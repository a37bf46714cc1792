// OCI image-spec conformance (../shared/conformance/oci-image-spec, README.md there):
//  - the test-only schema validator (support/json_schema.hpp) plus the README's extra rules
//    reproduces every upstream validation vector and accepts every spec example;
//  - every document minibuild's serialisers write validates against its schema;
//  - the real Docker Hub documents parse with minibuild's readers and hash, byte for byte, to
//    the digests recorded upstream;
//  - minibuild's readers accept the valid vectors and examples and refuse the invalid ones,
//    except where noted with the reason.
#include "support/conformance.hpp"
#include "support/json_schema.hpp"

#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>
#include <minibuild/oci/image_config.hpp>
#include <minibuild/oci/index.hpp>
#include <minibuild/oci/manifest.hpp>
#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::oci;
using nlohmann::json;

namespace {

std::string spec_dir() {
  return test::conformance_dir() + "/oci-image-spec";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// A TSV file with a header line, as rows of column name → value.
std::vector<std::map<std::string, std::string>> read_tsv(const std::string& path) {
  std::istringstream in(read_file(path));
  auto split = [](const std::string& line) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      auto tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) {
        return fields;
      }
      start = tab + 1;
    }
  };
  std::string line;
  std::getline(in, line);
  auto header = split(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    auto fields = split(line);
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < header.size(); ++i) {
      row[header[i]] = i < fields.size() ? fields[i] : "";
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

/// The seven schemas under their file names and the aliases of the README's table.
const test::JsonSchemaSet& schemas() {
  static const test::JsonSchemaSet set = [] {
    const std::map<std::string, std::vector<std::string>> aliases = {
        {"config-schema.json", {"https://opencontainers.org/schema/image/config"}},
        {"content-descriptor.json",
         {"https://opencontainers.org/schema/descriptor",
          "https://opencontainers.org/schema/image/content-descriptor.json"}},
        {"image-index-schema.json", {"https://opencontainers.org/schema/image/index"}},
        {"image-layout-schema.json", {"https://opencontainers.org/schema/image/layout"}},
        {"image-manifest-schema.json", {"https://opencontainers.org/schema/image/manifest"}},
        {"defs-descriptor.json",
         {"https://opencontainers.org/schema/image/descriptor/mediaType",
          "https://opencontainers.org/schema/defs-descriptor.json",
          "https://opencontainers.org/schema/image/defs-descriptor.json"}},
        {"defs.json",
         {"https://opencontainers.org/schema/defs.json",
          "https://opencontainers.org/schema/image/defs.json",
          "https://opencontainers.org/schema/image/descriptor/defs.json"}},
    };
    test::JsonSchemaSet built;
    for (const auto& [file, names] : aliases) {
      built.add(file, json::parse(read_file(spec_dir() + "/schema/" + file)), names);
    }
    return built;
  }();
  return set;
}

const std::map<std::string, std::string> k_schema_for = {
    {std::string(k_oci_config), "config-schema.json"},
    {std::string(k_oci_descriptor), "content-descriptor.json"},
    {std::string(k_oci_index), "image-index-schema.json"},
    {std::string(k_oci_layout_header), "image-layout-schema.json"},
    {std::string(k_oci_manifest), "image-manifest-schema.json"},
};

/// Upstream's convertFormats: Docker media types replaced by their OCI equivalents.
std::string docker_to_oci(std::string text) {
  const std::vector<std::pair<std::string, std::string>> replacements = {
      {"application/vnd.docker.distribution.manifest.list.v2+json",
       "application/vnd.oci.image.index.v1+json"},
      {"application/vnd.docker.distribution.manifest.v2+json",
       "application/vnd.oci.image.manifest.v1+json"},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip",
       "application/vnd.oci.image.layer.v1.tar+gzip"},
      {"application/vnd.docker.container.image.v1+json",
       "application/vnd.oci.image.config.v1+json"},
  };
  for (const auto& [from, to] : replacements) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
    }
  }
  return text;
}

/// go-digest's validation (README rule 4), written independently of minibuild's Digest.
bool go_digest_valid(const std::string& digest) {
  static const std::regex k_grammar(R"(^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$)");
  if (!std::regex_match(digest, k_grammar)) {
    return false;
  }
  auto colon = digest.find(':');
  auto algorithm = digest.substr(0, colon);
  auto encoded = digest.substr(colon + 1);
  const std::map<std::string, std::size_t> registered = {
      {"sha256", 64}, {"sha384", 96}, {"sha512", 128}};
  auto it = registered.find(algorithm);
  if (it == registered.end()) {
    return true;
  }
  static const std::regex k_lower_hex("^[a-f0-9]+$");
  return encoded.size() == it->second && std::regex_match(encoded, k_lower_hex);
}

/// The README's full rule set: parse, schema with formats and base64, then the Go-side checks.
/// Returns the reasons the document is invalid (empty when valid).
std::vector<std::string> validate_as(const std::string& text, const std::string& media_type) {
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return {"not JSON"};
  }
  auto errors = schemas().validate(document, k_schema_for.at(media_type));
  if (media_type == k_oci_descriptor && document.is_object() && document.contains("digest") &&
      document["digest"].is_string() && !go_digest_valid(document["digest"].get<std::string>())) {
    errors.push_back("digest fails go-digest validation");
  }
  if (media_type == k_oci_config && document.is_object() && document.contains("config") &&
      document["config"].is_object() && document["config"].contains("Env") &&
      document["config"]["Env"].is_array()) {
    static const std::regex k_env("^[^=]+=.*$");
    for (const auto& entry : document["config"]["Env"]) {
      if (entry.is_string() && !std::regex_match(entry.get<std::string>(), k_env)) {
        errors.push_back("config.Env entry \"" + entry.get<std::string>() + "\" is not KEY=value");
      }
    }
  }
  return errors;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    out += line + "\n";
  }
  return out;
}

/// Reads `text` with the minibuild reader for `media_type`; returns the error, if any.
std::optional<Error> read_with_minibuild(const std::string& text, const std::string& media_type) {
  auto check = [](auto result) -> std::optional<Error> {
    if (result) {
      return std::nullopt;
    }
    return result.error();
  };
  if (media_type == k_oci_config) {
    return check(parse<ImageConfig>(text));
  }
  if (media_type == k_oci_manifest) {
    return check(parse<ImageManifest>(text));
  }
  if (media_type == k_oci_index) {
    return check(parse<ImageIndex>(text));
  }
  return check(parse<Descriptor>(text));
}

/// True when every value of `original` is in `written`, except values Go's omitempty drops
/// (null, "", false, [], {}); objects are compared member by member with the same rule.
bool preserved(const json& original, const json& written, const std::string& path,
               std::vector<std::string>& lost) {
  if (original.is_object() && written.is_object()) {
    bool ok = true;
    for (const auto& [key, value] : original.items()) {
      bool droppable = value.is_null() || (value.is_string() && value.get<std::string>().empty()) ||
                       (value.is_boolean() && !value.get<bool>()) ||
                       ((value.is_array() || value.is_object()) && value.empty());
      if (!written.contains(key)) {
        if (!droppable) {
          lost.push_back(path + "/" + key);
          ok = false;
        }
        continue;
      }
      ok = preserved(value, written[key], path + "/" + key, lost) && ok;
    }
    return ok;
  }
  if (original != written) {
    lost.push_back(path + " changed");
    return false;
  }
  return true;
}

} // namespace

TEST_CASE("oci-image-spec: the validator reproduces all 71 upstream vectors", "[oci-image-spec]") {
  auto rows = read_tsv(spec_dir() + "/vectors/INDEX.tsv");
  REQUIRE(rows.size() == 71);
  int agree = 0;
  int valid_count = 0;
  for (const auto& row : rows) {
    auto text = read_file(spec_dir() + "/vectors/" + row.at("file"));
    if (row.at("transform_before_validation") == "docker-to-oci-mediatypes") {
      text = docker_to_oci(text);
    }
    REQUIRE(k_schema_for.at(row.at("validator_mediatype")) == row.at("schema"));
    auto errors = validate_as(text, row.at("validator_mediatype"));
    bool expected_valid = row.at("expected") == "valid";
    valid_count += expected_valid ? 1 : 0;
    INFO(row.at("file") << " (" << row.at("upstream_comment") << ")\n" << join(errors));
    CHECK(errors.empty() == expected_valid);
    agree += errors.empty() == expected_valid ? 1 : 0;
  }
  // README.md's summary line says 33 valid / 38 invalid, but its own per-test table and
  // INDEX.tsv give 31 valid / 40 invalid; the files and INDEX.tsv agree with the table.
  CHECK(valid_count == 31);
  CHECK(agree == 71);
}

TEST_CASE("oci-image-spec: the validator accepts all 13 spec examples", "[oci-image-spec]") {
  auto rows = read_tsv(spec_dir() + "/examples/INDEX.tsv");
  REQUIRE(rows.size() == 13);
  int accepted = 0;
  for (const auto& row : rows) {
    REQUIRE(row.at("expected") == "valid");
    REQUIRE(k_schema_for.at(row.at("mediatype")) == row.at("schema"));
    auto errors =
        validate_as(read_file(spec_dir() + "/examples/" + row.at("file")), row.at("mediatype"));
    INFO(row.at("file") << "\n" << join(errors));
    CHECK(errors.empty());
    accepted += errors.empty() ? 1 : 0;
  }
  CHECK(accepted == 13);
}

TEST_CASE("oci-image-spec: documents minibuild writes validate against their schemas",
          "[oci-image-spec]") {
  ImageConfig config;
  config.created = "2024-05-06T07:08:09.123456789Z";
  config.author = "minibuild";
  config.architecture = "arm64";
  config.variant = "v8";
  config.os = "linux";
  config.config.user = "app";
  config.config.exposed_ports = {"8080/tcp"};
  config.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "LANG=C.UTF-8", "EMPTY="};
  config.config.entrypoint = {"/usr/bin/tini", "--"};
  config.config.cmd = {"/app/server", "--port", "8080"};
  config.config.volumes = {"/data"};
  config.config.working_dir = "/app";
  config.config.labels = {{"org.opencontainers.image.source", "https://example.com/app"}};
  config.config.stop_signal = "SIGINT";
  config.config.healthcheck =
      HealthConfig{{"CMD", "/app/healthcheck"}, 30000000000, 3000000000, 0, 0, 3};
  config.config.shell = {"/bin/sh", "-c"};
  config.config.on_build = {"RUN echo onbuild"};
  config.rootfs.diff_ids = {sha256_of("base layer tar"), sha256_of("app layer tar")};
  config.history = {
      {"2024-05-01T00:00:00Z", "/bin/sh -c #(nop) ADD file:1234 in / ", "", "", false},
      {"2024-05-06T07:08:08Z", "ENV LANG=C.UTF-8", "", "buildkit.dockerfile.v0", true},
      {"2024-05-06T07:08:09Z", "COPY . /app # buildkit", "", "buildkit.dockerfile.v0", false},
  };
  auto config_bytes = serialize(config);

  ImageManifest manifest;
  manifest.media_type = std::string(k_oci_manifest);
  manifest.config = make_descriptor(std::string(k_oci_config), config_bytes);
  manifest.layers = {make_descriptor(std::string(k_oci_layer_tar_gzip), "base layer tar.gz"),
                     make_descriptor(std::string(k_oci_layer_tar_zstd), "app layer tar.zst")};
  manifest.annotations = {{"org.opencontainers.image.created", "2024-05-06T07:08:09Z"},
                          {"org.opencontainers.image.base.name", "docker.io/library/alpine:3.19"}};
  auto manifest_bytes = serialize(manifest);

  ImageManifest docker_manifest = manifest;
  docker_manifest.media_type = std::string(k_docker_manifest);
  docker_manifest.config.media_type = std::string(k_docker_config);
  docker_manifest.layers[1].media_type = std::string(k_docker_layer_tar_gzip);
  docker_manifest.annotations.clear();

  ImageManifest artifact;
  artifact.media_type = std::string(k_oci_manifest);
  artifact.artifact_type = "application/vnd.example.sbom.v1+json";
  artifact.config = make_descriptor(std::string(k_oci_empty_json), "{}");
  artifact.config.data = "{}";
  artifact.layers = {make_descriptor("application/spdx+json", R"({"spdxVersion":"SPDX-2.3"})")};
  artifact.subject = make_descriptor(std::string(k_oci_manifest), manifest_bytes);

  ImageIndex index;
  index.media_type = std::string(k_oci_index);
  auto amd64 = make_descriptor(std::string(k_oci_manifest), manifest_bytes);
  amd64.platform = Platform{"linux", "amd64", "", "", {}};
  auto arm64 = make_descriptor(std::string(k_oci_manifest), manifest_bytes + " ");
  arm64.platform = Platform{"linux", "arm64", "v8", "", {}};
  auto windows = make_descriptor(std::string(k_oci_manifest), "windows");
  windows.platform = Platform{"windows", "amd64", "", "10.0.17763.1040", {"win32k"}};
  windows.urls = {"https://example.com/foreign"};
  auto attestation = make_descriptor(std::string(k_oci_manifest), "attestation");
  attestation.annotations = {{"vnd.docker.reference.digest", amd64.digest.to_string()},
                             {"vnd.docker.reference.type", "attestation-manifest"}};
  index.manifests = {amd64, arm64, windows, attestation};
  index.annotations = {{"org.opencontainers.image.ref.name", "1.0"}};

  const std::vector<std::pair<std::string, std::string>> documents = {
      {"config", config_bytes},
      {"manifest", manifest_bytes},
      {"docker manifest", docker_to_oci(serialize(docker_manifest))},
      {"artifact manifest", serialize(artifact)},
      {"index", serialize(index)},
      {"descriptor", serialize(manifest.config)},
      {"descriptor with data", serialize(artifact.config)},
  };
  const std::map<std::string, std::string> media_type_of = {
      {"config", std::string(k_oci_config)},
      {"manifest", std::string(k_oci_manifest)},
      {"docker manifest", std::string(k_oci_manifest)},
      {"artifact manifest", std::string(k_oci_manifest)},
      {"index", std::string(k_oci_index)},
      {"descriptor", std::string(k_oci_descriptor)},
      {"descriptor with data", std::string(k_oci_descriptor)},
  };
  int validated = 0;
  for (const auto& [name, bytes] : documents) {
    auto errors = validate_as(bytes, media_type_of.at(name));
    INFO(name << ": " << bytes << "\n" << join(errors));
    CHECK(errors.empty());
    validated += errors.empty() ? 1 : 0;
  }
  CHECK(validated == 7);
}

TEST_CASE("oci-image-spec: real Docker Hub documents parse and hash to their recorded digests",
          "[oci-image-spec]") {
  int checked = 0;
  for (const auto& row : read_tsv(spec_dir() + "/vectors/INDEX.tsv")) {
    if (row.at("digest_of_file").empty()) {
      continue;
    }
    INFO(row.at("file"));
    auto bytes = read_file(spec_dir() + "/vectors/" + row.at("file"));
    // The digest is of the bytes as received, never of a re-serialisation.
    CHECK(sha256_of(bytes).to_string() == row.at("digest_of_file"));
    CHECK(Digest::parse(row.at("digest_of_file")).value() == sha256_of(bytes));

    const auto& media_type = row.at("validator_mediatype");
    if (media_type == k_oci_index) {
      auto index = parse<ImageIndex>(bytes);
      REQUIRE(index);
      CHECK(index->media_type == k_docker_manifest_list);
      CHECK(index->manifests.size() == 5);
      auto arm64 = find_manifests(*index, parse_platform("linux/arm64").value());
      REQUIRE(arm64.size() == 1);
      CHECK(arm64[0].digest.to_string() ==
            "sha256:fb2fc0707b86dafa9959fe3d29e66af8787aee4d9a23581714be65db4265ad8a");
      CHECK(find_manifests(*index, parse_platform("linux/arm").value()).size() == 1);
    } else if (media_type == k_oci_manifest) {
      auto manifest = parse<ImageManifest>(bytes);
      REQUIRE(manifest);
      CHECK(manifest->media_type == k_docker_manifest);
      CHECK(manifest->config.size == 3210);
      REQUIRE(manifest->layers.size() == 4);
      for (const auto& layer : manifest->layers) {
        CHECK(layer_compression(layer.media_type) == Compression::gzip);
      }
    } else {
      REQUIRE(media_type == k_oci_config);
      auto config = parse<ImageConfig>(bytes);
      REQUIRE(config);
      CHECK(config->architecture == "amd64");
      CHECK(config->os == "linux");
      CHECK(config->unknown_fields.count("container_config") == 1);
      CHECK(config->unknown_fields.count("docker_version") == 1);
      CHECK_FALSE(config->history.empty());
      // Writing the base config back keeps every value (up to Go's omitempty) ...
      auto written = serialize(*config);
      std::vector<std::string> lost;
      CHECK(preserved(json::parse(bytes), json::parse(written), "", lost));
      INFO(join(lost));
      CHECK(lost.empty());
      // ... the rewrite is a fixed point, and it still validates.
      CHECK(serialize(parse<ImageConfig>(written).value()) == written);
      CHECK(validate_as(written, std::string(k_oci_config)).empty());
    }
    ++checked;
  }
  CHECK(checked == 4);
}

TEST_CASE("oci-image-spec: minibuild's readers agree with the vectors and examples",
          "[oci-image-spec]") {
  // Documents a schema rejects but minibuild's readers accept on purpose, with the reason.
  // Readers check what minibuild relies on (types, required fields, digests, sizes, base64);
  // media type syntax, URL syntax, Env syntax and non-empty layer lists are the schema's to
  // judge (a registry may serve them, and rejecting them gains minibuild nothing).
  const std::map<std::string, std::string> accepted_invalid = {
      {"config-10-invalid.json", "config.Env \"foo\" without '=' is accepted (Docker does too)"},
      {"manifest-01-invalid.json", "layer mediaType pattern is not checked by the reader"},
      {"manifest-06-invalid.json", "an empty layers list is accepted (artifacts, scratch)"},
      {"descriptor-04-invalid.json", "mediaType syntax is not checked by the reader"},
      {"descriptor-05-invalid.json", "mediaType syntax is not checked by the reader"},
      {"descriptor-06-invalid.json", "mediaType syntax is not checked by the reader"},
      {"descriptor-08-invalid.json", "mediaType length is not checked by the reader"},
      {"descriptor-09-invalid.json", "mediaType length is not checked by the reader"},
      {"descriptor-18-invalid.json", "urls syntax is not checked by the reader"},
      {"descriptor-20-invalid.json", "artifactType syntax is not checked by the reader"},
      {"imageindex-01-invalid.json", "entry mediaType pattern is not checked by the reader"},
      {"imageindex-05-invalid.json", "entry mediaType \"invalid\" is not checked by the reader"},
      {"imageindex-06-invalid.json", "empty entry mediaType is not checked by the reader"},
  };
  int agree = 0;
  int unsupported = 0;
  int exceptions = 0;
  int layout_headers = 0;
  auto rows = read_tsv(spec_dir() + "/vectors/INDEX.tsv");
  for (auto& row : rows) {
    row["dir"] = "vectors";
  }
  for (auto row : read_tsv(spec_dir() + "/examples/INDEX.tsv")) {
    row["dir"] = "examples";
    row["validator_mediatype"] = row.at("mediatype");
    rows.push_back(row);
  }
  for (const auto& row : rows) {
    const auto& file = row.at("file");
    INFO(row.at("dir") << "/" << file);
    if (row.at("validator_mediatype") == k_oci_layout_header) {
      ++layout_headers; // the oci-layout file belongs to the layout writer, not this module
      continue;
    }
    auto error = read_with_minibuild(read_file(spec_dir() + "/" + row.at("dir") + "/" + file),
                                     row.at("validator_mediatype"));
    INFO((error ? error->what() : std::string("accepted")));
    if (auto reason = accepted_invalid.find(file); reason != accepted_invalid.end()) {
      INFO(reason->second);
      CHECK_FALSE(error); // the list above is exact: each entry really is accepted
      ++exceptions;
      continue;
    }
    if (row.at("expected") == "valid") {
      // Valid digests of algorithms minibuild cannot verify are refused as unsupported.
      if (error && error->code() == Code::unsupported) {
        ++unsupported;
        continue;
      }
      CHECK_FALSE(error);
    } else {
      // Refused either way; manifest-10 trips over its unsupported config digest first.
      REQUIRE(error);
      CHECK((error->code() == Code::corrupt || error->code() == Code::unsupported));
    }
    agree += 1;
  }
  // manifest-07, descriptor-22..26, 28, 29: sha256+b64, multihash+base58, …
  CHECK(unsupported == 8);
  CHECK(exceptions == 13);
  CHECK(layout_headers == 3);
  CHECK(agree == 60);
  CHECK(agree + unsupported + exceptions + layout_headers == 84);
}
