// Dockerfile parser: text → ParsedDockerfile (directives, continuations, comments, flags,
// JSON/shell forms, heredocs), with BuildKit's exact rules.
#pragma once

#include <minibuild/dockerfile/ast.hpp>

#include <string>
#include <string_view>

namespace minibuild::dockerfile {

/// Parses a whole Dockerfile. Pure function of its input: no I/O, never prints, never throws;
/// time and memory are linear in the input. `file_name` is used only in error and warning
/// locations. On failure the Error has Code::dockerfile and a SourceRange naming the line (and
/// column where known; line 0 for "file with no instructions"). Accepts any bytes: a UTF-8 BOM,
/// CRLF line ends, NUL bytes and invalid UTF-8 are handled, never crash. Like BuildKit it
/// rejects a physical line longer than 65535 bytes; unlike BuildKit it also rejects ONBUILD
/// nested more than 16 levels deep. Argument shapes, quirks included, are BuildKit's
/// (docs/parse-json.md lists the few deliberate differences).
Result<ParsedDockerfile> parse_dockerfile(std::string_view text, std::string file_name);

/// BuildKit's `Node.Dump()` format, one line per instruction, each line ending in '\n' — the
/// format of ../shared/conformance/buildkit-parser/<case>/result.
std::string dump_buildkit(const ParsedDockerfile& parsed);

/// A stable machine-readable dump (docs/parse-json.md): directives, instructions with keyword,
/// flags, args, json_form, heredocs and line ranges, warnings. Keys sorted, 2-space indent,
/// ends in '\n'. Bytes that are not UTF-8 are written as U+FFFD.
std::string dump_json(const ParsedDockerfile& parsed);

} // namespace minibuild::dockerfile
