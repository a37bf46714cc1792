// The minibuild executable: everything lives in the library; see src/cli/app.cpp.
#include <minibuild/cli/app.hpp>

int main(int argc, char* argv[]) {
  return minibuild::cli::run(argc, argv);
}
