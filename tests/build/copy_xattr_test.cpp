// Extended attributes through COPY and ADD: what survives into the staging tree and the layer,
// and what a destination refusal does (a warning, never a failure).
#include "build/fs_ops.hpp"
#include "build_test_support.hpp"
#include "layer/layer_test_support.hpp"

#include <minibuild/build/copy.hpp>
#include <minibuild/layer/apply.hpp>
#include <minibuild/layer/export.hpp>
#include <minibuild/layer/xattrs.hpp>

#include <cerrno>
#include <cstring>
#include <sys/xattr.h>

using namespace minibuild;
using namespace minibuild::build;
using namespace minibuild::build::testing;

namespace {

// Whether `path` can hold user.* xattrs here (tmpfs before Linux 6.6 and some overlay setups
// cannot); sets user.test=value as a side effect.
bool set_user_xattr(const std::string& path, const std::string& name, const std::string& value) {
  if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) == 0) {
    return true;
  }
  REQUIRE((errno == ENOTSUP || errno == EOPNOTSUPP || errno == EPERM));
  return false;
}

std::optional<std::string> xattr_of(const std::string& path, const std::string& name) {
  char value[256];
  ssize_t size = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof(value));
  if (size < 0) {
    REQUIRE((errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP));
    return std::nullopt;
  }
  return std::string(value, static_cast<std::size_t>(size));
}

// vfs_cap_data, revision 2 (linux/capability.h), little-endian: magic_etc =
// VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, then permitted/inheritable for the two 32-bit
// halves. CAP_NET_BIND_SERVICE is bit 10 of the first permitted word: `setcap
// cap_net_bind_service=+ep`.
std::string net_bind_service_capability() {
  const unsigned char bytes[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  return std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

const layer_test::TarEntry* find_entry(const std::vector<layer_test::TarEntry>& entries,
                                       const std::string& path) {
  for (const auto& entry : entries) {
    std::string name = entry.path;
    if (name.rfind("./", 0) == 0) {
      name = name.substr(2);
    }
    if (!name.empty() && name.back() == '/') {
      name.pop_back();
    }
    if (name == path) {
      return &entry;
    }
  }
  return nullptr;
}

} // namespace

TEST_CASE("COPY carries user xattrs of files and directories", "[build][copy][xattr]") {
  CopyFixture f;
  spit(f.ctx("tool"), "bin");
  spit(f.ctx("tree/inner/file"), "data");
  if (!set_user_xattr(f.ctx("tool"), "user.test", "value")) {
    WARN("the test filesystem refuses user xattrs; skipped");
    return;
  }
  REQUIRE(set_user_xattr(f.ctx("tree/inner"), "user.dir", "d"));
  REQUIRE(set_user_xattr(f.ctx("tree/inner/file"), "user.file", "f"));
  // Host bookkeeping never travels.
  REQUIRE(set_user_xattr(f.ctx("tool"), "user.overlay.origin", "x"));
  REQUIRE(set_user_xattr(f.ctx("tool"), "user.minibuild.owner", "1:1"));

  SECTION("a file") {
    auto result = f.run(copy_step({"tool"}, "/app/"));
    REQUIRE(result);
    CHECK(xattr_of(f.staged("app/tool"), "user.test") == std::optional<std::string>("value"));
    CHECK_FALSE(xattr_of(f.staged("app/tool"), "user.overlay.origin"));
    CHECK_FALSE(xattr_of(f.staged("app/tool"), "user.minibuild.owner"));
    CHECK(result->warnings.empty());
  }
  SECTION("a directory and what it holds") {
    auto result = f.run(copy_step({"tree"}, "/srv"));
    REQUIRE(result);
    CHECK(xattr_of(f.staged("srv/inner"), "user.dir") == std::optional<std::string>("d"));
    CHECK(xattr_of(f.staged("srv/inner/file"), "user.file") == std::optional<std::string>("f"));
    CHECK(result->warnings.empty());
  }
  SECTION("with --chmod the xattrs stay") {
    CopyStep step = copy_step({"tool"}, "/app/tool");
    step.chmod = "0700";
    auto result = f.run(step);
    REQUIRE(result);
    CHECK(mode_of(f.staged("app/tool")) == 0700);
    CHECK(xattr_of(f.staged("app/tool"), "user.test") == std::optional<std::string>("value"));
  }
}

TEST_CASE("COPY keeps security.capability into the layer", "[build][copy][xattr]") {
  if (::geteuid() != 0) {
    WARN("setting security.capability needs root; skipped");
    return;
  }
  CopyFixture f;
  spit(f.ctx("server"), "\x7f"
                        "ELF");
  ::chmod(f.ctx("server").c_str(), 0755);
  const std::string cap = net_bind_service_capability();
  if (::setxattr(f.ctx("server").c_str(), "security.capability", cap.data(), cap.size(), 0) != 0) {
    WARN("the test filesystem refuses security.capability: " << std::strerror(errno));
    return;
  }
  CopyStep step = copy_step({"server"}, "/usr/bin/");
  step.chown = "0:0";
  auto result = f.run(step);
  REQUIRE(result);
  CHECK(result->warnings.empty());
  CHECK(xattr_of(f.staged("usr/bin/server"), "security.capability") ==
        std::optional<std::string>(cap));

  layer::ExportOptions options;
  options.compression = oci::Compression::none;
  const std::string tar = layer_test::export_tar(f.staging_dir.path(), options);
  const auto entries = layer_test::listing(tar);
  const layer_test::TarEntry* server = find_entry(entries, "usr/bin/server");
  REQUIRE(server != nullptr);
  REQUIRE(server->xattrs.count("security.capability") == 1);
  CHECK(server->xattrs.at("security.capability") == cap);
}

TEST_CASE("ADD extracts xattrs from archive entries", "[build][add][xattr]") {
  CopyFixture f;
  REQUIRE((::lsetxattr(f.staging_dir.path().c_str(), "user.probe", "1", 1, 0) == 0 ||
           errno == ENOTSUP || errno == EOPNOTSUPP));
  const bool user_xattrs = xattr_of(f.staging_dir.path(), "user.probe").has_value();
  REQUIRE((!user_xattrs || ::lremovexattr(f.staging_dir.path().c_str(), "user.probe") == 0));

  layer_test::TarBuilder tar;
  tar.xattr("user.dir", "d").dir("pkg");
  // An unknown namespace: every Linux filesystem answers EOPNOTSUPP.
  tar.xattr("user.file", "f")
      .xattr("bogus.attr", "x")
      .xattr("security.selinux", "system_u:object_r:etc_t:s0")
      .file("pkg/conf", "content");
  spit(f.ctx("bundle.tar"), tar.finish());

  auto result = f.run(add_step({"bundle.tar"}, "/opt/"));
  REQUIRE(result);
  CHECK(slurp(f.staged("opt/pkg/conf")) == "content");
  // The host's SELinux label is never applied; the unknown namespace is refused and reported.
  CHECK_FALSE(xattr_of(f.staged("opt/pkg/conf"), "security.selinux"));
  REQUIRE(result->warnings.size() == 1);
  const std::string& warning = result->warnings[0];
  INFO(warning);
  if (user_xattrs) {
    CHECK(xattr_of(f.staged("opt/pkg"), "user.dir") == std::optional<std::string>("d"));
    CHECK(xattr_of(f.staged("opt/pkg/conf"), "user.file") == std::optional<std::string>("f"));
    CHECK(warning.rfind("could not copy 1 extended attribute (bogus.attr: ", 0) == 0);
  } else {
    WARN("the test filesystem refuses user xattrs: only the refusal is checked");
    CHECK(warning.rfind("could not copy 3 extended attributes (", 0) == 0);
  }
}

TEST_CASE("Xattr refusals are counted into one warning", "[build][xattr]") {
  XattrRefusals refused;
  CHECK(refused.warning().empty());
  refused.note("security.capability", EPERM);
  refused.note("security.capability", EPERM);
  refused.note("user.test", ENOTSUP);
  XattrRefusals more;
  more.note("trusted.x", EPERM);
  refused.merge(more);
  CHECK(refused.count == 4);
  CHECK(refused.warning() ==
        std::string("could not copy 4 extended attributes (security.capability: ") +
            std::strerror(EPERM) + "; trusted.x: " + std::strerror(EPERM) +
            "; user.test: " + std::strerror(ENOTSUP) + ")");
  CHECK_FALSE(layer::is_image_xattr("security.selinux"));
  CHECK_FALSE(layer::is_image_xattr("system.nfs4_acl"));
  CHECK_FALSE(layer::is_image_xattr("trusted.overlay.opaque"));
  CHECK_FALSE(layer::is_image_xattr("user.overlay.redirect"));
  CHECK_FALSE(layer::is_image_xattr(layer::k_owner_xattr));
  CHECK(layer::is_image_xattr("security.capability"));
  CHECK(layer::is_image_xattr("user.test"));
}
