#include "store/fault_injecting_fs.hpp"
#include "store/store_test_support.hpp"

#include <minibuild/oci/byte_source.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

std::string pattern_bytes(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<char>((i * 131 + 7) % 251);
  }
  return bytes;
}

Result<std::string> read_blob(Store& store, const oci::Digest& digest,
                              std::optional<std::uint64_t> size = std::nullopt) {
  MB_TRY_ASSIGN(auto source, store.blobs().get(digest, size));
  return oci::read_all(*source, 64 * 1024 * 1024);
}

} // namespace

TEST_CASE("put then get returns the same bytes, for empty, small and multi-buffer blobs",
          "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{1000},
                                 std::size_t{64 * 1024}, std::size_t{300 * 1024 + 17}}) {
    const std::string content = pattern_bytes(size);
    const BlobInfo info = put_text(*store, content);
    CHECK(info.digest == oci::sha256_of(content));
    CHECK(info.size == size);
    CHECK(slurp(dir / ("blobs/sha256/" + info.digest.hex())) == content);
    auto read = read_blob(*store, info.digest);
    REQUIRE(read);
    CHECK(*read == content);
    auto stat = store->blobs().stat(info.digest);
    REQUIRE(stat);
    REQUIRE(*stat);
    CHECK((*stat)->size == size);
  }
  auto listed = store->blobs().list();
  REQUIRE(listed);
  CHECK(listed->size() == 5);
  CHECK(std::is_sorted(listed->begin(), listed->end()));
}

TEST_CASE("putting an existing blob succeeds without rewriting it", "[store]") {
  TempDir dir;
  auto fault = std::make_unique<FaultInjectingFs>(
      std::move(*RealStoreFs::open(dir.path(), RealStoreFs::Create::yes)));
  FaultInjectingFs* fs = fault.get();
  auto opened = Store::open(std::move(fault));
  REQUIRE(opened);
  Store& store = **opened;

  const BlobInfo first = put_text(store, "same content");
  const std::string path = dir / ("blobs/sha256/" + first.digest.hex());
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);

  fs->reset();
  const BlobInfo second = put_text(store, "same content");
  CHECK(second == first);
  for (const auto& step : fs->log()) {
    CHECK(step.find("rename") == std::string::npos);
    CHECK(step.find("fsync") == std::string::npos);
  }
  struct stat after {};
  REQUIRE(::stat(path.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("a put with a wrong expected digest fails and leaves nothing", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  oci::StringSource source("actual content");
  auto result = store->blobs().put(source, {oci::sha256_of("other content"), std::nullopt});
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::corrupt);
  CHECK_THAT(result.error().what(), Catch::Contains(oci::sha256_of("other content").to_string()));
  CHECK_THAT(result.error().what(), Catch::Contains(oci::sha256_of("actual content").to_string()));
  CHECK(entries_of(dir / "blobs/sha256").empty());
  CHECK(temp_files(dir.path()) == 0);
  auto listed = store->blobs().list();
  REQUIRE(listed);
  CHECK(listed->empty());
}

TEST_CASE("a put longer or shorter than the expected size fails and leaves nothing", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::string content = pattern_bytes(200 * 1024);
  SECTION("longer: fails before the excess is written") {
    oci::StringSource source(content);
    auto result = store->blobs().put(source, {std::nullopt, std::uint64_t{1000}});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
    CHECK_THAT(result.error().what(), Catch::Contains("longer than expected"));
  }
  SECTION("shorter: fails at commit") {
    oci::StringSource source(content);
    auto result = store->blobs().put(source, {oci::sha256_of(content), content.size() + 1});
    REQUIRE_FALSE(result);
    CHECK(result.error().code() == Code::corrupt);
  }
  CHECK(entries_of(dir / "blobs/sha256").empty());
  CHECK(temp_files(dir.path()) == 0);
}

TEST_CASE("a put with the right expectation succeeds, also for sha512", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::string content = "expected";
  oci::StringSource source(content);
  auto result = store->blobs().put(source, {oci::sha256_of(content), content.size()});
  REQUIRE(result);
  CHECK(result->digest == oci::sha256_of(content));

  const oci::Digest sha512 = oci::digest_of(oci::DigestAlgorithm::sha512, content);
  oci::StringSource source512(content);
  auto result512 = store->blobs().put(source512, {sha512, std::nullopt});
  REQUIRE(result512);
  CHECK(result512->digest == sha512);
  CHECK(slurp(dir / ("blobs/sha512/" + sha512.hex())) == content);
  auto read = read_blob(*store, sha512);
  REQUIRE(read);
  CHECK(*read == content);
}

TEST_CASE("a corrupted blob fails at end of stream with Code::corrupt", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::string content = pattern_bytes(100 * 1024);
  const BlobInfo info = put_text(*store, content);
  const std::string path = dir / ("blobs/sha256/" + info.digest.hex());

  SECTION("one flipped byte") {
    std::string damaged = content;
    damaged[5000] = static_cast<char>(damaged[5000] ^ 0x01);
    spit(path, damaged);
    auto source = store->blobs().get(info.digest);
    REQUIRE(source);
    std::vector<char> buffer(4096);
    std::uint64_t total = 0;
    Result<std::size_t> count = std::size_t{0};
    // Every chunk before the end is handed out; the failure comes with end of stream.
    while ((count = (*source)->read(buffer)) && *count > 0) {
      total += *count;
    }
    REQUIRE_FALSE(count);
    CHECK(count.error().code() == Code::corrupt);
    CHECK(total == content.size());
    CHECK_FALSE((*source)->verified());
  }
  SECTION("truncated, with the size known from a descriptor") {
    spit(path, content.substr(0, 1000));
    auto read = read_blob(*store, info.digest, info.size);
    REQUIRE_FALSE(read);
    CHECK(read.error().code() == Code::corrupt);
  }
  SECTION("a corrupt blob is replaced by the next put of the right content") {
    spit(path, content.substr(0, 1000));
    put_text(*store, content);
    CHECK(slurp(path) == content);
  }
}

TEST_CASE("get, stat and remove of a missing blob", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const oci::Digest digest = oci::sha256_of("nothing");
  auto source = store->blobs().get(digest);
  REQUIRE_FALSE(source);
  CHECK(source.error().code() == Code::not_found);
  auto stat = store->blobs().stat(digest);
  REQUIRE(stat);
  CHECK_FALSE(*stat);
  CHECK(store->blobs().remove(digest));

  const BlobInfo info = put_text(*store, "here");
  CHECK(store->blobs().remove(info.digest));
  CHECK(store->blobs().remove(info.digest)); // idempotent
  auto after = store->blobs().stat(info.digest);
  REQUIRE(after);
  CHECK_FALSE(*after);
}

TEST_CASE("BlobWriter commits only on commit() and cleans up otherwise", "[store]") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::string content = "streamed through a ByteSink";
  {
    auto writer = store->blobs().open_writer({});
    REQUIRE(writer);
    layer::ByteSink& sink = **writer;
    REQUIRE(sink.write(std::span<const char>(content.data(), 10)));
    REQUIRE(sink.write(std::span<const char>(content.data() + 10, content.size() - 10)));
    CHECK(temp_files(dir.path()) == 1);
    CHECK((*writer)->bytes_written() == content.size());
    // destroyed without commit
  }
  CHECK(temp_files(dir.path()) == 0);
  CHECK(entries_of(dir / "blobs/sha256").empty());

  auto writer = store->blobs().open_writer({oci::sha256_of(content), content.size()});
  REQUIRE(writer);
  REQUIRE((*writer)->write(std::span<const char>(content.data(), content.size())));
  auto info = (*writer)->commit();
  REQUIRE(info);
  CHECK(info->digest == oci::sha256_of(content));
  CHECK(slurp(dir / ("blobs/sha256/" + info->digest.hex())) == content);
  CHECK(temp_files(dir.path()) == 0);
  // A committed writer refuses more work.
  CHECK_FALSE((*writer)->write(std::span<const char>(content.data(), 1)));
  CHECK_FALSE((*writer)->commit());
}

TEST_CASE("a failed write kills the writer and removes its temporary file", "[store]") {
  TempDir dir;
  auto fault = std::make_unique<FaultInjectingFs>(
      std::move(*RealStoreFs::open(dir.path(), RealStoreFs::Create::yes)));
  FaultInjectingFs* fs = fault.get();
  auto opened = Store::open(std::move(fault));
  REQUIRE(opened);
  Store& store = **opened;
  auto writer = store.blobs().open_writer({});
  REQUIRE(writer);
  fs->reset();
  fs->arm(0, FaultInjectingFs::Mode::fail);
  const std::string content = "x";
  auto written = (*writer)->write(std::span<const char>(content.data(), content.size()));
  REQUIRE_FALSE(written);
  CHECK(written.error().sys_errno() == EIO);
  CHECK_THAT(written.error().what(), Catch::Contains("write temporary blob"));
  CHECK_FALSE((*writer)->commit());
  writer->reset();
  CHECK(temp_files(dir.path()) == 0);
}
