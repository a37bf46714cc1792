#include "rootless.hpp"

#include <minibuild/base/file.hpp>
#include <minibuild/runtime/user_namespace.hpp>

#include <cstdio>
#include <cstdlib>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::cli {

namespace {

// The ranges of `user` in a subordinate-id file; a missing file means none.
Result<std::vector<layer::IdRange>> subordinate_ranges(const char* path, const std::string& user,
                                                       uid_t uid) {
  struct stat st {};
  if (::stat(path, &st) != 0) {
    return std::vector<layer::IdRange>{};
  }
  MB_TRY_ASSIGN(std::string text, read_file(path));
  return runtime::parse_subordinate_ids(text, user, uid, path);
}

// The inode of this process's user namespace: it changes once unshare(CLONE_NEWUSER) worked.
ino_t user_namespace_inode() {
  struct stat st {};
  return ::stat("/proc/self/ns/user", &st) == 0 ? st.st_ino : 0;
}

} // namespace

namespace {
bool g_private_mounts = false;
} // namespace

bool in_private_mount_namespace() {
  return g_private_mounts;
}

namespace {

// Root needs no user namespace, but a mount namespace of its own keeps the builder's overlay
// views (ExecutorOptions::mount_views) off the host, and they vanish with the process.
void enter_private_mount_namespace() {
  if (::unshare(CLONE_NEWNS) == 0 &&
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0) {
    g_private_mounts = true;
  }
}

} // namespace

Result<void> enter_rootless_namespace(GlobalOptions& global) {
  const uid_t uid = ::geteuid();
  if (uid == 0) {
    enter_private_mount_namespace();
    return {};
  }
  // Inside the namespace euid is 0: settle the store root as the caller's own now.
  global.root = resolve_store_root(global.root, std::getenv("XDG_DATA_HOME"), std::getenv("HOME"),
                                   /*is_root=*/false);

  runtime::UserNamespaceOptions options;
  if (const passwd* entry = ::getpwuid(uid); entry != nullptr) {
    options.user_name = entry->pw_name;
  }
  MB_TRY_ASSIGN(options.subuids, subordinate_ranges("/etc/subuid", options.user_name, uid));
  MB_TRY_ASSIGN(options.subgids,
                subordinate_ranges("/etc/subgid", options.user_name, static_cast<uid_t>(uid)));

  const ino_t before = user_namespace_inode();
  auto entered = runtime::enter_user_namespace(options);
  if (!entered) {
    if (user_namespace_inode() != before) {
      // Half-way in: a namespace without a usable map. Nothing sensible can run here.
      return fail(std::move(entered).error());
    }
    std::fprintf(stderr,
                 "minibuild: warning: %s; going on without a user namespace (files keep your "
                 "ownership; RUN will need one)\n",
                 entered.error().what().c_str());
    return {};
  }
  if (!entered->notice.empty()) {
    std::fprintf(stderr, "minibuild: warning: %s\n", entered->notice.c_str());
  }
  // enter_user_namespace made "/" private in the new mount namespace.
  g_private_mounts = true;
  return {};
}

} // namespace minibuild::cli
