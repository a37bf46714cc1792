# shellcheck shell=bash
# shellcheck disable=SC2034 # WAYS, SUB_*, rc, out and err are for the caller
# The three ways an integration test runs minibuild (issue #5): as root; as an unprivileged user
# with a subordinate id range (container ids 1..65536 mapped by newuidmap/newgidmap); as uid 65534
# without a range (the single-id map). Source it AFTER lib.sh (and registry_lib.sh); call the
# functions from the test's main shell. The pattern is test_rootless_store.sh's.
#
# users_require_tools
#     Skips the test (exit 77, with the reason) unless it runs as root with setpriv, useradd,
#     userdel, newuidmap and newgidmap.
# ways_setup SUBUSER
#     Decides which ways run and prepares them; sets WAYS ("root sub single", or "root" when the
#     kernel refuses unprivileged user namespaces: the other two are reported skipped, with the
#     reason). Creates SUBUSER (a per-script name, so that scripts ctest runs in parallel never
#     remove each other's user) and a 65536-id range in /etc/subuid and /etc/subgid for it, each
#     unless it exists; what this added is removed at exit. Sets SUB_UID SUB_GID (the user) and
#     SUB_UID_START SUB_GID_START (its ranges). Makes $work_dir traversable by everyone.
#     The single way is dropped, with the reason, when uid 65534 has a range of its own.
# way_home WAY      prints the HOME of that way's user (root: $work_dir/home-root).
# mb WAY ARGS...
#     Runs minibuild the WAY's way, stdin from $STDIN_FILE (default /dev/null), and sets
#     $out, $err and $rc like run_mb; killed after $MB_TIMEOUT seconds (default 60; exit 124).
#     root: --root $work_dir/store-root; sub and single: as that user (setpriv, no supplementary
#     groups) with HOME=way_home WAY, so its store is the default one,
#     $(way_home WAY)/.local/share/minibuild, and an empty Docker/registry configuration.
# mb_spawn WAY ARGS...
#     Like mb, in the background with SIGINT at its default disposition (a script's background
#     job would otherwise ignore it); sets MB_PID (minibuild itself: setpriv and env exec it).
#     Output goes to $work_dir/spawn.out and spawn.err; `mb_reap` waits for it and sets $rc,
#     $out and $err.
# way_store WAY     prints that way's store directory.
# way_skip_reason WAY
#     Prints why WAY is skipped on this machine, nothing when it runs.

: "${work_dir:?source lib.sh before users_lib.sh}"

_ul_created_user=""
_ul_userns_refused=""
_ul_single_refused=""
SUB_UID="" SUB_GID="" SUB_UID_START="" SUB_GID_START=""

_ul_ranged_user="" # the user whose /etc/subuid and /etc/subgid lines this file added

_ul_cleanup() {
  [ -z "$_ul_created_user" ] || userdel "$_ul_created_user" 2>/dev/null
  [ -z "$_ul_ranged_user" ] || sed -i "/^$_ul_ranged_user:/d" /etc/subuid /etc/subgid
  _ul_created_user="" _ul_ranged_user=""
}

# Chain the EXIT trap after the earlier ones (registry_lib's stops its processes, lib.sh's removes
# $work_dir): userdel wants the user's processes gone.
_ul_third_arg() { printf '%s' "${3:-}"; }
_ul_previous_exit_trap=$(eval "_ul_third_arg $(trap -p EXIT)")
# shellcheck disable=SC2064 # expand the previous trap now, on purpose
trap "${_ul_previous_exit_trap}; _ul_cleanup" EXIT

users_require_tools() {
  [ "$(id -u)" -eq 0 ] || skip "not root: the three-way tests create a user and switch to it"
  local tool
  for tool in setpriv useradd userdel newuidmap newgidmap; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh: passwd, uidmap, util-linux)"
  done
}

ways_setup() {
  local name=$1
  chmod 0755 "$work_dir"
  WAYS="root"
  # The kernel (sysctl, AppArmor) or a container's seccomp profile may refuse unprivileged user
  # namespaces; RUN cannot work without one, so only root is left.
  if ! setpriv --reuid=65534 --regid=65534 --clear-groups unshare --user --map-root-user true 2>/dev/null; then
    _ul_userns_refused="unprivileged user namespaces are refused on this machine (unshare --user as uid 65534 failed)"
    echo "skipped: the sub and single ways: $_ul_userns_refused"
    return 0
  fi
  if ! id "$name" >/dev/null 2>&1; then
    useradd -M -s /usr/sbin/nologin "$name" || skip "useradd $name failed"
    _ul_created_user=$name
    _ul_ranged_user=$name # and any range useradd gave it
  fi
  # Debian's useradd may already have given the user a range (SUB_UID_MIN in login.defs).
  local start=400000
  if ! grep -q "^$name:" /etc/subuid; then
    echo "$name:$start:65536" >>/etc/subuid
    _ul_ranged_user=$name
  fi
  if ! grep -q "^$name:" /etc/subgid; then
    echo "$name:$start:65536" >>/etc/subgid
    _ul_ranged_user=$name
  fi
  SUB_UID=$(id -u "$name")
  SUB_GID=$(id -g "$name")
  SUB_UID_START=$(grep -m1 "^$name:" /etc/subuid | cut -d: -f2)
  SUB_GID_START=$(grep -m1 "^$name:" /etc/subgid | cut -d: -f2)
  WAYS="root sub"
  if grep -Eq '^(nobody|65534):' /etc/subuid /etc/subgid; then
    _ul_single_refused="uid 65534 has a subordinate range in /etc/subuid or /etc/subgid, so it is not the single-id case"
    echo "skipped: the single way: $_ul_single_refused"
  else
    WAYS="root sub single"
  fi
}

way_skip_reason() {
  case "$1" in
    root) ;;
    sub) printf '%s' "$_ul_userns_refused" ;;
    single) printf '%s' "${_ul_userns_refused:-$_ul_single_refused}" ;;
  esac
}

way_home() { printf '%s' "$work_dir/home-$1"; }

way_store() {
  if [ "$1" = root ]; then printf '%s' "$work_dir/store-root"; else
    printf '%s' "$(way_home "$1")/.local/share/minibuild"
  fi
}

_ul_way_ids() {
  case "$1" in
    sub) printf '%s %s' "$SUB_UID" "$SUB_GID" ;;
    single) printf '65534 65534' ;;
    *) printf '0 0' ;;
  esac
}

mb() {
  local way=$1
  shift
  local home
  home=$(way_home "$way")
  local uid gid
  read -r uid gid <<<"$(_ul_way_ids "$way")"
  if [ ! -d "$home" ]; then mkdir -p "$home" && chown "$uid:$gid" "$home"; fi
  local as_user=() user_env=()
  if [ "$way" = root ]; then
    set -- --root "$(way_store root)" "$@"
  else
    as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
    user_env=(-u MINIBUILD_ROOT HOME="$home" XDG_DATA_HOME= DOCKER_CONFIG="$home/.docker"
      REGISTRY_AUTH_FILE= XDG_RUNTIME_DIR=)
  fi
  # A hung step fails the call (exit 124) instead of hanging ctest.
  timeout -k 5 "${MB_TIMEOUT:-60}" "${as_user[@]}" env "${user_env[@]}" "$MINIBUILD" "$@" \
    <"${STDIN_FILE:-/dev/null}" >"$work_dir/way.out" 2>"$work_dir/way.err" && rc=0 || rc=$?
  out=$(cat "$work_dir/way.out")
  err=$(cat "$work_dir/way.err")
  [ "$rc" -ne 124 ] || err="minibuild $* timed out after ${MB_TIMEOUT:-60} s; $err"
}

mb_spawn() {
  local way=$1
  shift
  local home uid gid
  home=$(way_home "$way")
  read -r uid gid <<<"$(_ul_way_ids "$way")"
  if [ ! -d "$home" ]; then mkdir -p "$home" && chown "$uid:$gid" "$home"; fi
  local as_user=() user_env=()
  if [ "$way" = root ]; then
    set -- --root "$(way_store root)" "$@"
  else
    as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
    user_env=(-u MINIBUILD_ROOT HOME="$home" XDG_DATA_HOME= DOCKER_CONFIG="$home/.docker"
      REGISTRY_AUTH_FILE= XDG_RUNTIME_DIR=)
  fi
  "${as_user[@]}" env --default-signal=INT "${user_env[@]}" "$MINIBUILD" "$@" </dev/null \
    >"$work_dir/spawn.out" 2>"$work_dir/spawn.err" &
  MB_PID=$!
}

mb_reap() {
  wait "$MB_PID" && rc=0 || rc=$?
  out=$(cat "$work_dir/spawn.out")
  err=$(cat "$work_dir/spawn.err")
}
