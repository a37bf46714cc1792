// Dockerfile parser: text → ParsedDockerfile (directives, continuations, comments, flags,
// JSON/shell forms, heredocs), with BuildKit's exact rules.
#pragma once

#include <minibuild/dockerfile/ast.hpp>

#include <string>
#include <string_view>

namespace minibuild::dockerfile {

/// Parses a whole Dockerfile. Pure function of its input: no I/O, never prints, never throws.
/// `file_name` is used only in error and warning locations. On failure the Error has
/// Code::dockerfile and a SourceRange naming the line (and column where known). Accepts any
/// bytes: a UTF-8 BOM, CRLF line ends, NUL bytes and invalid UTF-8 are handled, never crash.
Result<ParsedDockerfile> parse_dockerfile(std::string_view text, std::string file_name);

/// BuildKit's `Node.Dump()` format, one line per instruction, each line ending in '\n' — the
/// format of ../shared/conformance/buildkit-parser/<case>/result.
std::string dump_buildkit(const ParsedDockerfile& parsed);

/// A stable machine-readable dump (docs/parse-json.md): directives, instructions with keyword,
/// flags, args, json_form, heredocs and line ranges, warnings. Keys sorted, 2-space indent.
std::string dump_json(const ParsedDockerfile& parsed);

} // namespace minibuild::dockerfile
