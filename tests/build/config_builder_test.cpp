// The image config each Dockerfile instruction produces, against BuildKit's dispatch functions
// (frontend/dockerfile/dockerfile2llb/convert.go): the config fields and the history text.
#include "build/image_config_builder.hpp"

#include <minibuild/dockerfile/parser.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

using namespace minibuild;
using namespace minibuild::build;

namespace {

// One instruction line, parsed, typed and expanded in `env`.
dockerfile::Instruction instruction(const std::string& line,
                                    const dockerfile::Environment& env = {}) {
  auto parsed = dockerfile::parse_dockerfile("FROM scratch\n" + line + "\n", "Dockerfile");
  REQUIRE(parsed);
  REQUIRE(parsed->instructions.size() == 2);
  auto typed = dockerfile::parse_instruction(parsed->instructions[1], "Dockerfile");
  REQUIRE(typed);
  auto expanded = dockerfile::expand_instruction(*typed, env, dockerfile::ShellLexer('\\'));
  REQUIRE(expanded);
  return *expanded;
}

dockerfile::Platform amd64() {
  return oci::make_platform("linux", "amd64");
}

ImageConfigBuilder scratch_builder() {
  ImageConfigBuilder builder(ImageConfigBuilder::empty_image(amd64()));
  builder.start_stage(amd64());
  builder.set_history_time("2023-11-14T22:13:20Z");
  return builder;
}

const std::string k_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Case {
  std::string line;
  std::string created_by; ///< "" when the instruction writes no history (ONBUILD)
  std::function<void(const oci::ContainerConfig&, const oci::ImageConfig&)> check;
};

} // namespace

TEST_CASE("config builder: each metadata instruction sets its field and history like BuildKit") {
  using Config = oci::ContainerConfig;
  using Image = oci::ImageConfig;
  const std::vector<Case> cases = {
      {"ENV A=1 B=\"two words\"", "ENV A=1 B=two words",
       [](const Config& c, const Image&) {
         CHECK(c.env == std::vector<std::string>{k_path, "A=1", "B=two words"});
       }},
      {"ENV PATH=/x", "ENV PATH=/x",
       [](const Config& c, const Image&) { CHECK(c.env == std::vector<std::string>{"PATH=/x"}); }},
      {"ENV legacy value with spaces", "ENV legacy=value with spaces",
       [](const Config& c, const Image&) { CHECK(c.env.back() == "legacy=value with spaces"); }},
      {"LABEL a=b \"c d\"=e", "LABEL a=b c d=e",
       [](const Config& c, const Image&) {
         CHECK(c.labels == std::map<std::string, std::string>{{"a", "b"}, {"c d", "e"}});
       }},
      {"EXPOSE 80 53/UDP 8000-8001", "EXPOSE [80/tcp 53/udp 8000/tcp 8001/tcp]",
       [](const Config& c, const Image&) {
         CHECK(c.exposed_ports ==
               std::set<std::string>{"53/udp", "80/tcp", "8000/tcp", "8001/tcp"});
       }},
      {"USER app:staff", "USER app:staff",
       [](const Config& c, const Image&) { CHECK(c.user == "app:staff"); }},
      {"CMD [\"/bin/app\", \"--flag=a b\"]", "CMD [\"/bin/app\" \"--flag=a b\"]",
       [](const Config& c, const Image&) {
         CHECK(c.cmd == std::vector<std::string>{"/bin/app", "--flag=a b"});
         CHECK(c.args_escaped); // BuildKit's dispatchCmd sets it on every OS
       }},
      {"CMD echo \"hi\" $HOME", "CMD [\"/bin/sh\" \"-c\" \"echo \\\"hi\\\" $HOME\"]",
       [](const Config& c, const Image&) {
         CHECK(c.cmd == std::vector<std::string>{"/bin/sh", "-c", "echo \"hi\" $HOME"});
       }},
      {"ENTRYPOINT [\"/e\"]", "ENTRYPOINT [\"/e\"]",
       [](const Config& c, const Image&) {
         CHECK(c.entrypoint == std::vector<std::string>{"/e"});
         CHECK_FALSE(c.args_escaped);
       }},
      {"ENTRYPOINT exec app", "ENTRYPOINT [\"/bin/sh\" \"-c\" \"exec app\"]",
       [](const Config& c, const Image&) {
         CHECK(c.entrypoint == std::vector<std::string>{"/bin/sh", "-c", "exec app"});
       }},
      {"SHELL [\"/bin/bash\", \"-c\"]", "SHELL [/bin/bash -c]",
       [](const Config& c, const Image&) {
         CHECK(c.shell == std::vector<std::string>{"/bin/bash", "-c"});
       }},
      {"VOLUME /data /logs", "VOLUME [/data /logs]",
       [](const Config& c, const Image&) {
         CHECK(c.volumes == std::set<std::string>{"/data", "/logs"});
       }},
      {"VOLUME [\"/json\"]", "VOLUME [/json]",
       [](const Config& c, const Image&) { CHECK(c.volumes == std::set<std::string>{"/json"}); }},
      {"STOPSIGNAL SIGKILL", "STOPSIGNAL SIGKILL",
       [](const Config& c, const Image&) { CHECK(c.stop_signal == "SIGKILL"); }},
      {"HEALTHCHECK --interval=30s --timeout=3s --start-period=1m30s --retries=3 "
       "CMD curl -f http://localhost/",
       "HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/] Interval:30s Timeout:3s "
       "StartPeriod:1m30s StartInterval:0s Retries:3}",
       [](const Config& c, const Image&) {
         REQUIRE(c.healthcheck);
         CHECK(c.healthcheck->test ==
               std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/"});
         CHECK(c.healthcheck->interval == 30'000'000'000);
         CHECK(c.healthcheck->timeout == 3'000'000'000);
         CHECK(c.healthcheck->start_period == 90'000'000'000);
         CHECK(c.healthcheck->retries == 3);
       }},
      {"HEALTHCHECK CMD [\"/check\", \"-v\"]",
       "HEALTHCHECK {Test:[CMD /check -v] Interval:0s Timeout:0s StartPeriod:0s "
       "StartInterval:0s Retries:0}",
       [](const Config& c, const Image&) {
         REQUIRE(c.healthcheck);
         CHECK(c.healthcheck->test == std::vector<std::string>{"CMD", "/check", "-v"});
       }},
      {"HEALTHCHECK NONE",
       "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s "
       "Retries:0}",
       [](const Config& c, const Image&) {
         REQUIRE(c.healthcheck);
         CHECK(c.healthcheck->test == std::vector<std::string>{"NONE"});
       }},
      {"ONBUILD COPY . /app", "",
       [](const Config& c, const Image&) {
         CHECK(c.on_build == std::vector<std::string>{"COPY . /app"});
       }},
      {"MAINTAINER Jane Doe <jane@example.com>", "MAINTAINER Jane Doe <jane@example.com>",
       [](const Config&, const Image& image) {
         CHECK(image.author == "Jane Doe <jane@example.com>");
       }},
  };
  for (const auto& c : cases) {
    SECTION(c.line) {
      ImageConfigBuilder builder = scratch_builder();
      if (c.line == "ENV PATH=/x") {
        // PATH replaced in place, not appended
        REQUIRE(builder.config().config.env == std::vector<std::string>{k_path});
      }
      REQUIRE(builder.apply(instruction(c.line)));
      const auto& image = builder.config();
      c.check(image.config, image);
      if (c.created_by.empty()) {
        CHECK(image.history.empty());
      } else {
        REQUIRE(image.history.size() == 1);
        CHECK(image.history[0].created_by == c.created_by);
        CHECK(image.history[0].comment == "buildkit.dockerfile.v0");
        CHECK(image.history[0].created == "2023-11-14T22:13:20Z");
        CHECK(image.history[0].empty_layer);
      }
      CHECK(image.rootfs.diff_ids.empty());
    }
  }
}

TEST_CASE("config builder: variables in ENV, LABEL, USER, EXPOSE come expanded") {
  dockerfile::Environment env;
  env.set("BASE", "/opt");
  env.set("PORT", "8080");
  ImageConfigBuilder builder = scratch_builder();
  REQUIRE(builder.apply(instruction("ENV HOME_DIR=$BASE/home", env)));
  REQUIRE(builder.apply(instruction("LABEL dir=${BASE}", env)));
  REQUIRE(builder.apply(instruction("EXPOSE $PORT", env)));
  REQUIRE(builder.apply(instruction("USER ${USER:-nobody}", env)));
  const auto& config = builder.config().config;
  CHECK(config.env.back() == "HOME_DIR=/opt/home");
  CHECK(config.labels.at("dir") == "/opt");
  CHECK(config.exposed_ports == std::set<std::string>{"8080/tcp"});
  CHECK(config.user == "nobody");
  CHECK(builder.config().history[2].created_by == "EXPOSE [8080/tcp]");
}

TEST_CASE("config builder: ENTRYPOINT clears an inherited CMD unless the stage set one") {
  oci::ImageConfig base = ImageConfigBuilder::empty_image(amd64());
  base.config.cmd = {"base-cmd"};

  SECTION("inherited CMD is dropped") {
    ImageConfigBuilder builder(base);
    builder.start_stage(amd64());
    REQUIRE(builder.apply(instruction("ENTRYPOINT [\"/e\"]")));
    CHECK(builder.config().config.cmd.empty());
    CHECK(builder.config().config.entrypoint == std::vector<std::string>{"/e"});
  }
  SECTION("CMD before ENTRYPOINT in the same stage is kept") {
    ImageConfigBuilder builder(base);
    builder.start_stage(amd64());
    REQUIRE(builder.apply(instruction("CMD [\"mine\"]")));
    REQUIRE(builder.apply(instruction("ENTRYPOINT [\"/e\"]")));
    CHECK(builder.config().config.cmd == std::vector<std::string>{"mine"});
  }
  SECTION("CMD after ENTRYPOINT sets it again") {
    ImageConfigBuilder builder(base);
    builder.start_stage(amd64());
    REQUIRE(builder.apply(instruction("ENTRYPOINT [\"/e\"]")));
    REQUIRE(builder.apply(instruction("CMD [\"later\"]")));
    CHECK(builder.config().config.cmd == std::vector<std::string>{"later"});
    CHECK(builder.config().config.entrypoint == std::vector<std::string>{"/e"});
  }
  SECTION("ENTRYPOINT [] resets the entrypoint") {
    base.config.entrypoint = {"/old"};
    ImageConfigBuilder builder(base);
    builder.start_stage(amd64());
    REQUIRE(builder.apply(instruction("ENTRYPOINT []")));
    CHECK(builder.config().config.entrypoint.empty());
    CHECK(builder.config().history[0].created_by == "ENTRYPOINT []");
  }
}

TEST_CASE("config builder: shell forms are wrapped in the stage's SHELL") {
  ImageConfigBuilder builder = scratch_builder();
  REQUIRE(builder.apply(instruction("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]")));
  REQUIRE(builder.apply(instruction("CMD echo hi | cat")));
  REQUIRE(builder.apply(instruction("ENTRYPOINT exec run")));
  REQUIRE(builder.apply(instruction("HEALTHCHECK CMD true")));
  const auto& config = builder.config().config;
  CHECK(config.cmd ==
        std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c", "echo hi | cat"});
  CHECK(config.entrypoint ==
        std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c", "exec run"});
  // HEALTHCHECK CMD-SHELL names no shell: the runtime picks it.
  CHECK(config.healthcheck->test == std::vector<std::string>{"CMD-SHELL", "true"});
  CHECK(builder.config().history[1].created_by ==
        "CMD [\"/bin/bash\" \"-o\" \"pipefail\" \"-c\" \"echo hi | cat\"]");
}

TEST_CASE(
    "config builder: start_stage adds PATH only when missing and resets what BuildKit resets") {
  oci::ImageConfig base;
  base.os = "linux";
  base.architecture = "arm64";
  base.created = "2020-01-01T00:00:00Z";
  base.config.env = {"HOME=/root"};
  base.config.on_build = {"COPY . /x"};
  base.config.unknown_fields["Hostname"] = "\"abc\"";
  base.unknown_fields["container_config"] = "{}";
  base.history.push_back({"2020-01-01T00:00:00Z", "/bin/sh -c #(nop) ADD file", "", "", false});
  ImageConfigBuilder builder(base);
  builder.start_stage(oci::make_platform("linux", "arm", "v7"));
  const auto& image = builder.config();
  CHECK(image.config.env == std::vector<std::string>{"HOME=/root", k_path});
  CHECK(image.created.empty());
  CHECK(image.config.on_build.empty());
  CHECK(image.unknown_fields.empty());
  CHECK(image.config.unknown_fields.empty());
  CHECK(image.architecture == "arm");
  CHECK(image.variant == "v7");
  CHECK(image.history == base.history);

  oci::ImageConfig with_path = base;
  with_path.config.env = {"PATH=/bin"};
  ImageConfigBuilder kept(with_path);
  kept.start_stage(amd64());
  CHECK(kept.config().config.env == std::vector<std::string>{"PATH=/bin"});

  const auto empty = ImageConfigBuilder::empty_image(amd64());
  CHECK(empty.config.env == std::vector<std::string>{k_path});
  CHECK(empty.config.working_dir == "/");
  CHECK(empty.rootfs.type == "layers");
  CHECK(empty.os == "linux");
  CHECK(empty.architecture == "amd64");
}

TEST_CASE("config builder: layers, WORKDIR and ARG history entries") {
  ImageConfigBuilder builder = scratch_builder();
  const auto diff_id = oci::sha256_of("layer");
  builder.add_layer(diff_id, "COPY app /app");
  CHECK(builder.set_workdir("srv") == "/srv");
  builder.add_workdir_history("/srv", true);
  CHECK(builder.set_workdir("/") == "/");
  builder.add_workdir_history("/", false);
  builder.add_arg({{"A", "1"}, {"B", std::nullopt}, {"C", ""}});
  const auto& image = builder.config();
  CHECK(image.rootfs.diff_ids == std::vector<oci::Digest>{diff_id});
  REQUIRE(image.history.size() == 4);
  CHECK(image.history[0].created_by == "COPY app /app # buildkit");
  CHECK_FALSE(image.history[0].empty_layer);
  CHECK(image.history[1].created_by == "WORKDIR /srv");
  CHECK_FALSE(image.history[1].empty_layer);
  CHECK(image.history[2].created_by == "WORKDIR /");
  CHECK(image.history[2].empty_layer);
  CHECK(image.history[3].created_by == "ARG A=1 B C=");
  CHECK(image.history[3].empty_layer);
}

TEST_CASE("config builder: COPY and ADD history text") {
  const auto copy =
      instruction("COPY --parents --chown=1:2 --chmod=644 --link a b/ <<EOF /dst/\nx\nEOF")
          .as<dockerfile::CopyInstruction>();
  CHECK(copy_created_by(copy) == "COPY --parents --chown=1:2 --chmod=644 a b/ <<EOF /dst/");
  const auto from = instruction("COPY --from=build /out /out").as<dockerfile::CopyInstruction>();
  CHECK(copy_created_by(from) == "COPY /out /out"); // BuildKit leaves --from out
  const auto add = instruction("ADD --chown=app x.tar /").as<dockerfile::AddInstruction>();
  CHECK(add_created_by(add) == "ADD --chown=app x.tar /");
}

TEST_CASE("config builder: an empty VOLUME path is refused") {
  dockerfile::Instruction volume = instruction("VOLUME /x");
  volume.as<dockerfile::VolumeInstruction>().paths = {""};
  ImageConfigBuilder builder = scratch_builder();
  auto result = builder.apply(volume);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::dockerfile);
  CHECK(result.error().message() == "VOLUME specified can not be an empty string");

  auto copy = builder.apply(instruction("COPY a /b"));
  REQUIRE_FALSE(copy);
  CHECK(copy.error().code() == Code::internal);
}

TEST_CASE("config builder: Go formatting helpers") {
  CHECK(go_duration(0) == "0s");
  CHECK(go_duration(1) == "1ns");
  CHECK(go_duration(1500) == "1.5\xC2\xB5s");
  CHECK(go_duration(300'000'000) == "300ms");
  CHECK(go_duration(1'500'000'000) == "1.5s");
  CHECK(go_duration(90'000'000'000) == "1m30s");
  CHECK(go_duration(3'600'000'000'000) == "1h0m0s");
  CHECK(go_duration(3'723'000'000'001) == "1h2m3.000000001s");

  CHECK(go_quote("plain") == "\"plain\"");
  CHECK(go_quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(go_quote("\n\t\x01\x7f") == "\"\\n\\t\\x01\\x7f\"");
  CHECK(go_quote("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
  CHECK(go_quote("\xff") == "\"\\xff\"");
  CHECK(go_quote("\xC2\xA0") == "\"\\u00a0\"");
  CHECK(go_quoted_list({"a", "b c"}) == "[\"a\" \"b c\"]");
  CHECK(go_quoted_list({}) == "[]");
  CHECK(go_list({"/bin/sh", "-c"}) == "[/bin/sh -c]");

  CHECK(rfc3339_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(rfc3339_utc(1700000000) == "2023-11-14T22:13:20Z");
  CHECK(rfc3339_utc(951782400) == "2000-02-29T00:00:00Z");
  CHECK(rfc3339_utc(1700000000, 500000000) == "2023-11-14T22:13:20.5Z");
  CHECK(rfc3339_utc(-1) == "1969-12-31T23:59:59Z");
  CHECK(oci::is_rfc3339_date_time(rfc3339_utc(1700000000, 123456789)));
}

TEST_CASE("config builder: WORKDIR normalisation and EXPOSE expansion") {
  CHECK(normalize_workdir("/", "app") == "/app");
  CHECK(normalize_workdir("", "app") == "/app");
  CHECK(normalize_workdir("/a/b", "../c/") == "/a/c");
  CHECK(normalize_workdir("/a", "/x/./y//") == "/x/y");
  CHECK(normalize_workdir("/a", "../../..") == "/");
  CHECK(normalize_workdir("/a", "") == "/a");

  CHECK(expand_port_spec("80") == std::vector<std::string>{"80/tcp"});
  CHECK(expand_port_spec("53/UDP") == std::vector<std::string>{"53/udp"});
  CHECK(expand_port_spec("9-11/sctp") == std::vector<std::string>{"9/sctp", "10/sctp", "11/sctp"});
}
