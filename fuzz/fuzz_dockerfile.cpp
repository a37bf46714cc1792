// Fuzzes the whole Dockerfile front end: any bytes as a Dockerfile go through the parser, both
// dumps, the typed instructions and the planner. Anything but a crash, a sanitizer report or a
// hang is fine: invalid input must come back as an Error.
#include <minibuild/dockerfile/instructions.hpp>
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/dockerfile/plan.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minibuild::dockerfile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_dockerfile(text, "Dockerfile");
  if (!parsed) {
    return 0;
  }
  (void)dump_buildkit(*parsed);
  (void)dump_json(*parsed);
  auto plan = make_plan(*parsed, PlanOptions{});
  if (plan) {
    (void)dump_plan(*plan);
  }
  return 0;
}
