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
/// Detection follows BuildKit: only shell-form RUN/COPY/ADD (also inside ONBUILD) carry them;
/// a heredoc starts at a word of the instruction line (after shell-style lexing, so `'<<EOF'`
/// and `"<<EOF"` are not heredocs) matching `^(\d*)<<(-?)\s*([^<]*)$`. Bodies follow the
/// instruction's last line, one after the other, in the order the words appear.
struct Heredoc {
  std::string name;      ///< the delimiter with quotes and escapes removed ("EOF")
  std::string content;   ///< the body lines as written, each with its own line ending ("\n",
                         ///< or "\r\n" in a CRLF file: BuildKit keeps it), leading tabs already
                         ///< stripped for `<<-`; the delimiter line is not included; "" for an
                         ///< empty body
  bool expand = true;    ///< false when any part of the delimiter was quoted (`<<'EOF'`,
                         ///< `<<"EOF"`, `<<E'O'F`)
  bool chomp = false;    ///< `<<-`: leading tabs were stripped from body and delimiter
  std::optional<int> fd; ///< the digits before `<<` (`3<<EOF`), when present and they fit an int
  int start_line = 0;    ///< first body line (1-based); equals end_line for an empty body
  int end_line = 0;      ///< the delimiter line

  bool operator==(const Heredoc&) const = default;
};

/// A parser warning: empty lines inside a continuation (location: the first such line), or
/// arguments that start with '[' but are not valid JSON and are therefore taken as shell form
/// (location: the instruction's lines). The parser returns warnings; it never prints them.
struct Warning {
  std::string message;
  SourceRange location;

  bool operator==(const Warning&) const = default;
};

/// One instruction as written.
struct Node {
  std::string keyword;            ///< lower-cased instruction name ("run", "from"); unknown
                                  ///< names are kept too ("" only for an instruction made of
                                  ///< nothing but continuation characters)
  std::string original;           ///< BuildKit's Node.Original: the joined instruction text,
                                  ///< continuations removed, leading whitespace of the first
                                  ///< line removed, trailing whitespace kept; for the nested
                                  ///< node of ONBUILD, the trimmed text after `ONBUILD [flags]`
  std::vector<std::string> flags; ///< leading `--name[=value]` words, quotes removed, in order
  std::vector<std::string> args;  ///< arguments shaped per instruction as BuildKit shapes them;
                                  ///< an unknown instruction has exactly one argument, ""
  std::vector<Node> nested;       ///< ONBUILD only: exactly one element, the wrapped instruction
                                  ///< (none for a bare `ONBUILD`)
  bool json_form = false;         ///< args came from a JSON array (exec form)
  std::vector<Heredoc> heredocs;  ///< bodies for RUN/COPY/ADD heredocs, in order of appearance;
                                  ///< for `ONBUILD RUN <<EOF` they sit on the ONBUILD node, as in
                                  ///< BuildKit, not on the nested node
  int start_line = 0;             ///< 1-based, first physical line of the instruction
  int end_line = 0;               ///< last physical line, heredoc bodies excluded (BuildKit's
                                  ///< EndLine includes them; see Heredoc::end_line). The nested
                                  ///< node of ONBUILD has its parent's lines.
  int squash_group = 0;           ///< minibuild's own layer boundaries (docs/squash.md): n > 0
                                  ///< when the instruction follows the n-th `# minibuild:squash`
                                  ///< comment line of the file, before the next
                                  ///< `# minibuild:layer` line or FROM (a FROM is never in a
                                  ///< group); 0 otherwise and for the nested node of ONBUILD.
                                  ///< Not part of BuildKit's dump.

  bool operator==(const Node&) const = default;
};

/// Parser directives from the top of the file. Keys are case-insensitive, each may appear once,
/// and scanning stops for good at the first line that is not `# key=value` with a known key.
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
