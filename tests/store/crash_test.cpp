// Crash safety: every store write is a sequence of steps, and stopping after any prefix of it
// (an I/O error, a simulated crash, a real _exit in a forked child) must leave a store that
// opens, holds the old or the new state and nothing in between, and accepts the operation
// again. Each case runs once per write step of its operation.
#include "store/fault_injecting_fs.hpp"
#include "store/store_test_support.hpp"

#include <minibuild/oci/media_types.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <sys/wait.h>
#include <unistd.h>

using namespace minibuild;
using namespace minibuild::store;
using namespace minibuild::store::testing;

namespace {

using Mode = FaultInjectingFs::Mode;

struct CrashCase {
  /// Runs on a healthy store before the faulty run.
  std::function<void(Store&)> setup = [](Store&) {};
  /// The operation under test.
  std::function<Result<void>(Store&)> operation;
  /// Runs on the re-opened store: the state must be the old one or the new one. `completed`
  /// says whether the operation reported success (then it must be the new one).
  std::function<void(Store&, bool completed)> check;
  /// The operation once more, on the re-opened store; must succeed.
  std::function<void(Store&)> redo;
};

std::unique_ptr<Store> open_faulty(const std::string& root, FaultInjectingFs*& fs) {
  auto real = RealStoreFs::open(root, RealStoreFs::Create::yes);
  REQUIRE(real);
  auto fault = std::make_unique<FaultInjectingFs>(std::move(*real));
  fs = fault.get();
  auto store = Store::open(std::move(fault));
  if (!store) {
    FAIL(store.error().what());
  }
  return std::move(*store);
}

void check_recovered(const std::string& root, const CrashCase& c, bool completed) {
  auto store = open_store(root);
  c.check(*store, completed);
  auto cleaned = store->clean_temp();
  REQUIRE(cleaned);
  CHECK(temp_entries(root) == 0);
  c.redo(*store);
  c.check(*store, /*completed=*/true);
}

// Runs the case with the fault at step 0, 1, 2, … until the operation completes without
// reaching the armed step. Returns the number of steps the operation has.
std::size_t run_at_every_step(const CrashCase& c, Mode mode) {
  for (std::size_t step = 0; step < 1000; ++step) {
    CAPTURE(step);
    TempDir dir;
    {
      auto store = open_store(dir.path());
      c.setup(*store);
    }
    FaultInjectingFs* fs = nullptr;
    auto store = open_faulty(dir.path(), fs);
    fs->reset();
    fs->arm(step, mode);
    const auto result = c.operation(*store);
    const bool triggered = fs->triggered();
    CAPTURE(fs->log());
    if (triggered) {
      CHECK_FALSE(result); // a fault in any step of the operation is reported
    } else {
      fs->disarm();
      if (!result) {
        FAIL(result.error().what());
      }
    }
    if (mode == Mode::fail && triggered) {
      // The same process goes on: the store must still work after the error.
      c.redo(*store);
    }
    store.reset(); // the "dead" process's descriptors close, as the kernel would close them
    check_recovered(dir.path(), c, result.has_value());
    if (!triggered) {
      return step;
    }
  }
  FAIL("the operation never completed");
  return 0;
}

std::string big_content() {
  std::string bytes(150 * 1024, 'x');
  for (std::size_t i = 0; i < bytes.size(); i += 97) {
    bytes[i] = static_cast<char>('a' + i % 26);
  }
  return bytes;
}

void check_blob_absent_or_complete(Store& store, const std::string& content, bool completed) {
  const oci::Digest digest = oci::sha256_of(content);
  auto stat = store.blobs().stat(digest);
  REQUIRE(stat);
  if (completed) {
    REQUIRE(*stat);
  }
  if (*stat) {
    auto read = store.blobs().read(digest, content.size());
    REQUIRE(read);
    CHECK(*read == content);
  }
  auto listed = store.blobs().list();
  REQUIRE(listed);
  for (const auto& digest_listed : *listed) {
    // Nothing else, in particular no partial blob under some other name.
    CHECK(digest_listed == digest);
  }
}

CrashCase put_case() {
  static const std::string content = big_content();
  CrashCase c;
  c.operation = [](Store& store) -> Result<void> {
    oci::StringSource source(content);
    MB_TRY(store.blobs().put(source));
    return {};
  };
  c.check = [](Store& store, bool completed) {
    check_blob_absent_or_complete(store, content, completed);
  };
  c.redo = [](Store& store) { put_text(store, content); };
  return c;
}

struct NameFixture {
  TestImage old_image;
  TestImage new_image;
};

CrashCase tag_case() {
  auto fixture = std::make_shared<NameFixture>();
  CrashCase c;
  c.setup = [fixture](Store& store) {
    fixture->old_image = put_image(store, {"old"});
    fixture->new_image = put_image(store, {"new"});
    REQUIRE(store.names().tag("app:1", fixture->old_image.manifest.digest, oci::k_oci_manifest));
    REQUIRE(store.names().tag("other:1", fixture->old_image.manifest.digest, oci::k_oci_manifest));
  };
  c.operation = [fixture](Store& store) {
    return store.names().tag("app:1", fixture->new_image.manifest.digest, oci::k_oci_manifest);
  };
  c.check = [fixture](Store& store, bool completed) {
    auto app = store.names().resolve("app:1");
    REQUIRE(app);
    REQUIRE(*app);
    if (completed) {
      CHECK((*app)->digest == fixture->new_image.manifest.digest);
    } else {
      CHECK(((*app)->digest == fixture->old_image.manifest.digest ||
             (*app)->digest == fixture->new_image.manifest.digest));
    }
    auto other = store.names().resolve("other:1");
    REQUIRE(other);
    REQUIRE(*other);
    CHECK((*other)->digest == fixture->old_image.manifest.digest);
  };
  c.redo = [fixture](Store& store) {
    REQUIRE(store.names().tag("app:1", fixture->new_image.manifest.digest, oci::k_oci_manifest));
  };
  return c;
}

const oci::Digest& layer_id() {
  static const oci::Digest id = oci::sha256_of("layer tar");
  return id;
}

LayerExtractor layer_files() {
  return write_files({{"etc/os-release", "ID=test\n"},
                      {"usr/lib/big", big_content()},
                      {"usr/share/doc/readme", "hello"}});
}

void check_layer_absent_or_complete(Store& store, bool completed) {
  auto stat = store.layers().stat(layer_id());
  REQUIRE(stat); // never a layer directory without metadata
  if (completed) {
    REQUIRE(*stat);
  }
  if (*stat) {
    auto listing = list_content(store.layers().lower_dir(layer_id()));
    REQUIRE(listing);
    CHECK(listing->digest == (*stat)->content_digest);
    CHECK(slurp(store.layers().lower_dir(layer_id()) + "/usr/lib/big") == big_content());
  } else {
    CHECK(entries_of(store.fs().absolute("layers/sha256")).empty());
  }
}

CrashCase unpack_case() {
  CrashCase c;
  c.operation = [](Store& store) -> Result<void> {
    MB_TRY(store.layers().unpack(layer_id(), {}, layer_files()));
    return {};
  };
  c.check = check_layer_absent_or_complete;
  c.redo = [](Store& store) { REQUIRE(store.layers().unpack(layer_id(), {}, layer_files())); };
  return c;
}

CrashCase remove_layer_case() {
  CrashCase c;
  c.setup = [](Store& store) { REQUIRE(store.layers().unpack(layer_id(), {}, layer_files())); };
  c.operation = [](Store& store) { return store.layers().remove(layer_id()); };
  c.check = [](Store& store, bool completed) {
    auto stat = store.layers().stat(layer_id());
    REQUIRE(stat);
    if (completed) {
      CHECK_FALSE(*stat);
    }
    if (*stat) {
      check_layer_absent_or_complete(store, false);
    }
  };
  c.redo = [](Store& store) { REQUIRE(store.layers().remove(layer_id())); };
  return c;
}

} // namespace

TEST_CASE("put survives a fault or a crash at every write step", "[store][crash]") {
  const std::size_t failed = run_at_every_step(put_case(), Mode::fail);
  const std::size_t crashed = run_at_every_step(put_case(), Mode::crash);
  CHECK(failed == crashed);
  // mkdir session, create, write ×3 (64 KiB chunks), fsync, rename, fsync blobs/sha256
  CHECK(failed == 8);
}

TEST_CASE("a name update survives a fault or a crash at every write step", "[store][crash]") {
  const std::size_t failed = run_at_every_step(tag_case(), Mode::fail);
  const std::size_t crashed = run_at_every_step(tag_case(), Mode::crash);
  CHECK(failed == crashed);
  // mkdir of the session directory (first use of this Store), create, write, fsync, rename,
  // fsync root
  CHECK(failed == 6);
}

TEST_CASE("a layer unpack survives a fault or a crash at every write step", "[store][crash]") {
  const std::size_t failed = run_at_every_step(unpack_case(), Mode::fail);
  const std::size_t crashed = run_at_every_step(unpack_case(), Mode::crash);
  CHECK(failed == crashed);
  // mkdir session, mkdir temp, mkdir temp/diff, create/write/fsync layer.json, syncfs, rename,
  // fsync layers/sha256
  CHECK(failed == 9);
}

TEST_CASE("a layer removal survives a fault or a crash at every write step", "[store][crash]") {
  const std::size_t failed = run_at_every_step(remove_layer_case(), Mode::fail);
  const std::size_t crashed = run_at_every_step(remove_layer_case(), Mode::crash);
  CHECK(failed == crashed);
  CHECK(failed == 4); // mkdir session, rename into tmp, fsync layers/sha256, remove tree
}

TEST_CASE("creating a store survives a crash at every write step", "[store][crash]") {
  std::size_t step = 0;
  for (; step < 100; ++step) {
    CAPTURE(step);
    TempDir dir;
    bool triggered = false;
    {
      auto real = RealStoreFs::open(dir.path(), RealStoreFs::Create::yes);
      REQUIRE(real);
      auto fault = std::make_unique<FaultInjectingFs>(std::move(*real));
      fault->arm(step, Mode::crash);
      // A failed open destroys the FaultInjectingFs with it: only the result tells.
      auto store = Store::open(std::move(fault));
      triggered = !store.has_value();
      if (triggered) {
        CHECK_THAT(store.error().what(), Catch::Contains("simulated crash at step"));
      }
    }
    auto store = open_store(dir.path());
    CHECK(slurp(dir / "minibuild-store") == "minibuild-store\nversion 1\n");
    put_text(*store, "works");
    if (!triggered) {
      break;
    }
  }
  // mkdir tmp, mkdir session, create/write/fsync/rename format file, fsync root, four
  // directories, two lock files
  CHECK(step == 13);
}

TEST_CASE("a process killed at any step of a pull leaves a consistent store", "[store][crash]") {
  // A pull in miniature: layer blob, unpacked layer, config, manifest, name. The child _exits at
  // step N (a real process death: flock released by the kernel, temp files left behind).
  const auto pull = [](Store& store) -> Result<void> {
    oci::StringSource layer_blob("gzip:" + big_content());
    MB_TRY_ASSIGN(BlobInfo blob, store.blobs().put(layer_blob));
    MB_TRY(store.layers().unpack(layer_id(), blob.digest, layer_files()));
    oci::ImageConfig config;
    config.architecture = "amd64";
    config.os = "linux";
    config.rootfs.diff_ids = {layer_id()};
    const std::string config_text = oci::serialize(config);
    oci::StringSource config_source(config_text);
    MB_TRY(store.blobs().put(config_source));
    oci::ImageManifest manifest;
    manifest.media_type = std::string(oci::k_oci_manifest);
    manifest.config = oci::make_descriptor(std::string(oci::k_oci_config), config_text);
    manifest.layers = {
        oci::make_descriptor(std::string(oci::k_oci_layer_tar_gzip), "gzip:" + big_content())};
    const std::string manifest_text = oci::serialize(manifest);
    oci::StringSource manifest_source(manifest_text);
    MB_TRY_ASSIGN(BlobInfo stored, store.blobs().put(manifest_source));
    MB_TRY(store.names().tag("pulled:1", stored.digest, oci::k_oci_manifest));
    return {};
  };

  std::size_t step = 0;
  for (; step < 200; ++step) {
    CAPTURE(step);
    TempDir dir;
    { open_store(dir.path()); }
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // The child never returns into Catch2: any failure, even an assertion, is exit code 4.
      try {
        FaultInjectingFs* fs = nullptr;
        auto store = open_faulty(dir.path(), fs);
        auto lock = store->lock(LockMode::shared, Wait::yes);
        fs->reset();
        fs->arm(step, Mode::exit);
        const bool ok = lock && pull(*store);
        ::_exit(ok ? 3 : 4); // reached only when step N is past the end
      } catch (...) {
        ::_exit(4);
      }
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    REQUIRE(code != 4);

    auto store = open_store(dir.path());
    // Nothing half-done is visible: every listed blob verifies, the layer is whole or absent,
    // and the name, if present, resolves to a stored manifest.
    auto blobs = store->blobs().list();
    REQUIRE(blobs);
    for (const auto& digest : *blobs) {
      REQUIRE(store->blobs().read(digest, 1024 * 1024));
    }
    check_layer_absent_or_complete(*store, false);
    auto name = store->names().resolve("pulled:1");
    REQUIRE(name);
    if (*name) {
      auto manifest = store->blobs().stat((*name)->digest);
      REQUIRE(manifest);
      CHECK(*manifest);
    }
    // The exclusive lock is free again (the kernel released the dead child's lock), stale temp
    // files go, and the pull can be redone.
    auto lock = store->lock(LockMode::exclusive, Wait::no);
    REQUIRE(lock);
    REQUIRE(store->clean_temp());
    CHECK(temp_entries(dir.path()) == 0);
    lock->release();
    REQUIRE(pull(*store));
    if (code == 3) {
      CHECK(*name); // the pull finished before the armed step: everything is there
      break;
    }
  }
  CHECK(step >= 20);
}
