#!/usr/bin/env bash
# minibuild against a real registry (Debian's docker-registry on loopback, plain HTTP), checked
# both ways with an independent client: what skopeo pushes (one image, a two-platform index)
# minibuild pulls and builds FROM, picking the right platform; what minibuild pushes, skopeo
# inspects and copies. Also: pull policies, blob skipping and cross-repository mounts on push,
# and the errors for missing tags, platforms and registries.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/registry_lib.sh"
registry_require_tools

# json_field FILE-OR-- EXPR: evaluates a Python expression on the JSON document `d`.
json_field() {
  /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1]) if sys.argv[1] != '-' else sys.stdin); print($2)" "$1"
}

export MINIBUILD_ROOT="$work_dir/store"
registry_start REG plain
ctx="$work_dir/ctx"
mkdir -p "$ctx"
echo "hello from minibuild" >"$ctx/hello.txt"

# ---- skopeo pushes, minibuild pulls ----
TEST_IMAGE_OPTS="--layers 3 --layer-size 300000" push_test_image "$REG_ADDR" test/busybox:1 ||
  failed "skopeo push of the test image: $PUSH_ERR"
busybox_digest=$PUSHED_DIGEST
run_mb pull "$REG_ADDR/test/busybox:1"
expect_rc 0 "pull an image skopeo pushed"
expect_contains "$out" "$REG_ADDR/test/busybox:1" "pull prints the canonical reference"
expect_contains "$err" "4 layers" "pull reports the layer count"
run_mb images --format json
expect_contains "$out" "$REG_ADDR/test/busybox:1" "the pulled image is named in the store"
run_mb inspect "$REG_ADDR/test/busybox:1"
echo "$out" >"$work_dir/inspect.json"
expect_equal "$(json_field "$work_dir/inspect.json" 'd["Digest"]')" "$busybox_digest" \
  "the stored manifest is the one skopeo pushed"
run_mb fsck
expect_rc 0 "fsck finds the pulled blobs and layers intact"

run_mb pull "$REG_ADDR/test/busybox:1"
expect_rc 0 "a second pull succeeds"
expect_contains "$err" "0B downloaded" "a second pull downloads nothing"

# ---- build FROM the pulled image, --push, skopeo reads it ----
printf 'FROM %s/test/busybox:1\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n' \
  "$REG_ADDR" >"$ctx/Dockerfile"
run_mb build -t "$REG_ADDR/test/app:1" --push --iidfile "$work_dir/iid" "$ctx"
expect_rc 0 "build FROM a registry image and --push"
expect_contains "$err" "mounted from test/busybox" "the base layers are mounted from the base's repository"
pushed=$(skopeo inspect --tls-verify=false --raw "docker://$REG_ADDR/test/app:1" | sha256sum | cut -d' ' -f1)
run_mb inspect "$REG_ADDR/test/app:1"
echo "$out" >"$work_dir/inspect.json"
expect_equal "sha256:$pushed" "$(json_field "$work_dir/inspect.json" 'd["Digest"]')" \
  "skopeo reads back the manifest minibuild pushed, byte for byte"
skopeo inspect --tls-verify=false "docker://$REG_ADDR/test/app:1" >"$work_dir/skopeo.json" 2>&1
expect_equal "$(json_field "$work_dir/skopeo.json" 'len(d["Layers"])')" 5 \
  "skopeo sees the base's 4 layers plus the COPY layer"
if skopeo copy --src-tls-verify=false "docker://$REG_ADDR/test/app:1" "oci:$work_dir/copied:app" \
  >/dev/null 2>"$work_dir/copy.err"; then
  pass "skopeo copy of the pushed image succeeds (every blob verified)"
else failed "skopeo copy: $(head -c 400 "$work_dir/copy.err")"; fi
if command -v umoci >/dev/null; then
  if umoci unpack --rootless --image "$work_dir/copied:app" "$work_dir/bundle" >/dev/null 2>&1 &&
    [ "$(cat "$work_dir/bundle/rootfs/hello.txt")" = "hello from minibuild" ] &&
    [ -x "$work_dir/bundle/rootfs/bin/busybox" ]; then
    pass "umoci unpacks the pushed image: the base files and the COPY are there"
  else failed "umoci unpack of the pushed image"; fi
fi

run_mb push "$REG_ADDR/test/app:1"
expect_rc 0 "pushing the same image again succeeds"
expect_contains "$err" "already in the registry" "the second push only checks (HEAD) the blobs"
run_mb push "$REG_ADDR/test/app:1" "$REG_ADDR/test/app:copy"
expect_rc 0 "push NAME DEST under another tag"
expect_equal "$(skopeo inspect --tls-verify=false --raw "docker://$REG_ADDR/test/app:copy" | sha256sum | cut -d' ' -f1)" \
  "$pushed" "the new tag points at the same manifest"

# ---- a two-platform index: the right platform is chosen ----
push_test_index "$REG_ADDR" test/multi:1 || failed "skopeo push of the index: $PUSH_ERR"
printf 'FROM %s/test/multi:1\nCOPY hello.txt /\n' "$REG_ADDR" >"$ctx/Dockerfile"
run_mb build --platform linux/arm64 -t multi-arm "$ctx"
expect_rc 0 "build --platform linux/arm64 FROM a two-platform index"
run_mb inspect multi-arm
expect_contains "$out" '"architecture": "arm64"' "the arm64 manifest was chosen"
run_mb build --platform linux/amd64 -t multi-amd "$ctx"
expect_rc 0 "build --platform linux/amd64 FROM the same index"
run_mb inspect multi-amd
expect_contains "$out" '"architecture": "amd64"' "the amd64 manifest was chosen"
run_mb pull --platform linux/s390x "$REG_ADDR/test/multi:1"
expect_rc 3 "an index without the platform is not_found"
expect_contains "$err" "linux/amd64" "the error lists the platforms offered (amd64)"
expect_contains "$err" "linux/arm64" "the error lists the platforms offered (arm64)"

# ---- pull policies ----
printf 'FROM %s/test/fresh:1\n' "$REG_ADDR" >"$ctx/Dockerfile"
run_mb build --pull=never -t never "$ctx"
expect_rc 3 "--pull=never with an image missing from the store is not_found"
TEST_IMAGE_OPTS="--no-busybox --layers 1 --layer-size 1000 --seed one" \
  push_test_image "$REG_ADDR" test/fresh:1 || failed "push fresh:1: $PUSH_ERR"
first=$PUSHED_DIGEST
run_mb build -t fresh-a "$ctx"
expect_rc 0 "--pull=missing pulls the missing base"
TEST_IMAGE_OPTS="--no-busybox --layers 2 --layer-size 1000 --seed two" \
  push_test_image "$REG_ADDR" test/fresh:1 || failed "push fresh:1 again: $PUSH_ERR"
second=$PUSHED_DIGEST
[ "$first" != "$second" ] || failed "the second fresh:1 should differ from the first"
run_mb build -t fresh-b "$ctx"
expect_rc 0 "--pull=missing uses the stored copy"
run_mb history fresh-b
lines_missing=$(printf '%s\n' "$out" | grep -c . || true)
run_mb build --pull=always -t fresh-c "$ctx"
expect_rc 0 "--pull=always asks the registry again"
run_mb history fresh-c
lines_always=$(printf '%s\n' "$out" | grep -c . || true)
if [ "$lines_always" -gt "$lines_missing" ]; then
  pass "--pull=always built on the new tag (more history) while missing kept the old one"
else failed "--pull=always: history lines $lines_always vs $lines_missing"; fi

# ---- an unprivileged user pulls and pushes with its own store ----
chmod 0755 "$work_dir"
nobody_home="$work_dir/nobody-home"
mkdir -p "$nobody_home" && chmod 0777 "$nobody_home"
cp -r "$ctx" "$nobody_home/ctx" && chmod -R a+rwX "$nobody_home/ctx"
printf 'FROM %s/test/busybox:1\nCOPY hello.txt /\n' "$REG_ADDR" >"$nobody_home/ctx/Dockerfile"
if setpriv --reuid=65534 --regid=65534 --clear-groups env -u MINIBUILD_ROOT HOME="$nobody_home" \
  XDG_DATA_HOME= DOCKER_CONFIG="$nobody_home/.docker" REGISTRY_AUTH_FILE= \
  "$MINIBUILD" build -t "$REG_ADDR/test/from-nobody:1" --push "$nobody_home/ctx" \
  >"$work_dir/nobody.out" 2>"$work_dir/nobody.err"; then
  pass "uid 65534: build FROM a registry image (pulled into ~/.local/share/minibuild) and --push"
else failed "uid 65534: build --push: $(tail -c 400 "$work_dir/nobody.err")"; fi
[ -d "$nobody_home/.local/share/minibuild/layers" ] &&
  pass "uid 65534: the store is the user's own" || failed "uid 65534: no store under its HOME"
if skopeo inspect --tls-verify=false "docker://$REG_ADDR/test/from-nobody:1" >/dev/null 2>&1; then
  pass "uid 65534: skopeo reads what the unprivileged user pushed"
else failed "uid 65534: skopeo inspect of the pushed image"; fi

# ---- errors ----
run_mb pull "$REG_ADDR/test/busybox:nope"
expect_rc 3 "a tag the registry does not have is not_found"
expect_contains "$err" "MANIFEST_UNKNOWN" "the error quotes the registry's error code"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_mb pull "127.0.0.1:$port/test/none:1"
expect_rc 5 "a registry that is not there is a network error"
expect_contains "$err" "127.0.0.1:$port" "the error names the registry"
run_mb fsck
expect_rc 0 "fsck: the store is consistent after everything above"

finish
