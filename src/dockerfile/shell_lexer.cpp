// STUB: replaced by the shell lexer implementation.
#include <minibuild/dockerfile/shell_lexer.hpp>

namespace minibuild::dockerfile {
void Environment::set(std::string name, std::string value) {
  for (auto& entry : m_entries) {
    if (entry.first == name) {
      entry.second = std::move(value);
      return;
    }
  }
  m_entries.emplace_back(std::move(name), std::move(value));
}
std::optional<std::string_view> Environment::get(std::string_view name) const {
  for (const auto& entry : m_entries) {
    if (entry.first == name) {
      return entry.second;
    }
  }
  return std::nullopt;
}
void Environment::erase(std::string_view name) {
  std::erase_if(m_entries, [&](const auto& entry) { return entry.first == name; });
}
Result<Expansion> ShellLexer::process_word(std::string_view, const Environment&) const {
  return fail(Code::unsupported, "not implemented");
}
Result<WordsExpansion> ShellLexer::process_words(std::string_view, const Environment&) const {
  return fail(Code::unsupported, "not implemented");
}
} // namespace minibuild::dockerfile
