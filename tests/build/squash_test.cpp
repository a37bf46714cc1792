#include "build/run_step.hpp"
#include "layer/layer_test_support.hpp"
#include "store/store_test_support.hpp"

#include <minibuild/build/squash.hpp>
#include <minibuild/dockerfile/parser.hpp>
#include <minibuild/dockerfile/plan.hpp>
#include <minibuild/store/layer_listing.hpp>
#include <minibuild/store/store.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <vector>

using namespace minibuild;
using layer_test::TarBuilder;
using layer_test::TarEntry;

namespace {

struct Layers {
  std::vector<std::string> tars;
  std::vector<oci::Descriptor> descriptors;
  std::vector<oci::Digest> diff_ids;
};

Layers store_layers(store::Store& store, std::vector<std::string> tars) {
  Layers layers;
  for (std::string& tar : tars) {
    const store::BlobInfo info = store::testing::put_text(store, tar);
    oci::Descriptor descriptor;
    descriptor.media_type = std::string(oci::k_oci_layer_tar);
    descriptor.digest = info.digest;
    descriptor.size = static_cast<std::int64_t>(info.size);
    layers.descriptors.push_back(descriptor);
    layers.diff_ids.push_back(oci::sha256_of(tar));
    layers.tars.push_back(std::move(tar));
  }
  return layers;
}

// A squash run on a fresh store: the base layers, the folded ones, and what came out.
struct Squashed {
  minibuild::test::TempDir dir;
  std::unique_ptr<store::Store> store;
  Layers base;
  Layers folded;
  build::SquashResult result;
  std::string tar;               // the squashed layer, uncompressed
  std::vector<TarEntry> entries; // its tar listing

  std::vector<std::string> paths() const {
    std::vector<std::string> names;
    for (const TarEntry& entry : entries) {
      names.push_back(entry.path);
    }
    return names;
  }
  const TarEntry* find(const std::string& path) const {
    for (const TarEntry& entry : entries) {
      if (entry.path == path) {
        return &entry;
      }
    }
    return nullptr;
  }
  std::size_t whiteouts() const {
    return static_cast<std::size_t>(std::count_if(entries.begin(), entries.end(), [](auto& e) {
      return e.path.find(".wh.") != std::string::npos;
    }));
  }
};

std::unique_ptr<Squashed> squash(std::vector<std::string> base_tars,
                                 std::vector<std::string> folded_tars) {
  auto run = std::make_unique<Squashed>();
  run->store = store::testing::open_store(run->dir.path());
  run->base = store_layers(*run->store, std::move(base_tars));
  run->folded = store_layers(*run->store, std::move(folded_tars));
  auto lowers = build::unpacked_lower_dirs(*run->store, run->base.descriptors, run->base.diff_ids);
  INFO((lowers ? std::string() : lowers.error().what()));
  REQUIRE(lowers);
  layer::ExportOptions options;
  options.compression = oci::Compression::none;
  auto result = build::squash_layers(*run->store, *lowers, run->folded.descriptors,
                                     run->folded.diff_ids, options);
  INFO((result ? std::string() : result.error().what()));
  REQUIRE(result);
  run->result = *result;
  auto bytes = run->store->blobs().read(result->layer.digest, 1 << 26);
  REQUIRE(bytes);
  run->tar = *bytes;
  CHECK(oci::sha256_of(run->tar) == result->diff_id);
  run->entries = layer_test::listing(run->tar);
  // The squashed tree is adopted: an unpacked layer like any other, and nothing is left over.
  auto info = run->store->layers().stat(result->diff_id);
  REQUIRE(info);
  CHECK(info->has_value());
  CHECK(store::testing::temp_files(run->dir.path()) == 0);
  // The folded layers' own trees are read, never touched: fsck still finds them intact.
  for (const oci::Digest& diff_id : run->folded.diff_ids) {
    auto folded = run->store->layers().stat(diff_id);
    REQUIRE(folded);
    REQUIRE(folded->has_value());
    auto content = store::list_content(run->store->layers().lower_dir(diff_id));
    REQUIRE(content);
    CHECK(content->digest == (*folded)->content_digest);
  }
  return run;
}

// base + layers applied one by one in the apply style, as a runtime would unpack the image.
std::map<std::string, layer_test::NodeInfo> applied(const std::vector<std::string>& tars) {
  minibuild::test::TempDir target;
  for (const std::string& tar : tars) {
    auto applied_layer = layer_test::apply_bytes(tar, target.path());
    INFO((applied_layer ? std::string() : applied_layer.error().what()));
    REQUIRE(applied_layer);
  }
  layer_test::SnapshotOptions options;
  options.dir_mtimes = false; // removing an entry touches its directory in one order only
  return layer_test::snapshot(target.path(), options);
}

std::string base_layer() {
  return TarBuilder()
      .dir("etc")
      .file("etc/keep", "keep")
      .file("etc/old", "old")
      .dir("usr")
      .dir("usr/share")
      .dir("usr/share/doc")
      .file("usr/share/doc/a", "a")
      .file("usr/share/doc/b", "b")
      .dir("bin")
      .file("bin/sh", "sh", 0755)
      .finish();
}

} // namespace

TEST_CASE("squash: a file created and deleted within the folded layers is absent",
          "[build][squash]") {
  auto run = squash({base_layer()}, {TarBuilder().dir("tmp").file("tmp/scratch", "x").finish(),
                                     TarBuilder().dir("tmp").file("tmp/.wh.scratch", "").finish()});
  CHECK(run->paths() == std::vector<std::string>{"tmp/"});
  CHECK(run->whiteouts() == 0);
  CHECK(run->result.fold.whiteouts == 0);
}

TEST_CASE("squash: deleting a base file gives one whiteout", "[build][squash]") {
  auto run = squash({base_layer()}, {TarBuilder().dir("etc").file("etc/.wh.old", "").finish(),
                                     TarBuilder().dir("etc").file("etc/new", "n").finish()});
  CHECK(run->paths() == std::vector<std::string>{"etc/", "etc/.wh.old", "etc/new"});
  CHECK(run->result.fold.whiteouts == 1);
  CHECK(run->result.fold.opaque_dirs == 0);
}

TEST_CASE("squash: a replaced base directory becomes opaque with only its new content",
          "[build][squash]") {
  SECTION("rm -rf in one layer, mkdir and a new file in the next") {
    auto run =
        squash({base_layer()},
               {TarBuilder().dir("usr").dir("usr/share").file("usr/share/.wh.doc", "").finish(),
                TarBuilder()
                    .dir("usr")
                    .dir("usr/share")
                    .dir("usr/share/doc")
                    .file("usr/share/doc/new", "new")
                    .finish()});
    CHECK(run->paths() == std::vector<std::string>{"usr/", "usr/share/", "usr/share/doc/",
                                                   "usr/share/doc/.wh..wh..opq",
                                                   "usr/share/doc/new"});
    CHECK(run->result.fold.opaque_dirs == 1);
    CHECK(run->result.fold.whiteouts == 0);
  }
  SECTION("an opaque directory in one layer, a file added to it in the next") {
    auto run = squash({base_layer()}, {TarBuilder()
                                           .dir("usr/share/doc")
                                           .file("usr/share/doc/.wh..wh..opq", "")
                                           .file("usr/share/doc/first", "1")
                                           .finish(),
                                       TarBuilder().file("usr/share/doc/second", "2").finish()});
    CHECK(run->paths() == std::vector<std::string>{"usr/", "usr/share/", "usr/share/doc/",
                                                   "usr/share/doc/.wh..wh..opq",
                                                   "usr/share/doc/first", "usr/share/doc/second"});
  }
  SECTION("a directory that is new to the base needs no opaque marker") {
    auto run = squash({base_layer()}, {TarBuilder().dir("srv").file("srv/a", "a").finish(),
                                       TarBuilder().file(".wh.srv", "").finish(),
                                       TarBuilder().dir("srv").file("srv/b", "b").finish()});
    CHECK(run->paths() == std::vector<std::string>{"srv/", "srv/b"});
    CHECK(run->whiteouts() == 0);
  }
}

TEST_CASE("squash: install a toolchain, build, remove the toolchain leaves only the result",
          "[build][squash]") {
  const std::string compiler = layer_test::sample_bytes(300000, 7);
  auto run =
      squash({base_layer()}, {TarBuilder()
                                  .dir("opt")
                                  .dir("opt/toolchain")
                                  .dir("opt/toolchain/bin")
                                  .file("opt/toolchain/bin/cc", compiler, 0755)
                                  .dir("opt/toolchain/lib")
                                  .file("opt/toolchain/lib/libc.a", compiler)
                                  .finish(),
                              TarBuilder().dir("out").file("out/hello", "ELF", 0755).finish(),
                              TarBuilder().dir("opt").file("opt/.wh.toolchain", "").finish()});
  CHECK(run->paths() == std::vector<std::string>{"opt/", "out/", "out/hello"});
  CHECK(run->whiteouts() == 0);
  CHECK(run->result.uncompressed_size < compiler.size());
}

TEST_CASE("squash: hard links, symlinks, owners, modes and xattrs survive", "[build][squash]") {
  const bool owners = layer_test::can_chown();
  auto run = squash({base_layer()}, {TarBuilder()
                                         .dir("app")
                                         .owner(owners ? 1234 : 0, owners ? 5678 : 0)
                                         .xattr("user.note", "kept")
                                         .file("app/tool", "tool", 04755)
                                         .hardlink("app/tool-alias", "app/tool")
                                         .symlink("app/latest", "tool")
                                         .symlink("app/dangling", "/nowhere")
                                         .file("app/shared", "v1")
                                         .hardlink("app/shared-link", "app/shared")
                                         .finish(),
                                     TarBuilder()
                                         .dir("app")
                                         .file("app/shared", "v2") // breaks that link only
                                         .finish()});
  const TarEntry* tool = run->find("app/tool");
  const TarEntry* alias = run->find("app/tool-alias");
  REQUIRE(tool != nullptr);
  REQUIRE(alias != nullptr);
  CHECK(alias->hardlink);
  CHECK(alias->link == "app/tool");
  CHECK(tool->mode == 04755);
  CHECK(tool->xattrs == std::map<std::string, std::string>{{"user.note", "kept"}});
  if (owners) {
    CHECK(tool->uid == 1234);
    CHECK(tool->gid == 5678);
  }
  REQUIRE(run->find("app/latest") != nullptr);
  CHECK(run->find("app/latest")->type == 'l');
  CHECK(run->find("app/latest")->link == "tool");
  REQUIRE(run->find("app/dangling") != nullptr);
  CHECK(run->find("app/dangling")->link == "/nowhere");
  REQUIRE(run->find("app/shared-link") != nullptr);
  CHECK_FALSE(run->find("app/shared-link")->hardlink);
  CHECK(run->result.fold.hardlinks == 1);
  // The adopted tree in the store holds the same.
  const std::string lower = run->store->layers().lower_dir(run->result.diff_id);
  CHECK(layer_test::read_file(lower + "/app/shared") == "v2");
  CHECK(layer_test::read_file(lower + "/app/shared-link") == "v1");
  struct stat a {};
  struct stat b {};
  REQUIRE(::lstat((lower + "/app/tool").c_str(), &a) == 0);
  REQUIRE(::lstat((lower + "/app/tool-alias").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
}

TEST_CASE("squash: base plus the squashed layer is base plus all the folded layers",
          "[build][squash]") {
  const std::vector<std::string> folded = {
      TarBuilder()
          .dir("etc")
          .file("etc/.wh.old", "")
          .file("etc/keep", "rewritten")
          .dir("opt")
          .dir("opt/sdk")
          .file("opt/sdk/big", layer_test::sample_bytes(5000, 3))
          .dir("var")
          .dir("var/cache")
          .file("var/cache/pkg", "p")
          .symlink("bin/bash", "sh")
          .finish(),
      TarBuilder()
          .dir("usr")
          .dir("usr/share")
          .file("usr/share/.wh.doc", "")
          .dir("opt")
          .file("opt/.wh.sdk", "")
          .dir("var")
          .dir("var/cache")
          .file("var/cache/.wh..wh..opq", "")
          .file("var/cache/fresh", "f")
          .file("bin/sh", "sh2", 0700)
          .finish(),
      TarBuilder()
          .dir("usr/share/doc", 0700)
          .file("usr/share/doc/b", "new b")
          .dir("etc")
          .file("etc/old", "back again") // deleted and re-created: a plain file, no whiteout
          .hardlink("etc/old-link", "etc/old")
          .dir("srv")
          .file("srv/.wh.never", "") // hides nothing: dropped
          .finish(),
  };
  auto run = squash(
      {base_layer(), TarBuilder().dir("var").dir("var/cache").file("var/cache/apt", "a").finish()},
      folded);
  std::vector<std::string> all = run->base.tars;
  all.insert(all.end(), folded.begin(), folded.end());
  std::vector<std::string> squashed = run->base.tars;
  squashed.push_back(run->tar);
  const auto expected = applied(all);
  const auto got = applied(squashed);
  INFO("expected:\n"
       << layer_test::describe(expected) << "squashed:\n"
       << layer_test::describe(got));
  CHECK(got == expected);
  CHECK(run->find("etc/.wh.old") == nullptr);
  CHECK(run->find("srv/.wh.never") == nullptr);
  CHECK(run->find("usr/share/doc/.wh..wh..opq") != nullptr);
  CHECK(run->find("var/cache/.wh..wh..opq") != nullptr);
  const std::vector<std::string> paths = run->paths();
  CHECK(std::none_of(paths.begin(), paths.end(), [](const std::string& path) {
    return path.find("sdk") != std::string::npos;
  }));
}

TEST_CASE("squash: type changes and what an opaque directory already hides", "[build][squash]") {
  const std::vector<std::string> folded = {
      TarBuilder()
          .file(".wh.bin", "") // a base directory becomes a file
          .file("bin", "not a dir any more")
          .dir("etc")
          .file("etc/.wh.keep", "")
          .dir("etc/keep") // a base file becomes a directory
          .file("etc/keep/inside", "i")
          .finish(),
      TarBuilder()
          .dir("usr")
          .dir("usr/share")
          .dir("usr/share/doc")
          .file("usr/share/doc/.wh..wh..opq", "")
          .file("usr/share/doc/c", "c")
          .finish(),
      TarBuilder()
          .dir("usr/share/doc")
          .file("usr/share/doc/.wh.a", "") // already hidden by the opaque dir
          .file("usr/share/doc/.wh.c", "") // made by a folded layer
          .finish(),
  };
  auto run = squash({base_layer()}, folded);
  CHECK(run->paths() == std::vector<std::string>{"bin", "etc/", "etc/keep/", "etc/keep/inside",
                                                 "usr/", "usr/share/", "usr/share/doc/",
                                                 "usr/share/doc/.wh..wh..opq"});
  CHECK(run->result.fold.whiteouts == 0);
  CHECK(run->result.fold.opaque_dirs == 1);
  std::vector<std::string> all = run->base.tars;
  all.insert(all.end(), folded.begin(), folded.end());
  std::vector<std::string> squashed = run->base.tars;
  squashed.push_back(run->tar);
  CHECK(applied(squashed) == applied(all));
}

TEST_CASE("lookup_in_layers honours whiteouts, opaque directories and files on the way",
          "[build][squash]") {
  minibuild::test::TempDir dir;
  const std::string bottom = dir.path() + "/bottom";
  const std::string top = dir.path() + "/top";
  layer_test::make_dir(bottom);
  layer_test::make_dir(bottom + "/d");
  layer_test::write_file(bottom + "/d/f", "");
  layer_test::make_dir(bottom + "/o");
  layer_test::write_file(bottom + "/o/hidden", "");
  layer_test::make_dir(bottom + "/x");
  layer_test::write_file(bottom + "/x/below", "");
  layer_test::write_file(bottom + "/gone", "");
  layer_test::make_dir(top);
  layer_test::make_dir(top + "/o");
  REQUIRE(::setxattr((top + "/o").c_str(), layer::k_opaque_xattr, "y", 1, 0) == 0);
  layer_test::write_file(top + "/o/shown", "");
  layer_test::write_file(top + "/x", ""); // a file replaced directory x
  REQUIRE(::mknod((top + "/gone").c_str(), S_IFCHR, makedev(0, 0)) == 0);
  const std::vector<std::string> stack = {top, bottom};
  const auto lookup = [&](std::string_view path) {
    auto found = build::lookup_in_layers(stack, path);
    REQUIRE(found);
    return *found;
  };
  CHECK(lookup("") == build::LayerLookup::directory);
  CHECK(lookup("/d") == build::LayerLookup::directory);
  CHECK(lookup("d/./f") == build::LayerLookup::other);
  CHECK(lookup("d/missing") == build::LayerLookup::absent);
  CHECK(lookup("o/shown") == build::LayerLookup::other);
  CHECK(lookup("o/hidden") == build::LayerLookup::absent);
  CHECK(lookup("x") == build::LayerLookup::other);
  CHECK(lookup("x/below") == build::LayerLookup::absent);
  CHECK(lookup("gone") == build::LayerLookup::absent);
  CHECK(build::lookup_in_layers({}, "d").value() == build::LayerLookup::absent);
}

TEST_CASE("the minibuild:squash and minibuild:layer comments group instructions of a stage",
          "[build][squash][dockerfile]") {
  const std::string text = "# syntax=docker/dockerfile:1\n"
                           "FROM alpine AS a\n"
                           "RUN one\n"
                           "# minibuild:squash\n"
                           "RUN two\n"
                           "  #   minibuild:squash  \n" // a second run starts, the first ends
                           "COPY x y\n"
                           "RUN three \\\n"
                           "# minibuild:layer\n" // inside a continuation: dropped, no effect
                           "  and more\n"
                           "#minibuild:layer\n"
                           "RUN four\n"
                           "# minibuild:squash\n"
                           "RUN five\n"
                           "FROM a\n" // a stage boundary ends the run
                           "RUN six\n"
                           "# minibuild: squash\n" // not the directive
                           "# MINIBUILD:SQUASH\n"  // nor this
                           "RUN seven\n";
  auto parsed = dockerfile::parse_dockerfile(text, "Dockerfile");
  REQUIRE(parsed);
  std::vector<std::pair<std::string, int>> groups;
  for (const auto& node : parsed->instructions) {
    groups.emplace_back(node.original, node.squash_group);
  }
  CHECK(groups == std::vector<std::pair<std::string, int>>{{"FROM alpine AS a", 0},
                                                           {"RUN one", 0},
                                                           {"RUN two", 1},
                                                           {"COPY x y", 2},
                                                           {"RUN three   and more", 2},
                                                           {"RUN four", 0},
                                                           {"RUN five", 3},
                                                           {"FROM a", 0},
                                                           {"RUN six", 0},
                                                           {"RUN seven", 0}});
  // The typed instructions of the plan carry the same groups.
  auto plan = dockerfile::make_plan(*parsed, {});
  INFO((plan ? std::string() : plan.error().what()));
  REQUIRE(plan);
  REQUIRE(plan->stages.size() == 2);
  std::vector<int> first;
  for (const auto& instruction : plan->stages[0].instructions) {
    first.push_back(instruction.squash_group);
  }
  CHECK(first == std::vector<int>{0, 1, 2, 2, 0, 3});
  for (const auto& instruction : plan->stages[1].instructions) {
    CHECK(instruction.squash_group == 0);
  }
  // The directives never show in BuildKit's dump: the same file without them dumps the same.
  std::string plain;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = text.find('\n', start) + 1;
    const std::string line = text.substr(start, end - start);
    if (line.find("minibuild") == std::string::npos) {
      plain += line;
    }
    start = end;
  }
  auto plain_parsed = dockerfile::parse_dockerfile(plain, "Dockerfile");
  REQUIRE(plain_parsed);
  CHECK(dockerfile::dump_buildkit(*plain_parsed) == dockerfile::dump_buildkit(*parsed));
}
