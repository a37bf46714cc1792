#!/usr/bin/env bash
# Builds without root: an unprivileged user gets a working store under its own data directory,
# and writes the very same image root writes (owners come from the Dockerfile, not from who ran
# the build). As root, the unprivileged half runs as uid/gid 65534 through setpriv(1); as any
# other user it runs as that user and the root half is skipped.
source "$(dirname "$0")/lib.sh"

command -v tar >/dev/null || skip "tar is not installed"
if [ "$(id -u)" -eq 0 ]; then
  command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
  unprivileged() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
else
  unprivileged() { "$@"; }
fi

chmod 0755 "$work_dir"
ctx="$work_dir/ctx"
mkdir -p "$ctx/etc"
printf 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' >"$ctx/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$ctx/etc/group"
echo "config" >"$ctx/app.conf"
echo "data" >"$ctx/data.txt"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY etc/ /etc/
COPY app.conf /etc/app/
COPY --chown=app:app data.txt /home/app/data.txt
WORKDIR /home/app
USER app
DOCKERFILE
chmod -R a+rX "$ctx"
touch -d @1600000000 "$ctx" "$ctx"/* "$ctx"/etc/*

home="$work_dir/home"
mkdir -p "$home" && chmod 0777 "$home"
unprivileged env -u MINIBUILD_ROOT HOME="$home" XDG_DATA_HOME= SOURCE_DATE_EPOCH=1700000000 \
  "$MINIBUILD" build -q -t app:1 --output "type=oci,dest=$home/layout" "$ctx" \
  >"$work_dir/user.id" 2>"$work_dir/user.err" && rc=0 || rc=$?
err=$(cat "$work_dir/user.err")
expect_rc 0 "an unprivileged build"
[ -f "$home/.local/share/minibuild/minibuild-store" ] &&
  pass "the store defaults to ~/.local/share/minibuild" ||
  failed "no store at $home/.local/share/minibuild"

# Owners in the layers are the Dockerfile's: 0:0 for plain COPY, 1000:1000 for --chown.
owners=""
for blob in "$home"/layout/blobs/sha256/*; do
  if tar --numeric-owner -tvzf "$blob" >>"$work_dir/listing" 2>/dev/null; then :; fi
done
expect_contains "$(grep ' etc/app/app.conf' "$work_dir/listing")" "0/0" "COPY writes root-owned files"
expect_contains "$(grep ' home/app/data.txt' "$work_dir/listing")" "1000/1000" \
  "COPY --chown=app:app resolves the names through the image's /etc/passwd"
expect_contains "$(grep ' home/app/$' "$work_dir/listing" | head -1)" "1000/1000" \
  "WORKDIR creates the directory as the USER"

if [ "$(id -u)" -eq 0 ]; then
  run_mb --root "$work_dir/root-store" build -q -t app:1 "$ctx"
  SOURCE_DATE_EPOCH=1700000000 run_mb --root "$work_dir/root-store" build -q -t app:1 "$ctx"
  expect_rc 0 "the same build as root"
  [ "$out" = "$(cat "$work_dir/user.id")" ] &&
    pass "root and an unprivileged user build the same image id ($out)" ||
    failed "image ids differ: root $out, user $(cat "$work_dir/user.id")"
fi

finish
