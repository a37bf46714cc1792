#include "diagnostics.hpp"

namespace minibuild::cli {

namespace {

// Returns line `number` (1-based) of `text`, without its line end; empty when out of range.
std::string_view line_of(std::string_view text, int number) {
  size_t start = 0;
  for (int current = 1; current < number; ++current) {
    size_t newline = text.find('\n', start);
    if (newline == std::string_view::npos) {
      return {};
    }
    start = newline + 1;
  }
  size_t end = text.find('\n', start);
  std::string_view line =
      text.substr(start, end == std::string_view::npos ? text.npos : end - start);
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  return line;
}

// Control characters other than tab would garble the terminal; show them as '?'. Long lines
// (minified JSON, 1 MB RUN lines) are cut so the caret stays readable.
std::string printable_excerpt(std::string_view line, size_t max_length) {
  std::string out;
  for (size_t i = 0; i < line.size() && i < max_length; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    out += (c < 0x20 && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c);
  }
  if (line.size() > max_length) {
    out += "...";
  }
  return out;
}

} // namespace

std::string format_error(const Error& error, std::string_view source_text) {
  std::string text = "minibuild: error: " + error.what() + "\n";
  const auto& location = error.location();
  if (!location || location->line <= 0 || source_text.empty()) {
    return text;
  }
  std::string_view line = line_of(source_text, location->line);
  if (line.empty() && location->line > 1) {
    return text;
  }
  constexpr size_t k_max_excerpt = 200;
  std::string number = std::to_string(location->line);
  text += " " + number + " | " + printable_excerpt(line, k_max_excerpt) + "\n";
  if (location->column > 0 && static_cast<size_t>(location->column) <= k_max_excerpt + 1) {
    std::string pad(number.size() + 1, ' ');
    text += pad + " | ";
    // Keep tabs so the caret lines up under tab-indented text.
    for (int i = 1; i < location->column && static_cast<size_t>(i - 1) < line.size(); ++i) {
      text += line[static_cast<size_t>(i - 1)] == '\t' ? '\t' : ' ';
    }
    text += "^\n";
  }
  return text;
}

std::string format_warning(const SourceRange& location, std::string_view message) {
  std::string text = "minibuild: warning: ";
  if (!location.file.empty()) {
    text += location.file;
    if (location.line > 0) {
      text += ':' + std::to_string(location.line);
    }
    text += ": ";
  }
  text += message;
  text += '\n';
  return text;
}

} // namespace minibuild::cli
