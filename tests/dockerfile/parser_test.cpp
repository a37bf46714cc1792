// Rule-by-rule tests of the Dockerfile parser (BuildKit's rules: directives, line handling,
// flags, argument shapes, JSON forms, heredocs), its errors and warnings, and inputs that must
// never crash it or make it slow.
#include <minibuild/dockerfile/parser.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

using minibuild::Code;
using minibuild::dockerfile::dump_buildkit;
using minibuild::dockerfile::dump_json;
using minibuild::dockerfile::Heredoc;
using minibuild::dockerfile::Node;
using minibuild::dockerfile::parse_dockerfile;
using minibuild::dockerfile::ParsedDockerfile;

namespace {

ParsedDockerfile parse_ok(const std::string& text) {
  auto parsed = parse_dockerfile(text, "Dockerfile");
  if (!parsed) {
    FAIL("unexpected error: " << parsed.error().what());
  }
  return std::move(*parsed);
}

/// The BuildKit dump of `text`.
std::string dump(const std::string& text) {
  return dump_buildkit(parse_ok(text));
}

minibuild::Error parse_error(const std::string& text) {
  auto parsed = parse_dockerfile(text, "Dockerfile");
  REQUIRE_FALSE(parsed);
  CHECK(parsed.error().code() == Code::dockerfile);
  REQUIRE(parsed.error().location());
  CHECK(parsed.error().location()->file == "Dockerfile");
  return parsed.error();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Directives

TEST_CASE("parser directives are read from the top of the file", "[dockerfile][parser]") {
  SECTION("escape, syntax and check, keys in any case, values trimmed") {
    auto parsed = parse_ok("#  SYNTAX = docker/dockerfile:1 \n# Check=skip=all\n#escape=`\n"
                           "FROM a\nRUN x `\n y\n");
    CHECK(parsed.directives.escape == '`');
    CHECK(parsed.directives.syntax == "docker/dockerfile:1");
    CHECK(parsed.directives.check == "skip=all");
    CHECK(dump_buildkit(parsed) == "(from \"a\")\n(run \"x  y\")\n");
  }
  SECTION("with the backtick escape, a backslash is an ordinary character") {
    CHECK(dump("# escape=`\nRUN dir C:\\\nCMD x\n") == "(run \"dir C:\\\\\")\n(cmd \"x\")\n");
  }
  SECTION("leading whitespace before the # is allowed") {
    CHECK(parse_ok("   # escape=`\nFROM a\n").directives.escape == '`');
  }
  SECTION("scanning stops at a plain comment") {
    auto parsed = parse_ok("# hello\n# escape=`\nFROM a\n");
    CHECK(parsed.directives.escape == '\\');
  }
  SECTION("scanning stops at a blank line") {
    CHECK(parse_ok("\n# escape=`\nFROM a\n").directives.escape == '\\');
  }
  SECTION("scanning stops at an unknown key, which is then only a comment") {
    auto parsed = parse_ok("# foo=bar\n# syntax=x\nFROM a\n");
    CHECK_FALSE(parsed.directives.syntax);
  }
  SECTION("scanning stops at the first instruction") {
    CHECK(parse_ok("FROM a\n# escape=`\nRUN b\n").directives.escape == '\\');
  }
  SECTION("a repeated key is an error naming both lines") {
    auto error = parse_error("# escape=`\n# ESCAPE=`\nFROM a\n");
    CHECK(contains(error.message(), "only one escape parser directive can be used"));
    CHECK(contains(error.message(), "line 1"));
    CHECK(error.location()->line == 2);
    CHECK(error.location()->column == 1);
  }
  SECTION("an escape value other than ` or \\ is an error") {
    auto error = parse_error("# escape=x\nFROM a\n");
    CHECK(contains(error.message(), "invalid escape token \"x\""));
    CHECK(error.location()->line == 1);
  }
  SECTION("an all-blank escape value is an error too (the regexp keeps one blank)") {
    CHECK(contains(parse_error("# escape=  \nFROM a\n").message(), "invalid escape token \" \""));
  }
  SECTION("a key without a value is not a directive") {
    auto parsed = parse_ok("# escape=\n# syntax=x\nFROM a\n");
    CHECK(parsed.directives.escape == '\\');
    CHECK_FALSE(parsed.directives.syntax);
  }
}

// ---------------------------------------------------------------------------------------------
// Line handling

TEST_CASE("a UTF-8 BOM is stripped from the first line only", "[dockerfile][parser]") {
  CHECK(dump("\xEF\xBB\xBF"
             "FROM a\n") == "(from \"a\")\n");
  CHECK(parse_ok("\xEF\xBB\xBF# escape=`\nFROM a\n").directives.escape == '`');
  // On a later line the BOM is part of the keyword, as in BuildKit.
  auto parsed = parse_ok("FROM a\n\xEF\xBB\xBFRUN b\n");
  CHECK(parsed.instructions[1].keyword == "\xEF\xBB\xBFrun");
  CHECK(parsed.instructions[1].args == std::vector<std::string>{""});
}

TEST_CASE("CRLF line ends behave like LF", "[dockerfile][parser]") {
  const std::string lf = "FROM a\nRUN echo \\\n  hi\nCMD [\"x\"]\n";
  const std::string crlf = "FROM a\r\nRUN echo \\\r\n  hi\r\nCMD [\"x\"]\r\n";
  CHECK(dump(crlf) == dump(lf));
  CHECK(dump(crlf) == "(from \"a\")\n(run \"echo   hi\")\n(cmd \"x\")\n");
  // Every trailing \r goes, as bytes.TrimRight(line, "\r\n") does.
  CHECK(dump("FROM a\r\r\n") == "(from \"a\")\n");
}

TEST_CASE("comments", "[dockerfile][parser]") {
  SECTION("whole-line comments and blank lines produce nothing") {
    CHECK(dump("# c\n\n   # indented\n\t\nFROM a\n#x\n") == "(from \"a\")\n");
  }
  SECTION("a # elsewhere is text") {
    CHECK(dump("RUN echo # not a comment\n") == "(run \"echo # not a comment\")\n");
  }
  SECTION("comment lines inside a continuation are dropped without a warning") {
    auto parsed = parse_ok("RUN a \\\n# comment \\\n  # indented comment\n  b\n");
    CHECK(dump_buildkit(parsed) == "(run \"a   b\")\n");
    CHECK(parsed.warnings.empty());
    CHECK(parsed.instructions[0].end_line == 4);
  }
}

TEST_CASE("empty continuation lines are skipped with a warning", "[dockerfile][parser]") {
  auto parsed = parse_ok("FROM a\nRUN a \\\n\n  \t\n  b\n");
  CHECK(dump_buildkit(parsed) == "(from \"a\")\n(run \"a   b\")\n");
  REQUIRE(parsed.warnings.size() == 1);
  CHECK(contains(parsed.warnings[0].message, "empty continuation line 3"));
  CHECK(contains(parsed.warnings[0].message, "starts on line 2"));
  CHECK(parsed.warnings[0].location.file == "Dockerfile");
  CHECK(parsed.warnings[0].location.line == 3);
  CHECK(parsed.instructions[1].start_line == 2);
  CHECK(parsed.instructions[1].end_line == 5);
}

TEST_CASE("line continuation follows BuildKit exactly", "[dockerfile][parser]") {
  SECTION("lines are joined directly and the next line keeps its indentation") {
    CHECK(dump("RUN echo good\\\nbye\n") == "(run \"echo goodbye\")\n");
    CHECK(dump("RUN echo hello\\\n  world\n") == "(run \"echo hello  world\")\n");
  }
  SECTION("blanks after the escape are allowed") {
    CHECK(dump("RUN a \\ \t \nb\n") == "(run \"a b\")\n");
  }
  SECTION("an escaped escape at the end does not continue") {
    CHECK(dump("ENV A b\\\\\nENV C d\n") ==
          "(env \"A\" \"b\\\\\\\\\" \"\")\n(env \"C\" \"d\" \"\")\n");
  }
  SECTION("upstream quirk: an escaped escape followed by a real one does not continue either") {
    CHECK(dump("RUN a \\\\\\\nRUN b\n") == "(run \"a \\\\\\\\\\\\\")\n(run \"b\")\n");
  }
  SECTION("a continuation at the end of the file ends the instruction") {
    CHECK(dump("FROM a\nRUN b \\") == "(from \"a\")\n(run \"b\")\n");
    CHECK(dump("FROM a\nRUN b \\\n") == "(from \"a\")\n(run \"b\")\n");
  }
  SECTION("a line holding only the escape joins nothing") {
    CHECK(dump("ENV E hello\\\n\\\nworld\n") == "(env \"E\" \"helloworld\" \"\")\n");
  }
  SECTION("only the first line of an instruction loses its indentation") {
    auto parsed = parse_ok("   RUN a\\\n   b   \n");
    CHECK(parsed.instructions[0].original == "RUN a   b   ");
    CHECK(dump_buildkit(parsed) == "(run \"a   b\")\n");
  }
  SECTION("tabs work as separators everywhere") {
    CHECK(dump("\tFROM\t\ta\tAS\tb\nCOPY\t--x=1\ta\tb\n") ==
          "(from \"a\" \"AS\" \"b\")\n(copy [\"--x=1\"] \"a\" \"b\")\n");
  }
}

TEST_CASE("line ranges count physical lines", "[dockerfile][parser]") {
  auto parsed = parse_ok("\n# c\nFROM a\nRUN b \\\n# c\n\n  c\n\nCMD d\n");
  REQUIRE(parsed.instructions.size() == 3);
  CHECK(parsed.instructions[0].start_line == 3);
  CHECK(parsed.instructions[0].end_line == 3);
  CHECK(parsed.instructions[1].start_line == 4);
  CHECK(parsed.instructions[1].end_line == 7);
  CHECK(parsed.instructions[2].start_line == 9);
  CHECK(parsed.instructions[2].end_line == 9);
}

// ---------------------------------------------------------------------------------------------
// Keywords and flags

TEST_CASE("keywords are case-insensitive and unknown ones keep one empty argument",
          "[dockerfile][parser]") {
  CHECK(dump("FrOm a\nfrom b\n") == "(from \"a\")\n(from \"b\")\n");
  auto parsed = parse_ok("FROB the widgets --x\n");
  CHECK(parsed.instructions[0].keyword == "frob");
  CHECK(parsed.instructions[0].args == std::vector<std::string>{""});
  CHECK(dump_buildkit(parsed) == "(frob \"\")\n");
  // strings.ToLower is Unicode-aware: KELVIN SIGN lower-cases to 'k'.
  CHECK(parse_ok("WOR\xE2\x84\xAA"
                 "DIR /x\n")
            .instructions[0]
            .keyword == "workdir");
  CHECK(parse_ok("R\xC3\x9CN x\n").instructions[0].keyword == "r\xC3\xBCn");
}

TEST_CASE("leading --flags are extracted", "[dockerfile][parser]") {
  SECTION("flags stop at the first word without --") {
    auto parsed = parse_ok("COPY --from=a --chown=1:1 src --not-a-flag dst\n");
    CHECK(parsed.instructions[0].flags == std::vector<std::string>{"--from=a", "--chown=1:1"});
    CHECK(parsed.instructions[0].args == std::vector<std::string>{"src", "--not-a-flag", "dst"});
  }
  SECTION("a bare -- ends the flags and is dropped") {
    CHECK(dump("COPY --x=1 -- --y z\n") == "(copy [\"--x=1\"] \"--y\" \"z\")\n");
    CHECK(dump("COPY -- foo /tmp/\n") == "(copy \"foo\" \"/tmp/\")\n");
  }
  SECTION("quotes are removed and \\ escapes the next byte") {
    CHECK(dump("RUN --a=\"x y\" --b='z' --c=\\\" cmd\n") ==
          "(run [\"--a=x y\" \"--b=z\" \"--c=\\\"\"] \"cmd\")\n");
  }
  SECTION("flags are not validated, and may precede JSON") {
    CHECK(dump("CMD --doit [ \"a\", \"b\" ]\n") == "(cmd [\"--doit\"] \"a\" \"b\")\n");
    CHECK(dump("CMD --doit -- [ ]\n") == "(cmd [\"--doit\"])\n");
    CHECK(dump("RUN --only --flags\n") == "(run [\"--only\" \"--flags\"])\n");
  }
  SECTION("upstream quirk: flag bytes >= 0x80 are re-encoded one by one") {
    // é (C3 A9) becomes Ã (C3 83) and © (C2 A9).
    CHECK(parse_ok("COPY --x=\xC3\xA9 a b\n").instructions[0].flags ==
          std::vector<std::string>{"--x=\xC3\x83\xC2\xA9"});
  }
}

// ---------------------------------------------------------------------------------------------
// Argument shapes

TEST_CASE("RUN, CMD, ENTRYPOINT and SHELL: JSON form or one shell argument",
          "[dockerfile][parser]") {
  CHECK(dump("RUN [\"echo\", \"'1234'\"]\n") == "(run \"echo\" \"'1234'\")\n");
  CHECK(dump("RUN echo '1234' &&   x\n") == "(run \"echo '1234' &&   x\")\n");
  CHECK(dump("CMD\n") == "(cmd)\n");
  CHECK(dump("CMD [\"\"]\n") == "(cmd \"\")\n");
  auto parsed = parse_ok("CMD []\nENTRYPOINT [\"a\"]\nSHELL [\"sh\", \"-c\"]\nRUN x\n");
  CHECK(parsed.instructions[0].json_form);
  CHECK(parsed.instructions[0].args.empty());
  CHECK(parsed.instructions[1].json_form);
  CHECK(parsed.instructions[2].args == std::vector<std::string>{"sh", "-c"});
  CHECK_FALSE(parsed.instructions[3].json_form);
}

TEST_CASE("ADD, COPY and VOLUME: JSON form or whitespace-separated words", "[dockerfile][parser]") {
  CHECK(dump("COPY [ \"test file\", \"/tmp\" ]\n") == "(copy \"test file\" \"/tmp\")\n");
  CHECK(dump("ADD \"a b\"  c\n") == "(add \"\\\"a\" \"b\\\"\" \"c\")\n");
  CHECK(dump("VOLUME /a\t/b\v/c\n") == "(volume \"/a\" \"/b\" \"/c\")\n");
  CHECK(dump("VOLUME\n") == "(volume)\n");
}

TEST_CASE("FROM and EXPOSE are always split on whitespace", "[dockerfile][parser]") {
  CHECK(dump("FROM a AS b\n") == "(from \"a\" \"AS\" \"b\")\n");
  CHECK(dump("FROM [\"a\"]\n") == "(from \"[\\\"a\\\"]\")\n");
  CHECK(dump("EXPOSE 1 2/udp\n") == "(expose \"1\" \"2/udp\")\n");
}

TEST_CASE("ENV and LABEL give key/value/separator triples", "[dockerfile][parser]") {
  SECTION("legacy form: key, then the raw rest of the line") {
    CHECK(dump("ENV name value  with spaces\n") == "(env \"name\" \"value  with spaces\" \"\")\n");
    CHECK(dump("LABEL maintainer Erik \\\\Hollensbe\n") ==
          "(label \"maintainer\" \"Erik \\\\\\\\Hollensbe\" \"\")\n");
  }
  SECTION("key=value form keeps quotes and escapes in the value") {
    CHECK(dump("ENV a=1 b=\"x y\" c=x\\ y d='$q'\n") ==
          "(env \"a\" \"1\" \"=\" \"b\" \"\\\"x y\\\"\" \"=\" \"c\" \"x\\\\ y\" \"=\" \"d\" "
          "\"'$q'\" \"=\")\n");
    CHECK(dump("LABEL a= b==c\n") == "(label \"a\" \"\" \"=\" \"b\" \"=c\" \"=\")\n");
  }
  SECTION("no arguments at all is accepted by the parser") {
    CHECK(dump("ENV\nLABEL\n") == "(env)\n(label)\n");
  }
  SECTION("legacy form without a value is an error") {
    auto error = parse_error("FROM a\nENV PATH\n");
    CHECK(error.message() == "ENV must have two arguments");
    CHECK(error.location()->line == 2);
    CHECK(parse_error("LABEL k\n").message() == "LABEL must have two arguments");
  }
  SECTION("in key=value form every word needs an =") {
    auto error = parse_error("FROM a\nENV a=1 \\\n  b\n");
    CHECK(error.message() ==
          "Syntax error - can't find = in \"b\". Must be of the form: name=value");
    CHECK(error.location()->line == 2);
    CHECK(error.location()->end_line == 3);
  }
}

TEST_CASE("ARG keeps its words as written", "[dockerfile][parser]") {
  CHECK(dump("ARG foo bar=baz\n") == "(arg \"foo\" \"bar=baz\")\n");
  CHECK(dump("ARG abc=\"123 456\" def\n") == "(arg \"abc=\\\"123 456\\\"\" \"def\")\n");
  CHECK(dump("ARG\n") == "(arg)\n");
  // A lone escape at the very end is dropped (here a form feed keeps it from being a
  // continuation, and trimming then removes the form feed); inside '...' it is literal.
  CHECK(dump("ARG a='x\\' b\\\f\n") == "(arg \"a='x\\\\'\" \"b\")\n");
}

TEST_CASE("MAINTAINER, USER, WORKDIR and STOPSIGNAL take the rest as one argument",
          "[dockerfile][parser]") {
  CHECK(dump("WORKDIR /a dir\nUSER u:g\nSTOPSIGNAL 9\nMAINTAINER Me <me@x>\nUSER\n") ==
        "(workdir \"/a dir\")\n(user \"u:g\")\n(stopsignal \"9\")\n(maintainer \"Me <me@x>\")\n"
        "(user)\n");
}

TEST_CASE("HEALTHCHECK takes a type word, then a CMD-like rest", "[dockerfile][parser]") {
  CHECK(dump("HEALTHCHECK\n") == "(healthcheck)\n");
  CHECK(dump("HEALTHCHECK NONE\n") == "(healthcheck \"NONE\")\n");
  CHECK(dump("HEALTHCHECK   CMD   a b\n") == "(healthcheck \"CMD\" \"a b\")\n");
  auto parsed = parse_ok("HEALTHCHECK --timeout=3s CMD [\"foo\", \"bar\"]\n");
  CHECK(dump_buildkit(parsed) == "(healthcheck [\"--timeout=3s\"] \"CMD\" \"foo\" \"bar\")\n");
  CHECK(parsed.instructions[0].json_form);
  CHECK(parse_error("HEALTHCHECK CMD [1]\n").message() ==
        "when using JSON array syntax, arrays must be comprised of strings only");
}

TEST_CASE("ONBUILD wraps one nested instruction", "[dockerfile][parser]") {
  auto parsed = parse_ok("ONBUILD --o=1 RUN --r=2 [\"echo\", \"x\"]\nONBUILD\n");
  const Node& onbuild = parsed.instructions[0];
  CHECK(onbuild.flags == std::vector<std::string>{"--o=1"});
  CHECK(onbuild.args.empty());
  REQUIRE(onbuild.nested.size() == 1);
  CHECK(onbuild.nested[0].keyword == "run");
  CHECK(onbuild.nested[0].original == "RUN --r=2 [\"echo\", \"x\"]");
  CHECK(onbuild.nested[0].flags == std::vector<std::string>{"--r=2"});
  CHECK(onbuild.nested[0].json_form);
  CHECK(onbuild.nested[0].start_line == 1);
  CHECK(parsed.instructions[1].nested.empty());
  CHECK(dump_buildkit(parsed) ==
        "(onbuild [\"--o=1\"] (run [\"--r=2\"] \"echo\" \"x\"))\n(onbuild)\n");
  CHECK(parse_error("ONBUILD ENV x\n").message() == "ENV must have two arguments");
}

TEST_CASE("ONBUILD nesting is limited so the stack cannot overflow", "[dockerfile][parser]") {
  std::string ok;
  for (int i = 0; i < 16; ++i) {
    ok += "ONBUILD ";
  }
  CHECK(parse_dockerfile(ok + "RUN x\n", "D"));
  auto error = parse_error(ok + "ONBUILD RUN x\n");
  CHECK(contains(error.message(), "nested more than 16 levels"));
  // A very long chain made of continuation lines fails the same way, quickly.
  std::string chain;
  for (int i = 0; i < 20000; ++i) {
    chain += "ONBUILD \\\n";
  }
  CHECK(contains(parse_error(chain + "RUN x\n").message(), "nested more than 16 levels"));
}

// ---------------------------------------------------------------------------------------------
// JSON form

TEST_CASE("arguments that look like JSON but are not fall back to shell form with a warning",
          "[dockerfile][parser]") {
  auto parsed = parse_ok("FROM a\nCMD [\"echo\", \"unterminated]\nCOPY ['a', 'b']\nRUN echo [x]\n");
  CHECK(dump_buildkit(parsed) ==
        "(from \"a\")\n(cmd \"[\\\"echo\\\", \\\"unterminated]\")\n(copy \"['a',\" \"'b']\")\n"
        "(run \"echo [x]\")\n");
  REQUIRE(parsed.warnings.size() == 2);
  CHECK(parsed.warnings[0].message ==
        "CMD looks like a JSON exec form but is not valid JSON: unexpected end of JSON input; "
        "treating it as shell form");
  CHECK(parsed.warnings[0].location.line == 2);
  CHECK(parsed.warnings[1].message ==
        "COPY looks like a JSON exec form but is not valid JSON: invalid character '\\'' "
        "looking for beginning of value; treating it as shell form");
  CHECK(parsed.warnings[1].location.line == 3);
  CHECK_FALSE(parsed.instructions[1].json_form);
}

TEST_CASE("JSON validity is Go's", "[dockerfile][parser]") {
  const auto warning_for = [](const std::string& args) {
    auto parsed = parse_ok("CMD " + args + "\n");
    REQUIRE(parsed.warnings.size() == 1);
    CHECK(parsed.instructions[0].args == std::vector<std::string>{args});
    return parsed.warnings[0].message;
  };
  CHECK(contains(warning_for("[\"a\"] x"), "invalid character 'x' after top-level value"));
  CHECK(contains(warning_for("[\"a\",]"), "invalid character ']' looking for beginning of value"));
  CHECK(contains(warning_for("[\"a\" \"b\"]"), "invalid character '\"' after array element"));
  CHECK(contains(warning_for("[\"\\x\"]"), "in string escape code"));
  CHECK(contains(warning_for("[\"\\u12G4\"]"), "in \\u hexadecimal character escape"));
  CHECK(contains(warning_for("[tru]"), "in literal true (expecting 'e')"));
  CHECK(contains(warning_for("[01]"), "invalid character '1' after array element"));
  CHECK(contains(warning_for("[1.]"), "after decimal point in numeric literal"));
  CHECK(contains(warning_for("[1e+]"), "in exponent of numeric literal"));
  CHECK(contains(warning_for("[{\"a\" 1}]"), "after object key"));
  CHECK(contains(warning_for("[\"tab\there\"]"), "in string literal"));
  // Valid JSON whitespace (\t \r \n and space) is fine inside and after the array.
  CHECK(dump("CMD [ \"a\" ,\t\"b\" ]  \n") == "(cmd \"a\" \"b\")\n");
}

TEST_CASE("a valid JSON array with a non-string element is an error", "[dockerfile][parser]") {
  for (const char* args : {"[\"echo\", [\"nested\"]]", "[1]", "[\"a\", null]", "[true]", "[{}]",
                           "[\"a\", {\"b\": 1}]"}) {
    INFO(args);
    auto error = parse_error(std::string("FROM a\nRUN ") + args + "\n");
    CHECK(error.message() ==
          "when using JSON array syntax, arrays must be comprised of strings only");
    CHECK(error.location()->line == 2);
  }
  // Invalid JSON wins over a non-string element: Go validates the whole text first.
  CHECK(parse_dockerfile("CMD [1, \"a\"\n", "D"));
}

TEST_CASE("JSON strings decode like Go's encoding/json", "[dockerfile][parser]") {
  auto parsed =
      parse_ok("CMD [\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000 \\u00e9\", \"\\ud83d\\ude00\", "
               "\"\\ud800\", \"\\udc00\\ud800x\", \"\xff\", \"\xE2\x98\x83\"]\n");
  const auto& args = parsed.instructions[0].args;
  REQUIRE(args.size() == 6);
  static constexpr char k_first[] = "\" \\ / \b \f \n \r \t \0 \xC3\xA9";
  CHECK(args[0] == std::string(k_first, sizeof(k_first) - 1));
  CHECK(args[1] == "\xF0\x9F\x98\x80");          // surrogate pair
  CHECK(args[2] == "\xEF\xBF\xBD");              // lone high surrogate
  CHECK(args[3] == "\xEF\xBF\xBD\xEF\xBF\xBDx"); // lone low, then lone high
  CHECK(args[4] == "\xEF\xBF\xBD");              // invalid UTF-8 byte
  CHECK(args[5] == "\xE2\x98\x83");
}

TEST_CASE("JSON nesting deeper than Go's limit is a syntax error, not a crash",
          "[dockerfile][parser]") {
  // 10000 levels: valid JSON holding a non-string element, so an error.
  CHECK(parse_error("CMD [" + std::string(9999, '[') + std::string(10000, ']') + "\n").message() ==
        "when using JSON array syntax, arrays must be comprised of strings only");
  // 10001 levels: Go's decoder gives up ("exceeded max depth"), so shell form with a warning.
  auto parsed = parse_ok("CMD " + std::string(10001, '[') + std::string(10001, ']') + "\n");
  REQUIRE(parsed.warnings.size() == 1);
  CHECK(contains(parsed.warnings[0].message, "exceeded max depth"));
  // 60000 unclosed brackets on one line.
  auto deep = parse_ok("CMD " + std::string(60000, '[') + "\n");
  CHECK(deep.instructions[0].args.size() == 1);
}

// ---------------------------------------------------------------------------------------------
// Heredocs

TEST_CASE("heredocs attach their bodies to RUN, COPY and ADD", "[dockerfile][parser]") {
  auto parsed = parse_ok("FROM a\nRUN <<EOF\necho $X\n# kept\n\nEOF\nCMD x\n");
  REQUIRE(parsed.instructions.size() == 3);
  const Node& run = parsed.instructions[1];
  CHECK(run.original == "RUN <<EOF");
  CHECK(run.args == std::vector<std::string>{"<<EOF"});
  CHECK(run.start_line == 2);
  CHECK(run.end_line == 2);
  REQUIRE(run.heredocs.size() == 1);
  const Heredoc& doc = run.heredocs[0];
  CHECK(doc.name == "EOF");
  CHECK(doc.content == "echo $X\n# kept\n\n");
  CHECK(doc.expand);
  CHECK_FALSE(doc.chomp);
  CHECK_FALSE(doc.fd);
  CHECK(doc.start_line == 3);
  CHECK(doc.end_line == 6);
  CHECK(parsed.instructions[2].start_line == 7);
  CHECK(dump_buildkit(parsed) == "(from \"a\")\n(run \"<<EOF\")\n(cmd \"x\")\n");
}

TEST_CASE("<<- strips leading tabs from the body and the delimiter", "[dockerfile][parser]") {
  auto parsed = parse_ok("RUN <<-EOF\n\t\tone\n\ttwo\n  three\n\t\tEOF\n");
  const Heredoc& doc = parsed.instructions[0].heredocs.at(0);
  CHECK(doc.chomp);
  CHECK(doc.content == "one\ntwo\n  three\n");
  CHECK(doc.end_line == 5);
  // Without the dash, an indented delimiter does not end the body.
  CHECK(contains(parse_error("RUN <<EOF\nx\n\tEOF\n").message(), "unterminated heredoc"));
  // With it, only tabs are stripped, not spaces.
  CHECK(contains(parse_error("RUN <<-EOF\nx\n  EOF\n").message(), "unterminated heredoc"));
}

TEST_CASE("quoting any part of the delimiter disables expansion", "[dockerfile][parser]") {
  auto parsed = parse_ok("RUN <<'A' <<\"B\" <<C'D' <<E\\F\na\nA\nb\nB\nc\nCD\ne\nEF\n");
  const auto& docs = parsed.instructions[0].heredocs;
  REQUIRE(docs.size() == 4);
  CHECK(docs[0].name == "A");
  CHECK_FALSE(docs[0].expand);
  CHECK(docs[1].name == "B");
  CHECK_FALSE(docs[1].expand);
  CHECK(docs[2].name == "CD");
  CHECK_FALSE(docs[2].expand);
  // BuildKit only counts quote characters, so an escaped delimiter still expands.
  CHECK(docs[3].name == "EF");
  CHECK(docs[3].expand);
  CHECK(docs[3].content == "e\n");
}

TEST_CASE("several heredocs on one line read their bodies in order", "[dockerfile][parser]") {
  auto parsed = parse_ok("COPY <<X <<Y /dest\nY\nX\nX\nY\nRUN 3<<EMPTY 4<<-T cat\nEMPTY\n\tT\n");
  const auto& copy = parsed.instructions[0].heredocs;
  REQUIRE(copy.size() == 2);
  CHECK(copy[0].name == "X");
  CHECK(copy[0].content == "Y\n");
  CHECK(copy[1].name == "Y");
  CHECK(copy[1].content == "X\n");
  CHECK(parsed.instructions[0].args == std::vector<std::string>{"<<X", "<<Y", "/dest"});
  const auto& run = parsed.instructions[1].heredocs;
  REQUIRE(run.size() == 2);
  CHECK(run[0].fd == 3);
  CHECK(run[0].content.empty());
  CHECK(run[0].start_line == 7);
  CHECK(run[0].end_line == 7);
  CHECK(run[1].fd == 4);
  CHECK(run[1].chomp);
  CHECK(parsed.instructions[1].start_line == 6);
}

TEST_CASE("what is not a heredoc", "[dockerfile][parser]") {
  SECTION("quoted words") {
    auto parsed = parse_ok("RUN echo '<<A' \"<<B\" \\<<C\nCMD x\n");
    CHECK(parsed.instructions[0].heredocs.empty());
    CHECK(parsed.instructions.size() == 2);
  }
  SECTION("JSON form") {
    auto parsed = parse_ok("RUN [\"<<EOF\"]\nCMD x\n");
    CHECK(parsed.instructions[0].heredocs.empty());
    CHECK(parsed.instructions.size() == 2);
  }
  SECTION("other instructions; the would-be body is parsed as instructions") {
    CHECK(dump("USER <<X\nX\nCMD <<Y\n") == "(user \"<<X\")\n(x \"\")\n(cmd \"<<Y\")\n");
  }
  SECTION("<< inside a word, a bare <<, and <<<") {
    auto parsed = parse_ok("RUN a<<EOF << <<- <<<X x\nCMD y\n");
    CHECK(parsed.instructions[0].heredocs.empty());
  }
  SECTION("a line the shell lexer rejects has no heredocs (BuildKit ignores the error)") {
    auto parsed = parse_ok("RUN cat <<EOF 'unterminated\nEOF\n");
    CHECK(parsed.instructions[0].heredocs.empty());
    CHECK(parsed.instructions.size() == 2);
  }
}

TEST_CASE("heredoc corner cases BuildKit shows", "[dockerfile][parser]") {
  SECTION("the word after << runs to the next blank, redirections included") {
    auto parsed = parse_ok("RUN cat <<EOF>out\nx\nEOF>out\n");
    CHECK(parsed.instructions[0].heredocs.at(0).name == "EOF>out");
  }
  SECTION("variables in the delimiter stay literal") {
    auto parsed = parse_ok("RUN <<$END\nx\n$END\n");
    CHECK(parsed.instructions[0].heredocs.at(0).name == "$END");
  }
  SECTION("after flags and continuation lines") {
    auto parsed = parse_ok("RUN --mount=type=cache,target=/c \\\n  <<EOF\nbody\nEOF\n");
    const Node& run = parsed.instructions[0];
    CHECK(run.flags == std::vector<std::string>{"--mount=type=cache,target=/c"});
    CHECK(run.end_line == 2);
    CHECK(run.heredocs.at(0).start_line == 3);
    CHECK(run.heredocs.at(0).content == "body\n");
  }
  SECTION("inside ONBUILD the bodies sit on the ONBUILD node") {
    auto parsed = parse_ok("ONBUILD COPY <<F /f\nhi\nF\n");
    CHECK(parsed.instructions.size() == 1);
    CHECK(parsed.instructions[0].heredocs.at(0).content == "hi\n");
    CHECK(parsed.instructions[0].nested.at(0).heredocs.empty());
  }
  SECTION("with the backtick escape directive, the heredoc lexer still uses \\") {
    auto parsed = parse_ok("# escape=`\nRUN <<EOF\nx\nEOF\n");
    CHECK(parsed.instructions[0].heredocs.at(0).content == "x\n");
  }
  SECTION("CRLF bodies keep their line ends; the delimiter still matches") {
    auto parsed = parse_ok("RUN <<EOF\r\na\r\nEOF\r\nCMD x\r\n");
    CHECK(parsed.instructions[0].heredocs.at(0).content == "a\r\n");
    CHECK(parsed.instructions.size() == 2);
  }
  SECTION("a delimiter on the last line without a newline") {
    auto parsed = parse_ok("RUN <<EOF\na\nEOF");
    CHECK(parsed.instructions[0].heredocs.at(0).end_line == 3);
  }
}

TEST_CASE("an unterminated heredoc is an error naming it and its line", "[dockerfile][parser]") {
  auto error = parse_error("FROM a\nCOPY <<ONE <<TWO /x\n1\nONE\n2\nTWO \n");
  CHECK(error.message() ==
        "unterminated heredoc \"TWO\" started on line 2: the file ends before a line \"TWO\"");
  CHECK(error.location()->line == 2);
  CHECK(error.location()->end_line == 6);
}

// ---------------------------------------------------------------------------------------------
// Errors and ugly inputs

TEST_CASE("a file without instructions is an error", "[dockerfile][parser]") {
  for (const char* text : {"", "\n\n", "# only\n# comments\n", "  \t\n\r\n", "\xEF\xBB\xBF"}) {
    INFO(text);
    auto error = parse_error(text);
    CHECK(error.message() == "file with no instructions");
    CHECK(error.location()->line == 0);
  }
}

TEST_CASE("lines longer than BuildKit's 64 KiB limit are rejected cleanly",
          "[dockerfile][parser]") {
  const std::string longest = "RUN " + std::string(65535 - 4, 'x');
  CHECK(parse_dockerfile("FROM a\n" + longest + "\n", "D"));
  CHECK(parse_dockerfile("FROM a\n" + longest, "D"));
  auto error = parse_error("FROM a\n" + longest + "y\nCMD z\n");
  CHECK(contains(error.message(), "line 2 is 65536 bytes long"));
  CHECK(error.location()->line == 2);
  // 1 MB on one line, inside a heredoc body as well.
  const std::string megabyte(1 << 20, 'm');
  CHECK(contains(parse_error("FROM a\nRUN " + megabyte + "\n").message(), "line 2"));
  CHECK(contains(parse_error("RUN <<EOF\n" + megabyte + "\nEOF\n").message(), "line 2"));
}

TEST_CASE("deeply nested ${...} on a heredoc line cannot exhaust the stack",
          "[dockerfile][parser]") {
  std::string text = "RUN <<EOF \\\n";
  for (int i = 0; i < 100000; ++i) {
    text += "${a:-\\\n";
  }
  // The lexer gives up, which BuildKit's heredoc scan treats as "no heredocs": EOF is then an
  // instruction of its own.
  auto parsed = parse_ok(text + "x\nEOF\n");
  REQUIRE(parsed.instructions.size() == 2);
  CHECK(parsed.instructions[0].heredocs.empty());
  // Moderate nesting still lexes, as in BuildKit: the heredoc is found.
  std::string moderate = "RUN <<EOF ";
  for (int i = 0; i < 200; ++i) {
    moderate += "${a:-";
  }
  moderate += std::string(200, '}') + "\nbody\nEOF\n";
  CHECK(parse_ok(moderate).instructions[0].heredocs.size() == 1);
}

TEST_CASE("very long instructions built from continuations parse in linear time",
          "[dockerfile][parser]") {
  std::string text = "RUN echo";
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 4000; ++i) { // about 4 MB in one instruction
    text += " " + chunk + " \\\n";
  }
  text += "done\n";
  auto parsed = parse_ok(text);
  REQUIRE(parsed.instructions.size() == 1);
  CHECK(parsed.instructions[0].args.at(0).size() > 4000u * 1000u);
  CHECK(parsed.instructions[0].end_line == 4001);

  std::string words = "ENV";
  for (int i = 0; i < 100000; ++i) {
    words += " k" + std::to_string(i) + "=v \\\n";
  }
  CHECK(parse_ok(words + "\n").instructions[0].args.size() == 300000);

  std::string heredoc = "RUN <<EOF\n";
  for (int i = 0; i < 200000; ++i) {
    heredoc += "line " + std::to_string(i) + "\n";
  }
  CHECK(parse_ok(heredoc + "EOF\n").instructions[0].heredocs.at(0).end_line == 200002);
}

TEST_CASE("NUL bytes, invalid UTF-8 and control characters are data", "[dockerfile][parser]") {
  static constexpr char k_text[] = "FROM a\0b\nRUN \xff\xfe x\x01\nLABEL k=\xC3\xA9\x80\n";
  auto parsed = parse_ok(std::string(k_text, sizeof(k_text) - 1));
  CHECK(dump_buildkit(parsed) == "(from \"a\\x00b\")\n(run \"\\xff\\xfe x\\x01\")\n"
                                 "(label \"k\" \"\xC3\xA9\xEF\xBF\xBD\" \"=\")\n");
  // Go's parseWords decodes runes, so the stray 0x80 became U+FFFD in the LABEL value.
  CHECK(parsed.instructions[2].args[1] == "\xC3\xA9\xEF\xBF\xBD");
  // A NUL inside a heredoc delimiter and body.
  static constexpr char k_heredoc[] = "RUN <<E\0F\na\0b\nE\0F\n";
  auto heredoc = parse_ok(std::string(k_heredoc, sizeof(k_heredoc) - 1));
  CHECK(heredoc.instructions[0].heredocs.at(0).name == std::string("E\0F", 3));
  CHECK(heredoc.instructions[0].heredocs.at(0).content == std::string("a\0b\n", 4));
}

TEST_CASE("Unicode whitespace: trimmed like strings.TrimSpace, never a word separator for "
          "FROM",
          "[dockerfile][parser]") {
  CHECK(dump("\xC2\xA0"
             "FROM a\xC2\xA0\n") == "(from \"a\")\n");
  CHECK(dump("FROM a\xE2\x80\x83"
             "b\n") == "(from \"a\\u2003b\")\n");
  // parseWords (ENV key=value) does split on it.
  CHECK(dump("ENV a=1\xE2\x80\x83"
             "b=2\n") == "(env \"a\" \"1\" \"=\" \"b\" \"2\" \"=\")\n");
}

TEST_CASE("arbitrary bytes never crash the parser or the dumps", "[dockerfile][parser]") {
  // Deterministic pseudo-random documents built from the characters the parser cares about.
  const std::string alphabet[] = {"RUN ",
                                  "COPY ",
                                  "ONBUILD ",
                                  "ENV ",
                                  "HEALTHCHECK ",
                                  "ARG ",
                                  "CMD ",
                                  "#",
                                  "# escape=`\n",
                                  "\\",
                                  "`",
                                  "\n",
                                  "\r\n",
                                  " ",
                                  "\t",
                                  "[",
                                  "]",
                                  "\"",
                                  "'",
                                  ",",
                                  "=",
                                  "<<",
                                  "<<-",
                                  "EOF",
                                  "\nEOF\n",
                                  "$",
                                  "${",
                                  "}",
                                  ":-",
                                  "--x=",
                                  "--",
                                  "\xff",
                                  "\xC2\xA0",
                                  "\xEF\xBB\xBF",
                                  std::string(1, '\0'),
                                  "3",
                                  "{"};
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int parsed_ok = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int pieces = static_cast<int>(next() % 60);
    for (int i = 0; i < pieces; ++i) {
      text += alphabet[next() % std::size(alphabet)];
    }
    auto parsed = parse_dockerfile(text, "fuzz");
    if (parsed) {
      ++parsed_ok;
      CHECK_FALSE(dump_buildkit(*parsed).empty());
      CHECK_FALSE(dump_json(*parsed).empty());
    } else {
      CHECK(parsed.error().code() == Code::dockerfile);
      CHECK(parsed.error().location());
    }
  }
  CHECK(parsed_ok > 0);
}
