#include <minibuild/oci/media_types.hpp>

#include <catch2/catch.hpp>

using namespace minibuild::oci;

TEST_CASE("manifests, indexes and configs of both families are recognised", "[oci]") {
  CHECK(is_manifest(k_oci_manifest));
  CHECK(is_manifest(k_docker_manifest));
  CHECK_FALSE(is_manifest(k_oci_index));
  CHECK_FALSE(is_manifest(k_docker_schema1_signed_manifest));
  CHECK(is_index(k_oci_index));
  CHECK(is_index(k_docker_manifest_list));
  CHECK_FALSE(is_index(k_docker_manifest));
  CHECK(is_config(k_oci_config));
  CHECK(is_config(k_docker_config));
  CHECK_FALSE(is_config(k_oci_empty_json));
  // Exact comparison: Content-Type parameters are the caller's to strip.
  CHECK_FALSE(is_manifest(std::string(k_oci_manifest) + "; charset=utf-8"));
}

TEST_CASE("layer media types and their compression", "[oci]") {
  CHECK(layer_compression(k_oci_layer_tar) == Compression::none);
  CHECK(layer_compression(k_oci_layer_tar_gzip) == Compression::gzip);
  CHECK(layer_compression(k_oci_layer_tar_zstd) == Compression::zstd);
  CHECK(layer_compression(k_oci_layer_nondistributable_tar_zstd) == Compression::zstd);
  CHECK(layer_compression(k_docker_layer_tar_gzip) == Compression::gzip);
  CHECK(layer_compression(k_docker_foreign_layer_tar_gzip) == Compression::gzip);
  CHECK(layer_compression(k_docker_layer_tar) == Compression::none);
  CHECK_FALSE(layer_compression(k_oci_config).has_value());
  CHECK(is_layer(k_docker_foreign_layer_tar));
  CHECK_FALSE(is_layer(k_oci_manifest));
  CHECK(is_nondistributable_layer(k_docker_foreign_layer_tar_gzip));
  CHECK(is_nondistributable_layer(k_oci_layer_nondistributable_tar));
  CHECK_FALSE(is_nondistributable_layer(k_oci_layer_tar_gzip));
  CHECK(compression_name(Compression::zstd) == "zstd");
}

TEST_CASE("choosing a layer media type per family", "[oci]") {
  CHECK(layer_media_type(Compression::gzip, MediaTypeFamily::oci) == k_oci_layer_tar_gzip);
  CHECK(layer_media_type(Compression::zstd, MediaTypeFamily::oci) == k_oci_layer_tar_zstd);
  CHECK(layer_media_type(Compression::none, MediaTypeFamily::docker) == k_docker_layer_tar);
  CHECK(layer_media_type(Compression::gzip, MediaTypeFamily::docker) == k_docker_layer_tar_gzip);
  CHECK_FALSE(layer_media_type(Compression::zstd, MediaTypeFamily::docker).has_value());
}

TEST_CASE("Docker and OCI equivalents", "[oci]") {
  CHECK(to_oci(k_docker_manifest) == k_oci_manifest);
  CHECK(to_oci(k_docker_manifest_list) == k_oci_index);
  CHECK(to_oci(k_docker_config) == k_oci_config);
  CHECK(to_oci(k_docker_layer_tar_gzip) == k_oci_layer_tar_gzip);
  CHECK(to_oci(k_docker_foreign_layer_tar_gzip) == k_oci_layer_nondistributable_tar_gzip);
  CHECK(to_oci(k_oci_layer_tar_zstd) == k_oci_layer_tar_zstd);
  CHECK(to_oci("text/plain") == "text/plain");

  CHECK(to_docker(k_oci_manifest) == k_docker_manifest);
  CHECK(to_docker(k_oci_index) == k_docker_manifest_list);
  CHECK(to_docker(k_oci_config) == k_docker_config);
  CHECK(to_docker(k_oci_layer_tar) == k_docker_layer_tar);
  CHECK(to_docker(k_docker_manifest) == k_docker_manifest);
  CHECK_FALSE(to_docker(k_oci_layer_tar_zstd).has_value());
  CHECK_FALSE(to_docker(k_oci_empty_json).has_value());
  for (auto docker :
       {k_docker_manifest, k_docker_manifest_list, k_docker_config, k_docker_layer_tar,
        k_docker_layer_tar_gzip, k_docker_foreign_layer_tar, k_docker_foreign_layer_tar_gzip}) {
    CHECK(to_docker(to_oci(docker)) == docker);
  }
}

TEST_CASE("a document's media type: its mediaType field, else its shape", "[oci]") {
  using minibuild::oci::sniff_media_type;
  CHECK(sniff_media_type(R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
                             "layers":[]})") ==
        std::string("application/vnd.docker.distribution.manifest.v2+json"));
  CHECK(sniff_media_type(R"({"schemaVersion":2,"manifests":[]})") ==
        std::string(minibuild::oci::k_oci_index));
  CHECK(sniff_media_type(R"({"schemaVersion":2,"config":{},"layers":[]})") ==
        std::string(minibuild::oci::k_oci_manifest));
  // A config has neither clue; "layers" alone is no manifest.
  CHECK(sniff_media_type(R"({"rootfs":{},"layers":[]})") == std::string());
  CHECK_FALSE(sniff_media_type("[1,2]"));
  CHECK_FALSE(sniff_media_type("not json"));
}
