// STUB: replaced by the parser implementation.
#include <minibuild/dockerfile/parser.hpp>

namespace minibuild::dockerfile {
Result<ParsedDockerfile> parse_dockerfile(std::string_view, std::string file_name) {
  return fail(Error(Code::unsupported, "parser not implemented").at({file_name, 0, 0, 0}));
}
} // namespace minibuild::dockerfile
