// The rootless process model (issue #5): an unprivileged minibuild enters one user namespace
// for the whole command, so the store is handled as root and layer files keep their container
// owners (runtime/user_namespace.hpp does the kernel part).
#pragma once

#include "options.hpp"

#include <minibuild/base/error.hpp>

namespace minibuild::cli {

/// For a non-root caller: reads /etc/subuid and /etc/subgid, enters the user namespace
/// (subordinate ranges through newuidmap/newgidmap, else the single-id map with one notice on
/// stderr) and fixes global.root to the caller's own store first (inside, euid is 0, which
/// would otherwise select root's store). When the kernel refuses the namespace outright, says
/// so once and goes on without one (as before: files keep the caller's ownership); a failure
/// after the namespace was created ends the command. For root: a mount namespace of its own
/// (best effort). Must run before any thread starts.
Result<void> enter_rootless_namespace(GlobalOptions& global);

/// True when the process is in a mount namespace of its own (entered above), where mounts of
/// the builder never reach the host and vanish with the process.
bool in_private_mount_namespace();

} // namespace minibuild::cli
