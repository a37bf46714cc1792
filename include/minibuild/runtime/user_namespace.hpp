// Entering the user namespace (and mount namespace) of a rootless minibuild command.
//
// An unprivileged minibuild enters ONE user namespace for the whole command (issue #5): container
// root is the invoking user, container ids 1..65536 are the user's subordinate ids from
// /etc/subuid and /etc/subgid, mapped by the setuid helpers newuidmap/newgidmap (Debian package
// `uidmap`). Without subordinate ids the namespace maps one id (container 0 = the user) and the
// caller says so once. As root nothing is entered here.
//
// Three pieces, split by need: parsing the subordinate-id files (pure, text in), planning the
// map (pure), and the kernel dance (enter_user_namespace). The CLI reads /etc/subuid and
// /etc/subgid and passes the parsed ranges in, so tests never touch those global files.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/layer/id_map.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace minibuild::runtime {

/// Container ids 1..k_default_subordinate_size come from subordinate ranges (container 0 is the
/// user): 65536 ids cover every id a Debian or Alpine image uses, as in rootless podman.
inline constexpr std::uint32_t k_default_subordinate_size = 65536;

/// The ranges of /etc/subuid or /etc/subgid (format subuid(5): `NAME:START:COUNT`) that belong to
/// the user `user_name` with uid `uid`: lines whose first field is that name or that uid in
/// decimal, in file order, as IdRange{container_id = 0, host_id = START, size = COUNT}
/// (container ids are assigned later by plan_id_map). Blank lines and lines starting with '#' are
/// skipped; surrounding whitespace is ignored. Pure: no I/O; `file_name` only names the file in
/// errors.
///
/// Any malformed line (not three fields, a non-decimal or out-of-range number, COUNT 0, a range
/// past uid 4294967294) fails the parse with Code::io and location `file_name:LINE`, even when it
/// names another user: the file is system configuration, and a broken line there is for the
/// administrator to fix, not to guess around. (shadow's newuidmap skips such lines instead.)
Result<std::vector<layer::IdRange>>
parse_subordinate_ids(std::string_view file_text, std::string_view user_name, uid_t uid,
                      std::string_view file_name = "/etc/subuid");

/// How plan_id_map mapped ids.
enum class IdMapKind {
  subordinate, ///< container 0 → the user, 1.. → subordinate ranges (needs newuidmap/newgidmap)
  single_id,   ///< fallback: only container 0 → the user (uid and gid); no helper needed
};

/// A planned id map with what the caller has to tell the user.
struct IdMapPlan {
  layer::IdMap map;
  IdMapKind kind = IdMapKind::single_id;
  /// Container ids mapped, root included: 1 + the subordinate ids used (at most size + 1). Less
  /// than size + 1 when the ranges are short; the CLI reports it.
  std::uint32_t uid_count = 0;
  std::uint32_t gid_count = 0;
};

/// Plans the map of the namespace: container 0 → `uid`/`gid`; container 1..`size` → host ids
/// taken from `subuids`/`subgids` in order, splitting ranges as needed and skipping host ids
/// already used (the user's own id, overlapping or repeated entries), since the kernel refuses
/// maps whose host ranges overlap. Fewer subordinate ids than `size` → maps what there is. When
/// either list is empty the plan is the single-id fallback for BOTH uids and gids (one map kind
/// per namespace keeps the rest of minibuild to two cases). At most 340 lines per map (the
/// kernel's limit, user_namespaces(7)); ids beyond that are left unmapped. Pure.
IdMapPlan plan_id_map(uid_t uid, gid_t gid, const std::vector<layer::IdRange>& subuids,
                      const std::vector<layer::IdRange>& subgids,
                      std::uint32_t size = k_default_subordinate_size);

/// What enter_user_namespace needs. Ranges come from parse_subordinate_ids (the CLI reads the
/// files); empty ranges select the single-id fallback.
struct UserNamespaceOptions {
  std::vector<layer::IdRange> subuids;
  std::vector<layer::IdRange> subgids;
  std::uint32_t size = k_default_subordinate_size;
  /// The invoking user's name, for messages and hints only ("add bob:100000:65536 ...").
  std::string user_name;
  /// Where to look for newuidmap/newgidmap, ':'-separated. nullopt: $PATH, then /usr/bin.
  std::optional<std::string> helper_search_path;
};

enum class NamespaceKind {
  not_needed,  ///< running as root (euid 0): nothing was entered
  subordinate, ///< entered; mapped by newuidmap/newgidmap
  single_id,   ///< entered; only container 0 is mapped (fallback)
};

/// The namespace the process is now in.
struct EnteredNamespace {
  NamespaceKind kind = NamespaceKind::not_needed;
  /// Container → host ids; empty for not_needed (identity).
  layer::IdMap id_map;
  std::uint32_t uid_count = 0;
  std::uint32_t gid_count = 0;
  /// One line the caller prints once when non-empty: the single-id fallback or a short range.
  std::string notice;
};

/// Moves the CALLING PROCESS into a new user namespace and mount namespace; on success it is
/// uid/gid 0 there with full capabilities in the namespace, and mount propagation of "/" is
/// private, so mounts made afterwards never reach the host. As root (euid 0) does nothing and
/// returns NamespaceKind::not_needed.
///
/// Must be called before any thread starts: unshare(CLONE_NEWUSER) fails with EINVAL in a
/// multi-threaded process, so a process with more than one entry in /proc/self/task fails with
/// Code::sandbox before trying. Not idempotent: call once per process. Forks one short-lived
/// helper child (to run newuidmap/newgidmap on this process's pid, which must happen from
/// outside the namespace) and reaps it before returning.
///
/// Errors (Code::sandbox) read "enter user namespace: <syscall> <path>: <errno text>" plus, when
/// the cause is known, "; " and a hint: user namespaces disabled by
/// kernel.unprivileged_userns_clone, user.max_user_namespaces or AppArmor's
/// kernel.apparmor_restrict_unprivileged_userns, newuidmap missing or refusing (no subuid
/// entry). On failure the process may already be in the new namespace without a map; the
/// caller must treat the failure as fatal for the command.
Result<EnteredNamespace> enter_user_namespace(const UserNamespaceOptions& options);

/// Kernel settings that decide whether an unprivileged user namespace is allowed; nullopt when
/// the file does not exist on this kernel.
struct UserNamespaceSysctls {
  std::optional<long> unprivileged_userns_clone;             ///< kernel.unprivileged_userns_clone
  std::optional<long> max_user_namespaces;                   ///< user.max_user_namespaces
  std::optional<long> apparmor_restrict_unprivileged_userns; ///< kernel.apparmor_restrict_...
};

/// The current values from /proc/sys (missing or unreadable files are nullopt).
UserNamespaceSysctls read_user_namespace_sysctls();

/// The hint for a refused unshare(CLONE_NEWUSER) or id-map write failing with `sys_errno` under
/// `sysctls`; empty when the cause is unknown. Pure.
std::string user_namespace_hint(int sys_errno, const UserNamespaceSysctls& sysctls);

} // namespace minibuild::runtime
