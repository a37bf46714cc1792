#include "build_test_support.hpp"

#include <minibuild/build/copy_sources.hpp>
#include <minibuild/store/stat_cache.hpp>

#include <chrono>
#include <ctime>

using namespace minibuild;
using namespace minibuild::build;
using namespace minibuild::build::testing;

namespace {

std::int64_t now_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A build that "started" in the future, so files written by the test count as quiet and may be
// cached (the racy window is tested on its own below).
constexpr std::int64_t k_later_ns = 10'000'000'000;

struct Fixture : CopyFixture {
  Fixture() {
    spit(ctx("a.txt"), "alpha");
    spit(ctx("b.txt"), "bravo");
    spit(ctx("src/main.c"), "int main() {}\n");
    spit(ctx("src/util.c"), "void util() {}\n");
    spit(ctx("src/build.log"), "log\n");
    make_symlink("main.c", ctx("src/link"));
  }

  Result<oci::Digest> digest(const CopyStep& step, store::StatCache* cache = nullptr,
                             CopySourcesStats* stats = nullptr) {
    auto context = BuildContext::open(context_dir.path());
    if (!context) {
      return tl::unexpected<Error>(std::move(context).error());
    }
    return copy_sources_digest(*context, step, cache, stats);
  }

  oci::Digest must(const CopyStep& step) {
    auto result = digest(step);
    INFO((result ? "" : result.error().message()));
    REQUIRE(result);
    return *result;
  }
};

// The paths select_copy_sources() reports, with the staging tree's notation ("a/" for a
// directory, "l -> t" for a symlink), relative to the image root.
std::set<std::string> selected_paths(const BuildContext& context, const CopyStep& step) {
  SourceReader reader;
  reader.file = [](int, const std::string&, const struct stat&, const std::string&) {
    return Result<store::FileDigests>(store::FileDigests{});
  };
  auto entries = select_copy_sources(context, step, reader);
  INFO((entries ? "" : entries.error().message()));
  REQUIRE(entries);
  std::set<std::string> paths;
  for (const SelectedEntry& entry : *entries) {
    std::string path = entry.path.substr(1);
    if (entry.type == EntryType::directory) {
      path += "/";
    } else if (entry.type == EntryType::symlink) {
      path += " -> " + entry.link_target;
    }
    paths.insert(path);
  }
  return paths;
}

} // namespace

TEST_CASE("copy_sources_digest is stable", "[build][copy_sources]") {
  Fixture f;
  const CopyStep step = copy_step({"."}, "/app/");
  const oci::Digest first = f.must(step);
  CHECK(f.must(step) == first);
  CHECK(first.algorithm() == oci::DigestAlgorithm::sha256);
  // A different context directory with the same files and times digests alike.
  Fixture g;
  for (const char* name : {"a.txt", "b.txt", "src/main.c", "src/util.c", "src/build.log"}) {
    set_mtime(f.ctx(name), 1'600'000'000);
    set_mtime(g.ctx(name), 1'600'000'000);
  }
  for (const char* dir : {"src", ""}) {
    set_mtime(f.ctx(dir), 1'600'000'000);
    set_mtime(g.ctx(dir), 1'600'000'000);
  }
  set_mtime(f.ctx("src/link"), 1'600'000'000);
  set_mtime(g.ctx("src/link"), 1'600'000'000);
  CHECK(f.must(step) == g.must(step));
}

TEST_CASE("copy_sources_digest changes with what the copy writes", "[build][copy_sources]") {
  Fixture f;
  const CopyStep step = copy_step({"."}, "/app/");
  const oci::Digest before = f.must(step);

  SECTION("content, with the same size and mtime") {
    const auto st = lstat_of(f.ctx("a.txt"));
    spit(f.ctx("a.txt"), "ALPHA");
    set_mtime(f.ctx("a.txt"), st.st_mtim.tv_sec);
    const struct timespec times[2] = {st.st_mtim, st.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, f.ctx("a.txt").c_str(), times, 0) == 0);
    CHECK(f.must(step) != before);
  }
  SECTION("mode") {
    REQUIRE(::chmod(f.ctx("a.txt").c_str(), 0600) == 0);
    CHECK(f.must(step) != before);
  }
  SECTION("name") {
    const auto dir = lstat_of(f.ctx("src"));
    REQUIRE(::rename(f.ctx("src/util.c").c_str(), f.ctx("src/util2.c").c_str()) == 0);
    const struct timespec times[2] = {dir.st_mtim, dir.st_mtim}; // only the name differs
    REQUIRE(::utimensat(AT_FDCWD, f.ctx("src").c_str(), times, 0) == 0);
    CHECK(f.must(step) != before);
  }
  SECTION("a new file") {
    spit(f.ctx("src/new.c"), "");
    CHECK(f.must(step) != before);
  }
  SECTION("a deleted file") {
    REQUIRE(::unlink(f.ctx("b.txt").c_str()) == 0);
    CHECK(f.must(step) != before);
  }
  SECTION("a symlink target") {
    REQUIRE(::unlink(f.ctx("src/link").c_str()) == 0);
    make_symlink("util.c", f.ctx("src/link"));
    CHECK(f.must(step) != before);
  }
  SECTION("not an mtime alone (a fresh checkout must still match, as in BuildKit)") {
    set_mtime(f.ctx("b.txt"), 1'500'000'000);
    CHECK(f.must(step) == before);
  }
}

TEST_CASE("copy_sources_digest follows .dockerignore", "[build][copy_sources]") {
  Fixture f;
  spit(f.ctx(".dockerignore"), "**/*.log\n");
  const CopyStep step = copy_step({"src"}, "/app/");
  const oci::Digest before = f.must(step);

  SECTION("an excluded file changing in place keeps the digest") {
    spit(f.ctx("src/build.log"), "a much longer log line\n");
    CHECK(f.must(step) == before);
  }
  SECTION("an ignore file selecting another set changes it") {
    spit(f.ctx(".dockerignore"), "**/*.log\n!src/build.log\n");
    CHECK(f.must(step) != before);
    spit(f.ctx(".dockerignore"), "**/*.log\nsrc/util.c\n");
    CHECK(f.must(step) != before);
  }
  SECTION("a file outside the selection does not count") {
    spit(f.ctx("a.txt"), "changed");
    CHECK(f.must(step) == before);
  }
}

TEST_CASE("copy_sources_digest covers the step's own fields", "[build][copy_sources]") {
  Fixture f;
  const CopyStep base = copy_step({"a.txt", "src"}, "/app/");
  const oci::Digest before = f.must(base);
  CopyStep step = base;
  SECTION("--chown") {
    step.chown = "1000:1000";
  }
  SECTION("--chmod") {
    step.chmod = "0600";
  }
  SECTION("destination") {
    step.dest = "/srv/";
  }
  SECTION("--link") {
    step.link = true;
  }
  SECTION("--exclude") {
    step.excludes = {"*.c"};
  }
  SECTION("--parents") {
    step.parents = true;
  }
  SECTION("ADD") {
    step.kind = CopyKind::add;
  }
  CHECK(f.must(step) != before);
}

TEST_CASE("copy_sources_digest uses the workdir only for a relative destination",
          "[build][copy_sources]") {
  Fixture f;
  CopyStep relative = copy_step({"a.txt"}, "app/", "/w1");
  CopyStep relative2 = copy_step({"a.txt"}, "app/", "/w2");
  CHECK(f.must(relative) != f.must(relative2));
  CopyStep absolute = copy_step({"a.txt"}, "/app/", "/w1");
  CopyStep absolute2 = copy_step({"a.txt"}, "/app/", "/w2");
  CHECK(f.must(absolute) == f.must(absolute2));
}

TEST_CASE("copy_sources_digest hashes heredoc sources", "[build][copy_sources]") {
  Fixture f;
  CopyStep step = copy_step({}, "/app/");
  step.inline_sources = {{"run.sh", "echo one\n"}};
  const oci::Digest one = f.must(step);
  step.inline_sources = {{"run.sh", "echo two\n"}};
  CHECK(f.must(step) != one);
  step.inline_sources = {{"other.sh", "echo one\n"}};
  CHECK(f.must(step) != one);
}

TEST_CASE("copy_sources_digest fails as stage_copy fails", "[build][copy_sources]") {
  Fixture f;
  spit(f.ctx(".dockerignore"), "b.txt\n");
  const std::vector<CopyStep> steps = {
      copy_step({"missing.txt"}, "/app/"),
      copy_step({"b.txt"}, "/app/"),
      copy_step({"*.none"}, "/app/"),
      [] {
        CopyStep step = copy_step({"a.txt"}, "/app/");
        step.chmod = "u+q";
        return step;
      }(),
      [] {
        CopyStep step = copy_step({"http://example.com/x"}, "/app/");
        return step;
      }(),
  };
  for (const CopyStep& step : steps) {
    auto digested = f.digest(step);
    TempDir staging;
    auto context = BuildContext::open(f.context_dir.path());
    REQUIRE(context);
    auto copied = stage_copy(*context, step, f.base.image(), staging.path());
    REQUIRE_FALSE(copied);
    REQUIRE_FALSE(digested);
    CHECK(digested.error().code() == copied.error().code());
    CHECK(digested.error().message() == copied.error().message());
  }
}

TEST_CASE("select_copy_sources selects what stage_copy writes", "[build][copy_sources]") {
  Fixture f;
  spit(f.ctx("docs/a.md"), "a");
  spit(f.ctx("docs/deep/b.md"), "b");
  spit(f.ctx("docs/deep/c.txt"), "c");
  spit(f.ctx("vendor/keep/x.go"), "x");
  spit(f.ctx("vendor/drop/y.go"), "y");
  spit(f.ctx(".dockerignore"), "vendor\n!vendor/keep\n*.log\n**/*.log\n");
  make_symlink("docs", f.ctx("docs-link"));

  std::vector<CopyStep> steps = {
      copy_step({"."}, "/app/"),     copy_step({"src", "docs"}, "/app/"),
      copy_step({"*.txt"}, "/out/"), copy_step({"a.txt"}, "/file"),
      copy_step({"docs"}, "/named"), copy_step({"docs-link"}, "/via-link/"),
      copy_step({"vendor"}, "/v/"),
  };
  CopyStep parents = copy_step({"docs/**/*.md"}, "/p/");
  parents.parents = true;
  steps.push_back(parents);
  CopyStep excluding = copy_step({"."}, "/e/");
  excluding.excludes = {"*.txt", "docs/deep"};
  steps.push_back(excluding);
  CopyStep chmod = copy_step({"src"}, "/c/");
  chmod.chmod = "0750";
  steps.push_back(chmod);

  for (const CopyStep& step : steps) {
    INFO(step.sources.front() << " -> " << step.dest);
    TempDir staging;
    auto context = BuildContext::open(f.context_dir.path());
    REQUIRE(context);
    auto copied = stage_copy(*context, step, f.base.image(), staging.path());
    REQUIRE(copied);
    const auto written = tree_of(staging.path());
    const std::set<std::string> selected = selected_paths(*context, step);
    // Every selected entry is written; every written non-directory was selected (directories
    // the copy creates as parents of the destination are not sources).
    for (const std::string& path : selected) {
      CHECK(std::find(written.begin(), written.end(), path) != written.end());
    }
    for (const std::string& path : written) {
      if (path.back() != '/') {
        CHECK(selected.count(path) == 1);
      }
    }
  }
}

TEST_CASE("select_copy_sources reports modes as the copy writes them", "[build][copy_sources]") {
  Fixture f;
  REQUIRE(::chmod(f.ctx("a.txt").c_str(), 0640) == 0);
  CopyStep step = copy_step({"a.txt"}, "/app/");
  step.chmod = "u+x";
  auto context = BuildContext::open(f.context_dir.path());
  REQUIRE(context);
  SourceReader reader;
  reader.file = [](int, const std::string&, const struct stat&, const std::string&) {
    return Result<store::FileDigests>(store::FileDigests{});
  };
  auto entries = select_copy_sources(*context, step, reader);
  REQUIRE(entries);
  REQUIRE(entries->size() == 1);
  CHECK(entries->front().path == "/app/a.txt");
  CHECK(entries->front().mode == 0740);
  TempDir staging;
  REQUIRE(stage_copy(*context, step, f.base.image(), staging.path()));
  CHECK(mode_of(staging / "app/a.txt") == 0740);
}

TEST_CASE("copy_sources_digest reads nothing on a warm stat cache", "[build][copy_sources]") {
  Fixture f;
  TempDir store_root;
  const std::string file = store::StatCache::file_for(store_root.path(), f.context_dir.path());
  const CopyStep step = copy_step({"."}, "/app/");
  oci::Digest cold_digest;
  {
    auto cache = store::StatCache::load(file, now_ns() + k_later_ns);
    REQUIRE(cache);
    CopySourcesStats cold;
    auto digest = f.digest(step, &*cache, &cold);
    REQUIRE(digest);
    cold_digest = *digest;
    CHECK(cold.files == 5);
    CHECK(cold.files_read == 5);
    CHECK(cache->size() == 5);
    REQUIRE(cache->save());
  }
  auto cache = store::StatCache::load(file, now_ns() + k_later_ns);
  REQUIRE(cache);
  CHECK(cache->size() == 5);
  CopySourcesStats warm;
  auto digest = f.digest(step, &*cache, &warm);
  REQUIRE(digest);
  CHECK(*digest == cold_digest);
  CHECK(warm.files == 5);
  CHECK(warm.files_read == 0);
  CHECK(warm.bytes_read == 0);
  CHECK(cache->hits() == 5);

  SECTION("a rewrite with the same size and mtime is read again (ctime)") {
    const auto st = lstat_of(f.ctx("a.txt"));
    spit(f.ctx("a.txt"), "ALPHA");
    const struct timespec times[2] = {st.st_mtim, st.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, f.ctx("a.txt").c_str(), times, 0) == 0);
    CopySourcesStats again;
    auto changed = f.digest(step, &*cache, &again);
    REQUIRE(changed);
    CHECK(again.files_read == 1);
    CHECK(*changed != cold_digest);
  }
  SECTION("a size change with the same mtime is read again") {
    const auto st = lstat_of(f.ctx("b.txt"));
    spit(f.ctx("b.txt"), "bravo, longer");
    const struct timespec times[2] = {st.st_mtim, st.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, f.ctx("b.txt").c_str(), times, 0) == 0);
    CopySourcesStats again;
    auto changed = f.digest(step, &*cache, &again);
    REQUIRE(changed);
    CHECK(again.files_read == 1);
    CHECK(*changed != cold_digest);
  }
  SECTION("the cached digest is the one a cold run computes") {
    CHECK(f.must(step) == cold_digest);
  }
}

TEST_CASE("copy_sources_digest does not cache racily clean files", "[build][copy_sources]") {
  Fixture f;
  TempDir store_root;
  const std::string file = store::StatCache::file_for(store_root.path(), f.context_dir.path());
  set_mtime(f.ctx("a.txt"), 1'500'000'000); // old mtime, but a fresh ctime
  auto cache = store::StatCache::load(file, now_ns());
  REQUIRE(cache);
  CopySourcesStats stats;
  REQUIRE(f.digest(copy_step({"a.txt", "b.txt"}, "/app/"), &*cache, &stats));
  CHECK(stats.files_read == 2);
  CHECK(cache->size() == 0);
  CHECK(cache->racy() == 2);
}

// Hidden: run with `minibuild_unit_tests "[copy_sources_bench]"` for the figures in docs/cache.md.
TEST_CASE("copy_sources_digest of 20,000 files, cold and warm", "[.][copy_sources_bench]") {
  using Clock = std::chrono::steady_clock;
  CopyFixture f;
  constexpr int k_files = 20'000;
  for (int i = 0; i < k_files; ++i) {
    const std::string dir = "d" + std::to_string(i / 200) + "/s" + std::to_string(i % 7);
    if (i % 200 < 7) {
      make_dir(f.ctx(dir));
    }
    spit(f.ctx(dir + "/f" + std::to_string(i) + ".txt"), std::string(512 + i % 1024, 'x'));
  }
  TempDir store_root;
  const std::string file = store::StatCache::file_for(store_root.path(), f.context_dir.path());
  const CopyStep step = copy_step({"."}, "/app/");
  auto context = BuildContext::open(f.context_dir.path());
  REQUIRE(context);
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };

  auto t0 = Clock::now();
  auto cache = store::StatCache::load(file, now_ns() + k_later_ns);
  REQUIRE(cache);
  CopySourcesStats cold;
  auto cold_digest = copy_sources_digest(*context, step, &*cache, &cold);
  REQUIRE(cold_digest);
  REQUIRE(cache->save());
  auto t1 = Clock::now();

  auto warm_cache = store::StatCache::load(file, now_ns() + k_later_ns);
  REQUIRE(warm_cache);
  auto t_loaded = Clock::now();
  CopySourcesStats warm;
  auto warm_digest = copy_sources_digest(*context, step, &*warm_cache, &warm);
  REQUIRE(warm_digest);
  auto t_digested = Clock::now();
  REQUIRE(warm_cache->save());
  auto t2 = Clock::now();

  CHECK(*warm_digest == *cold_digest);
  CHECK(cold.files == k_files);
  CHECK(cold.files_read == k_files);
  CHECK(warm.files_read == 0);
  WARN("20,000 files: cold " << ms(t1 - t0) << " ms (" << cold.bytes_read
                             << " bytes read, cache saved), warm " << ms(t2 - t1) << " ms (load "
                             << ms(t_loaded - t1) << ", digest " << ms(t_digested - t_loaded)
                             << ", save " << ms(t2 - t_digested) << "; nothing read)");
}
