// Build plan: global ARGs, in-stage ARG/ENV scope, build-arg overrides and the unused warning,
// platform ARGs, the stage graph (FROM <stage>, COPY --from, RUN --mount=from), --target
// pruning and the dump. Dockerfiles are written as text and go through the real parser.
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/dockerfile/plan.hpp>

#include <catch2/catch.hpp>

using namespace minibuild;
using namespace minibuild::dockerfile;

namespace {

ParsedDockerfile parse(std::string_view text) {
  auto parsed = parse_dockerfile(text, "Dockerfile");
  if (!parsed) {
    FAIL("parse failed: " << parsed.error().what());
  }
  return *parsed;
}

Plan plan_ok(std::string_view text, const PlanOptions& options = {}) {
  auto plan = make_plan(parse(text), options);
  if (!plan) {
    FAIL("plan failed: " << plan.error().what());
  }
  return *plan;
}

Error plan_error(std::string_view text, const PlanOptions& options = {}) {
  auto plan = make_plan(parse(text), options);
  REQUIRE_FALSE(plan);
  return plan.error();
}

PlanOptions with_args(std::map<std::string, std::string> args) {
  PlanOptions options;
  options.build_args = std::move(args);
  return options;
}

std::optional<std::string> arg_of(const PlanStage& stage, std::string_view name) {
  if (auto value = stage.initial_scope.args().get(name)) {
    return std::string(*value);
  }
  return std::nullopt;
}

std::optional<std::string> env_of(const PlanStage& stage, std::string_view name) {
  if (auto value = stage.initial_scope.env().get(name)) {
    return std::string(*value);
  }
  return std::nullopt;
}

// The scope at the end of stage "a" is the initial scope of a stage built FROM a.
const PlanStage& child(const Plan& plan) {
  return plan.stages.back();
}

std::vector<std::string> messages(const std::vector<Warning>& warnings) {
  std::vector<std::string> out;
  for (const auto& warning : warnings) {
    out.push_back(warning.message);
  }
  return out;
}

} // namespace

// --- global (meta) ARGs -----------------------------------------------------------------------

TEST_CASE("a global ARG is usable in FROM lines") {
  auto plan = plan_ok("ARG TAG=3.19\nARG REPO=library\nFROM ${REPO}/alpine:$TAG\n");
  REQUIRE(plan.stages.size() == 1);
  CHECK(plan.stages[0].base.kind == SourceKind::image);
  CHECK(plan.stages[0].base.image == "library/alpine:3.19");
  CHECK(plan.global_args.get("TAG") == std::optional<std::string_view>("3.19"));
  CHECK(plan.global_arg_instructions.size() == 2);
  CHECK(plan.images == std::vector<std::string>{"library/alpine:3.19"});
}

TEST_CASE("a global ARG is not visible inside a stage that does not redeclare it") {
  auto plan = plan_ok("ARG V=1\nFROM scratch AS a\nENV X=\"[$V]\"\nFROM a\n");
  const auto& b = child(plan);
  CHECK(env_of(b, "X") == std::optional<std::string>("[]"));
  CHECK_FALSE(b.initial_scope.declared("V"));
}

TEST_CASE("ARG NAME without a value inside a stage takes the global value") {
  auto plan = plan_ok("ARG V=1\nFROM scratch AS a\nARG V\nENV X=\"[$V]\"\nFROM a\n");
  const auto& b = child(plan);
  CHECK(arg_of(b, "V") == std::optional<std::string>("1"));
  CHECK(env_of(b, "X") == std::optional<std::string>("[1]"));
}

TEST_CASE("build args override global and in-stage defaults") {
  auto plan = plan_ok("ARG TAG=3.19\nFROM alpine:$TAG AS a\nARG TAG\nARG MODE=debug\nFROM a\n",
                      with_args({{"TAG", "edge"}, {"MODE", "release"}}));
  CHECK(plan.stages[0].base.image == "alpine:edge");
  CHECK(arg_of(child(plan), "TAG") == std::optional<std::string>("edge"));
  CHECK(arg_of(child(plan), "MODE") == std::optional<std::string>("release"));
  CHECK(plan.warnings.empty());
}

TEST_CASE("a --build-arg reaches a stage ARG that has no default and no global") {
  auto plan =
      plan_ok("FROM scratch AS a\nARG TOKEN\nARG UNSET\nFROM a\n", with_args({{"TOKEN", "t0k"}}));
  CHECK(arg_of(child(plan), "TOKEN") == std::optional<std::string>("t0k"));
  CHECK(child(plan).initial_scope.declared("UNSET"));
  CHECK_FALSE(arg_of(child(plan), "UNSET").has_value());
}

TEST_CASE("an ARG default may reference earlier ARGs, globally and in a stage") {
  auto plan = plan_ok("ARG MAJOR=1\nARG VERSION=${MAJOR}.2\nFROM img:$VERSION AS a\n"
                      "ARG A=x B=$A-y\nARG C=${B}-z\nFROM a\n");
  CHECK(plan.stages[0].base.image == "img:1.2");
  CHECK(arg_of(child(plan), "B") == std::optional<std::string>("x-y"));
  CHECK(arg_of(child(plan), "C") == std::optional<std::string>("x-y-z"));

  // A build arg for MAJOR changes the derived default; one for VERSION replaces it.
  CHECK(plan_ok("ARG MAJOR=1\nARG VERSION=${MAJOR}.2\nFROM img:$VERSION\n",
                with_args({{"MAJOR", "7"}}))
            .stages[0]
            .base.image == "img:7.2");
  CHECK(plan_ok("ARG MAJOR=1\nARG VERSION=${MAJOR}.2\nFROM img:$VERSION\n",
                with_args({{"VERSION", "9"}}))
            .stages[0]
            .base.image == "img:9");
}

TEST_CASE("ENV shadows an ARG of the same name in a stage") {
  auto plan = plan_ok("FROM scratch AS a\nARG X=from-arg\nENV X=from-env\nENV Y=$X\nFROM a\n",
                      with_args({{"X", "from-build-arg"}}));
  const auto& b = child(plan);
  CHECK(env_of(b, "Y") == std::optional<std::string>("from-env"));
  CHECK(b.initial_scope.expansion_environment().get("X") ==
        std::optional<std::string_view>("from-env"));

  // Docker's rule is "ENV always wins", so a later ARG does not undo it.
  auto later = plan_ok("FROM scratch AS a\nENV X=from-env\nARG X=from-arg\nENV Y=$X\nFROM a\n");
  CHECK(env_of(child(later), "Y") == std::optional<std::string>("from-env"));
}

TEST_CASE("ENV expands all its pairs with the scope from before the instruction") {
  auto plan = plan_ok("FROM scratch AS a\nENV A=old\nENV A=new B=$A\nFROM a\n");
  CHECK(env_of(child(plan), "B") == std::optional<std::string>("old"));
}

TEST_CASE("a stage built FROM another stage inherits its ARG and ENV scope") {
  auto plan = plan_ok("FROM scratch AS base\nARG V=1\nENV E=2\nFROM base AS mid\nENV F=3\n"
                      "FROM mid\n");
  const auto& last = child(plan);
  CHECK(arg_of(last, "V") == std::optional<std::string>("1"));
  CHECK(env_of(last, "E") == std::optional<std::string>("2"));
  CHECK(env_of(last, "F") == std::optional<std::string>("3"));
  // An image base starts from an empty scope.
  CHECK(plan.stages[0].initial_scope.args().entries().empty());
}

TEST_CASE("proxy build args need no ARG and go to RUN, not to expansion") {
  auto plan = plan_ok("FROM scratch AS a\nENV P=\"[$HTTP_PROXY]\"\nFROM a\n",
                      with_args({{"HTTP_PROXY", "http://proxy:3128"}, {"no_proxy", "local"}}));
  CHECK(plan.proxy_env.get("HTTP_PROXY") == std::optional<std::string_view>("http://proxy:3128"));
  CHECK(plan.proxy_env.get("no_proxy") == std::optional<std::string_view>("local"));
  CHECK(env_of(child(plan), "P") == std::optional<std::string>("[]"));
  CHECK(plan.warnings.empty()); // proxies are never "not consumed"
}

// --- platform ARGs ----------------------------------------------------------------------------

TEST_CASE("platform ARGs are global for FROM lines") {
  PlanOptions options;
  options.build_platform = oci::make_platform("linux", "amd64", "");
  options.target_platform = oci::make_platform("linux", "arm64", "");
  auto plan = plan_ok("FROM --platform=$BUILDPLATFORM golang AS build\n"
                      "FROM img-${TARGETOS}-${TARGETARCH}\n",
                      options);
  REQUIRE(plan.stages.size() == 1); // the last stage does not need "build"
  CHECK(plan.stages[0].base.image == "img-linux-arm64");
  CHECK(plan.global_args.get("BUILDPLATFORM") == std::optional<std::string_view>("linux/amd64"));
  CHECK(plan.global_args.get("TARGETPLATFORM") == std::optional<std::string_view>("linux/arm64"));
  CHECK(plan.global_args.get("TARGETVARIANT") == std::optional<std::string_view>(""));
  CHECK(plan.global_args.get("TARGETSTAGE") == std::optional<std::string_view>(""));

  auto build = plan_ok("FROM --platform=$BUILDPLATFORM golang AS build\n", options);
  REQUIRE(build.stages[0].platform_flag);
  CHECK(build.stages[0].platform == oci::make_platform("linux", "amd64", ""));
}

TEST_CASE("platform ARGs must be declared with ARG to be used inside a stage") {
  PlanOptions options;
  options.target_platform = oci::make_platform("linux", "arm", "v7");
  auto plan = plan_ok("FROM scratch AS a\nENV BEFORE=\"[$TARGETARCH]\"\nARG TARGETARCH\n"
                      "ARG TARGETVARIANT\nENV AFTER=$TARGETARCH/$TARGETVARIANT\nFROM a\n",
                      options);
  CHECK(env_of(child(plan), "BEFORE") == std::optional<std::string>("[]"));
  CHECK(env_of(child(plan), "AFTER") == std::optional<std::string>("arm/v7"));
}

TEST_CASE("a --build-arg may override a platform ARG and is never reported unused") {
  auto plan = plan_ok("FROM img:$TARGETARCH\n", with_args({{"TARGETARCH", "riscv64"}}));
  CHECK(plan.stages[0].base.image == "img:riscv64");
  CHECK(plan.warnings.empty());
}

TEST_CASE("FROM --platform is expanded and parsed; a base stage's platform is inherited") {
  PlanOptions options;
  options.target_platform = oci::make_platform("linux", "amd64", "");
  auto plan = plan_ok("ARG ARCH=aarch64\nFROM --platform=linux/$ARCH alpine AS a\n"
                      "FROM --platform=linux/s390x a\n",
                      options);
  CHECK(plan.stages[0].platform == oci::make_platform("linux", "arm64", ""));
  CHECK(plan.stages[1].platform == oci::make_platform("linux", "arm64", ""));

  auto empty = plan_error("ARG P\nFROM --platform=$P alpine\n");
  CHECK(empty.message() == "empty platform value from expression $P");
  auto bad = plan_error("FROM --platform=linux/z80 alpine\n");
  CHECK(bad.what() == "Dockerfile:1:1: failed to parse platform linux/z80: invalid platform "
                      "\"linux/z80\": unknown architecture \"z80\"");
}

TEST_CASE("parse_platform normalises like containerd") {
  const Platform defaults = oci::make_platform("linux", "amd64");
  CHECK(*parse_platform("linux/x86_64", defaults) == oci::make_platform("linux", "amd64", ""));
  CHECK(*parse_platform("Linux/ARM64/v8", defaults) == oci::make_platform("linux", "arm64", ""));
  CHECK(*parse_platform("linux/arm", defaults) == oci::make_platform("linux", "arm", "v7"));
  CHECK(*parse_platform("linux/armhf", defaults) == oci::make_platform("linux", "arm", "v7"));
  CHECK(*parse_platform("windows", defaults) == oci::make_platform("windows", "amd64", ""));
  CHECK(*parse_platform("arm64", defaults) == oci::make_platform("linux", "arm64", ""));
  CHECK(*parse_platform("linux/386", defaults) == oci::make_platform("linux", "386", ""));
  CHECK(oci::to_string(oci::make_platform("linux", "arm", "v6")) == "linux/arm/v6");
  CHECK_FALSE(parse_platform("", defaults));
  CHECK_FALSE(parse_platform("linux/amd64/v1/x", defaults));
  CHECK_FALSE(parse_platform("plan10", defaults));
  CHECK_FALSE(parse_platform("linux/ amd64", defaults));
}

// --- unused build args and other warnings -----------------------------------------------------

TEST_CASE("a --build-arg no ARG declares is reported as not consumed") {
  auto plan = plan_ok("ARG USED=1\nFROM scratch\nARG ALSO\n",
                      with_args({{"USED", "x"}, {"ALSO", "y"}, {"ZETA", "1"}, {"ALPHA", "2"}}));
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0].message == "One or more build-args [ALPHA ZETA] were not consumed");
  CHECK(plan.warnings[0].location == SourceRange{"Dockerfile", 0, 0, 0});
}

TEST_CASE("an ARG declared only in a stage that does not build does not consume") {
  const std::string text = "FROM scratch AS unused\nARG ONLY_HERE\nFROM scratch AS final\n";
  auto plan = plan_ok(text, with_args({{"ONLY_HERE", "1"}}));
  CHECK(messages(plan.warnings) ==
        std::vector<std::string>{"One or more build-args [ONLY_HERE] were not consumed"});
  PlanOptions target = with_args({{"ONLY_HERE", "1"}});
  target.target = "unused";
  CHECK(plan_ok(text, target).warnings.empty());
}

TEST_CASE("warnings: parser's first, then instructions', then the plan's") {
  auto plan =
      plan_ok("FROM alpine AS Build\nMAINTAINER me\nFROM img:$NOPE\n", with_args({{"EXTRA", "1"}}));
  CHECK(messages(plan.warnings) ==
        std::vector<std::string>{
            "StageNameCasing: Stage name 'Build' should be lowercase",
            "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label",
            "UndefinedArgInFrom: FROM argument 'NOPE' is not declared",
            "One or more build-args [EXTRA] were not consumed"});
}

TEST_CASE("FROM that expands to nothing is an error") {
  auto error = plan_error("ARG IMAGE\nFROM $IMAGE\n");
  CHECK(error.what() == "Dockerfile:2:1: base name ($IMAGE) should not be blank");
}

TEST_CASE("an ARG default expansion error points at the ARG") {
  auto error = plan_error("ARG A=${B:?required}\nFROM scratch\n");
  REQUIRE(error.location());
  CHECK(error.location()->line == 1);
  CHECK(error.context() == std::vector<std::string>{"ARG"});
}

// --- stages and the graph ---------------------------------------------------------------------

TEST_CASE("only ARG may come before the first FROM") {
  auto error = plan_error("ARG A=1\nRUN echo hi\nFROM scratch\n");
  CHECK(error.code() == Code::dockerfile);
  CHECK(error.what() == "Dockerfile:2:1: no build stage in current context: RUN comes before the "
                        "first FROM (only ARG may)");
  CHECK(plan_error("ARG ONLY=1\n").message() == "dockerfile contains no stages to build");
}

TEST_CASE("instruction errors pass through make_plan, with the suggestion") {
  auto error = plan_error("FROM scratch\nRUNN echo\n");
  CHECK(error.what() == "Dockerfile:2:1: unknown instruction \"RUNN\" (did you mean RUN?)");
}

TEST_CASE("duplicate stage names are an error") {
  auto error = plan_error("FROM scratch AS app\nFROM alpine AS App\n");
  CHECK(error.what() == "Dockerfile:2:1: duplicate stage name \"app\": already defined on line 1");
}

TEST_CASE("FROM <stage> refers to an earlier stage; a later name is an image") {
  auto plan = plan_ok("FROM alpine AS base\nFROM base AS app\nFROM later\nFROM scratch AS later\n"
                      "COPY --from=app / /\nCOPY --from=2 / /\n");
  REQUIRE(plan.stages.size() == 4);
  CHECK(plan.stages[1].base.kind == SourceKind::stage);
  CHECK(plan.stages[1].base.stage == 0);
  CHECK(plan.stages[1].depends_on == std::vector<int>{0});
  CHECK(plan.stages[2].base.kind == SourceKind::image);
  CHECK(plan.stages[2].base.image == "later");
  CHECK(plan.stages[3].base.kind == SourceKind::scratch);
  CHECK(plan.images == std::vector<std::string>{"alpine", "later"});
}

TEST_CASE("COPY --from takes a stage name, an index, an image or scratch") {
  auto plan = plan_ok("FROM golang AS build\nFROM alpine\nCOPY --from=BUILD /app /app\n"
                      "COPY --from=0 /x /x\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\n"
                      "COPY --from=scratch / /\n");
  const auto& last = plan.stages.back();
  REQUIRE(last.sources.size() == 5);
  CHECK(last.sources[0].use == SourceUse::base);
  CHECK(last.sources[1] == StageSource{SourceUse::copy_from, SourceKind::stage, 0, "",
                                       SourceRange{"Dockerfile", 3, 1, 3}});
  CHECK(last.sources[2].kind == SourceKind::stage);
  CHECK(last.sources[2].stage == 0);
  CHECK(last.sources[3].kind == SourceKind::image);
  CHECK(last.sources[3].image == "nginx:1.27");
  CHECK(last.sources[4].kind == SourceKind::scratch);
  CHECK(last.depends_on == std::vector<int>{0});
  CHECK(plan.images == std::vector<std::string>{"golang", "alpine", "nginx:1.27"});
}

TEST_CASE("COPY --from a later or the same stage is an error when that stage builds") {
  const std::string text = "FROM alpine AS first\nCOPY --from=second /x /x\n"
                           "FROM alpine AS second\nFROM alpine AS third\n";
  PlanOptions first;
  first.target = "first";
  auto error = plan_error(text, first);
  CHECK(error.what() == "Dockerfile:2:1: cannot copy from stage \"second\", it needs to be "
                        "defined before current stage \"first\"");
  // The default target (third) does not need "first": no error.
  CHECK(plan_ok(text).stages.size() == 1);

  CHECK(plan_error("FROM alpine AS self\nCOPY --from=self /x /x\n").message() ==
        "cannot copy from stage \"self\", it needs to be defined before current stage \"self\"");
  CHECK(plan_error("FROM alpine\nCOPY --from=0 /x /x\n").message() ==
        "cannot copy from stage \"0\", it needs to be defined before current stage \"0\"");
}

TEST_CASE("a stage index out of range is an error even in a stage that does not build") {
  auto error = plan_error("FROM alpine AS a\nCOPY --from=7 /x /x\nFROM alpine\n");
  CHECK(error.what() == "Dockerfile:2:1: invalid stage index 7");
  CHECK(plan_error("FROM alpine\nCOPY --from=-1 /x /x\n").message() == "invalid stage index -1");
}

TEST_CASE("COPY --from with a variable resolves in the stage's scope") {
  auto plan = plan_ok("ARG SRC=build\nFROM alpine AS build\nFROM alpine\nARG SRC\n"
                      "COPY --from=$SRC /a /a\n");
  CHECK(plan.stages.back().depends_on == std::vector<int>{0});
}

TEST_CASE("RUN --mount=from adds stage and image sources") {
  auto plan =
      plan_ok("FROM golang AS tools\nFROM alpine\n"
              "RUN --mount=from=tools,source=/go/bin,target=/tools "
              "--mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/t,from=ignored "
              "--mount=type=bind,from=busybox:1.36,target=/bb --mount=from=0,target=/zero true\n");
  const auto& last = plan.stages.back();
  REQUIRE(last.sources.size() == 4);
  CHECK(last.sources[1].use == SourceUse::mount_from);
  CHECK(last.sources[1].kind == SourceKind::stage);
  CHECK(last.sources[1].stage == 0);
  CHECK(last.sources[2].kind == SourceKind::image);
  CHECK(last.sources[2].image == "busybox:1.36");
  CHECK(last.sources[3].stage == 0);
  CHECK(last.depends_on == std::vector<int>{0});
  CHECK(plan.images == std::vector<std::string>{"golang", "alpine", "busybox:1.36"});

  CHECK(plan_error("FROM alpine AS a\nRUN --mount=from=b,target=/x true\nFROM alpine AS b\n"
                   "COPY --from=a / /\n")
            .message() ==
        "cannot mount from stage \"b\", it needs to be defined before current stage \"a\"");
}

TEST_CASE("a target keeps only the stages it needs, through COPY --from chains, in order") {
  const std::string text = "FROM alpine AS deps\n"  // 0
                           "FROM golang AS build\n" // 1
                           "COPY --from=deps /d /d\n"
                           "FROM alpine AS docs\n"     // 2: unrelated
                           "FROM build AS test\n"      // 3: base chain
                           "FROM scratch AS release\n" // 4
                           "COPY --from=test /bin/app /app\n";
  auto plan = plan_ok(text);
  std::vector<int> built;
  for (const auto& stage : plan.stages) {
    built.push_back(stage.index);
  }
  CHECK(built == std::vector<int>{0, 1, 3, 4});
  CHECK(plan.target == 4);
  CHECK(plan.stage_count == 5);
  CHECK(plan.stage(2) == nullptr);
  CHECK(plan.images == std::vector<std::string>{"alpine", "golang"});

  PlanOptions docs;
  docs.target = "DOCS";
  auto only_docs = plan_ok(text, docs);
  REQUIRE(only_docs.stages.size() == 1);
  CHECK(only_docs.stages[0].name == "docs");
  CHECK(only_docs.target == 2);
  CHECK(only_docs.global_args.get("TARGETSTAGE") == std::optional<std::string_view>("docs"));
}

TEST_CASE("an unknown --target is an error listing the stage names") {
  PlanOptions options;
  options.target = "prod";
  auto error = plan_error("FROM alpine AS build\nFROM alpine\nFROM alpine AS final\n", options);
  CHECK(error.code() == Code::not_found);
  CHECK(error.message() == "target stage \"prod\" could not be found (stages: build, final)");
}

TEST_CASE("StageScope: declared, ARG values, ENV overlay") {
  StageScope scope;
  scope.declare_arg("A", "1");
  scope.declare_arg("B", std::nullopt);
  scope.declare_arg("A", std::nullopt); // redeclaring without a value keeps the value
  scope.set_env("A", "env");
  CHECK(scope.declared_args() == std::vector<std::string>{"A", "B"});
  CHECK(scope.args().get("A") == std::optional<std::string_view>("1"));
  CHECK(scope.expansion_environment().get("A") == std::optional<std::string_view>("env"));
  CHECK_FALSE(scope.expansion_environment().contains("B"));
}

TEST_CASE("dump_plan is readable and stable") {
  const std::string text = "ARG BASE=alpine:3.19\n"
                           "FROM $BASE AS build\n"
                           "ARG BASE\n"
                           "ENV GOFLAGS=-trimpath\n"
                           "RUN make\n"
                           "FROM scratch\n"
                           "COPY --from=build /out /\n";
  const auto plan = plan_ok(text, with_args({{"BASE", "alpine:edge"}}));
  const std::string expected = R"(file: Dockerfile
target: stage 1
stages: 2 of 2 build
build-args:
  BASE=alpine:edge
global-args:
  BUILDPLATFORM=linux/amd64
  BUILDOS=linux
  BUILDARCH=amd64
  BUILDVARIANT=
  TARGETPLATFORM=linux/amd64
  TARGETOS=linux
  TARGETARCH=amd64
  TARGETVARIANT=
  TARGETSTAGE=
  BASE=alpine:edge
proxy-env:
stage 0 "build" (line 2)
  from: image alpine:edge  # FROM $BASE AS build
  platform: linux/amd64
  depends-on: none
  sources:
    base image alpine:edge (line 2)
  scope:
  instructions:
    3: ARG BASE
    4: ENV GOFLAGS=-trimpath
    5: RUN make
stage 1 (line 6)
  from: scratch  # FROM scratch
  platform: linux/amd64
  depends-on: 0
  sources:
    base scratch (line 6)
    copy-from stage 0 "build" (line 7)
  scope:
  instructions:
    7: COPY --from=build /out /
images:
  alpine:edge
warnings:
)";
  CHECK(dump_plan(plan) == expected);
  CHECK(dump_plan(plan_ok(text, with_args({{"BASE", "alpine:edge"}}))) == expected);
}

TEST_CASE("dump_plan shows a child stage's inherited scope") {
  const auto plan = plan_ok("FROM scratch AS a\nARG V=1\nARG W\nENV E=\"x y\"\nFROM a\n");
  const auto dump = dump_plan(plan);
  CHECK(dump.find("  scope:\n    arg V=1\n    arg W (no value)\n    env E=x y\n") !=
        std::string::npos);
  CHECK(dump.find("  from: stage 0 \"a\"  # FROM a\n") != std::string::npos);
}

TEST_CASE("a syntax directive is recorded and reported as not used") {
  const Plan plan = plan_ok("# syntax=docker/dockerfile:1.7\nFROM scratch\n");
  REQUIRE(plan.directives.syntax == "docker/dockerfile:1.7");
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0].message.find("\"docker/dockerfile:1.7\" is recorded but not used") !=
        std::string::npos);
  CHECK(plan_ok("FROM scratch\n").warnings.empty());
}
