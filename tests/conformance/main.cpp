// Main of the conformance binary: runs Catch2 only when the third-party data is present, and
// otherwise tells ctest (exit 77) that the suite was skipped, and why.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

int main(int argc, char* argv[]) {
  if (!std::filesystem::is_directory(MINIBUILD_CONFORMANCE_DIR)) {
    std::printf("skipped: conformance data not found at %s (CI puts ../shared beside the "
                "checkout)\n",
                MINIBUILD_CONFORMANCE_DIR);
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
