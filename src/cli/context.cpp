#include "commands.hpp"

#include <minibuild/base/file.hpp>

#include <fstream>
#include <iostream>
#include <iterator>

namespace minibuild::cli {

Result<std::string> Context::read_user_file(const std::string& path,
                                            const std::string& display_name) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) {
      return fail(Code::io, "read standard input");
    }
  } else {
    auto read = read_file(path);
    if (!read) {
      return fail(std::move(read).error().wrap("read " + display_name));
    }
    text = std::move(*read);
  }
  m_sources[display_name] = text;
  return text;
}

std::string_view Context::source_text_for(const Error& error) const {
  if (!error.location()) {
    return {};
  }
  auto found = m_sources.find(error.location()->file);
  return found == m_sources.end() ? std::string_view{} : std::string_view(found->second);
}

Result<void> write_result_file(std::string_view flag, const std::string& path,
                               const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    return fail(Code::io, "write " + std::string(flag) + " \"" + path + "\"");
  }
  return {};
}

} // namespace minibuild::cli
