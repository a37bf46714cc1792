// STUB: replaced by the dump implementation.
#include <minibuild/dockerfile/parser.hpp>

namespace minibuild::dockerfile {
std::string dump_buildkit(const ParsedDockerfile&) { return {}; }
std::string dump_json(const ParsedDockerfile&) { return "{}"; }
} // namespace minibuild::dockerfile
