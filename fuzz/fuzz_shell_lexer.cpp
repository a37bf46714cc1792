// Fuzzes word expansion: any bytes as a word, in both escape modes and both entry points.
#include <minibuild/dockerfile/shell_lexer.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minibuild::dockerfile;
  std::string_view word(reinterpret_cast<const char*>(data), size);
  Environment env;
  env.set("PWD", "/home");
  env.set("EMPTY", "");
  env.set("SPACE", " a  b ");
  for (char escape : {'\\', '`'}) {
    ShellLexer lexer(escape);
    (void)lexer.process_word(word, env);
    (void)lexer.process_words(word, env);
  }
  ShellLexer raw('\\',
                 ShellLexerOptions{.raw_quotes = true, .raw_escapes = true, .skip_unset = true});
  (void)raw.process_word(word, env);
  return 0;
}
