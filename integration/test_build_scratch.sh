#!/usr/bin/env bash
# A FROM scratch image with a static busybox, built with all three --output types, then checked
# with independent tools (umoci, skopeo) and with the store commands: images, inspect, history,
# save, rmi, prune, fsck. Also: two builds with the same SOURCE_DATE_EPOCH are byte-identical.
source "$(dirname "$0")/lib.sh"

for tool in umoci skopeo python3 tar; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh installs it)"
done
[ -x /bin/busybox ] || skip "/bin/busybox is missing (apt-get install busybox-static)"
if ldd /bin/busybox >/dev/null 2>&1; then
  skip "/bin/busybox is dynamically linked; a FROM scratch image needs busybox-static"
fi

# json_get FILE EXPR: prints the Python expression EXPR evaluated with `d` = the parsed JSON.
json_get() {
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

ctx="$work_dir/ctx"
mkdir -p "$ctx/etc"
cp /bin/busybox "$ctx/busybox"
echo hello >"$ctx/etc/greeting"
printf '#!/bin/busybox sh\necho run\n' >"$ctx/run.sh"
chmod 0755 "$ctx/run.sh"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
COPY etc/greeting /etc/greeting
COPY --chmod=0750 run.sh /usr/local/bin/run.sh
ENV APP_MODE=production GREETING="hello world"
LABEL org.example.name="app" version=1
EXPOSE 8080 9090/udp
WORKDIR /srv/app
USER 1000:1000
ENTRYPOINT ["/bin/busybox"]
CMD ["sh", "-c", "echo hi"]
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/busybox", "true"]
EOF

out1="$work_dir/out1"
mkdir -p "$out1"
root1="$work_dir/root1"
mb1() { run_mb --root "$root1" "$@"; }

SOURCE_DATE_EPOCH=1700000000 mb1 build -t app:1 --progress plain \
  --output "type=oci,dest=$out1/layout" \
  --output "type=oci-archive,dest=$out1/app.oci.tar" \
  --output "type=docker-archive,dest=$out1/app.docker.tar" "$ctx"
expect_rc 0 "build FROM scratch with three outputs"
[ "$rc" -eq 0 ] || {
  finish
  exit
}

# ---- --progress plain: "#N [S/T] STEP I/J: INSTRUCTION", buildah's numbering (docs/cli.md) ----
# Every instruction counts (FROM is 1); ENV, LABEL ... only change the config and print no line.
expect_equal "$(grep -E '^#[0-9]+ \[' <<<"$err")" "$(printf '%s\n' \
  '#1 [1/1] STEP 1/14: FROM scratch' \
  '#2 [1/1] STEP 2/14: COPY busybox /bin/busybox' \
  '#3 [1/1] STEP 3/14: COPY etc/greeting /etc/greeting' \
  '#4 [1/1] STEP 4/14: COPY --chmod=0750 run.sh /usr/local/bin/run.sh' \
  '#5 [1/1] STEP 8/14: WORKDIR /srv/app')" "plain progress: one numbered line per step"
expect_equal "$(grep -cE '^#[1-6] DONE [0-9]+\.[0-9]s$' <<<"$err")" 6 \
  "plain progress: the 5 steps and the export each end with #N DONE"
expect_contains "$err" "#6 exporting to image" "plain progress: the export is vertex #6"

# ---- the OCI layout, read by umoci and skopeo ----
layout="$out1/layout"
expect_equal "$(json_get "$layout/oci-layout" 'd["imageLayoutVersion"]')" "1.0.0" \
  "oci-layout names version 1.0.0"
expect_equal "$(json_get "$layout/index.json" \
  'd["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]')" "1" \
  "index.json ref name is the tag"
manifest_digest=$(json_get "$layout/index.json" 'd["manifests"][0]["digest"]')

bundle="$work_dir/bundle"
if umoci unpack --rootless --image "$layout:1" "$bundle" >"$work_dir/umoci.log" 2>&1; then
  pass "umoci unpacks LAYOUT:1"
else
  failed "umoci unpack: $(head -c 400 "$work_dir/umoci.log")"
fi
rootfs="$bundle/rootfs"
expect_equal "$(stat -c %a "$rootfs/bin/busybox" 2>&1)" "755" "busybox is 0755"
expect_equal "$(cat "$rootfs/etc/greeting" 2>&1)" "hello" "/etc/greeting has its content"
expect_equal "$(stat -c %a "$rootfs/etc/greeting" 2>&1)" "644" "/etc/greeting is 0644"
expect_equal "$(stat -c %a "$rootfs/usr/local/bin/run.sh" 2>&1)" "750" "COPY --chmod=0750 applies"
[ -d "$rootfs/srv/app" ] && pass "WORKDIR created /srv/app" || failed "WORKDIR /srv/app missing"
if cmp -s "$rootfs/bin/busybox" /bin/busybox && "$rootfs/bin/busybox" true; then
  pass "the unpacked busybox is the original and runs"
else
  failed "the unpacked busybox differs or does not run"
fi
expect_equal "$(json_get "$bundle/config.json" 'd["process"]["args"]')" \
  "['/bin/busybox', 'sh', '-c', 'echo hi']" "umoci's runtime args are ENTRYPOINT + CMD"
expect_equal "$(json_get "$bundle/config.json" 'd["process"]["cwd"]')" "/srv/app" \
  "umoci's runtime cwd is the WORKDIR"

skopeo inspect --config --raw "oci:$layout:1" >"$work_dir/config.json" 2>"$work_dir/skopeo.err" &&
  pass "skopeo inspect oci:LAYOUT:1" || failed "skopeo inspect oci: $(cat "$work_dir/skopeo.err")"
check_config() {
  local file=$1 what=$2
  expect_equal "$(json_get "$file" '[e for e in d["config"]["Env"] if not e.startswith("PATH=")]')" \
    "['APP_MODE=production', 'GREETING=hello world']" "$what: Env"
  expect_equal "$(json_get "$file" 'sorted(d["config"]["Labels"].items())')" \
    "[('org.example.name', 'app'), ('version', '1')]" "$what: Labels"
  expect_equal "$(json_get "$file" 'sorted(d["config"]["ExposedPorts"])')" \
    "['8080/tcp', '9090/udp']" "$what: ExposedPorts"
  expect_equal "$(json_get "$file" 'd["config"]["Entrypoint"]')" "['/bin/busybox']" \
    "$what: Entrypoint"
  expect_equal "$(json_get "$file" 'd["config"]["Cmd"]')" "['sh', '-c', 'echo hi']" "$what: Cmd"
  expect_equal "$(json_get "$file" 'd["config"]["User"]')" "1000:1000" "$what: User"
  expect_equal "$(json_get "$file" 'd["config"]["WorkingDir"]')" "/srv/app" "$what: WorkingDir"
  expect_equal "$(json_get "$file" 'sorted(d["config"]["Volumes"])')" "['/data']" "$what: Volumes"
  expect_equal "$(json_get "$file" 'd["config"]["StopSignal"]')" "SIGTERM" "$what: StopSignal"
}
check_config "$work_dir/config.json" "oci layout config"
expect_equal "$(json_get "$work_dir/config.json" 'd["config"]["Healthcheck"]')" \
  "{'Interval': 30000000000, 'Retries': 3, 'Test': ['CMD', '/bin/busybox', 'true'], 'Timeout': 5000000000}" \
  "oci layout config: Healthcheck"
expect_equal "$(json_get "$work_dir/config.json" 'd["created"]')" "2023-11-14T22:13:20Z" \
  "created is SOURCE_DATE_EPOCH"

if skopeo copy -q "oci:$layout:1" "dir:$work_dir/copied" >/dev/null 2>"$work_dir/skopeo.err"; then
  pass "skopeo copy oci:LAYOUT:1 dir:OUT"
else
  failed "skopeo copy: $(cat "$work_dir/skopeo.err")"
fi

# ---- the archives ----
skopeo inspect "oci-archive:$out1/app.oci.tar:1" >"$work_dir/inspect-archive.json" \
  2>"$work_dir/skopeo.err" && pass "skopeo inspect oci-archive:FILE:1" ||
  failed "skopeo inspect oci-archive: $(cat "$work_dir/skopeo.err")"
expect_equal "$(json_get "$work_dir/inspect-archive.json" 'd["Digest"]')" "$manifest_digest" \
  "the oci-archive holds the layout's manifest"

skopeo inspect --config "docker-archive:$out1/app.docker.tar" >"$work_dir/docker-config.json" \
  2>"$work_dir/skopeo.err" && pass "skopeo inspect docker-archive:FILE" ||
  failed "skopeo inspect docker-archive: $(cat "$work_dir/skopeo.err")"
check_config "$work_dir/docker-config.json" "docker-archive config"
mkdir -p "$work_dir/docker-archive"
tar -xf "$out1/app.docker.tar" -C "$work_dir/docker-archive"
expect_equal "$(json_get "$work_dir/docker-archive/manifest.json" 'd[0]["RepoTags"]')" \
  "['app:1']" "docker-archive manifest.json RepoTags"
first_layer=$(json_get "$work_dir/docker-archive/manifest.json" 'd[0]["Layers"][0]')
if tar -tf "$work_dir/docker-archive/$first_layer" | grep -qx 'bin/busybox'; then
  pass "docker-archive layers are plain tars"
else
  failed "docker-archive first layer does not list bin/busybox"
fi

# ---- store commands ----
mb1 images
expect_rc 0 "images"
expect_contains "$out" "REPOSITORY" "images prints a header"
expect_contains "$out" "app " "images lists app"
config_digest=$(json_get "$layout/blobs/sha256/${manifest_digest#sha256:}" 'd["config"]["digest"]')
mb1 images -q
expect_equal "$out" "${config_digest:7:12}" "images -q prints the image id"
mb1 images --format json
expect_contains "$out" "\"Name\":\"app:1\"" "images --format json names app:1"

mb1 inspect app:1
expect_rc 0 "inspect"
printf '%s' "$out" >"$work_dir/inspect.json"
expect_equal "$(json_get "$work_dir/inspect.json" 'd["Name"]')" "app:1" "inspect Name"
expect_equal "$(json_get "$work_dir/inspect.json" 'd["Digest"]')" "$manifest_digest" \
  "inspect Digest is the manifest digest"
expect_equal "$(json_get "$work_dir/inspect.json" 'd["Config"]["config"]["User"]')" "1000:1000" \
  "inspect Config"
mb1 inspect "${config_digest:7:12}"
expect_rc 0 "inspect by image id"
mb1 inspect nothere:1
expect_rc 3 "inspect of a missing image is not_found"

mb1 history app:1
expect_rc 0 "history"
expect_contains "$out" "CREATED BY" "history prints a header"
expect_contains "$out" "COPY busybox /bin/busybox" "history lists the COPY"
expect_contains "$out" "${config_digest:7:12}" "history shows the image id"
mb1 history --no-trunc app:1
expect_contains "$out" "$config_digest" "history --no-trunc shows the full id"

mb1 save app:1 -o "$work_dir/saved.tar" --format docker-archive
expect_rc 0 "save --format docker-archive"
skopeo inspect "docker-archive:$work_dir/saved.tar" >/dev/null 2>&1 &&
  pass "skopeo reads the saved docker-archive" || failed "skopeo cannot read the saved archive"
mb1 save app:1 -o "$work_dir/saved.oci.tar"
expect_rc 0 "save (oci-archive)"
skopeo inspect "oci-archive:$work_dir/saved.oci.tar:1" >/dev/null 2>&1 &&
  pass "skopeo reads the saved oci-archive" || failed "skopeo cannot read the saved oci-archive"

# To standard output (a pipe: layers are measured first, then streamed): the same bytes.
"$MINIBUILD" --root "$root1" save app:1 -o - --format docker-archive | cat >"$work_dir/piped.tar"
cmp -s "$work_dir/piped.tar" "$work_dir/saved.tar" &&
  pass "save -o - writes the same docker-archive to a pipe" || failed "piped archive differs"

mb1 build --output type=zip,dest=x "$ctx"
expect_rc 2 "an unknown output type is a usage error"
expect_contains "$err" 'unknown output type "zip"' "the error names the type"

# ---- reproducibility: a second root, same epoch, same bytes ----
root2="$work_dir/root2"
out2="$work_dir/out2"
mkdir -p "$out2"
SOURCE_DATE_EPOCH=1700000000 run_mb --root "$root2" build -t app:1 --progress quiet \
  --output "type=oci-archive,dest=$out2/app.oci.tar" "$ctx"
expect_rc 0 "second build"
expect_equal "$err" "" "--progress quiet: nothing on stderr"
expect_equal "$out" "$(json_get "$out1/layout/blobs/sha256/${manifest_digest#sha256:}" \
  'd["config"]["digest"]')" "--progress quiet: the image id on stdout"
# A third build writes into the first build's layout under two tags: "1" replaced, "2" added.
SOURCE_DATE_EPOCH=1700000000 run_mb --root "$root2" build -t app:1 -t app:2 --progress quiet \
  --output "type=oci,dest=$layout" "$ctx"
expect_rc 0 "third build, into the existing layout"
expect_equal "$(json_get "$layout/index.json" \
  'sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in d["manifests"])')" \
  "['1', '2']" "writing into a layout replaces tag 1 and adds tag 2"
skopeo inspect "oci:$layout:2" >/dev/null 2>&1 && pass "skopeo finds LAYOUT:2" ||
  failed "skopeo cannot find LAYOUT:2"
run_mb --root "$root2" inspect app:1
printf '%s' "$out" >"$work_dir/inspect2.json"
expect_equal "$(json_get "$work_dir/inspect2.json" 'd["Digest"]')" "$manifest_digest" \
  "two builds with SOURCE_DATE_EPOCH give the same manifest digest"
cmp -s "$out1/app.oci.tar" "$out2/app.oci.tar" &&
  pass "and byte-identical oci-archives" || failed "the oci-archives differ"

# ---- rmi and prune reclaim ----
blob_count() { find "$1/blobs" -type f | wc -l; }
[ "$(blob_count "$root1")" -gt 0 ] && pass "root1 holds blobs" || failed "root1 holds no blobs"
mb1 rmi app:1
expect_rc 0 "rmi"
expect_contains "$out" "Untagged: app:1" "rmi says what it untagged"
mb1 images -q
expect_equal "$out" "" "images is empty after rmi"
mb1 rmi app:1
expect_rc 3 "rmi of a missing name is not_found"
mb1 rmi -f app:1
expect_rc 0 "rmi -f of a missing name succeeds"
mb1 prune
expect_rc 0 "prune"
expect_contains "$out" "Total reclaimed space" "prune prints what it reclaimed"
expect_contains "$out" "deleted blob $manifest_digest" "prune deleted the manifest"
# The build cache keeps the layers it can reuse (docs/cache.md); prune -a drops them too.
cached_layers=$(find "$root1/cache/entries" -name '*.json' 2>/dev/null | wc -l)
[ "$(blob_count "$root1")" -le "$cached_layers" ] && pass "prune kept only the cached layers" ||
  failed "prune left $(blob_count "$root1") blobs for $cached_layers cache entries"
mb1 prune -a
expect_rc 0 "prune -a"
expect_equal "$(blob_count "$root1")" "0" "prune -a removed every blob"

# ---- fsck ----
run_mb --root "$root2" fsck
expect_rc 0 "fsck of a clean store"
expect_contains "$out" "no problems" "fsck says the store is clean"
layer_digest=$(json_get "$layout/blobs/sha256/${manifest_digest#sha256:}" 'd["layers"][0]["digest"]')
victim="$root2/blobs/sha256/${layer_digest#sha256:}"
chmod u+w "$victim"
printf 'X' | dd of="$victim" bs=1 seek=100 conv=notrunc status=none
run_mb --root "$root2" fsck
expect_rc 4 "fsck of a corrupt blob exits 4"
expect_contains "$out" "corrupt-blob $layer_digest" "fsck names the corrupt blob"
run_mb --root "$root2" fsck --repair
expect_contains "$out" "(repaired)" "fsck --repair repairs"
[ -e "$victim" ] && failed "fsck --repair left the corrupt blob" ||
  pass "fsck --repair removed the corrupt blob"
run_mb --root "$root2" rmi app:1 app:2
run_mb --root "$root2" fsck
expect_rc 0 "fsck is clean once the broken image is removed"

finish
