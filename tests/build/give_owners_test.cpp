// give_owners(): a COPY staging tree gets the owners its layer records, so it can become the
// layer's unpacked tree. What chown(2) takes away (set-id bits, file capabilities) comes back.
#include "build/staging.hpp"
#include "build_test_support.hpp"
#include "support/temp_dir.hpp"

#include <minibuild/layer/apply.hpp>

#include <cerrno>
#include <cstring>
#include <sys/xattr.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::build;
using namespace minibuild::build::testing;

namespace {

std::pair<uid_t, gid_t> owner_of(const std::string& path) {
  const struct stat st = lstat_of(path);
  return {st.st_uid, st.st_gid};
}

} // namespace

TEST_CASE("give_owners sets the step's owner and the exceptions", "[build][staging][owners]") {
  if (::geteuid() != 0) {
    WARN("chown to other ids needs root; skipped");
    return;
  }
  test::TempDir tree("owners");
  const std::string root = tree.path();
  make_dir(root + "/app");
  make_dir(root + "/app/bin");
  spit(root + "/app/bin/tool", "#!/bin/sh\n");
  ::chmod((root + "/app/bin/tool").c_str(), 04755);
  spit(root + "/app/config", "x=1\n");
  make_symlink("config", root + "/app/link");
  REQUIRE(::link((root + "/app/config").c_str(), (root + "/app/hard").c_str()) == 0);

  layer::OwnerOverride owners;
  owners.all = layer::EntryOwner{1000, 2000};
  owners.by_path["app/config"] = layer::EntryOwner{0, 0};
  owners.by_path["app/hard"] = layer::EntryOwner{0, 0};
  REQUIRE(give_owners(root, owners));

  CHECK(owner_of(root + "/app") == std::make_pair(uid_t{1000}, gid_t{2000}));
  CHECK(owner_of(root + "/app/bin") == std::make_pair(uid_t{1000}, gid_t{2000}));
  CHECK(owner_of(root + "/app/bin/tool") == std::make_pair(uid_t{1000}, gid_t{2000}));
  CHECK(owner_of(root + "/app/link") == std::make_pair(uid_t{1000}, gid_t{2000}));
  CHECK(owner_of(root + "/app/config") == std::make_pair(uid_t{0}, gid_t{0}));
  // chown cleared the setuid bit; give_owners put it back.
  CHECK((lstat_of(root + "/app/bin/tool").st_mode & 07777) == 04755);
  // The staging root stands for "/", which a COPY layer does not own: untouched.
  CHECK(owner_of(root).first == ::geteuid());
}

TEST_CASE("give_owners keeps file capabilities across the chown", "[build][staging][owners]") {
  if (::geteuid() != 0) {
    WARN("security.capability and chown need root; skipped");
    return;
  }
  test::TempDir tree("owners-cap");
  const std::string server = tree.path() + "/server";
  spit(server, "\x7f"
               "ELF");
  ::chmod(server.c_str(), 0755);
  // vfs_cap_data revision 2 with CAP_NET_BIND_SERVICE permitted and effective.
  const unsigned char bytes[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04};
  const std::string cap(reinterpret_cast<const char*>(bytes), sizeof bytes);
  if (::setxattr(server.c_str(), "security.capability", cap.data(), cap.size(), 0) != 0) {
    WARN("the test filesystem refuses security.capability: " << std::strerror(errno));
    return;
  }
  layer::OwnerOverride owners;
  owners.all = layer::EntryOwner{33, 33};
  REQUIRE(give_owners(tree.path(), owners));
  CHECK(owner_of(server) == std::make_pair(uid_t{33}, gid_t{33}));
  char value[64];
  const ssize_t size = ::getxattr(server.c_str(), "security.capability", value, sizeof value);
  REQUIRE(size == static_cast<ssize_t>(cap.size()));
  CHECK(std::string(value, static_cast<std::size_t>(size)) == cap);
}

TEST_CASE("give_owners leaves entries that already have their owner alone",
          "[build][staging][owners]") {
  test::TempDir tree("owners-same");
  spit(tree.path() + "/file", "data");
  ::chmod((tree.path() + "/file").c_str(), 02755);
  layer::OwnerOverride owners;
  owners.all = layer::EntryOwner{::geteuid(), ::getegid()};
  REQUIRE(give_owners(tree.path(), owners));
  // No chown happened, so nothing was cleared (and an unprivileged run needs no rights).
  CHECK((lstat_of(tree.path() + "/file").st_mode & 07777) == 02755);
}

TEST_CASE("give_owners fails with the path when the tree is missing", "[build][staging][owners]") {
  auto given = give_owners("/nonexistent/minibuild-owners", layer::OwnerOverride{});
  REQUIRE_FALSE(given);
  CHECK_THAT(given.error().what(), Catch::Contains("/nonexistent/minibuild-owners"));
}
