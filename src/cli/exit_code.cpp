#include "exit_code.hpp"

namespace minibuild::cli {

int exit_code_for(Code code) {
  switch (code) {
  case Code::build_failed:
    return 1;
  case Code::usage:
  case Code::dockerfile:
    return 2;
  case Code::not_found:
    return 3;
  case Code::io:
  case Code::corrupt:
    return 4;
  case Code::network:
  case Code::auth:
    return 5;
  case Code::sandbox:
    return 6;
  case Code::unsupported:
    return 7;
  case Code::interrupted:
    return 130;
  case Code::internal:
    return 70; // EX_SOFTWARE from sysexits.h: a bug in minibuild
  }
  return 70;
}

} // namespace minibuild::cli
