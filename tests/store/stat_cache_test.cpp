#include "support/temp_dir.hpp"

#include <minibuild/store/stat_cache.hpp>

#include <catch2/catch.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

using namespace minibuild;
using minibuild::store::FileDigests;
using minibuild::store::StatCache;

namespace {

constexpr std::int64_t k_start_ns = 2'000'000'000'000'000'000; // 2033

struct stat quiet_stat(std::uint64_t ino, std::int64_t size) {
  struct stat st {};
  st.st_dev = 42;
  st.st_ino = ino;
  st.st_size = size;
  st.st_mtim = {1'700'000'000, 123};
  st.st_ctim = {1'700'000'001, 456};
  return st;
}

FileDigests digests_of(std::string_view content, std::string_view xattrs = {}) {
  FileDigests digests;
  digests.content = oci::sha256_of(content);
  if (!xattrs.empty()) {
    digests.xattrs = oci::sha256_of(xattrs);
  }
  return digests;
}

std::size_t files_in(const std::string& dir) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++count;
  }
  return count;
}

} // namespace

TEST_CASE("StatCache file names are per context root", "[store][stat_cache]") {
  minibuild::test::TempDir a;
  minibuild::test::TempDir b;
  const std::string file = StatCache::file_for("/store", a.path());
  CHECK(file.rfind("/store/cache/stat/", 0) == 0);
  CHECK(file.size() == std::string("/store/cache/stat/").size() + 64 + 4);
  CHECK(StatCache::file_for("/store", a.path() + "/") == file);
  CHECK(StatCache::file_for("/store", b.path()) != file);
}

TEST_CASE("StatCache round-trips through its file", "[store][stat_cache]") {
  minibuild::test::TempDir root;
  const std::string file = root / "cache/stat/x.bin";
  {
    auto cache = StatCache::load(file, k_start_ns);
    REQUIRE(cache);
    CHECK(cache->size() == 0);
    CHECK(cache->record("a", quiet_stat(1, 5), digests_of("alpha")));
    CHECK(cache->record("dir/b", quiet_stat(2, 5), digests_of("bravo", "user.x=1")));
    REQUIRE(cache->save());
  }
  CHECK(files_in(root / "cache/stat") == 1); // no temp file left behind
  auto cache = StatCache::load(file, k_start_ns);
  REQUIRE(cache);
  CHECK(cache->size() == 2);
  auto a = cache->lookup("a", quiet_stat(1, 5));
  REQUIRE(a);
  CHECK(a->content == oci::sha256_of("alpha"));
  CHECK(a->xattrs.empty());
  auto b = cache->lookup("dir/b", quiet_stat(2, 5));
  REQUIRE(b);
  CHECK(b->xattrs == oci::sha256_of("user.x=1"));
  CHECK(cache->hits() == 2);
}

TEST_CASE("StatCache trusts an entry only when every stat field matches", "[store][stat_cache]") {
  minibuild::test::TempDir root;
  auto cache = StatCache::load(root / "c.bin", k_start_ns);
  REQUIRE(cache);
  const struct stat st = quiet_stat(7, 10);
  REQUIRE(cache->record("f", st, digests_of("0123456789")));
  CHECK(cache->lookup("f", st));
  CHECK_FALSE(cache->lookup("g", st));

  struct stat other = st;
  SECTION("size") {
    other.st_size = 11;
  }
  SECTION("inode") {
    other.st_ino = 8;
  }
  SECTION("device") {
    other.st_dev = 43;
  }
  SECTION("mtime nanoseconds") {
    other.st_mtim.tv_nsec += 1;
  }
  SECTION("ctime only") {
    other.st_ctim.tv_sec += 1;
  }
  CHECK_FALSE(cache->lookup("f", other));
}

TEST_CASE("StatCache refuses racily clean files", "[store][stat_cache]") {
  minibuild::test::TempDir root;
  const std::int64_t start = 1'700'000'010'000'000'000;
  auto cache = StatCache::load(root / "c.bin", start);
  REQUIRE(cache);
  struct stat st = quiet_stat(1, 1);
  st.st_mtim = {1'700'000'009, 0}; // one second before the build started
  CHECK_FALSE(cache->record("m", st, digests_of("m")));
  st = quiet_stat(1, 1);
  st.st_ctim = {1'700'000'008, 1}; // just inside the window
  CHECK_FALSE(cache->record("c", st, digests_of("c")));
  st.st_ctim = {1'700'000'007, 999'999'999}; // just outside it
  CHECK(cache->record("c", st, digests_of("c")));
  CHECK(cache->size() == 1);
  CHECK(cache->racy() == 2);
}

TEST_CASE("StatCache loads a damaged file as empty", "[store][stat_cache]") {
  minibuild::test::TempDir root;
  const std::string file = root / "c.bin";
  {
    auto cache = StatCache::load(file, k_start_ns);
    REQUIRE(cache);
    REQUIRE(cache->record("a", quiet_stat(1, 5), digests_of("alpha")));
    REQUIRE(cache->save());
  }
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  SECTION("truncated") {
    bytes.resize(bytes.size() - 3);
  }
  SECTION("a flipped byte") {
    bytes[bytes.size() / 2] ^= 0x01;
  }
  SECTION("another version") {
    bytes[std::string("minibuild-stat-cache ").size()] = '9';
  }
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  auto cache = StatCache::load(file, k_start_ns);
  REQUIRE(cache);
  CHECK(cache->size() == 0);
}

TEST_CASE("StatCache drops entries unused for several saves", "[store][stat_cache]") {
  minibuild::test::TempDir root;
  const std::string file = root / "c.bin";
  {
    auto cache = StatCache::load(file, k_start_ns);
    REQUIRE(cache);
    REQUIRE(cache->record("old", quiet_stat(1, 1), digests_of("o")));
    REQUIRE(cache->record("kept", quiet_stat(2, 1), digests_of("k")));
    REQUIRE(cache->save());
  }
  for (int build = 0; build < store::k_max_age + 1; ++build) {
    auto cache = StatCache::load(file, k_start_ns);
    REQUIRE(cache);
    CHECK(cache->size() == 2);
    REQUIRE(cache->lookup("kept", quiet_stat(2, 1)));
    REQUIRE(cache->save());
  }
  auto cache = StatCache::load(file, k_start_ns);
  REQUIRE(cache);
  CHECK(cache->size() == 1);
  CHECK(cache->lookup("kept", quiet_stat(2, 1)));
}

TEST_CASE("StatCache does not rewrite an unchanged cache", "[store][stat_cache]") {
  minibuild::test::TempDir root;
  const std::string file = root / "c.bin";
  {
    auto cache = StatCache::load(file, k_start_ns);
    REQUIRE(cache);
    REQUIRE(cache->record("a", quiet_stat(1, 1), digests_of("a")));
    REQUIRE(cache->save());
  }
  struct stat before {};
  REQUIRE(::stat(file.c_str(), &before) == 0);
  auto cache = StatCache::load(file, k_start_ns);
  REQUIRE(cache);
  REQUIRE(cache->lookup("a", quiet_stat(1, 1)));
  REQUIRE(cache->save());
  REQUIRE(cache->save());
  struct stat after {};
  REQUIRE(::stat(file.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino); // not replaced by a rename
}
