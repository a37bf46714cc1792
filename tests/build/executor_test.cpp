// The build executor end to end: real temporary contexts, a real store, real layer blobs.
#include "build_test_support.hpp"

#include <minibuild/build/executor.hpp>
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/oci/descriptor.hpp>
#include <minibuild/store/store.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <unistd.h>
#include <vector>

using namespace minibuild;
using namespace minibuild::build;
using minibuild::build::testing::make_dir;
using minibuild::build::testing::spit;
using minibuild::build::testing::TempDir;

namespace {

const std::string k_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// One entry of a layer tar, as a test wants to see it.
struct TarEntry {
  std::string path;
  char type = 'f'; ///< 'f' file, 'd' directory, 'l' symlink, 'h' hard link
  std::uint32_t mode = 0;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = 0;
  std::string content;
};

// Records progress events.
class RecordingProgress : public ProgressSink {
public:
  void started(int id, std::string_view name) override {
    names.emplace_back(name);
    ids.push_back(id);
  }
  void log(int, std::string_view line) override { lines.emplace_back(line); }
  void done(int, std::chrono::nanoseconds) override { ++finished; }
  void failed(int, const Error& error) override { errors.push_back(error.message()); }
  void cached(int) override { ++hits; }

  std::vector<std::string> names;
  std::vector<int> ids;
  std::vector<std::string> lines;
  std::vector<std::string> errors;
  int finished = 0;
  int hits = 0; ///< vertices answered by the build cache
};

struct Fixture {
  TempDir dir;
  std::unique_ptr<store::Store> store;
  std::string context = dir / "ctx";

  Fixture() {
    make_dir(context);
    auto opened = store::Store::open(dir / "store");
    REQUIRE(opened);
    store = std::move(*opened);
  }

  void file(const std::string& rel, std::string_view content) {
    spit(context + "/" + rel, content);
  }

  Result<BuildResult> build(const std::string& dockerfile, ExecutorOptions options = {},
                            std::map<std::string, std::string> build_args = {}) {
    auto parsed = dockerfile::parse_dockerfile(dockerfile, "Dockerfile");
    if (!parsed) {
      return tl::unexpected<Error>(parsed.error());
    }
    dockerfile::PlanOptions plan_options;
    plan_options.build_args = std::move(build_args);
    auto plan = dockerfile::make_plan(*parsed, plan_options);
    if (!plan) {
      return tl::unexpected<Error>(plan.error());
    }
    auto context_dir = BuildContext::open(context);
    if (!context_dir) {
      return tl::unexpected<Error>(context_dir.error());
    }
    auto lock = store->lock(store::LockMode::shared, store::Wait::yes);
    REQUIRE(lock);
    return execute(*plan, *context_dir, *store, options);
  }

  BuildResult must_build(const std::string& dockerfile, ExecutorOptions options = {},
                         std::map<std::string, std::string> build_args = {}) {
    auto result = build(dockerfile, std::move(options), std::move(build_args));
    if (!result) {
      FAIL(result.error().what());
    }
    return std::move(*result);
  }

  std::string blob(const oci::Digest& digest) {
    auto bytes = store->blobs().read(digest, 256u << 20);
    REQUIRE(bytes);
    return *bytes;
  }

  // The entries of a layer blob, in tar order.
  std::vector<TarEntry> entries(const oci::Descriptor& layer) {
    const std::string bytes = blob(layer.digest);
    struct archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    REQUIRE(archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK);
    std::vector<TarEntry> out;
    struct archive_entry* entry = nullptr;
    while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
      TarEntry e;
      e.path = archive_entry_pathname(entry);
      const auto type = archive_entry_filetype(entry);
      e.type = archive_entry_hardlink(entry) != nullptr ? 'h'
               : type == AE_IFDIR                       ? 'd'
               : type == AE_IFLNK                       ? 'l'
                                                        : 'f';
      e.mode = archive_entry_perm(entry);
      e.uid = archive_entry_uid(entry);
      e.gid = archive_entry_gid(entry);
      e.mtime = archive_entry_mtime(entry);
      char buffer[4096];
      la_ssize_t n = 0;
      while ((n = archive_read_data(a, buffer, sizeof(buffer))) > 0) {
        e.content.append(buffer, static_cast<std::size_t>(n));
      }
      out.push_back(std::move(e));
    }
    archive_read_free(a);
    return out;
  }

  std::vector<std::string> paths(const oci::Descriptor& layer) {
    std::vector<std::string> out;
    for (const auto& e : entries(layer)) {
      out.push_back(e.path);
    }
    return out;
  }

  const TarEntry* find(const std::vector<TarEntry>& list, const std::string& path) {
    for (const auto& e : list) {
      if (e.path == path || e.path == path + "/") {
        return &e;
      }
    }
    return nullptr;
  }
};

ExecutorOptions at_epoch(std::int64_t epoch, std::vector<std::string> tags = {}) {
  ExecutorOptions options;
  options.source_date_epoch = epoch;
  options.tags = std::move(tags);
  return options;
}

std::vector<std::string> created_by(const oci::ImageConfig& config) {
  std::vector<std::string> out;
  for (const auto& h : config.history) {
    out.push_back(h.created_by);
  }
  return out;
}

std::vector<bool> empty_layers(const oci::ImageConfig& config) {
  std::vector<bool> out;
  for (const auto& h : config.history) {
    out.push_back(h.empty_layer);
  }
  return out;
}

// A busybox root filesystem in the context (rootfs/bin/busybox and applet links), for RUN.
bool buildable_busybox(Fixture& f) {
  std::error_code error;
  if (!std::filesystem::is_regular_file("/bin/busybox", error)) {
    return false;
  }
  make_dir(f.context + "/rootfs/bin");
  std::filesystem::copy_file("/bin/busybox", f.context + "/rootfs/bin/busybox");
  for (const char* applet : {"sh", "true", "cat", "echo"}) {
    std::filesystem::create_symlink("busybox", f.context + "/rootfs/bin/" + applet);
  }
  return true;
}

} // namespace

TEST_CASE("executor: FROM scratch with COPY and metadata writes an OCI image into the store") {
  Fixture f;
  f.file("app/main.txt", "hello\n");
  const auto result = f.must_build("FROM scratch\n"
                                   "ENV A=1\n"
                                   "COPY app /app\n"
                                   "LABEL x=y\n"
                                   "CMD [\"/app/main.txt\"]\n",
                                   at_epoch(1700000000, {"demo:1"}));

  // Manifest and config as stored blobs, digests consistent.
  const std::string manifest_bytes = f.blob(result.manifest_digest);
  CHECK(oci::sha256_of(manifest_bytes) == result.manifest_digest);
  CHECK(manifest_bytes == oci::serialize(result.manifest));
  CHECK(result.manifest.media_type == oci::k_oci_manifest);
  CHECK(result.manifest.config.media_type == oci::k_oci_config);
  CHECK(result.manifest.config.digest == result.config_digest);
  const std::string config_bytes = f.blob(result.config_digest);
  auto config = oci::parse<oci::ImageConfig>(config_bytes);
  REQUIRE(config);
  CHECK(*config == result.config);

  // Config fields.
  CHECK(config->os == "linux");
  CHECK(config->architecture == "amd64");
  CHECK(config->created == "2023-11-14T22:13:20Z");
  CHECK(config->config.env == std::vector<std::string>{k_path, "A=1"});
  CHECK(config->config.working_dir == "/");
  CHECK(config->config.labels == std::map<std::string, std::string>{{"x", "y"}});
  CHECK(config->config.cmd == std::vector<std::string>{"/app/main.txt"});

  // History: every step, layers only for COPY.
  CHECK(created_by(*config) == std::vector<std::string>{"ENV A=1", "COPY app /app # buildkit",
                                                        "LABEL x=y", "CMD [\"/app/main.txt\"]"});
  CHECK(empty_layers(*config) == std::vector<bool>{true, false, true, true});
  for (const auto& h : config->history) {
    CHECK(h.comment == "buildkit.dockerfile.v0");
    CHECK(h.created == "2023-11-14T22:13:20Z");
  }

  // One layer: app/ and app/main.txt, root-owned, mtimes clamped.
  REQUIRE(result.manifest.layers.size() == 1);
  REQUIRE(config->rootfs.diff_ids.size() == 1);
  CHECK(result.manifest.layers[0].media_type == oci::k_oci_layer_tar_gzip);
  const auto entries = f.entries(result.manifest.layers[0]);
  const TarEntry* main = f.find(entries, "app/main.txt");
  REQUIRE(main != nullptr);
  CHECK(main->content == "hello\n");
  CHECK(main->uid == 0);
  CHECK(main->gid == 0);
  CHECK(main->mtime <= 1700000000);
  REQUIRE(f.find(entries, "app") != nullptr);

  // The name points at the manifest.
  auto named = f.store->names().resolve("demo:1");
  REQUIRE(named);
  REQUIRE(named->has_value());
  CHECK((*named)->digest == result.manifest_digest);
  CHECK(result.tags == std::vector<std::string>{"demo:1"});
}

TEST_CASE("executor: COPY --chown writes the owner into every entry of the layer") {
  Fixture f;
  f.file("src/a.txt", "a");
  f.file("src/sub/b.txt", "b");
  const auto result =
      f.must_build("FROM scratch\nCOPY --chown=10:20 src /deep/dest/\n", at_epoch(1000));
  const auto entries = f.entries(result.manifest.layers.at(0));
  REQUIRE(entries.size() >= 4);
  for (const auto& e : entries) {
    INFO(e.path);
    CHECK(e.uid == 10);
    CHECK(e.gid == 20);
    CHECK(e.mtime <= 1000);
  }
  CHECK(f.find(entries, "deep/dest/sub/b.txt") != nullptr);
  CHECK(result.config.history.back().created_by == "COPY --chown=10:20 src /deep/dest/ # buildkit");
}

TEST_CASE("executor: WORKDIR makes a layer, an empty one for an existing directory, none for /") {
  Fixture f;
  const auto result = f.must_build("FROM scratch\n"
                                   "WORKDIR /app/sub\n"
                                   "WORKDIR /app/sub\n"
                                   "WORKDIR /\n"
                                   "WORKDIR rel/./x/..\n",
                                   at_epoch(1234));
  CHECK(created_by(result.config) == std::vector<std::string>{"WORKDIR /app/sub",
                                                              "WORKDIR /app/sub", "WORKDIR /",
                                                              "WORKDIR /rel"});
  CHECK(empty_layers(result.config) == std::vector<bool>{false, false, true, false});
  CHECK(result.config.config.working_dir == "/rel");
  REQUIRE(result.manifest.layers.size() == 3);
  REQUIRE(result.config.rootfs.diff_ids.size() == 3);

  const auto first = f.entries(result.manifest.layers[0]);
  REQUIRE(first.size() == 2);
  CHECK(first[0].path.rfind("app", 0) == 0);
  CHECK(first[0].type == 'd');
  CHECK(first[1].path.rfind("app/sub", 0) == 0);
  CHECK(first[1].mode == 0755);
  CHECK(first[1].mtime == 1234); // BuildKit's mkdir uses the epoch as creation time
  CHECK(f.entries(result.manifest.layers[1]).empty());
  CHECK(f.paths(result.manifest.layers[2]) == std::vector<std::string>{"rel/"});
}

TEST_CASE("executor: WORKDIR creates its directory as the config's USER") {
  Fixture f;
  f.file("passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
  const auto result = f.must_build("FROM scratch\n"
                                   "COPY passwd /etc/passwd\n"
                                   "USER app\n"
                                   "WORKDIR /home/app/work\n",
                                   at_epoch(1));
  const auto entries = f.entries(result.manifest.layers.at(1));
  const TarEntry* work = f.find(entries, "home/app/work");
  REQUIRE(work != nullptr);
  CHECK(work->uid == 1000);
  CHECK(work->gid == 1001);
  const TarEntry* home = f.find(entries, "home");
  REQUIRE(home != nullptr);
  CHECK(home->uid == 1000);
}

TEST_CASE("executor: variables expand with the base image's Env and the stage's ARGs") {
  Fixture f;
  f.file("app", "data");
  f.must_build("FROM scratch\nENV BASE=/opt/base\nCOPY app $BASE/\n", at_epoch(1, {"base:1"}));
  const auto result = f.must_build("FROM base:1\n"
                                   "ARG V=1\n"
                                   "ARG FROM_CLI\n"
                                   "ENV X=$BASE/x Y=$V Z=${FROM_CLI}\n"
                                   "COPY app ${BASE}/again/\n",
                                   at_epoch(2), {{"FROM_CLI", "cli"}});
  const auto& env = result.config.config.env;
  CHECK(env == std::vector<std::string>{k_path, "BASE=/opt/base", "X=/opt/base/x", "Y=1", "Z=cli"});
  for (const auto& entry : env) {
    CHECK(entry.rfind("V=", 0) != 0); // ARG values never reach the config
  }
  const auto history = created_by(result.config);
  REQUIRE(history.size() == 6);
  CHECK(history[2] == "ARG V=1");
  CHECK(history[3] == "ARG FROM_CLI=cli");
  CHECK(history[4] == "ENV X=/opt/base/x Y=1 Z=cli");
  CHECK(history[5] == "COPY app /opt/base/again/ # buildkit");
  CHECK(f.find(f.entries(result.manifest.layers.back()), "opt/base/again/app") != nullptr);
}

TEST_CASE("executor: --label values are applied last, over the Dockerfile's") {
  Fixture f;
  ExecutorOptions options = at_epoch(5);
  options.labels = {{"b", "cli"}, {"c", "3"}};
  const auto result = f.must_build("FROM scratch\nLABEL a=1 b=2\n", options);
  CHECK(result.config.config.labels ==
        std::map<std::string, std::string>{{"a", "1"}, {"b", "cli"}, {"c", "3"}});
  CHECK(result.config.history.back().created_by == "LABEL a=1 b=2");
}

TEST_CASE("executor: with SOURCE_DATE_EPOCH two builds give byte-identical images") {
  const std::string dockerfile = "FROM scratch AS build\n"
                                 "COPY src /src\n"
                                 "WORKDIR /out\n"
                                 "COPY src/a.txt result.txt\n"
                                 "FROM scratch\n"
                                 "ADD src /\n"
                                 "COPY --from=build /out /out\n"
                                 "WORKDIR /srv/app\n"
                                 "ENV A=1\n"
                                 "CMD [\"x\"]\n";
  std::string manifests[2];
  std::string configs[2];
  std::vector<oci::Digest> layers[2];
  for (int i = 0; i < 2; ++i) {
    Fixture f;
    f.file("src/a.txt", "alpha");
    f.file("src/dir/b.txt", "beta");
    const auto result = f.must_build(dockerfile, at_epoch(1700000000, {"repro:1"}));
    manifests[i] = f.blob(result.manifest_digest);
    configs[i] = f.blob(result.config_digest);
    for (const auto& layer : result.manifest.layers) {
      layers[i].push_back(layer.digest);
    }
  }
  CHECK(layers[0].size() == 3);
  CHECK(layers[0] == layers[1]);
  CHECK(configs[0] == configs[1]);
  CHECK(manifests[0] == manifests[1]);
}

TEST_CASE("executor: COPY --from reads an earlier stage's root filesystem, by name and index") {
  Fixture f;
  f.file("app", "payload");
  RecordingProgress progress;
  ExecutorOptions options = at_epoch(10);
  options.progress = &progress;
  const auto result = f.must_build("FROM scratch AS build\n"
                                   "COPY app /src/app\n"
                                   "WORKDIR /out\n"
                                   "COPY app result.txt\n"
                                   "FROM scratch\n"
                                   "COPY --from=build /out/result.txt /r.txt\n"
                                   "COPY --from=0 /src/app /copied\n",
                                   options);
  REQUIRE(result.manifest.layers.size() == 2);
  const auto first = f.entries(result.manifest.layers[0]);
  const TarEntry* r = f.find(first, "r.txt");
  REQUIRE(r != nullptr);
  CHECK(r->content == "payload");
  const auto second = f.entries(result.manifest.layers[1]);
  const TarEntry* copied = f.find(second, "copied");
  REQUIRE(copied != nullptr);
  CHECK(copied->content == "payload");
  CHECK(created_by(result.config) ==
        std::vector<std::string>{"COPY /out/result.txt /r.txt # buildkit",
                                 "COPY /src/app /copied # buildkit"});

  // buildah's numbering: stage among the stages built, step within the stage (FROM is 1, even
  // FROM scratch); the stage's name only on its FROM line. Then the export.
  CHECK(progress.names == std::vector<std::string>{
                              "[1/2] STEP 1/4: FROM scratch AS build",
                              "[1/2] STEP 2/4: COPY app /src/app",
                              "[1/2] STEP 3/4: WORKDIR /out",
                              "[1/2] STEP 4/4: COPY app result.txt",
                              "[2/2] STEP 1/3: FROM scratch",
                              "[2/2] STEP 2/3: COPY --from=build /out/result.txt /r.txt",
                              "[2/2] STEP 3/3: COPY --from=0 /src/app /copied",
                              "exporting to image",
                          });
  CHECK(progress.ids == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(progress.finished == 8);
  CHECK(progress.errors.empty());
}

TEST_CASE("executor: FROM an image built earlier keeps its layers and history untouched") {
  Fixture f;
  f.file("one", "1");
  f.file("two", "2");
  const auto base = f.must_build("FROM scratch\n"
                                 "COPY one /one\n"
                                 "ENV STAGE=base\n"
                                 "CMD [\"base\"]\n"
                                 "ONBUILD LABEL triggered=yes\n",
                                 at_epoch(1000, {"registry.example/team/base:1"}));
  RecordingProgress progress;
  ExecutorOptions options = at_epoch(2000, {"child:1"});
  options.progress = &progress;
  const auto child = f.must_build("FROM registry.example/team/base:1\n"
                                  "COPY two /two\n"
                                  "ENTRYPOINT [\"/two\"]\n",
                                  options);

  // Base history and layers are a prefix of the child's, byte for byte.
  REQUIRE(child.config.history.size() == base.config.history.size() + 3);
  for (std::size_t i = 0; i < base.config.history.size(); ++i) {
    CHECK(child.config.history[i] == base.config.history[i]);
  }
  CHECK(child.config.history[0].created == "1970-01-01T00:16:40Z");
  REQUIRE(child.manifest.layers.size() == 2);
  CHECK(child.manifest.layers[0] == base.manifest.layers[0]);
  CHECK(child.config.rootfs.diff_ids[0] == base.config.rootfs.diff_ids[0]);
  CHECK(child.config.created == "1970-01-01T00:33:20Z");

  // The base's ONBUILD trigger ran first (and is not inherited); its CMD was dropped by
  // ENTRYPOINT.
  CHECK(created_by(child.config).back() == "ENTRYPOINT [\"/two\"]");
  CHECK(child.config.history[base.config.history.size()].created_by == "LABEL triggered=yes");
  CHECK(child.config.config.labels.at("triggered") == "yes");
  CHECK(child.config.config.on_build.empty());
  CHECK(child.config.config.cmd.empty());
  CHECK(child.config.config.env == std::vector<std::string>{k_path, "STAGE=base"});
  // Every trigger and instruction counts (FROM, LABEL trigger, COPY, ENTRYPOINT), but the
  // metadata steps have no vertex: their numbers are skipped.
  CHECK(progress.names ==
        std::vector<std::string>{"[1/1] STEP 1/4: FROM registry.example/team/base:1@" +
                                     base.manifest_digest.to_string(),
                                 "[1/1] STEP 3/4: COPY two /two", "exporting to image"});
}

TEST_CASE("executor: COPY into a directory of the base keeps the base's metadata for it") {
  Fixture f;
  f.file("x", "x");
  f.must_build("FROM scratch\nWORKDIR /app\n", at_epoch(1000, {"withdir:1"}));
  const auto result = f.must_build("FROM withdir:1\nCOPY x /app/\n", at_epoch(2000));
  const auto entries = f.entries(result.manifest.layers.back());
  const TarEntry* app = f.find(entries, "app");
  REQUIRE(app != nullptr);
  CHECK(app->type == 'd');
  CHECK(app->mode == 0755);
  CHECK(app->mtime == 1000); // the base's, not this build's epoch
  const TarEntry* x = f.find(entries, "app/x");
  REQUIRE(x != nullptr);
  CHECK(x->content == "x");
}

TEST_CASE("executor: ONBUILD COPY triggers of a stored image run in the child") {
  Fixture f;
  f.file("payload", "p");
  f.must_build("FROM scratch\nONBUILD COPY payload /onbuild/\nONBUILD ENV T=1\n",
               at_epoch(1, {"ob:1"}));
  const auto child = f.must_build("FROM ob:1\nLABEL l=1\n", at_epoch(2));
  const auto history = created_by(child.config);
  REQUIRE(history.size() == 3);
  CHECK(history[0] == "COPY payload /onbuild/ # buildkit");
  CHECK(history[1] == "ENV T=1");
  CHECK(history[2] == "LABEL l=1");
  CHECK(child.config.config.env.back() == "T=1");
  REQUIRE(child.manifest.layers.size() == 1);
  CHECK(f.find(f.entries(child.manifest.layers[0]), "onbuild/payload") != nullptr);

  // A RUN trigger runs too: here in an image without /bin/sh, so it fails (not found as root,
  // refused by the kernel otherwise), located at the FROM line of the child.
  f.must_build("FROM scratch\nONBUILD RUN make\n", at_epoch(1, {"obrun:1"}));
  auto failed = f.build("FROM scratch\nFROM obrun:1\n");
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code() == (::geteuid() == 0 ? Code::build_failed : Code::sandbox));
  REQUIRE(failed.error().location());
  CHECK(failed.error().location()->line == 2); // triggers are located at FROM
}

// RUN needs the sandbox, hence CAP_SYS_ADMIN: as root the steps run for real on a busybox
// root filesystem copied in from the context; otherwise the refusal must be Code::sandbox.
bool run_steps_possible(Fixture& f) {
  if (::geteuid() == 0 && buildable_busybox(f)) {
    return true;
  }
  WARN("skipped the RUN cases: they need root and /bin/busybox (busybox-static)");
  auto refused = f.build("FROM scratch\nRUN true\n");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == (::geteuid() == 0 ? Code::build_failed : Code::sandbox));
  return false;
}

TEST_CASE("executor: RUN writes a layer with what the command created") {
  Fixture f;
  if (!run_steps_possible(f)) {
    return;
  }
  RecordingProgress progress;
  ExecutorOptions options = at_epoch(1700000000, {"ran:1"});
  options.progress = &progress;
  const auto result = f.must_build("FROM scratch\n"
                                   "COPY rootfs/ /\n"
                                   "ARG V=1\n"
                                   "RUN echo \"made $V\" > /made.txt && echo said-so\n",
                                   options);
  REQUIRE(result.manifest.layers.size() == 2);
  CHECK(created_by(result.config).back() ==
        "RUN |1 V=1 /bin/sh -c echo \"made $V\" > /made.txt && echo said-so # buildkit");
  CHECK(empty_layers(result.config).back() == false);
  CHECK(result.config.rootfs.diff_ids.size() == 2);
  // Only the created file: the sandbox's mount points (/proc, /dev, /sys, /etc/hosts, ...) are
  // not part of the layer.
  const auto entries = f.entries(result.manifest.layers[1]);
  CHECK(f.paths(result.manifest.layers[1]) == std::vector<std::string>{"made.txt"});
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].content == "made 1\n");
  CHECK(entries[0].mtime == 1700000000);
  // The build arg reached the process, not the config; the output reached the progress log.
  CHECK(result.config.config.env == std::vector<std::string>{k_path});
  CHECK(std::find(progress.lines.begin(), progress.lines.end(), "said-so") != progress.lines.end());
  CHECK(progress.names.at(2) == "[1/1] STEP 4/4: RUN echo \"made $V\" > /made.txt && echo said-so");

  // The next RUN sees the previous one's layer (adopted by the store as a lower dir).
  const auto next = f.must_build("FROM ran:1\nRUN cat /made.txt > /copy.txt\n", at_epoch(2));
  REQUIRE(next.manifest.layers.size() == 3);
  const auto copied = f.entries(next.manifest.layers[2]);
  REQUIRE(copied.size() == 1);
  CHECK(copied[0].path == "copy.txt");
  CHECK(copied[0].content == "made 1\n");
}

TEST_CASE("executor: a RUN that binds the context is keyed on the files below its source") {
  Fixture f;
  if (!run_steps_possible(f)) {
    return;
  }
  make_dir(f.context + "/src");
  f.file("src/input.txt", "one\n");
  f.file("other.txt", "unrelated\n");
  const std::string dockerfile =
      "FROM scratch\n"
      "COPY rootfs/ /\n"
      "RUN --mount=type=bind,source=src,target=/in cat /in/input.txt > /out.txt\n";
  const auto build = [&](int expected_hits) {
    RecordingProgress progress;
    ExecutorOptions options = at_epoch(1700000000);
    options.progress = &progress;
    const auto result = f.must_build(dockerfile, options);
    CHECK(progress.hits == expected_hits);
    REQUIRE(result.manifest.layers.size() == 2);
    const auto entries = f.entries(result.manifest.layers[1]);
    REQUIRE(entries.size() == 1);
    return entries[0].content;
  };
  CHECK(build(0) == "one\n");
  // Nothing changed: COPY and RUN are both answered by the cache.
  CHECK(build(2) == "one\n");
  // A file outside the mount's source changes neither key.
  f.file("other.txt", "changed\n");
  CHECK(build(2) == "one\n");
  // A file below it reruns the RUN (the COPY of rootfs/ still hits).
  f.file("src/input.txt", "two\n");
  CHECK(build(1) == "two\n");
}

TEST_CASE("executor: a writable bind mount takes the step's writes and throws them away") {
  Fixture f;
  if (!run_steps_possible(f)) {
    return;
  }
  make_dir(f.context + "/src");
  f.file("src/input.txt", "one\n");
  f.file("notes.txt", "note\n");
  const auto result = f.must_build(
      "FROM scratch\n"
      "COPY rootfs/ /\n"
      "RUN --mount=type=bind,source=src,target=/in,rw "
      "echo scribble > /in/input.txt && echo new > /in/new.txt && cat /in/new.txt > /out.txt\n"
      "RUN --mount=type=bind,source=notes.txt,target=/notes,rw "
      "echo more >> /notes && cat /notes >> /out.txt\n",
      at_epoch(1700000000));
  REQUIRE(result.manifest.layers.size() == 3);
  CHECK(f.paths(result.manifest.layers[1]) == std::vector<std::string>{"out.txt"});
  CHECK(f.entries(result.manifest.layers[2])[0].content == "new\nnote\nmore\n");
  // The context is untouched.
  CHECK(testing::slurp(f.context + "/src/input.txt") == "one\n");
  CHECK_FALSE(testing::exists(f.context + "/src/new.txt"));
  CHECK(testing::slurp(f.context + "/notes.txt") == "note\n");
}

TEST_CASE("executor: RUN heredocs: alone the body is the script, with a command its stdin") {
  Fixture f;
  if (!run_steps_possible(f)) {
    return;
  }
  const auto result = f.must_build("FROM scratch\n"
                                   "COPY rootfs/ /\n"
                                   "RUN cat <<EOF > /x\n"
                                   "hello body\n"
                                   "EOF\n"
                                   "RUN <<EOF\n"
                                   "cat /x > /y\n"
                                   "EOF\n",
                                   at_epoch(1));
  REQUIRE(result.manifest.layers.size() == 3);
  const auto x = f.entries(result.manifest.layers[1]);
  REQUIRE(x.size() == 1);
  CHECK(x[0].path == "x");
  CHECK(x[0].content == "hello body\n");
  const auto y = f.entries(result.manifest.layers[2]);
  REQUIRE(y.size() == 1);
  CHECK(y[0].content == "hello body\n");
  CHECK(created_by(result.config)[1] ==
        "RUN /bin/sh -c cat <<EOF > /x\nhello body\nEOF # buildkit");
}

TEST_CASE("executor: a RUN that changes nothing adds history but no layer") {
  Fixture f;
  if (!run_steps_possible(f)) {
    return;
  }
  const auto result = f.must_build("FROM scratch\nCOPY rootfs/ /\nRUN true\n", at_epoch(1));
  CHECK(result.manifest.layers.size() == 1);
  CHECK(result.config.rootfs.diff_ids.size() == 1);
  CHECK(created_by(result.config).back() == "RUN /bin/sh -c true # buildkit");
  CHECK(empty_layers(result.config).back() == true);
}

TEST_CASE("executor: a failing RUN is build_failed with its exit code and last output lines") {
  Fixture f;
  if (!run_steps_possible(f)) {
    return;
  }
  RecordingProgress progress;
  ExecutorOptions options;
  options.progress = &progress;
  options.tags = {"never:1"};
  auto result = f.build("FROM scratch\nCOPY rootfs/ /\n"
                        "RUN echo first; echo second >&2; exit 3\n",
                        options);
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::build_failed);
  CHECK(result.error().message() ==
        "process \"/bin/sh -c echo first; echo second >&2; exit 3\" did not complete "
        "successfully: exit code 3\nlast lines of its output:\n  first\n  second");
  REQUIRE(result.error().location());
  CHECK(result.error().location()->file == "Dockerfile");
  CHECK(result.error().location()->line == 3);
  CHECK(progress.errors.size() == 1);
  auto named = f.store->names().resolve("never:1");
  REQUIRE(named);
  CHECK_FALSE(named->has_value());
}

TEST_CASE("executor: a base image missing from the store is not_found, at the FROM line") {
  Fixture f;
  auto result = f.build("FROM scratch\nFROM alpine:3.19 AS app\n");
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::not_found);
  CHECK(result.error().message() == "image alpine:3.19 is not in the local store");
  REQUIRE(result.error().location());
  CHECK(result.error().location()->line == 2);
}

TEST_CASE("executor: a failing COPY carries its location and the copy engine's code") {
  Fixture f;
  auto result = f.build("FROM scratch\n\nCOPY missing.txt /\n");
  REQUIRE_FALSE(result);
  CHECK(result.error().code() == Code::build_failed);
  REQUIRE(result.error().location());
  CHECK(result.error().location()->line == 3);
}

TEST_CASE("executor: the scratch area is removed after the build") {
  Fixture f;
  f.file("a", "a");
  f.must_build("FROM scratch\nCOPY a /a\nWORKDIR /w\n", at_epoch(1));
  std::vector<std::string> leftovers;
  for (const auto& entry : std::filesystem::directory_iterator(f.dir / "store/tmp")) {
    leftovers.push_back(entry.path().filename().string());
  }
  // Only the store's own session directory may remain while the Store is open.
  CHECK(leftovers.size() <= 1);
}

TEST_CASE("executor: store name candidates follow Docker's short names") {
  CHECK(store_name_candidates("alpine") ==
        std::vector<std::string>{"alpine:latest", "docker.io/library/alpine:latest"});
  CHECK(store_name_candidates("user/app:1") ==
        std::vector<std::string>{"user/app:1", "docker.io/user/app:1"});
  CHECK(store_name_candidates("localhost:5000/app") ==
        std::vector<std::string>{"localhost:5000/app:latest"});
  CHECK(store_name_candidates("docker.io/library/alpine:3") ==
        std::vector<std::string>{"docker.io/library/alpine:3", "alpine:3"});
}

TEST_CASE("executor: ONBUILD lines of an earlier stage fire in a stage built FROM it") {
  Fixture f;
  f.file("f", "f");
  RecordingProgress progress;
  ExecutorOptions options = at_epoch(3);
  options.progress = &progress;
  const auto result = f.must_build("FROM scratch AS base\n"
                                   "ONBUILD COPY f /from-trigger\n"
                                   "FROM base\n"
                                   "LABEL done=1\n",
                                   options);
  // The FROM of a stage names the stage it starts from; the trigger is a step of its own.
  CHECK(progress.names == std::vector<std::string>{
                              "[1/2] STEP 1/2: FROM scratch AS base",
                              "[2/2] STEP 1/3: FROM base",
                              "[2/2] STEP 2/3: ONBUILD COPY f /from-trigger",
                              "exporting to image",
                          });
  CHECK(created_by(result.config) ==
        std::vector<std::string>{"COPY f /from-trigger # buildkit", "LABEL done=1"});
  CHECK(result.config.config.on_build.empty());
  REQUIRE(result.manifest.layers.size() == 1);
  CHECK(f.find(f.entries(result.manifest.layers[0]), "from-trigger") != nullptr);
}

// What PlainProgress wrote while `dockerfile` built, DONE times replaced by "T".
std::string plain_progress_of(Fixture& f, const std::string& dockerfile) {
  char* data = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&data, &size);
  REQUIRE(out != nullptr);
  PlainProgress progress(out);
  ExecutorOptions options = at_epoch(5);
  options.progress = &progress;
  (void)f.build(dockerfile, options);
  std::fclose(out);
  std::string text(data, size);
  std::free(data);
  return std::regex_replace(text, std::regex(" DONE [0-9]+\\.[0-9]s\n"), " DONE T\n");
}

TEST_CASE("executor: plain progress numbers stages and steps as buildah does") {
  Fixture f;
  f.file("a", "a");
  const std::string dockerfile = "FROM scratch AS app\nENV X=1\nCOPY a /a\n";
  const std::string first = plain_progress_of(f, dockerfile);
  CHECK(first.rfind("#1 [1/1] STEP 1/3: FROM scratch AS app\n#1 DONE T\n\n"
                    "#2 [1/1] STEP 3/3: COPY a /a\n#2 DONE T\n\n"
                    "#3 exporting to image\n",
                    0) == 0);
  // The same build again: the COPY is answered by the cache.
  const std::string again = plain_progress_of(f, dockerfile);
  CHECK(again.find("\n#2 [1/1] STEP 3/3: COPY a /a\n#2 CACHED\n\n#3 exporting to image\n") !=
        std::string::npos);
  // A failing step keeps its number on the ERROR line.
  const std::string failed = plain_progress_of(f, "FROM scratch\nCOPY missing /m\n");
  CHECK(failed.find("\n#2 [1/1] STEP 2/2: COPY missing /m\n#2 ERROR: ") != std::string::npos);
}

TEST_CASE("executor: COPY --from an image in the store reads its root filesystem") {
  Fixture f;
  f.file("tool", "#!/bin/true\n");
  f.must_build("FROM scratch\nCOPY --chmod=755 tool /usr/bin/tool\n", at_epoch(1, {"tools:1"}));
  const auto result =
      f.must_build("FROM scratch\nCOPY --from=tools:1 /usr/bin/tool /bin/\n", at_epoch(2));
  const auto entries = f.entries(result.manifest.layers.at(0));
  const TarEntry* tool = f.find(entries, "bin/tool");
  REQUIRE(tool != nullptr);
  CHECK(tool->content == "#!/bin/true\n");
  CHECK(tool->mode == 0755);

  auto missing = f.build("FROM scratch\nCOPY --from=nothere:1 /x /x\n");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Code::not_found);
  REQUIRE(missing.error().location());
  CHECK(missing.error().location()->line == 2);
}
