// RootResolver: openat2 and the fallback agree on in-root resolution.
#include "layer/path_resolver.hpp"
#include "layer_test_support.hpp"

#include <catch2/catch.hpp>

using namespace minibuild;
using namespace layer_test;

namespace {

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

} // namespace

TEST_CASE("symlink components resolve inside the root with both resolvers", "[layer][resolver]") {
  auto resolution = GENERATE(layer::PathResolution::auto_detect, layer::PathResolution::fallback);
  TempDir dir;
  make_dir(dir / "root");
  make_dir(dir / "root/real");
  make_dir(dir / "root/real/sub");
  REQUIRE(::symlink("/real", (dir / "root/abs").c_str()) == 0);
  REQUIRE(::symlink("../../../../real/sub", (dir / "root/climb").c_str()) == 0);
  REQUIRE(::symlink("abs/sub", (dir / "root/chain").c_str()) == 0);
  REQUIRE(::symlink("loop2", (dir / "root/loop1").c_str()) == 0);
  REQUIRE(::symlink("loop1", (dir / "root/loop2").c_str()) == 0);
  write_file(dir / "root/file", "f");
  auto resolver = layer::RootResolver::open(dir / "root", resolution);
  REQUIRE(resolver);
  if (resolution == layer::PathResolution::fallback) {
    CHECK_FALSE(resolver->uses_openat2());
  }
  using layer::CreateMissing;
  using layer::Symlinks;

  auto open = [&](const std::string& path, Symlinks symlinks = Symlinks::follow_in_root,
                  CreateMissing create = CreateMissing::no) {
    return resolver->open_dir(split(path), symlinks, create);
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
  auto missing = open("nope/x");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().sys_errno() == ENOENT);

  // Creation follows the symlink to where it points inside the root, even when dangling.
  REQUIRE(::symlink("/var/run-target", (dir / "root/dangling").c_str()) == 0);
  auto created = open("dangling/x", Symlinks::follow_in_root, CreateMissing::yes);
  REQUIRE(created);
  CHECK(inode_of_fd(created->get()) == inode_of(dir / "root/var/run-target/x"));
  auto root = open("");
  REQUIRE(root);
  CHECK(inode_of_fd(root->get()) == inode_of(dir / "root"));
}
