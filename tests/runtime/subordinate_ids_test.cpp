// Parsing /etc/subuid text and planning id maps: pure functions, table tests.

#include <minibuild/runtime/user_namespace.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <vector>

using minibuild::Code;
using minibuild::layer::IdRange;
using namespace minibuild::runtime;

TEST_CASE("parse_subordinate_ids picks the user's ranges by name or uid", "[runtime]") {
  const std::string text = "# subordinate ids\n"
                           "\n"
                           "alice:100000:65536\n"
                           "bob:165536:65536\n"
                           "  1000:300000:10  \n"
                           "alice:400000:5\r\n"
                           "1001:500000:1\n"
                           "alice2:600000:7"; // no final newline
  auto alice = parse_subordinate_ids(text, "alice", 1000);
  REQUIRE(alice);
  CHECK(*alice == std::vector<IdRange>{{0, 100000, 65536}, {0, 300000, 10}, {0, 400000, 5}});

  auto bob = parse_subordinate_ids(text, "bob", 1002);
  REQUIRE(bob);
  CHECK(*bob == std::vector<IdRange>{{0, 165536, 65536}});

  auto by_uid_only = parse_subordinate_ids(text, "nobody-else", 1001);
  REQUIRE(by_uid_only);
  CHECK(*by_uid_only == std::vector<IdRange>{{0, 500000, 1}});

  auto last_line = parse_subordinate_ids(text, "alice2", 9);
  REQUIRE(last_line);
  CHECK(*last_line == std::vector<IdRange>{{0, 600000, 7}});

  auto none = parse_subordinate_ids(text, "carol", 4242);
  REQUIRE(none);
  CHECK(none->empty());

  auto empty_file = parse_subordinate_ids("", "alice", 1000);
  REQUIRE(empty_file);
  CHECK(empty_file->empty());
}

TEST_CASE("parse_subordinate_ids reports malformed lines with file and line", "[runtime]") {
  struct Case {
    std::string line;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"alice:100000", "not three fields"},
      {"alice:1:2:3", "not three fields"},
      {":100000:65536", "empty name"},
      {"alice:abc:65536", "decimal"},
      {"alice:100000:", "decimal"},
      {"alice:-1:5", "decimal"},
      {"alice:+1:5", "decimal"},
      {"alice:0x10:5", "decimal"},
      {"alice:100000:0", "COUNT is 0"},
      {"alice:4294967295:1", "past id"},
      {"alice:4294967290:6", "past id"},
      {"alice:99999999999:1", "decimal"},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    // Malformed lines fail even when they name another user; the good line before is line 2.
    auto result = parse_subordinate_ids("# x\nbob:1:1\n" + c.line + "\n", "bob", 7, "/etc/subgid");
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::io);
    REQUIRE(result.error().location());
    CHECK(result.error().location()->file == "/etc/subgid");
    CHECK(result.error().location()->line == 3);
    CHECK_THAT(result.error().message(), Catch::Contains(c.why));
    CHECK_THAT(result.error().what(), Catch::StartsWith("/etc/subgid:3: malformed entry"));
  }
  // The highest valid range ends at 4294967294.
  auto top = parse_subordinate_ids("alice:4294967290:5\n", "alice", 1);
  REQUIRE(top);
  CHECK(*top == std::vector<IdRange>{{0, 4294967290U, 5}});
}

TEST_CASE("plan_id_map maps root to the user and 1..size to subordinate ranges", "[runtime]") {
  const auto plan = plan_id_map(1000, 1001, {{0, 100000, 65536}}, {{0, 200000, 65536}});
  CHECK(plan.kind == IdMapKind::subordinate);
  CHECK(plan.map.uids == std::vector<IdRange>{{0, 1000, 1}, {1, 100000, 65536}});
  CHECK(plan.map.gids == std::vector<IdRange>{{0, 1001, 1}, {1, 200000, 65536}});
  CHECK(plan.uid_count == 65537);
  CHECK(plan.gid_count == 65537);
}

TEST_CASE("plan_id_map takes several ranges in order and stops at size", "[runtime]") {
  const std::vector<IdRange> subuids = {{0, 100000, 10}, {0, 500000, 100}, {0, 900000, 50}};
  const auto plan = plan_id_map(1000, 1000, subuids, subuids, 60);
  CHECK(plan.kind == IdMapKind::subordinate);
  CHECK(plan.map.uids == std::vector<IdRange>{{0, 1000, 1}, {1, 100000, 10}, {11, 500000, 50}});
  CHECK(plan.uid_count == 61);
}

TEST_CASE("plan_id_map maps what there is when the ranges are short", "[runtime]") {
  const auto plan = plan_id_map(1000, 1000, {{0, 100000, 10}, {0, 200000, 5}}, {{0, 300000, 3}});
  CHECK(plan.map.uids == std::vector<IdRange>{{0, 1000, 1}, {1, 100000, 10}, {11, 200000, 5}});
  CHECK(plan.map.gids == std::vector<IdRange>{{0, 1000, 1}, {1, 300000, 3}});
  CHECK(plan.uid_count == 16);
  CHECK(plan.gid_count == 4);
}

TEST_CASE("plan_id_map never maps a host id twice", "[runtime]") {
  // The user's own id inside a range, a repeated entry and an overlapping one.
  const std::vector<IdRange> subuids = {{0, 995, 10}, {0, 995, 10}, {0, 1000, 20}, {0, 2000, 3}};
  const auto plan = plan_id_map(1000, 1000, subuids, subuids, 100);
  CHECK(
      plan.map.uids ==
      std::vector<IdRange>{{0, 1000, 1}, {1, 995, 5}, {6, 1001, 4}, {10, 1005, 15}, {25, 2000, 3}});
  CHECK(plan.uid_count == 28);
}

TEST_CASE("plan_id_map stops at the kernel's 340 lines", "[runtime]") {
  std::vector<IdRange> many;
  for (std::uint32_t i = 0; i < 400; ++i) {
    many.push_back({0, 100000 + i * 10, 1});
  }
  const auto plan = plan_id_map(1000, 1000, many, many, 65536);
  CHECK(plan.map.uids.size() == 340);
  CHECK(plan.uid_count == 340);
}

TEST_CASE("plan_id_map falls back to a single id without ranges", "[runtime]") {
  const std::vector<IdRange> range = {{0, 100000, 65536}};
  for (const auto& [subuids, subgids] :
       std::vector<std::pair<std::vector<IdRange>, std::vector<IdRange>>>{
           {{}, {}}, {range, {}}, {{}, range}}) {
    const auto plan = plan_id_map(1000, 1001, subuids, subgids);
    CHECK(plan.kind == IdMapKind::single_id);
    CHECK(plan.map.uids == std::vector<IdRange>{{0, 1000, 1}});
    CHECK(plan.map.gids == std::vector<IdRange>{{0, 1001, 1}});
    CHECK(plan.uid_count == 1);
    CHECK(plan.gid_count == 1);
  }
}

TEST_CASE("user_namespace_hint names the sysctl or AppArmor setting that refuses", "[runtime]") {
  const UserNamespaceSysctls open_kernel{1L, 15000L, 0L};
  CHECK(user_namespace_hint(EPERM, open_kernel).empty());
  CHECK(user_namespace_hint(EPERM, {}).empty());

  CHECK_THAT(user_namespace_hint(EPERM, {0L, 15000L, std::nullopt}),
             Catch::Contains("kernel.unprivileged_userns_clone = 0"));
  CHECK_THAT(user_namespace_hint(ENOSPC, {std::nullopt, 0L, std::nullopt}),
             Catch::Contains("user.max_user_namespaces = 0"));
  CHECK_THAT(user_namespace_hint(EACCES, {std::nullopt, 15000L, 1L}),
             Catch::Contains("kernel.apparmor_restrict_unprivileged_userns = 1"));
  CHECK_THAT(user_namespace_hint(ENOSPC, open_kernel),
             Catch::Contains("limit on user namespaces is reached (user.max_user_namespaces = "
                             "15000"));
  CHECK_THAT(user_namespace_hint(EUSERS, {}), Catch::Contains("32 nested"));
  CHECK_THAT(user_namespace_hint(EINVAL, open_kernel), Catch::Contains("single-threaded"));
  // An errno the settings do not explain gets no guess.
  CHECK(user_namespace_hint(ENOMEM, {0L, 0L, 1L}).empty());
}
