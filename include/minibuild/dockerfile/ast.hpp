// The Dockerfile syntax tree: what the parser produces and the instruction layer consumes.
//
// It mirrors BuildKit's parser.Node so that `minibuild parse --format buildkit` can reproduce
// BuildKit's own dump byte for byte (see ../shared/conformance/buildkit-parser/README.md for the
// exact argument shapes per instruction). Nothing here is expanded or validated beyond syntax:
// flags are raw strings, ENV/LABEL arguments are (key, raw value, "=" or "") triples, and
// variables are still literal.
#pragma once

#include <minibuild/base/error.hpp>

#include <optional>
#include <string>
#include <vector>

namespace minibuild::dockerfile {

/// A heredoc body attached to a RUN, COPY or ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`).
struct Heredoc {
  std::string name;      ///< the delimiter with quotes removed ("EOF")
  std::string content;   ///< the body, every line ending in '\n', tabs already stripped
                         ///< for `<<-`; the delimiter line is not included
  bool expand = true;    ///< false when any part of the delimiter was quoted
  bool chomp = false;    ///< `<<-`: leading tabs were stripped from body and delimiter
  std::optional<int> fd; ///< the digits before `<<`, when present
  int start_line = 0;    ///< first body line (1-based)
  int end_line = 0;      ///< the delimiter line

  bool operator==(const Heredoc&) const = default;
};

/// A parser warning (empty continuation line, unknown directive value). The parser returns
/// warnings; it never prints them.
struct Warning {
  std::string message;
  SourceRange location;

  bool operator==(const Warning&) const = default;
};

/// One instruction as written.
struct Node {
  std::string keyword;            ///< lower-cased instruction name ("run", "from")
  std::string original;           ///< the joined instruction text, continuations removed, trimmed
  std::vector<std::string> flags; ///< leading `--name[=value]` words, quotes removed, in order
  std::vector<std::string> args;  ///< arguments shaped per instruction as BuildKit shapes them
  std::vector<Node> nested;       ///< ONBUILD only: exactly one element, the wrapped instruction
  bool json_form = false;         ///< args came from a JSON array (exec form)
  std::vector<Heredoc> heredocs;  ///< bodies for RUN/COPY/ADD heredocs, in order of appearance
  int start_line = 0;             ///< 1-based, first physical line of the instruction
  int end_line = 0;               ///< last physical line (heredoc bodies excluded)

  bool operator==(const Node&) const = default;
};

/// Parser directives from the top of the file.
struct Directives {
  char escape = '\\';                ///< `# escape=` value: '\\' or '`'
  std::optional<std::string> syntax; ///< `# syntax=` value, recorded and otherwise ignored
  std::optional<std::string> check;  ///< `# check=` value, accepted and kept

  bool operator==(const Directives&) const = default;
};

/// A whole parsed Dockerfile.
struct ParsedDockerfile {
  std::string file; ///< the name used in error locations ("Dockerfile", "sub/Containerfile")
  Directives directives;
  std::vector<Node> instructions;
  std::vector<Warning> warnings;
};

} // namespace minibuild::dockerfile
