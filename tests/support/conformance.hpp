// Where the third-party conformance data lives (../shared/conformance beside the checkout).
#pragma once

#include <string>

namespace minibuild::test {

inline std::string conformance_dir() {
  return MINIBUILD_CONFORMANCE_DIR;
}

} // namespace minibuild::test
