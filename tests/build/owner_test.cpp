#include <minibuild/build/owner.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using minibuild::Code;
using minibuild::Result;
using minibuild::build::BaseFileReader;
using minibuild::build::lookup_group;
using minibuild::build::lookup_passwd;
using minibuild::build::Owner;
using minibuild::build::resolve_owner;

namespace {

const char* const k_passwd = "root:x:0:0:root:/root:/bin/sh\n"
                             "# a comment\n"
                             "broken line\n"
                             "app:x:1000:1001:App User:/home/app:/bin/sh\n"
                             "web:x:33:33::/var/www:/usr/sbin/nologin\r\n";
const char* const k_group = "root:x:0:\n"
                            "staff:x:50:app\n"
                            "appgroup:x:1001:\n";

struct RecordingReader {
  std::map<std::string, std::string> files;
  std::vector<std::string> reads;

  BaseFileReader reader() {
    return [this](const std::string& path) -> Result<std::optional<std::string>> {
      reads.push_back(path);
      auto found = files.find(path);
      if (found == files.end()) {
        return std::optional<std::string>();
      }
      return std::optional<std::string>(found->second);
    };
  }
};

} // namespace

TEST_CASE("chown: numeric ids need no base files", "[build][chown]") {
  RecordingReader base;
  auto reader = base.reader();
  CHECK(*resolve_owner("", reader) == Owner{0, 0});
  CHECK(*resolve_owner("1000", reader) == Owner{1000, 1000}); // group defaults to the uid
  CHECK(*resolve_owner("1000:50", reader) == Owner{1000, 50});
  CHECK(*resolve_owner("0:0", reader) == Owner{0, 0});
  CHECK(*resolve_owner("4294967294", reader) == Owner{4294967294u, 4294967294u});
  CHECK(base.reads.empty());
}

TEST_CASE("chown: names resolve through the base image's passwd and group", "[build][chown]") {
  RecordingReader base;
  base.files["/etc/passwd"] = k_passwd;
  base.files["/etc/group"] = k_group;
  auto reader = base.reader();
  CHECK(*resolve_owner("app", reader) == Owner{1000, 1001}); // the user's primary group
  CHECK(*resolve_owner("app:staff", reader) == Owner{1000, 50});
  CHECK(*resolve_owner("app:0", reader) == Owner{1000, 0});
  CHECK(*resolve_owner("33:staff", reader) == Owner{33, 50});
  CHECK(*resolve_owner("web", reader) == Owner{33, 33}); // CRLF line
}

TEST_CASE("chown: reports unknown names and malformed values", "[build][chown]") {
  RecordingReader base;
  base.files["/etc/passwd"] = k_passwd;
  base.files["/etc/group"] = k_group;
  auto reader = base.reader();

  auto unknown_user = resolve_owner("nobody", reader);
  REQUIRE_FALSE(unknown_user);
  CHECK(unknown_user.error().code() == Code::build_failed);
  CHECK(unknown_user.error().message() ==
        "--chown=nobody: no user \"nobody\" in the base image's /etc/passwd");

  auto unknown_group = resolve_owner("app:wheel", reader);
  REQUIRE_FALSE(unknown_group);
  CHECK(unknown_group.error().message() ==
        "--chown=app:wheel: no group \"wheel\" in the base image's /etc/group");

  // A comment or a malformed line never matches.
  CHECK_FALSE(resolve_owner("broken line", reader));

  for (const char* bad : {":1", "1:", "a:b:c", "4294967295", "99999999999"}) {
    INFO(bad);
    auto result = resolve_owner(bad, reader);
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::dockerfile);
  }

  RecordingReader scratch; // no /etc/passwd at all
  auto no_file = resolve_owner("app", scratch.reader());
  REQUIRE_FALSE(no_file);
  CHECK(no_file.error().message().find("the base image has no /etc/passwd") != std::string::npos);
  auto no_reader = resolve_owner("app", BaseFileReader());
  REQUIRE_FALSE(no_reader);
  CHECK(no_reader.error().code() == Code::build_failed);
}

TEST_CASE("passwd and group lookups", "[build][chown]") {
  CHECK(lookup_passwd(k_passwd, "root") == Owner{0, 0});
  CHECK_FALSE(lookup_passwd(k_passwd, "ap"));
  CHECK_FALSE(lookup_passwd("bad:x:notanumber:1::/:/bin/sh\n", "bad"));
  CHECK(lookup_group(k_group, "appgroup") == 1001u);
  CHECK_FALSE(lookup_group(k_group, "app"));
}
