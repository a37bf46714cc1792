// InRoot: openat2 and the fallback walk agree on in-root resolution.
#include "support/temp_dir.hpp"

#include <minibuild/base/in_root.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace minibuild;

namespace {

using TempDir = minibuild::test::TempDir;

void make_dir(const std::string& path) {
  REQUIRE(::mkdir(path.c_str(), 0755) == 0);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  REQUIRE(out.good());
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// The inode a descriptor refers to, to compare with a path in the test tree.
ino_t inode_of_fd(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_ino;
}
ino_t inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

// root/real/sub, root/file and symlinks that try to leave the root or loop.
void make_tree(const TempDir& dir) {
  make_dir(dir / "root");
  make_dir(dir / "root/real");
  make_dir(dir / "root/real/sub");
  REQUIRE(::symlink("/real", (dir / "root/abs").c_str()) == 0);
  REQUIRE(::symlink("../../../../real/sub", (dir / "root/climb").c_str()) == 0);
  REQUIRE(::symlink("abs/sub", (dir / "root/chain").c_str()) == 0);
  REQUIRE(::symlink("loop2", (dir / "root/loop1").c_str()) == 0);
  REQUIRE(::symlink("loop1", (dir / "root/loop2").c_str()) == 0);
  write_file(dir / "root/file", "f");
}

} // namespace

TEST_CASE("open_dir resolves symlink components inside the root with both resolvers",
          "[base][in_root]") {
  auto resolution = GENERATE(Resolution::auto_detect, Resolution::fallback);
  TempDir dir;
  make_tree(dir);
  auto root_dir = InRoot::open(dir / "root", resolution);
  REQUIRE(root_dir);
  if (resolution == Resolution::fallback) {
    CHECK_FALSE(root_dir->uses_openat2());
  }

  auto open = [&](const std::string& path, Symlinks symlinks = Symlinks::follow_in_root,
                  CreateMissing create = CreateMissing::no) {
    return root_dir->open_dir(split(path), symlinks, create);
  };
  auto abs = open("abs/sub");
  REQUIRE(abs);
  CHECK(inode_of_fd(abs->get()) == inode_of(dir / "root/real/sub"));
  auto climb = open("climb");
  REQUIRE(climb);
  CHECK(inode_of_fd(climb->get()) == inode_of(dir / "root/real/sub"));
  auto chain = open("chain");
  REQUIRE(chain);
  CHECK(inode_of_fd(chain->get()) == inode_of(dir / "root/real/sub"));

  auto refused = open("abs/sub", Symlinks::refuse);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().sys_errno() == ELOOP);
  auto loop = open("loop1");
  REQUIRE_FALSE(loop);
  CHECK(loop.error().sys_errno() == ELOOP);
  auto not_dir = open("file/x");
  REQUIRE_FALSE(not_dir);
  CHECK(not_dir.error().sys_errno() == ENOTDIR);
  auto file = open("file");
  REQUIRE_FALSE(file);
  CHECK(file.error().sys_errno() == ENOTDIR);
  auto missing = open("nope/x");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().sys_errno() == ENOENT);

  // Creation follows the symlink to where it points inside the root, even when dangling.
  REQUIRE(::symlink("/var/run-target", (dir / "root/dangling").c_str()) == 0);
  auto created = open("dangling/x", Symlinks::follow_in_root, CreateMissing::yes);
  REQUIRE(created);
  CHECK(inode_of_fd(created->get()) == inode_of(dir / "root/var/run-target/x"));
  // With refuse, a symlink on the way fails even when creating.
  auto refused_create = open("dangling/y", Symlinks::refuse, CreateMissing::yes);
  REQUIRE_FALSE(refused_create);
  CHECK(refused_create.error().sys_errno() == ELOOP);
  CHECK(::access((dir / "root/var/run-target/y").c_str(), F_OK) != 0);
  auto root = open("");
  REQUIRE(root);
  CHECK(inode_of_fd(root->get()) == inode_of(dir / "root"));
}

TEST_CASE("locate reports the physical path and keeps the errno with both resolvers",
          "[base][in_root]") {
  auto resolution = GENERATE(Resolution::auto_detect, Resolution::fallback);
  TempDir dir;
  make_tree(dir);
  REQUIRE(::symlink("/file", (dir / "root/real/to-file").c_str()) == 0);
  auto root_dir = InRoot::open(dir / "root", resolution);
  REQUIRE(root_dir);

  auto through = root_dir->locate("chain/../sub/./", FollowFinal::yes);
  REQUIRE(through);
  CHECK(through->physical == "real/sub");
  CHECK(through->name == "sub");
  CHECK(S_ISDIR(through->st.st_mode));
  CHECK(through->st.st_ino == inode_of(dir / "root/real/sub"));
  CHECK(inode_of_fd(through->parent.get()) == inode_of(dir / "root/real"));

  auto followed = root_dir->locate("real/to-file", FollowFinal::yes);
  REQUIRE(followed);
  CHECK(followed->physical == "file");
  CHECK(S_ISREG(followed->st.st_mode));
  auto kept = root_dir->locate("real/to-file", FollowFinal::no);
  REQUIRE(kept);
  CHECK(kept->physical == "real/to-file");
  CHECK(S_ISLNK(kept->st.st_mode));
  auto refused = root_dir->locate("real/to-file", FollowFinal::yes, Symlinks::refuse);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().sys_errno() == ELOOP);

  auto root = root_dir->locate("..", FollowFinal::yes);
  REQUIRE(root);
  CHECK(root->physical.empty());
  CHECK(root->name.empty());
  CHECK(root->st.st_ino == inode_of(dir / "root"));

  auto missing = root_dir->locate("abs/nope", FollowFinal::yes);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().sys_errno() == ENOENT);
  auto not_dir = root_dir->locate("file/x", FollowFinal::yes);
  REQUIRE_FALSE(not_dir);
  CHECK(not_dir.error().sys_errno() == ENOTDIR);
  auto loop = root_dir->locate("loop1", FollowFinal::yes);
  REQUIRE_FALSE(loop);
  CHECK(loop.error().sys_errno() == ELOOP);

  auto readable = root_dir->open_for_reading(*followed);
  REQUIRE(readable);
  char byte = 0;
  CHECK(::read(readable->get(), &byte, 1) == 1);
  CHECK(byte == 'f');
}

TEST_CASE("ensure_dir creates behind dangling symlinks and lists what it created",
          "[base][in_root]") {
  auto resolution = GENERATE(Resolution::auto_detect, Resolution::fallback);
  TempDir dir;
  make_tree(dir);
  REQUIRE(::symlink("/opt/app", (dir / "root/dangling").c_str()) == 0);
  auto root_dir = InRoot::open(dir / "root", resolution);
  REQUIRE(root_dir);

  std::vector<std::string> created;
  auto made = root_dir->ensure_dir("dangling/data", Symlinks::follow_in_root, &created);
  REQUIRE(made);
  CHECK(made->physical == "opt/app/data");
  CHECK(created == std::vector<std::string>{"opt", "opt/app", "opt/app/data"});
  CHECK(inode_of_fd(made->fd.get()) == inode_of(dir / "root/opt/app/data"));

  created.clear();
  auto existing = root_dir->ensure_dir("abs/sub", Symlinks::follow_in_root, &created);
  REQUIRE(existing);
  CHECK(existing->physical == "real/sub");
  CHECK(created.empty());

  auto refused = root_dir->ensure_dir("abs/new", Symlinks::refuse);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().sys_errno() == ELOOP);
  auto not_dir = root_dir->ensure_dir("file", Symlinks::follow_in_root);
  REQUIRE_FALSE(not_dir);
  CHECK(not_dir.error().sys_errno() == ENOTDIR);
}
