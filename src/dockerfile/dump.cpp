// The two dumps of a parsed Dockerfile: BuildKit's S-expression `Node.Dump()` (byte-exact, so
// the conformance vectors can be compared directly) and minibuild's JSON (docs/parse-json.md).
#include "go_unicode.hpp"

#include <minibuild/dockerfile/go_quote.hpp>
#include <minibuild/dockerfile/parser.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace minibuild::dockerfile {
namespace {

/// Node.Dump(): lower(keyword), ` %q` of the flags, then each argument Go-quoted (a nested
/// ONBUILD instruction in parentheses), the whole trimmed of Unicode whitespace.
std::string dump_node(const Node& node) {
  std::string out = node.keyword; // already lower-cased by the parser, as BuildKit's Value is
  if (!node.flags.empty()) {
    out += " [";
    for (std::size_t i = 0; i < node.flags.size(); ++i) {
      if (i > 0) {
        out += ' ';
      }
      out += detail::go_quote(node.flags[i]);
    }
    out += ']';
  }
  for (const std::string& arg : node.args) {
    out += ' ';
    out += detail::go_quote(arg);
  }
  for (const Node& child : node.nested) {
    out += " (";
    out += dump_node(child);
    out += ')';
  }
  return std::string(detail::trim_space(out));
}

nlohmann::json node_json(const Node& node) {
  nlohmann::json heredocs = nlohmann::json::array();
  for (const Heredoc& heredoc : node.heredocs) {
    heredocs.push_back({
        {"name", heredoc.name},
        {"content", heredoc.content},
        {"expand", heredoc.expand},
        {"chomp", heredoc.chomp},
        {"fd", heredoc.fd ? nlohmann::json(*heredoc.fd) : nlohmann::json(nullptr)},
        {"start_line", heredoc.start_line},
        {"end_line", heredoc.end_line},
    });
  }
  return {
      {"keyword", node.keyword},
      {"original", node.original},
      {"flags", node.flags},
      {"args", node.args},
      {"json_form", node.json_form},
      {"heredocs", std::move(heredocs)},
      {"nested", node.nested.empty() ? nlohmann::json(nullptr) : node_json(node.nested.front())},
      {"start_line", node.start_line},
      {"end_line", node.end_line},
  };
}

} // namespace

std::string dump_buildkit(const ParsedDockerfile& parsed) {
  std::string out;
  for (const Node& node : parsed.instructions) {
    out += '(';
    out += dump_node(node);
    out += ")\n";
  }
  return out;
}

std::string dump_json(const ParsedDockerfile& parsed) {
  const auto optional_string = [](const std::optional<std::string>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  };
  nlohmann::json instructions = nlohmann::json::array();
  for (const Node& node : parsed.instructions) {
    instructions.push_back(node_json(node));
  }
  nlohmann::json warnings = nlohmann::json::array();
  for (const Warning& warning : parsed.warnings) {
    warnings.push_back({
        {"message", warning.message},
        {"line", warning.location.line},
        {"column", warning.location.column},
        {"end_line", warning.location.end_line},
    });
  }
  const nlohmann::json document = {
      {"file", parsed.file},
      {"directives",
       {
           {"escape", std::string(1, parsed.directives.escape)},
           {"syntax", optional_string(parsed.directives.syntax)},
           {"check", optional_string(parsed.directives.check)},
       }},
      {"instructions", std::move(instructions)},
      {"warnings", std::move(warnings)},
  };
  // Dockerfiles may hold bytes that are not UTF-8; JSON cannot, so those become U+FFFD instead
  // of making dump() throw.
  return document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string go_quote(std::string_view text) {
  return detail::go_quote(text);
}

} // namespace minibuild::dockerfile
