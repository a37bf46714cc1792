// RealStoreFs on a real temporary directory (STYLE.md habit 4: real adapters get real tests).
#include "store/store_test_support.hpp"

#include <minibuild/store/store_fs.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

std::unique_ptr<RealStoreFs> open_fs(const std::string& root) {
  auto fs = RealStoreFs::open(root, RealStoreFs::Create::yes);
  if (!fs) {
    FAIL(fs.error().what());
  }
  return std::move(*fs);
}

void write_text(StoreFs& fs, const std::string& rel, std::string_view text) {
  auto fd = fs.create_file(rel);
  REQUIRE(fd);
  REQUIRE(fs.write(fd->get(), std::span<const char>(text.data(), text.size())));
  REQUIRE(fs.sync_file(fd->get()));
}

} // namespace

TEST_CASE("RealStoreFs creates the root and resolves paths below it", "[store]") {
  TempDir dir;
  const std::string root = dir / "a/b/root";
  auto fs = open_fs(root + "/");
  CHECK(fs->absolute("") == root);
  CHECK(fs->absolute("blobs/sha256") == root + "/blobs/sha256");
  struct stat st {};
  REQUIRE(::stat(root.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto missing = RealStoreFs::open(dir / "absent", RealStoreFs::Create::no);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::not_found);
}

TEST_CASE("RealStoreFs file and directory steps", "[store]") {
  TempDir dir;
  auto fs = open_fs(dir.path());
  REQUIRE(fs->make_dir("d"));
  REQUIRE(fs->make_dir("d")); // existing directory: fine
  write_text(*fs, "d/file", "content");
  CHECK(slurp(dir / "d/file") == "content");
  auto again = fs->create_file("d/file");
  REQUIRE_FALSE(again);
  CHECK(again.error().sys_errno() == EEXIST);
  auto not_dir = fs->make_dir("d/file");
  REQUIRE_FALSE(not_dir);
  CHECK(not_dir.error().sys_errno() == EEXIST);

  auto stat = fs->stat("d/file");
  REQUIRE(stat);
  REQUIRE(*stat);
  CHECK((*stat)->type == EntryType::file);
  CHECK((*stat)->size == 7);
  auto absent = fs->stat("nothing");
  REQUIRE(absent);
  CHECK_FALSE(*absent);

  auto listed = fs->list("d");
  REQUIRE(listed);
  CHECK(*listed == std::vector<FsEntry>{{"file", EntryType::file}});
  auto listed_missing = fs->list("nothing");
  REQUIRE(listed_missing);
  CHECK(listed_missing->empty());

  REQUIRE(fs->rename("d/file", "moved"));
  CHECK(slurp(dir / "moved") == "content");
  REQUIRE(fs->sync_dir(""));
  REQUIRE(fs->sync_fs());
  REQUIRE(fs->remove_file("moved"));
  REQUIRE(fs->remove_file("moved")); // idempotent
  auto read = fs->open_read("moved");
  REQUIRE_FALSE(read);
  CHECK(read.error().code() == Code::not_found);
  CHECK_THAT(read.error().message(), Catch::Contains(dir / "moved"));
}

TEST_CASE("RealStoreFs refuses to rename over a non-empty directory", "[store]") {
  TempDir dir;
  auto fs = open_fs(dir.path());
  REQUIRE(fs->make_dir("a"));
  write_text(*fs, "a/x", "1");
  REQUIRE(fs->make_dir("b"));
  write_text(*fs, "b/y", "2");
  auto renamed = fs->rename("a", "b");
  REQUIRE_FALSE(renamed);
  CHECK((renamed.error().sys_errno() == ENOTEMPTY || renamed.error().sys_errno() == EEXIST));
  CHECK(slurp(dir / "b/y") == "2");
}

TEST_CASE("RealStoreFs removes trees with read-only directories and never follows symlinks",
          "[store]") {
  TempDir dir;
  auto fs = open_fs(dir.path());
  REQUIRE(fs->make_dir("outside"));
  write_text(*fs, "outside/keep", "keep");
  REQUIRE(fs->make_dir("tree"));
  REQUIRE(fs->make_dir("tree/ro"));
  write_text(*fs, "tree/ro/file", "x");
  REQUIRE(::symlink((dir / "outside").c_str(), (dir / "tree/link").c_str()) == 0);
  REQUIRE(::chmod((dir / "tree/ro").c_str(), 0500) == 0);
  REQUIRE(fs->remove_tree("tree"));
  auto gone = fs->stat("tree");
  REQUIRE(gone);
  CHECK_FALSE(*gone);
  CHECK(slurp(dir / "outside/keep") == "keep");
  REQUIRE(fs->remove_tree("tree")); // idempotent
}

TEST_CASE("RealStoreFs locks: shared with shared, exclusive with nothing", "[store]") {
  TempDir dir;
  auto fs = open_fs(dir.path());
  write_text(*fs, "lock", "");
  auto first = fs->lock("lock", LockMode::shared, Wait::no);
  REQUIRE(first);
  auto second = fs->lock("lock", LockMode::shared, Wait::no);
  REQUIRE(second);
  auto exclusive = fs->lock("lock", LockMode::exclusive, Wait::no);
  REQUIRE_FALSE(exclusive);
  CHECK(exclusive.error().sys_errno() == EWOULDBLOCK);
  first->reset();
  second->reset();
  exclusive = fs->lock("lock", LockMode::exclusive, Wait::no);
  REQUIRE(exclusive);
  auto shared = fs->lock("lock", LockMode::shared, Wait::no);
  REQUIRE_FALSE(shared);
  // Directories can be locked too (session directories are).
  REQUIRE(fs->make_dir("session"));
  CHECK(fs->lock("session", LockMode::exclusive, Wait::no));
}
