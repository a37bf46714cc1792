#include <minibuild/cli/app.hpp>

namespace minibuild::cli {
int run(int, char*[]) { return 0; }
} // namespace minibuild::cli
