#include <minibuild/oci/image_config.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using namespace minibuild;
using namespace minibuild::oci;

namespace {

ImageConfig full_config() {
  ImageConfig config;
  config.created = "2024-05-06T07:08:09.123456789Z";
  config.author = "Alyssa P. Hacker <alyspdev@example.com>";
  config.architecture = "arm64";
  config.os = "linux";
  config.variant = "v8";
  config.os_version = "6.1";
  config.os_features = {"feature"};
  auto& c = config.config;
  c.user = "1000:1000";
  c.exposed_ports = {"8080/tcp", "53/udp"};
  c.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "EMPTY="};
  c.entrypoint = {"/bin/app"};
  c.cmd = {"--serve"};
  c.volumes = {"/data"};
  c.working_dir = "/srv";
  c.labels = {{"org.opencontainers.image.title", "app"}, {"a", "<&>"}};
  c.stop_signal = "SIGTERM";
  c.args_escaped = true;
  c.healthcheck = HealthConfig{{"CMD-SHELL", "curl -f http://localhost/"},
                               30000000000,
                               5000000000,
                               1000000000,
                               2000000000,
                               3};
  c.on_build = {"RUN echo child"};
  c.shell = {"/bin/bash", "-c"};
  config.rootfs.diff_ids = {sha256_of("layer 1"), sha256_of("layer 2")};
  config.history = {
      {"2024-05-06T07:08:00Z", "/bin/sh -c #(nop) ADD file:abc in /", "", "", false},
      {"2024-05-06T07:08:01Z", "ENV A=b", "someone", "buildkit.dockerfile.v0", true},
      {"", "RUN make", "", "", false},
  };
  return config;
}

} // namespace

TEST_CASE("image config round trip with every modelled field", "[oci]") {
  auto config = full_config();
  auto text = serialize(config);
  auto back = parse<ImageConfig>(text);
  REQUIRE(back);
  CHECK(*back == config);
  CHECK(serialize(*back) == text);
  CHECK(platform_of(config) == Platform{"linux", "arm64", "v8", "6.1", {"feature"}});
}

TEST_CASE("image config serialisation is canonical and omits what Go omits", "[oci]") {
  CHECK(serialize(full_config()) == serialize(full_config()));

  ImageConfig minimal;
  minimal.architecture = "amd64";
  minimal.os = "linux";
  // config is a Go struct (never omitted); rootfs.diff_ids has no omitempty.
  CHECK(
      serialize(minimal) ==
      R"({"architecture":"amd64","config":{},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}})");

  minimal.config.healthcheck = HealthConfig{};
  minimal.history.push_back(History{});
  CHECK(
      serialize(minimal) ==
      R"({"architecture":"amd64","config":{"Healthcheck":{}},"history":[{}],"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}})");

  auto json = to_json(full_config());
  CHECK(json["config"]["ExposedPorts"] == nlohmann::json::parse(R"({"53/udp":{},"8080/tcp":{}})"));
  CHECK(json["config"]["Volumes"] == nlohmann::json::parse(R"({"/data":{}})"));
  CHECK(json["config"]["Healthcheck"]["Interval"] == 30000000000LL);
  CHECK(json["history"][2].dump() == R"({"created_by":"RUN make"})");
  CHECK(json["history"][1]["empty_layer"] == true);
  CHECK_FALSE(json["history"][0].contains("empty_layer"));
}

TEST_CASE("unknown fields of a base image config survive a read and a write", "[oci]") {
  const std::string base = R"({
    "architecture": "amd64", "os": "linux",
    "created": "2016-10-10T23:04:00.821781828Z",
    "docker_version": "1.12.1",
    "container": "15a30be053fb",
    "container_config": {"Hostname": "09713501c176", "Cmd": ["/bin/sh", "-c", "#(nop) "]},
    "config": {"Hostname": "09713501c176", "AttachStdin": false, "Env": ["PATH=/bin"],
               "Cmd": null, "Entrypoint": null, "Volumes": null, "OnBuild": [], "Labels": {},
               "Image": "sha256:32e2e3ccf2a4fbaa75b078bf539cd5ea2e374a4242665a5ec3f3c01e7a3eefb8",
               "x-nested": {"b": [1, 2.5, null, true], "a": "\u003c"}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:9007f5987db353ec398a223bc5a135c5a9601798ba20a1abba537ea2f8ac765f"]},
    "history": [{"created": "2016-09-23T16:29:57.276868291Z", "created_by": "/bin/sh -c #(nop) ADD file:d6 in / "},
                {"created": "2016-09-23T16:36:54.365914519Z", "created_by": "ENV X=1", "empty_layer": true}]
  })";
  auto config = parse<ImageConfig>(base);
  REQUIRE(config);
  CHECK(config->unknown_fields.size() == 3);
  CHECK(config->unknown_fields.at("docker_version") == "\"1.12.1\"");
  CHECK(config->config.unknown_fields.count("Hostname") == 1);
  CHECK(config->config.unknown_fields.count("Image") == 1);
  CHECK(config->config.unknown_fields.count("Cmd") == 0); // modelled
  CHECK(config->config.cmd.empty());
  CHECK(config->history.size() == 2);
  CHECK(config->history[0].created == "2016-09-23T16:29:57.276868291Z");

  // A build changes some fields; everything else must come out as it went in.
  config->config.env.push_back("A=b");
  config->history.push_back(History{"2024-01-01T00:00:00Z", "RUN true", "", "", true});
  auto out = to_json(*config);
  auto in = nlohmann::json::parse(base);
  CHECK(out["docker_version"] == in["docker_version"]);
  CHECK(out["container"] == in["container"]);
  CHECK(out["container_config"] == in["container_config"]);
  CHECK(out["config"]["Hostname"] == in["config"]["Hostname"]);
  CHECK(out["config"]["AttachStdin"] == false);
  CHECK(out["config"]["Image"] == in["config"]["Image"]);
  CHECK(out["config"]["x-nested"] == in["config"]["x-nested"]);
  CHECK(out["config"]["Env"] == nlohmann::json::parse(R"(["PATH=/bin","A=b"])"));
  CHECK(out["created"] == in["created"]);
  CHECK(out["rootfs"] == in["rootfs"]);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(out["history"][i] == in["history"][i]);
  }
  CHECK(out["history"].size() == 3);
  // Nulls and empty containers of modelled fields are dropped, as Go's omitempty does.
  CHECK_FALSE(out["config"].contains("Cmd"));
  CHECK_FALSE(out["config"].contains("OnBuild"));
  CHECK_FALSE(out["config"].contains("Labels"));

  // A second read-write cycle is a fixed point.
  auto again = parse<ImageConfig>(serialize(*config));
  REQUIRE(again);
  CHECK(*again == *config);
  CHECK(serialize(*again) == serialize(*config));

  // A caller may drop an unknown field on purpose.
  config->unknown_fields.erase("container_config");
  CHECK_FALSE(to_json(*config).contains("container_config"));
}

TEST_CASE("image config reader rejects wrong types, naming the field", "[oci]") {
  auto doc = [](const std::string& extra, const std::string& config = "{}") {
    return R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":)" +
           config + extra + "}";
  };
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})",
       "architecture: required field is missing"},
      {R"({"architecture":"amd64","os":"linux"})", "rootfs: required field is missing"},
      {R"({"architecture":"amd64","os":123,"rootfs":{"type":"layers","diff_ids":[]}})",
       "os: expected a string, found number"},
      {doc(R"(,"variant":5)"), "variant: expected a string, found number"},
      {doc("", R"({"User":1})"), "config.User: expected a string, found number"},
      {doc("", R"({"Env":[7]})"), "config.Env[0]: expected a string, found number"},
      {doc("", R"({"Volumes":["/a"]})"), "config.Volumes: expected an object, found array"},
      {doc("", R"({"ExposedPorts":{"80/tcp":"yes"}})"),
       "config.ExposedPorts.80/tcp: expected an object ({}), found string"},
      {doc("", R"({"Labels":{"a":1}})"), "config.Labels.a: expected a string, found number"},
      {doc("", R"({"ArgsEscaped":"true"})"),
       "config.ArgsEscaped: expected a boolean, found string"},
      {doc("", R"({"Healthcheck":{"Interval":"30s"}})"),
       "config.Healthcheck.Interval: expected an integer, found string"},
      {doc("", R"([])"), "config: expected an object, found array"},
      {doc(R"(,"history":"none")"), "history: expected an array, found string"},
      {doc(R"(,"history":[{"empty_layer":"yes"}])"),
       "history[0].empty_layer: expected a boolean, found string"},
      {doc(R"(,"history":[{"created":"yesterday"}])"),
       "history[0].created: \"yesterday\" is not an RFC 3339 date-time"},
      {doc(R"(,"created":"")"), "created: \"\" is not an RFC 3339 date-time"},
      {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"tree","diff_ids":[]}})",
       "rootfs.type: \"tree\" is not \"layers\""},
      {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})",
       "rootfs.diff_ids: required field is missing"},
      {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:1"]}})",
       ""},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto config = parse<ImageConfig>(c.text);
    REQUIRE_FALSE(config);
    CHECK(config.error().code() == Code::corrupt);
    if (c.message.empty()) {
      CHECK(config.error().message().rfind("rootfs.diff_ids[0]: invalid digest", 0) == 0);
    } else {
      CHECK(config.error().message() == c.message);
    }
  }
  // diff_ids: null is an image without layers.
  auto no_layers = parse<ImageConfig>(
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":null}})");
  REQUIRE(no_layers);
  CHECK(no_layers->rootfs.diff_ids.empty());
}

TEST_CASE("RFC 3339 date-times", "[oci]") {
  for (const char* good :
       {"2015-10-31T22:22:56.015925234Z", "2016-06-10T18:44:03+02:00", "2000-02-29T00:00:00z",
        "1970-01-01t00:00:60-00:00", "0001-01-01T00:00:00Z"}) {
    INFO(good);
    CHECK(is_rfc3339_date_time(good));
  }
  for (const char* bad :
       {"", "2015-10-31", "2015-10-31 22:22:56Z", "2015-13-01T00:00:00Z", "2015-02-29T00:00:00Z",
        "2015-10-31T24:00:00Z", "2015-10-31T22:22:56", "2015-10-31T22:22:56.Z",
        "2015-10-31T22:22:56+0200", "2015-10-31T22:22:56+24:00", "15-10-31T22:22:56Z"}) {
    INFO(bad);
    CHECK_FALSE(is_rfc3339_date_time(bad));
  }
}
