// Printing errors and warnings for people: "minibuild: error: Dockerfile:12:1: ..." followed,
// for errors in a user's file, by the offending line and a caret under the column.
#pragma once

#include <minibuild/base/error.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace minibuild::cli {

/// Formats an error. When `source_text` is the text of the file the error's location names,
/// the line is quoted with a caret. Never fails; the result ends in '\n'.
std::string format_error(const Error& error, std::string_view source_text = {});

/// Formats a warning: "warning: FILE:LINE: message\n".
std::string format_warning(const SourceRange& location, std::string_view message);

} // namespace minibuild::cli
