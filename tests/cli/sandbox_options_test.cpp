// --cap-add / --cap-drop: Docker's rules on top of its default set (docs/security.md).
#include "cli/sandbox_options.hpp"

#include <catch2/catch.hpp>

#include <sys/prctl.h>

using namespace minibuild;
using namespace minibuild::cli;
using runtime::capability_bit;

namespace {

constexpr int k_net_bind_service = 10;
constexpr int k_net_admin = 12;
constexpr int k_net_raw = 13;
constexpr int k_sys_admin = 21;

} // namespace

TEST_CASE("cap-add and cap-drop change Docker's default set", "[cli][capabilities]") {
  const runtime::CapabilitySet defaults = runtime::default_capabilities();
  CHECK(capabilities_of({}, {}) == defaults);

  auto changed = capabilities_of({"NET_ADMIN", "cap_sys_admin"}, {"NET_RAW"});
  REQUIRE(changed);
  CHECK(*changed == ((defaults & ~capability_bit(k_net_raw)) | capability_bit(k_net_admin) |
                     capability_bit(k_sys_admin)));

  auto only = capabilities_of({"NET_BIND_SERVICE"}, {"ALL"});
  REQUIRE(only);
  CHECK(*only == capability_bit(k_net_bind_service));
}

TEST_CASE("cap-add ALL is the bounding set less the drops", "[cli][capabilities]") {
  auto all = capabilities_of({"ALL"}, {"NET_RAW"});
  REQUIRE(all);
  CHECK((*all & capability_bit(k_net_raw)) == 0);
  for (int cap = 0; cap <= runtime::last_capability(); ++cap) {
    if (cap != k_net_raw) {
      const bool held = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1;
      CHECK(((*all & capability_bit(cap)) != 0) == held);
    }
  }
}

TEST_CASE("cap-add and cap-drop refuse unknown names and contradictions", "[cli][capabilities]") {
  auto unknown = capabilities_of({"NET_WIZARD"}, {});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == Code::usage);
  CHECK_THAT(unknown.error().what(), Catch::Contains("--cap-add"));

  auto both = capabilities_of({"NET_RAW"}, {"CAP_NET_RAW"});
  REQUIRE_FALSE(both);
  CHECK(both.error().code() == Code::usage);
  CHECK_THAT(both.error().what(), Catch::Contains("CAP_NET_RAW"));
}
