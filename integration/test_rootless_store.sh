#!/usr/bin/env bash
# The rootless process model (issue #5): an unprivileged minibuild enters one user namespace per
# command. Three ways, as the issue asks: root (no namespace), a user the test creates with a
# subordinate id range (newuidmap/newgidmap map container ids 1..65536 onto it), and a user
# without one (single-id map, said once). A pulled layer file owned by container uid/gid 1000
# must land on the host as the matching subordinate id, or as the user with the owner recorded.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
registry_require_tools
for tool in useradd userdel newuidmap newgidmap; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh: passwd, uidmap)"
done

# The kernel (or a container's seccomp profile) may refuse unprivileged user namespaces; then
# minibuild goes on without one (docs/cli.md) and there is nothing to check here.
setpriv --reuid=65534 --regid=65534 --clear-groups unshare --user --map-root-user true 2>/dev/null ||
  skip "unprivileged user namespaces are refused on this machine (unshare --user as uid 65534 failed)"

test_user=minibuild-it-sub
sub_start=400000 # used when the user has no range yet
created_user=0
cleanup_user() {
  if [ "$created_user" = 1 ]; then
    userdel "$test_user" 2>/dev/null
    sed -i "/^$test_user:/d" /etc/subuid /etc/subgid
  fi
}
trap 'cleanup_user; _rl_cleanup 2>/dev/null; rm -rf "$work_dir"' EXIT
if ! id "$test_user" >/dev/null 2>&1; then
  useradd -M -s /usr/sbin/nologin "$test_user" || skip "useradd failed"
  created_user=1
fi
# Debian's useradd may already have given the user a range (SUB_UID_MIN in login.defs).
grep -q "^$test_user:" /etc/subuid || echo "$test_user:$sub_start:65536" >>/etc/subuid
grep -q "^$test_user:" /etc/subgid || echo "$test_user:$sub_start:65536" >>/etc/subgid
sub_start=$(grep -m1 "^$test_user:" /etc/subuid | cut -d: -f2)
sub_gid_start=$(grep -m1 "^$test_user:" /etc/subgid | cut -d: -f2)
sub_uid=$(id -u "$test_user")
sub_gid=$(id -g "$test_user")

chmod 0755 "$work_dir"
registry_start REG plain
ctx="$work_dir/ctx"
mkdir -p "$ctx"
echo owned >"$ctx/owned.txt"
printf 'FROM scratch\nCOPY --chown=1000:1000 owned.txt /owned.txt\nCOPY owned.txt /root-owned.txt\n' \
  >"$ctx/Dockerfile"
export MINIBUILD_ROOT="$work_dir/root-store"
run_mb build -t "$REG_ADDR/test/owners:1" --push "$ctx"
expect_rc 0 "root: build and push an image with a file owned by 1000:1000"

# layer_file STORE NAME: the path of NAME in the store's only unpacked layer.
layer_file() {
  find "$1/layers" -path "*/diff/$2" 2>/dev/null | head -1
}

# as_user UID GID HOME ARGS...: runs minibuild as that user with its own HOME and store.
as_user() {
  local uid=$1 gid=$2 home=$3
  shift 3
  mkdir -p "$home" && chown "$uid:$gid" "$home"
  setpriv --reuid="$uid" --regid="$gid" --clear-groups env -u MINIBUILD_ROOT HOME="$home" \
    XDG_DATA_HOME= DOCKER_CONFIG="$home/.docker" REGISTRY_AUTH_FILE= XDG_RUNTIME_DIR= \
    "$MINIBUILD" "$@" >"$work_dir/user.out" 2>"$work_dir/user.err" && rc=0 || rc=$?
  out=$(cat "$work_dir/user.out")
  err=$(cat "$work_dir/user.err")
}

# ---- root: no namespace, owners as in the layer ----
run_mb pull "$REG_ADDR/test/owners:1"
expect_rc 0 "root: pull"
file=$(layer_file "$MINIBUILD_ROOT" owned.txt)
expect_equal "$(stat -c %u:%g "$file")" "1000:1000" "root: the file belongs to 1000:1000"

# ---- a user with a subordinate range ----
home_sub="$work_dir/home-sub"
as_user "$sub_uid" "$sub_gid" "$home_sub" pull "$REG_ADDR/test/owners:1"
expect_rc 0 "subuid user: pull"
[[ "$err" != *"no subordinate ids"* ]] && pass "subuid user: no fallback notice" ||
  failed "subuid user: unexpected notice: $err"
store_sub="$home_sub/.local/share/minibuild"
file=$(layer_file "$store_sub" owned.txt)
expect_equal "$(stat -c %u:%g "$file")" "$((sub_start + 999)):$((sub_gid_start + 999))" \
  "subuid user: container 1000 is host $((sub_start + 999)) (container 0 = the user, 1.. = the range)"
file=$(layer_file "$store_sub" root-owned.txt)
expect_equal "$(stat -c %u:%g "$file")" "$sub_uid:$sub_gid" "subuid user: container root is the user"
as_user "$sub_uid" "$sub_gid" "$home_sub" fsck
expect_rc 0 "subuid user: fsck in its namespace"
as_user "$sub_uid" "$sub_gid" "$home_sub" push "$REG_ADDR/test/owners:1" "$REG_ADDR/test/owners:copy"
expect_rc 0 "subuid user: push"
as_user "$sub_uid" "$sub_gid" "$home_sub" prune
expect_rc 0 "subuid user: prune can delete files owned by subordinate ids"

# ---- a user without a range: single-id map, said once ----
home_none="$work_dir/home-none"
as_user 65534 65534 "$home_none" pull "$REG_ADDR/test/owners:1"
expect_rc 0 "no-range user: pull"
expect_equal "$(grep -c 'no subordinate ids' <<<"$err")" 1 "no-range user: the fallback is said once"
file=$(layer_file "$home_none/.local/share/minibuild" owned.txt)
expect_equal "$(stat -c %u "$file")" 65534 "no-range user: the file belongs to the user"
expect_equal "$(/usr/bin/python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.minibuild.owner").decode())' "$file" 2>&1)" "1000:1000" \
  "no-range user: the container owner is recorded"

finish
