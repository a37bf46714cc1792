// Typed instructions: conversion of every instruction from hand-built syntax-tree nodes (so these
// tests do not depend on the parser), flag and arity errors with their locations, and which
// fields expand_instruction() expands.
#include <minibuild/dockerfile/instructions.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using namespace minibuild;
using namespace minibuild::dockerfile;
using namespace std::chrono_literals;

namespace {

std::string upper(std::string text) {
  for (auto& c : text) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return text;
}

// A node as the parser shapes it; `original` is rebuilt from the parts, on line `line`.
Node make_node(std::string keyword, std::vector<std::string> args,
               std::vector<std::string> flags = {}, bool json = false, int line = 1) {
  Node node;
  node.original = upper(keyword);
  for (const auto& flag : flags) {
    node.original += " " + flag;
  }
  for (const auto& arg : args) {
    node.original += " " + arg;
  }
  node.keyword = std::move(keyword);
  node.args = std::move(args);
  node.flags = std::move(flags);
  node.json_form = json;
  node.start_line = line;
  node.end_line = line;
  return node;
}

Instruction parse_ok(const Node& node, std::vector<Warning>* warnings = nullptr) {
  auto result = parse_instruction(node, "Dockerfile", warnings);
  if (!result) {
    FAIL("unexpected error: " << result.error().what());
  }
  return *result;
}

Error parse_error(const Node& node) {
  auto result = parse_instruction(node, "Dockerfile");
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::dockerfile);
  return result.error();
}

Instruction expand_ok(const Instruction& instruction, const Environment& env,
                      std::set<std::string>* used = nullptr) {
  auto result = expand_instruction(instruction, env, ShellLexer(), used);
  if (!result) {
    FAIL("unexpected expansion error: " << result.error().what());
  }
  return *result;
}

Environment env_of(std::initializer_list<std::pair<std::string, std::string>> values) {
  Environment env;
  for (const auto& [name, value] : values) {
    env.set(name, value);
  }
  return env;
}

} // namespace

TEST_CASE("instruction names map both ways for all 18 instructions") {
  CHECK(instruction_kind("from") == InstructionKind::from);
  CHECK(instruction_kind("HealthCheck") == InstructionKind::healthcheck);
  CHECK_FALSE(instruction_kind("runn").has_value());
  int count = 0;
  for (auto kind :
       {InstructionKind::from, InstructionKind::run, InstructionKind::cmd, InstructionKind::label,
        InstructionKind::maintainer, InstructionKind::expose, InstructionKind::env,
        InstructionKind::add, InstructionKind::copy, InstructionKind::entrypoint,
        InstructionKind::volume, InstructionKind::user, InstructionKind::workdir,
        InstructionKind::arg, InstructionKind::onbuild, InstructionKind::stopsignal,
        InstructionKind::healthcheck, InstructionKind::shell}) {
    CHECK(instruction_kind(instruction_name(kind)) == kind);
    ++count;
  }
  CHECK(count == 18);
}

TEST_CASE("an unknown instruction suggests the nearest known one") {
  auto error = parse_error(make_node("runn", {"echo hi"}, {}, false, 7));
  CHECK(error.message() == "unknown instruction \"RUNN\" (did you mean RUN?)");
  REQUIRE(error.location());
  CHECK(*error.location() == SourceRange{"Dockerfile", 7, 1, 7});
  CHECK(parse_error(make_node("cpy", {"a", "b"})).message() ==
        "unknown instruction \"CPY\" (did you mean COPY?)");
  CHECK(parse_error(make_node("entrypont", {"x"})).message() ==
        "unknown instruction \"ENTRYPONT\" (did you mean ENTRYPOINT?)");
  // Too far from every instruction: no suggestion.
  CHECK(parse_error(make_node("frobnicate", {"x"})).message() ==
        "unknown instruction \"FROBNICATE\"");
}

TEST_CASE("suggest_nearest only proposes plausible typos") {
  const std::vector<std::string> names = {"from", "chown", "chmod", "link"};
  CHECK(suggest_nearest("frm", names) == std::optional<std::string>("from"));
  CHECK(suggest_nearest("CHOWN", names) == std::nullopt); // exact match: nothing to suggest
  CHECK(suggest_nearest("chwn", names) == std::optional<std::string>("chown"));
  CHECK(suggest_nearest("platform", names) == std::nullopt);
  CHECK(suggest_nearest("x", names) == std::nullopt);
}

// --- FROM -------------------------------------------------------------------------------------

TEST_CASE("FROM takes an image and an optional AS name, lower-cased") {
  auto plain = parse_ok(make_node("from", {"alpine:3.19"}));
  REQUIRE(plain.kind() == InstructionKind::from);
  CHECK(plain.as<FromInstruction>() == FromInstruction{"alpine:3.19", "", std::nullopt});

  std::vector<Warning> warnings;
  auto named = parse_ok(make_node("from", {"golang", "AS", "Build"}), &warnings);
  CHECK(named.as<FromInstruction>().stage_name == "build");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].message == "StageNameCasing: Stage name 'Build' should be lowercase");

  auto lower_as = parse_ok(make_node("from", {"golang", "as", "b"}));
  CHECK(lower_as.as<FromInstruction>().stage_name == "b");
}

TEST_CASE("FROM --platform is its only flag") {
  auto from = parse_ok(make_node("from", {"alpine"}, {"--platform=$BUILDPLATFORM"}));
  CHECK(from.as<FromInstruction>().platform == std::optional<std::string>("$BUILDPLATFORM"));
  auto error = parse_error(make_node("from", {"alpine"}, {"--platfrom=linux/amd64"}));
  CHECK(error.what() ==
        "Dockerfile:1:6: FROM: unknown flag: --platfrom (did you mean --platform?)");
  CHECK(parse_error(make_node("from", {"alpine"}, {"--platform"})).message() ==
        "missing a value on flag: --platform");
}

TEST_CASE("FROM needs one or three arguments") {
  CHECK(parse_error(make_node("from", {"alpine", "builder"})).message() ==
        "FROM requires either one or three arguments");
  CHECK(parse_error(make_node("from", {"alpine", "TO", "builder"})).message() ==
        "FROM requires either one or three arguments");
  CHECK(parse_error(make_node("from", {"a", "as", "b", "c"})).message() ==
        "FROM requires either one or three arguments");
}

TEST_CASE("FROM stage names must match the stage-name rule") {
  for (std::string bad : {"1st", "my_stage!", "-x", "a/b", "a:b"}) {
    auto error = parse_error(make_node("from", {"alpine", "AS", bad}));
    CHECK(error.message() == "invalid name for build stage: \"" + bad +
                                 "\", name can't start with a number or contain symbols "
                                 "(stage names must match ^[a-z][a-z0-9-_.]*$)");
  }
  for (std::string good : {"a", "build-1", "x_y.z", "ABC"}) {
    CHECK(parse_instruction(make_node("from", {"alpine", "AS", good}), "Dockerfile"));
  }
}

// --- RUN --------------------------------------------------------------------------------------

TEST_CASE("RUN keeps shell and exec forms and heredocs") {
  auto shell = parse_ok(make_node("run", {"echo $HOME && make"}));
  const auto& line = shell.as<RunInstruction>().command;
  CHECK(line.shell_form);
  CHECK(line.args == std::vector<std::string>{"echo $HOME && make"});

  auto exec = parse_ok(make_node("run", {"make", "-j2"}, {}, true));
  CHECK_FALSE(exec.as<RunInstruction>().command.shell_form);
  CHECK(exec.as<RunInstruction>().command.args == std::vector<std::string>{"make", "-j2"});

  auto node = make_node("run", {"<<EOF"});
  node.heredocs.push_back(Heredoc{"EOF", "echo hi\n", true, false, std::nullopt, 2, 3});
  auto heredoc = parse_ok(node);
  REQUIRE(heredoc.as<RunInstruction>().command.heredocs.size() == 1);
  CHECK(heredoc.as<RunInstruction>().command.heredocs[0].content == "echo hi\n");
}

TEST_CASE("RUN --network and --security take BuildKit's values") {
  auto run = parse_ok(make_node("run", {"x"}, {"--network=none", "--security=insecure"}));
  CHECK(run.as<RunInstruction>().network == RunNetwork::none);
  CHECK(run.as<RunInstruction>().security == RunSecurity::insecure);
  auto defaults = parse_ok(make_node("run", {"x"}));
  CHECK(defaults.as<RunInstruction>().network == RunNetwork::default_);
  CHECK(defaults.as<RunInstruction>().security == RunSecurity::sandbox);
  CHECK(parse_error(make_node("run", {"x"}, {"--network=hots"})).message() ==
        "invalid network mode \"hots\" (did you mean host?)");
  CHECK(parse_error(make_node("run", {"x"}, {"--security=root"})).message() ==
        "security \"root\" is not valid (sandbox or insecure)");
  CHECK(parse_error(make_node("run", {"x"}, {"--network=host", "--network=none"})).message() ==
        "duplicate flag specified: --network");
}

TEST_CASE("RUN --mount is repeatable and parsed into typed mounts") {
  auto run = parse_ok(make_node(
      "run", {"go build"},
      {"--mount=type=cache,target=/root/.cache,id=gocache,sharing=locked,mode=0755,uid=1000",
       "--mount=type=bind,from=builder,source=/out,target=/in,rw",
       "--mount=type=tmpfs,target=/tmp,size=64m", "--mount=type=secret,id=token,env=TOKEN,required",
       "--mount=type=ssh,required=true"}));
  const auto& mounts = run.as<RunInstruction>().mounts;
  REQUIRE(mounts.size() == 5);

  CHECK(mounts[0].type == MountType::cache);
  CHECK(mounts[0].target == "/root/.cache");
  CHECK(mounts[0].id == "gocache");
  CHECK(mounts[0].sharing == MountSharing::locked);
  CHECK(mounts[0].mode == std::optional<std::uint32_t>(0755));
  CHECK(mounts[0].uid == std::optional<std::uint32_t>(1000));
  CHECK_FALSE(mounts[0].read_only); // cache defaults to read-write

  CHECK(mounts[1].type == MountType::bind);
  CHECK(mounts[1].from == "builder");
  CHECK(mounts[1].source == "/out");
  CHECK(mounts[1].target == "/in");
  CHECK_FALSE(mounts[1].read_only);

  CHECK(mounts[2].type == MountType::tmpfs);
  CHECK(mounts[2].size == std::optional<std::int64_t>(64 * 1024 * 1024));

  CHECK(mounts[3].type == MountType::secret);
  CHECK(mounts[3].env == std::optional<std::string>("TOKEN"));
  CHECK(mounts[3].required);
  CHECK(mounts[3].read_only);

  CHECK(mounts[4].type == MountType::ssh);
  CHECK(mounts[4].required);
}

TEST_CASE("RUN --mount defaults: bind, read-only, CSV quoting") {
  auto mount = parse_run_mount("target=/src");
  REQUIRE(mount);
  CHECK(mount->type == MountType::bind);
  CHECK(mount->read_only);
  CHECK(mount->resolved);

  auto quoted = parse_run_mount("type=bind,\"target=/a,b\",source=x");
  REQUIRE(quoted);
  CHECK(quoted->target == "/a,b");
  CHECK(quoted->source == "x");

  auto aliases = parse_run_mount("src=/a,dst=/b,ro=false");
  REQUIRE(aliases);
  CHECK(aliases->source == "/a");
  CHECK(aliases->target == "/b");
  CHECK_FALSE(aliases->read_only);
}

TEST_CASE("RUN --mount errors follow BuildKit") {
  auto message = [](std::string_view spec) {
    auto result = parse_run_mount(spec);
    REQUIRE_FALSE(result);
    return result.error().message();
  };
  CHECK(message("type=bnd,target=/x") == "unsupported mount type \"bnd\" (did you mean bind?)");
  CHECK(message("type=cache,tagret=/x") ==
        "unexpected key 'tagret' in 'tagret=/x' (did you mean target?)");
  CHECK(message("type=cache,target=/x,weird") == "invalid field 'weird' must be a key=value pair");
  CHECK(message("type=bind,target=/x,mode=0644") == "mode not allowed for \"bind\" type mounts");
  CHECK(message("type=tmpfs,target=/x,uid=1") == "uid not allowed for \"tmpfs\" type mounts");
  CHECK(message("type=secret") == "invalid secret mount. one of source, target required");
  CHECK(message("type=secret,id=a,source=b") == "both source and id can't be set");
  CHECK(message("type=secret,id=a,from=x") == "secret mount should not have a from");
  CHECK(message("type=bind,target=/x,sharing=locked") ==
        "invalid cache sharing set for bind mount");
  CHECK(message("type=cache,target=/x,sharing=privat") ==
        "unsupported sharing value \"privat\" (did you mean private?)");
  CHECK(message("type=bind,target=/x,required") ==
        "unexpected key 'required' for mount type 'bind'");
  CHECK(message("type=cache,target=/x,size=1g") == "unexpected key 'size' for mount type 'cache'");
  CHECK(message("type=tmpfs,target=/x,size=lots") == "invalid value for size: lots");
  CHECK(message("type=cache,target=/x,mode=999") == "invalid value 999 for mode");
  CHECK(message("type=bind,target=/x,ro=maybe") == "invalid value for ro: maybe");
  CHECK(message("type=bind,from=$STAGE,target=/x") ==
        "'from' doesn't support variable expansion, define alias stage instead");
  CHECK(message("type=bind,\"target=/x") ==
        "failed to parse csv mounts: extraneous or missing \" in quoted-field");

  // The error reaches the user with the instruction and the flag's column.
  auto error = parse_error(make_node("run", {"x"}, {"--mount=type=bnd"}));
  CHECK(error.what() == "Dockerfile:1:5: RUN: unsupported mount type \"bnd\" (did you mean bind?)");
}

TEST_CASE("RUN --mount values with variables are checked after expansion") {
  auto run = parse_ok(make_node("run", {"x"}, {"--mount=type=$T,target=$DIR,mode=$MODE"}));
  const auto& mount = run.as<RunInstruction>().mounts.at(0);
  CHECK_FALSE(mount.resolved);
  CHECK(mount.target == "$DIR");

  auto expanded = expand_ok(run, env_of({{"T", "cache"}, {"DIR", "/cache"}, {"MODE", "0700"}}));
  const auto& done = expanded.as<RunInstruction>().mounts.at(0);
  CHECK(done.resolved);
  CHECK(done.type == MountType::cache);
  CHECK(done.target == "/cache");
  CHECK(done.mode == std::optional<std::uint32_t>(0700));
  // The command itself is left to the shell.
  CHECK(expanded.as<RunInstruction>().command == run.as<RunInstruction>().command);

  auto bad = expand_instruction(run, env_of({{"T", "bind"}, {"DIR", "/x"}, {"MODE", "0700"}}),
                                ShellLexer());
  REQUIRE_FALSE(bad);
  CHECK(bad.error().what() == "Dockerfile:1:1: RUN: mode not allowed for \"bind\" type mounts");
}

// --- flags, generally -------------------------------------------------------------------------

TEST_CASE("bool flags accept --flag, --flag=true and --flag=false in any case") {
  CHECK(parse_ok(make_node("copy", {"a", "b"}, {"--link"})).as<CopyInstruction>().link);
  CHECK(parse_ok(make_node("copy", {"a", "b"}, {"--link=TRUE"})).as<CopyInstruction>().link);
  CHECK_FALSE(parse_ok(make_node("copy", {"a", "b"}, {"--link=false"})).as<CopyInstruction>().link);
  CHECK(parse_error(make_node("copy", {"a", "b"}, {"--link=yes"})).message() ==
        "expecting boolean value for flag --link, not: yes");
  CHECK(parse_error(make_node("copy", {"a", "b"}, {"--link="})).message() ==
        "missing a value on flag: --link");
}

TEST_CASE("string flags need =value; only repeatable flags may repeat") {
  CHECK(parse_error(make_node("copy", {"a", "b"}, {"--from"})).message() ==
        "missing a value on flag: --from");
  CHECK(parse_error(make_node("copy", {"a", "b"}, {"--from=a", "--from=b"})).message() ==
        "duplicate flag specified: --from");
  auto copy = parse_ok(make_node("copy", {"a", "b"}, {"--exclude=*.md", "--exclude=tmp/"}));
  CHECK(copy.as<CopyInstruction>().excludes == std::vector<std::string>{"*.md", "tmp/"});
}

TEST_CASE("an unknown flag names the instruction, line and column") {
  auto error = parse_error(make_node("copy", {"a", "b"}, {"--link", "--chwon=1:1"}, false, 4));
  CHECK(error.message() == "unknown flag: --chwon (did you mean --chown?)");
  CHECK(error.context() == std::vector<std::string>{"COPY"});
  REQUIRE(error.location());
  CHECK(*error.location() == SourceRange{"Dockerfile", 4, 13, 4});
  CHECK(error.what() == "Dockerfile:4:13: COPY: unknown flag: --chwon (did you mean --chown?)");

  // Instructions without flags refuse any.
  CHECK(parse_error(make_node("env", {"A", "1", "="}, {"--foo"})).message() ==
        "unknown flag: --foo");
  CHECK(parse_error(make_node("workdir", {"/x"}, {"--parents"})).message() ==
        "unknown flag: --parents");
}

TEST_CASE("a multi-line instruction's error points at its first line, column 1") {
  auto node = make_node("copy", {"a", "b"}, {"--bogus=1"});
  node.start_line = 3;
  node.end_line = 5;
  auto error = parse_error(node);
  CHECK(*error.location() == SourceRange{"Dockerfile", 3, 1, 5});
}

// --- COPY / ADD -------------------------------------------------------------------------------

TEST_CASE("COPY takes sources, a destination and its flags") {
  auto copy = parse_ok(
      make_node("copy", {"a.txt", "dir/", "/dest/"},
                {"--from=builder", "--chown=1000:1000", "--chmod=0755", "--link", "--parents"}));
  const auto& c = copy.as<CopyInstruction>();
  CHECK(c.sources == std::vector<std::string>{"a.txt", "dir/"});
  CHECK(c.dest == "/dest/");
  CHECK(c.from == "builder");
  CHECK(c.chown == "1000:1000");
  CHECK(c.chmod == "0755");
  CHECK(c.link);
  CHECK(c.parents);

  CHECK(parse_error(make_node("copy", {"onlyone"})).message() ==
        "COPY requires at least two arguments, but only one was provided. Destination could not "
        "be determined");
  CHECK(parse_error(make_node("copy", {"a", "b"}, {"--checksum=sha256:00"})).message() ==
        "unknown flag: --checksum");
}

TEST_CASE("COPY --chmod is octal up to 07777 or symbolic") {
  for (std::string good : {"755", "0644", "7777", "u+x", "u=rwx,go=rx", "a-w"}) {
    CHECK(parse_instruction(make_node("copy", {"a", "b"}, {"--chmod=" + good}), "Dockerfile"));
  }
  CHECK(parse_error(make_node("copy", {"a", "b"}, {"--chmod=17777"})).message() ==
        "invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777");
  CHECK_FALSE(parse_instruction(make_node("copy", {"a", "b"}, {"--chmod=abc"}), "Dockerfile"));
  // With a variable it is checked after expansion.
  CHECK(parse_instruction(make_node("copy", {"a", "b"}, {"--chmod=$MODE"}), "Dockerfile"));
}

TEST_CASE("COPY heredoc sources become inline files; a heredoc destination is refused") {
  auto node = make_node("copy", {"<<EOF", "<<-'RAW'", "/etc/"});
  node.heredocs.push_back(Heredoc{"EOF", "x=$X\n", true, false, std::nullopt, 2, 3});
  node.heredocs.push_back(Heredoc{"RAW", "y=$Y\n", false, true, std::nullopt, 4, 5});
  auto copy = parse_ok(node);
  const auto& c = copy.as<CopyInstruction>();
  CHECK(c.sources.empty());
  REQUIRE(c.inline_sources.size() == 2);
  CHECK(c.inline_sources[0] == InlineSource{"EOF", "x=$X\n", true});
  CHECK(c.inline_sources[1] == InlineSource{"RAW", "y=$Y\n", false});

  CHECK(parse_error(make_node("copy", {"a", "<<EOF"})).message() ==
        "COPY cannot accept a heredoc as a destination");
}

TEST_CASE("ADD takes its own flag set") {
  auto add = parse_ok(make_node(
      "add", {"https://example.com/a.tgz", "/opt/"},
      {"--checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d",
       "--chmod=644", "--chown=app", "--keep-git-dir=true", "--link", "--unpack=false",
       "--exclude=*.txt"}));
  const auto& a = add.as<AddInstruction>();
  CHECK(a.sources == std::vector<std::string>{"https://example.com/a.tgz"});
  CHECK(a.checksum.rfind("sha256:", 0) == 0);
  CHECK(a.keep_git_dir);
  CHECK(a.link);
  CHECK(a.unpack == std::optional<bool>(false));
  CHECK(a.excludes == std::vector<std::string>{"*.txt"});
  CHECK_FALSE(parse_ok(make_node("add", {"a", "b"})).as<AddInstruction>().unpack.has_value());

  CHECK(parse_error(make_node("add", {"a", "b"}, {"--from=x"})).message() ==
        "unknown flag: --from");
  CHECK(parse_error(make_node("add", {"a", "b"}, {"--checksum=md5:abc"})).message() ==
        "invalid --checksum \"md5:abc\": unsupported digest algorithm");
  CHECK(parse_error(make_node("add", {"a", "b"}, {"--checksum=sha256:abc"})).message() ==
        "invalid --checksum \"sha256:abc\": invalid checksum digest length or characters");
  CHECK(parse_error(make_node("add", {"a"})).message() ==
        "ADD requires at least two arguments, but only one was provided. Destination could not "
        "be determined");
}

// --- ENV / LABEL / ARG ------------------------------------------------------------------------

TEST_CASE("ENV and LABEL turn the parser's triples into pairs") {
  std::vector<Warning> warnings;
  auto env = parse_ok(make_node("env", {"A", "1", "=", "B", "\"two words\"", "="}), &warnings);
  CHECK(env.as<EnvInstruction>().variables ==
        std::vector<KeyValue>{{"A", "1", false}, {"B", "\"two words\"", false}});
  CHECK(warnings.empty());

  auto legacy = parse_ok(make_node("env", {"PATH", "$PATH:/opt/bin", ""}), &warnings);
  CHECK(legacy.as<EnvInstruction>().variables ==
        std::vector<KeyValue>{{"PATH", "$PATH:/opt/bin", true}});
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].message == "LegacyKeyValueFormat: \"ENV key=value\" should be used instead "
                               "of legacy \"ENV key value\" format");

  auto label = parse_ok(make_node("label", {"org.opencontainers.image.title", "x", "="}));
  CHECK(label.as<LabelInstruction>().labels.at(0).key == "org.opencontainers.image.title");

  CHECK(parse_error(make_node("env", {})).message() == "ENV requires at least one argument");
  CHECK(parse_error(make_node("label", {"", "x", "="})).message() ==
        "LABEL names can not be blank");
  CHECK(parse_error(make_node("env", {"A", "1"})).message() ==
        "Bad input to ENV, too many arguments");
}

TEST_CASE("ARG declares names with optional defaults; names are validated") {
  auto arg = parse_ok(make_node("arg", {"VERSION=1.2", "DEBUG", "EMPTY=", "Q=\"a b\""}));
  CHECK(arg.as<ArgInstruction>().args ==
        std::vector<ArgDeclaration>{
            {"VERSION", "1.2"}, {"DEBUG", std::nullopt}, {"EMPTY", ""}, {"Q", "\"a b\""}});
  CHECK(parse_error(make_node("arg", {})).message() == "ARG requires at least one argument");
  CHECK(parse_error(make_node("arg", {"=x"})).message() == "ARG names can not be blank");
  const std::string rule =
      "\" is invalid: a name starts with a letter or '_' and holds only letters, digits and '_'";
  CHECK(parse_error(make_node("arg", {"my-arg=1"})).message() == "ARG name \"my-arg" + rule);
  CHECK(parse_error(make_node("arg", {"9LIVES"})).message() == "ARG name \"9LIVES" + rule);
  CHECK(parse_instruction(make_node("arg", {"_private", "lower_case=1"}), "Dockerfile"));
}

// --- the other instructions -------------------------------------------------------------------

TEST_CASE("CMD and ENTRYPOINT keep exec, shell and empty forms") {
  auto cmd = parse_ok(make_node("cmd", {"nginx", "-g", "daemon off;"}, {}, true));
  CHECK(cmd.as<CmdInstruction>().command == CommandLine{{"nginx", "-g", "daemon off;"}, false, {}});
  auto shell = parse_ok(make_node("cmd", {"echo $HOME"}));
  CHECK(shell.as<CmdInstruction>().command == CommandLine{{"echo $HOME"}, true, {}});
  auto reset = parse_ok(make_node("entrypoint", {}, {}, true));
  CHECK(reset.as<EntrypointInstruction>().command.args.empty());
  auto entry = parse_ok(make_node("entrypoint", {"/init"}, {}, true));
  CHECK(entry.as<EntrypointInstruction>().command.args == std::vector<std::string>{"/init"});
}

TEST_CASE("MAINTAINER works and is reported as deprecated") {
  std::vector<Warning> warnings;
  auto maintainer =
      parse_ok(make_node("maintainer", {"Jane <jane@example.com>"}, {}, false, 2), &warnings);
  CHECK(maintainer.as<MaintainerInstruction>().name == "Jane <jane@example.com>");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].message ==
        "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label");
  CHECK(warnings[0].location.line == 2);
  CHECK(parse_error(make_node("maintainer", {})).message() ==
        "MAINTAINER requires exactly one argument");
}

TEST_CASE("EXPOSE checks ports, ranges and protocols") {
  auto expose = parse_ok(make_node("expose", {"80", "443/tcp", "53/UDP", "8000-8010/sctp"}));
  CHECK(expose.as<ExposeInstruction>().ports ==
        std::vector<std::string>{"80", "443/tcp", "53/UDP", "8000-8010/sctp"});
  CHECK(parse_error(make_node("expose", {"80/http"})).message() == "invalid proto: http");
  CHECK(parse_error(make_node("expose", {"70000"})).message() == "invalid containerPort: 70000");
  CHECK(parse_error(make_node("expose", {"90-80"})).message() == "invalid range specified: 90-80");
  CHECK(parse_error(make_node("expose", {"abc"})).message() == "invalid containerPort: abc");
  CHECK(parse_error(make_node("expose", {})).message() == "EXPOSE requires at least one argument");
  CHECK(parse_instruction(make_node("expose", {"$PORT"}), "Dockerfile"));
}

TEST_CASE("VOLUME, USER, WORKDIR and STOPSIGNAL check their single arguments") {
  auto volume = parse_ok(make_node("volume", {"/data", "/logs"}, {}, true));
  CHECK(volume.as<VolumeInstruction>().paths == std::vector<std::string>{"/data", "/logs"});
  CHECK(parse_error(make_node("volume", {" "}, {}, true)).message() ==
        "VOLUME specified can not be an empty string");
  CHECK(parse_error(make_node("volume", {})).message() == "VOLUME requires at least one argument");

  CHECK(parse_ok(make_node("user", {"app:staff"})).as<UserInstruction>().user == "app:staff");
  CHECK(parse_error(make_node("user", {":staff"})).message() ==
        "USER requires a user name or uid before ':'");
  CHECK(parse_error(make_node("user", {"a:b:c"})).message() ==
        "USER takes user[:group], not a:b:c");
  CHECK(parse_error(make_node("user", {})).message() == "USER requires exactly one argument");

  CHECK(parse_ok(make_node("workdir", {"/src"})).as<WorkdirInstruction>().path == "/src");
  CHECK(parse_error(make_node("workdir", {})).message() == "WORKDIR requires exactly one argument");

  for (std::string good : {"SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX", "SIGWINCH", "$SIG"}) {
    CHECK(parse_instruction(make_node("stopsignal", {good}), "Dockerfile"));
  }
  CHECK(parse_error(make_node("stopsignal", {"SIGFOO"})).message() == "invalid signal: SIGFOO");
  CHECK(parse_error(make_node("stopsignal", {"0"})).message() == "invalid signal: 0");
}

TEST_CASE("SHELL requires the JSON form") {
  auto shell = parse_ok(make_node("shell", {"/bin/bash", "-o", "pipefail", "-c"}, {}, true));
  CHECK(shell.as<ShellInstruction>().shell ==
        std::vector<std::string>{"/bin/bash", "-o", "pipefail", "-c"});
  CHECK(parse_error(make_node("shell", {"/bin/bash -c"})).message() ==
        "SHELL requires the arguments to be in JSON form");
  CHECK(parse_error(make_node("shell", {}, {}, true)).message() ==
        "SHELL requires at least one argument");
}

TEST_CASE("ONBUILD validates its trigger and refuses ONBUILD, FROM and MAINTAINER") {
  auto node = make_node("onbuild", {});
  node.original = "ONBUILD RUN make install";
  node.nested.push_back(make_node("run", {"make install"}));
  auto onbuild = parse_ok(node);
  CHECK(onbuild.as<OnbuildInstruction>().expression == "RUN make install");
  CHECK(onbuild.as<OnbuildInstruction>().trigger.keyword == "run");

  for (std::string keyword : {"onbuild", "from", "maintainer"}) {
    auto bad = make_node("onbuild", {});
    bad.nested.push_back(make_node(keyword, {"x"}));
    auto error = parse_error(bad);
    if (keyword == "onbuild") {
      CHECK(error.message() == "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    } else {
      CHECK(error.message() == upper(keyword) + " isn't allowed as an ONBUILD trigger");
    }
  }
  auto bad_flag = make_node("onbuild", {});
  bad_flag.nested.push_back(make_node("copy", {"a", "b"}, {"--form=x"}));
  CHECK(parse_error(bad_flag).message() == "unknown flag: --form (did you mean --from?)");
  CHECK(parse_error(make_node("onbuild", {})).message() ==
        "ONBUILD requires at least one argument");
}

TEST_CASE("HEALTHCHECK NONE, CMD shell and exec forms") {
  auto none = parse_ok(make_node("healthcheck", {"NONE"}));
  CHECK(none.as<HealthcheckInstruction>().type == HealthcheckType::none);
  CHECK(none.as<HealthcheckInstruction>().test == std::vector<std::string>{"NONE"});
  CHECK(parse_error(make_node("healthcheck", {"NONE", "x"})).message() ==
        "HEALTHCHECK NONE takes no arguments");

  auto shell = parse_ok(make_node("healthcheck", {"CMD", "curl -f http://localhost/"}));
  CHECK(shell.as<HealthcheckInstruction>().type == HealthcheckType::cmd_shell);
  CHECK(shell.as<HealthcheckInstruction>().test ==
        std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/"});

  auto exec = parse_ok(make_node("healthcheck", {"cmd", "/check", "--quiet"}, {}, true));
  CHECK(exec.as<HealthcheckInstruction>().test ==
        std::vector<std::string>{"CMD", "/check", "--quiet"});

  CHECK(parse_error(make_node("healthcheck", {"CMD"})).message() ==
        "Missing command after HEALTHCHECK CMD");
  CHECK(parse_error(make_node("healthcheck", {"PING", "x"})).message() ==
        "Unknown type \"PING\" in HEALTHCHECK (try CMD)");
  CHECK(parse_error(make_node("healthcheck", {})).message() ==
        "HEALTHCHECK requires at least one argument");
}

TEST_CASE("HEALTHCHECK durations are Go durations, retries an integer >= 0") {
  auto health = parse_ok(make_node("healthcheck", {"CMD", "true"},
                                   {"--interval=1m30s", "--timeout=3s", "--start-period=0",
                                    "--start-interval=500ms", "--retries=5"}));
  const auto& h = health.as<HealthcheckInstruction>();
  CHECK(h.interval == 90s);
  CHECK(h.timeout == 3s);
  CHECK(h.start_period == 0s);
  CHECK(h.start_interval == 500ms);
  CHECK(h.retries == 5);
  CHECK(parse_ok(make_node("healthcheck", {"CMD", "x"}, {"--retries=0"}))
            .as<HealthcheckInstruction>()
            .retries == 0);

  auto message = [](std::string flag) {
    return parse_error(make_node("healthcheck", {"CMD", "x"}, {flag})).message();
  };
  CHECK(message("--retries=-1") == "--retries cannot be negative (-1)");
  CHECK(message("--retries=many") == "--retries: invalid value \"many\": not a 32-bit integer");
  CHECK(message("--interval=5") == "--interval: time: missing unit in duration \"5\"");
  CHECK(message("--timeout=-5s") == "--timeout cannot be less than 1ms (got -5s)");
  CHECK(message("--start-period=10us") == "--start-period cannot be less than 1ms (got 10us)");
  CHECK(message("--interval=5x") == "--interval: time: unknown unit \"x\" in duration \"5x\"");
  CHECK(message("--intervl=5s") == "unknown flag: --intervl (did you mean --interval?)");
}

TEST_CASE("parse_go_duration follows time.ParseDuration") {
  CHECK(*parse_go_duration("0") == 0ns);
  CHECK(*parse_go_duration("1h2m3s") == 1h + 2min + 3s);
  CHECK(*parse_go_duration("1.5h") == 90min);
  CHECK(*parse_go_duration(".5s") == 500ms);
  CHECK(*parse_go_duration("300ms") == 300ms);
  CHECK(*parse_go_duration("2us") == 2us);
  CHECK(*parse_go_duration("2\xc2\xb5s") == 2us);
  CHECK(*parse_go_duration("-1m") == -1min);
  CHECK(*parse_go_duration("+10ns") == 10ns);
  CHECK(*parse_go_duration("2562047h") == 2562047h);
  for (std::string bad : {"", "s", ".s", "1", "1.2.3s", "abc", "9999999999999h", "-"}) {
    CHECK_FALSE(parse_go_duration(bad));
  }
  CHECK(parse_go_duration("abc").error().message() == "time: invalid duration \"abc\"");
}

// --- expansion --------------------------------------------------------------------------------

TEST_CASE("expansion: FROM base and --platform") {
  auto from = parse_ok(make_node("from", {"${IMAGE}:${TAG:-latest}"}, {"--platform=$P"}));
  std::set<std::string> used;
  auto expanded = expand_ok(from, env_of({{"IMAGE", "alpine"}, {"P", "linux/arm64"}}), &used);
  CHECK(expanded.as<FromInstruction>().base == "alpine:latest");
  CHECK(expanded.as<FromInstruction>().platform == std::optional<std::string>("linux/arm64"));
  CHECK(used == std::set<std::string>{"IMAGE", "P"});
}

TEST_CASE("expansion: ENV, LABEL keys and values; ARG names and defaults") {
  const auto env = env_of({{"V", "1.2"}, {"K", "version"}});
  auto e = expand_ok(parse_ok(make_node("env", {"$K", "\"v$V\"", "="})), env);
  CHECK(e.as<EnvInstruction>().variables == std::vector<KeyValue>{{"version", "v1.2", false}});
  auto l = expand_ok(parse_ok(make_node("label", {"org.$K", "'$V'", "="})), env);
  CHECK(l.as<LabelInstruction>().labels == std::vector<KeyValue>{{"org.version", "$V", false}});
  auto a = expand_ok(parse_ok(make_node("arg", {"X=${V}-rc", "Y"})), env);
  CHECK(a.as<ArgInstruction>().args ==
        std::vector<ArgDeclaration>{{"X", "1.2-rc"}, {"Y", std::nullopt}});
}

TEST_CASE("expansion: EXPOSE splits words and re-checks ports") {
  auto expose = parse_ok(make_node("expose", {"$PORTS", "9000"}));
  auto expanded = expand_ok(expose, env_of({{"PORTS", "80 443/tcp"}}));
  CHECK(expanded.as<ExposeInstruction>().ports ==
        std::vector<std::string>{"80", "443/tcp", "9000"});
  auto bad = expand_instruction(expose, env_of({{"PORTS", "http"}}), ShellLexer());
  REQUIRE_FALSE(bad);
  CHECK(bad.error().what() == "Dockerfile:1:1: EXPOSE: invalid containerPort: http");
}

TEST_CASE("expansion: USER, WORKDIR, STOPSIGNAL, VOLUME") {
  const auto env = env_of({{"UID", "1000"}, {"HOME", "/home/app"}, {"SIG", "SIGINT"}});
  CHECK(expand_ok(parse_ok(make_node("user", {"$UID:$UID"})), env).as<UserInstruction>().user ==
        "1000:1000");
  CHECK(
      expand_ok(parse_ok(make_node("workdir", {"$HOME/src"})), env).as<WorkdirInstruction>().path ==
      "/home/app/src");
  CHECK(expand_ok(parse_ok(make_node("stopsignal", {"$SIG"})), env)
            .as<StopsignalInstruction>()
            .signal == "SIGINT");
  CHECK(expand_ok(parse_ok(make_node("volume", {"$HOME", "/data"})), env)
            .as<VolumeInstruction>()
            .paths == std::vector<std::string>{"/home/app", "/data"});
  CHECK(expand_ok(parse_ok(make_node("user", {"$NOPE"})), env).as<UserInstruction>().user == "");
  auto bad_user =
      expand_instruction(parse_ok(make_node("user", {"$NOPE:$UID"})), env, ShellLexer());
  REQUIRE_FALSE(bad_user);
  CHECK(bad_user.error().message() == "USER requires a user name or uid before ':'");
  auto bad = expand_instruction(parse_ok(make_node("stopsignal", {"$NOPE"})), env, ShellLexer());
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message() == "invalid signal: ");
}

TEST_CASE("expansion: COPY and ADD sources, dest, --from, --chown, --chmod, --checksum") {
  const auto env = env_of({{"SRC", "app"},
                           {"DST", "/opt"},
                           {"U", "www"},
                           {"M", "0640"},
                           {"STAGE", "builder"},
                           {"SUM", "sha256:" + std::string(64, 'a')}});
  auto copy = expand_ok(
      parse_ok(make_node("copy", {"$SRC/*.go", "${DST}/"},
                         {"--from=$STAGE", "--chown=$U", "--chmod=$M", "--exclude=$SRC/tmp"})),
      env);
  const auto& c = copy.as<CopyInstruction>();
  CHECK(c.sources == std::vector<std::string>{"app/*.go"});
  CHECK(c.dest == "/opt/");
  CHECK(c.from == "builder");
  CHECK(c.chown == "www");
  CHECK(c.chmod == "0640");
  CHECK(c.excludes == std::vector<std::string>{"app/tmp"});

  auto add = expand_ok(
      parse_ok(make_node("add", {"https://x/$SRC.tgz", "$DST"}, {"--checksum=$SUM"})), env);
  CHECK(add.as<AddInstruction>().sources == std::vector<std::string>{"https://x/app.tgz"});
  CHECK(add.as<AddInstruction>().checksum == "sha256:" + std::string(64, 'a'));
}

TEST_CASE("expansion: heredoc bodies only when the delimiter was unquoted, quotes kept") {
  auto node = make_node("copy", {"<<EOF", "<<'RAW'", "/etc/"});
  node.heredocs.push_back(Heredoc{"EOF", "name=\"$NAME\"\n", true, false, std::nullopt, 2, 3});
  node.heredocs.push_back(Heredoc{"RAW", "name=$NAME\n", false, false, std::nullopt, 4, 5});
  auto expanded = expand_ok(parse_ok(node), env_of({{"NAME", "web"}}));
  const auto& sources = expanded.as<CopyInstruction>().inline_sources;
  CHECK(sources.at(0).content == "name=\"web\"\n");
  CHECK(sources.at(1).content == "name=$NAME\n");
}

TEST_CASE("expansion leaves RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD alone") {
  const auto env = env_of({{"X", "expanded"}});
  std::vector<Node> nodes = {make_node("run", {"echo $X"}),
                             make_node("cmd", {"echo", "$X"}, {}, true),
                             make_node("entrypoint", {"$X"}),
                             make_node("shell", {"/bin/$X", "-c"}, {}, true),
                             make_node("healthcheck", {"CMD", "test $X"}),
                             make_node("maintainer", {"$X"})};
  auto onbuild = make_node("onbuild", {});
  onbuild.original = "ONBUILD RUN echo $X";
  onbuild.nested.push_back(make_node("run", {"echo $X"}));
  nodes.push_back(onbuild);
  for (const auto& node : nodes) {
    auto instruction = parse_ok(node);
    std::set<std::string> used;
    CHECK(expand_ok(instruction, env, &used) == instruction);
    CHECK(used.empty());
  }
}

TEST_CASE("expansion errors carry the instruction location and name") {
  auto user = parse_ok(make_node("user", {"${NAME:?must be set}"}, {}, false, 9));
  auto error = expand_instruction(user, Environment(), ShellLexer());
  REQUIRE_FALSE(error);
  REQUIRE(error.error().location());
  CHECK(error.error().location()->line == 9);
  CHECK(error.error().context() == std::vector<std::string>{"USER"});
}
