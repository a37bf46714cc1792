#!/usr/bin/env bash
# Sharing the build cache (issue 6, docs/cache.md "Sharing the cache"): store A builds with
# --cache-to type=registry,mode=max; a fresh store B builds the same Dockerfile with
# --cache-from and runs nothing: every step is CACHED, the layers are imported, a RUN that
# records the time shows A's value, and the image digest is A's. Then one context file changes:
# B rebuilds from the COPY that reads it. Also: a type=local round trip, a --cache-from of a
# missing ref (a warning, the build works), and skopeo's view of the artifact.
# cache-mounts=true: a RUN --mount=type=cache directory travels with the artifact to a fresh
# store, whose RUN finds the file. `cache gc`: entries aged (by rewriting lastUsed in a copy of
# the artifact: the honest way to get old entries without waiting a day) are removed from a
# registry artifact, which skopeo and curl then show without them.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/images_lib.sh"
registry_require_tools
images_require_tools
[ "$(id -u)" -eq 0 ] || skip "needs root (RUN steps with the root way)"

registry_start REG plain
make_busybox_image "$REG_ADDR" test/busybox:1

ctx="$work_dir/ctx"
mkdir -p "$ctx"
echo one >"$ctx/a.txt"
echo two >"$ctx/b.txt"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $REG_ADDR/test/busybox:1
RUN echo \$(od -An -N8 -tx8 /dev/urandom) >/stamp
COPY a.txt /a.txt
RUN echo \$(od -An -N8 -tx8 /dev/urandom) >>/stamp
COPY b.txt /b.txt
RUN cat /a.txt /b.txt >/ab && echo \$(od -An -N8 -tx8 /dev/urandom) >>/stamp
WORKDIR /srv
DOCKERFILE
cache_ref="$REG_ADDR/cache/app:buildcache"

# build STORE TAG ARGS...: a plain-progress build into store STORE; $out, $err, $rc as run_mb.
build() {
  local store=$1 tag=$2
  shift 2
  run_mb --root "$work_dir/$store" build --progress plain -t "$tag" "$@" "$ctx"
}
# manifest_digest: the image manifest digest from the build summary in $err.
manifest_digest() {
  sed -n 's/^manifest \(sha256:[0-9a-f]*\)$/\1/p' <<<"$err" | tail -1
}
stamp_of() {
  run_mb --root "$work_dir/$1" run --rm "$2" cat /stamp
  printf '%s' "$out"
}

# ---- A: build and export ----
build A app:1 --cache-to "type=registry,ref=$cache_ref,mode=max"
expect_rc 0 "A: build with --cache-to type=registry,mode=max"
expect_contains "$err" "exported 6 cache entries (6 layers) to $cache_ref" "A: export line"
image_a=$(manifest_digest)
[ -n "$image_a" ] || failed "A: no 'manifest sha256:' line in the build summary"
stamp_a=$(stamp_of A app:1)
expect_equal "$(wc -l <<<"$stamp_a")" 3 "A: /stamp has 3 lines"

raw=$(skopeo inspect --raw --tls-verify=false "docker://$cache_ref" 2>&1)
expect_contains "$raw" '"artifactType":"application/vnd.minibuild.cache.v1"' \
  "skopeo: the cache manifest's artifactType"
expect_contains "$raw" '"mediaType":"application/vnd.minibuild.cache.config.v1+json"' \
  "skopeo: the cache config media type"

# ---- B: fresh store, everything from the imported cache ----
build B app:1 --cache-from "type=registry,ref=$cache_ref"
expect_rc 0 "B: build with --cache-from"
expect_contains "$err" "imported 6 cache entries (6 layers) from $cache_ref" "B: import line"
cached=$(grep -c '^#[0-9]* CACHED$' <<<"$err")
expect_equal "$cached" 6 "B: all 6 RUN/COPY/WORKDIR steps CACHED"
imported=$(grep -c '^cache: imported layer ' <<<"$err")
expect_equal "$imported" 6 "B: 6 layers fetched from the cache"
expect_equal "$(manifest_digest)" "$image_a" "B: the same image manifest digest as A"
expect_equal "$(stamp_of B app:1)" "$stamp_a" "B: /stamp holds A's random bytes (no RUN ran)"

# ---- B: one context file changes ----
echo changed >"$ctx/b.txt"
build B app:2 --cache-from "type=registry,ref=$cache_ref"
expect_rc 0 "B: rebuild after changing b.txt"
cached=$(grep -c '^#[0-9]* CACHED$' <<<"$err")
expect_equal "$cached" 3 "B: the steps before COPY b.txt are CACHED, the rest run"
stamp_b2=$(stamp_of B app:2)
expect_equal "$(head -2 <<<"$stamp_b2")" "$(head -2 <<<"$stamp_a")" "B: the first two RUNs kept A's bytes"
if [ "$(sed -n 3p <<<"$stamp_b2")" != "$(sed -n 3p <<<"$stamp_a")" ]; then
  pass "B: the RUN after COPY b.txt ran again"
else
  failed "B: the last RUN did not run"
fi

# ---- type=local round trip (of the changed context: mtimes are part of COPY keys) ----
build A app:3 --cache-to "type=local,dest=$work_dir/cachedir"
expect_rc 0 "A: --cache-to type=local (mode=min)"
image_a3=$(manifest_digest)
expect_contains "$err" "exported 6 cache entries (6 layers) to $work_dir/cachedir" "A: local export line"
if [ -f "$work_dir/cachedir/oci-layout" ] &&
  grep -q '"org.opencontainers.image.ref.name":"latest"' "$work_dir/cachedir/index.json"; then
  pass "local: an OCI layout with ref.name latest"
else
  failed "local: no layout: $(cat "$work_dir/cachedir/index.json" 2>&1)"
fi
if skopeo inspect --raw "oci:$work_dir/cachedir:latest" >"$work_dir/local.json" 2>&1 &&
  grep -q 'vnd.minibuild.cache.v1' "$work_dir/local.json"; then
  pass "local: skopeo reads the layout"
else
  failed "local: skopeo: $(head -c 300 "$work_dir/local.json")"
fi
build C app:1 --cache-from "type=local,src=$work_dir/cachedir"
expect_rc 0 "C: build with --cache-from type=local"
cached=$(grep -c '^#[0-9]* CACHED$' <<<"$err")
expect_equal "$cached" 6 "C: all 6 steps CACHED from the directory"
expect_equal "$(manifest_digest)" "$image_a3" "C: the same image manifest digest as A"

# ---- a cache that does not exist ----
build D app:1 --cache-from "type=registry,ref=$REG_ADDR/cache/none:missing" \
  --cache-from "type=local,src=$work_dir/no-such-dir"
expect_rc 0 "D: --cache-from of missing caches still builds"
expect_contains "$err" "WARNING: no cache at $REG_ADDR/cache/none:missing" "D: registry warning"
expect_contains "$err" "WARNING: no cache at $work_dir/no-such-dir" "D: local warning"
cached=$(grep -c '^#[0-9]* CACHED$' <<<"$err")
expect_equal "$cached" 0 "D: nothing CACHED"

# ---- a malformed cache ----
mkdir -p "$work_dir/bad/blobs/sha256"
cp -r "$work_dir/cachedir/." "$work_dir/bad/"
manifest_hex=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$work_dir/bad/index.json")
config_hex=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["digest"][7:])' "$work_dir/bad/blobs/sha256/$manifest_hex")
chmod u+w "$work_dir/bad/blobs/sha256/$config_hex"
echo garbage >"$work_dir/bad/blobs/sha256/$config_hex"
build E app:1 --cache-from "type=local,src=$work_dir/bad"
expect_rc 4 "E: a corrupt cache config fails the build (Code::corrupt)"
expect_contains "$err" "$work_dir/bad" "E: the error names the cache"

# A config whose digest is right but whose content is not a cache config.
/usr/bin/python3 - "$work_dir/bad" <<'PYTHON'
import hashlib, json, os, sys
root = sys.argv[1]
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)
index = json.load(open(os.path.join(root, "index.json")))
manifest_digest = index["manifests"][0]["digest"]
manifest = json.load(open(os.path.join(root, "blobs", "sha256", manifest_digest[7:])))
config = b'{"version":1,"entries":[{"key":"sha256:nothex"}]}'
manifest["config"]["digest"], manifest["config"]["size"] = put(config)
data = json.dumps(manifest).encode()
index["manifests"][0]["digest"], index["manifests"][0]["size"] = put(data)
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump(index, f)
PYTHON
build E app:1 --cache-from "type=local,src=$work_dir/bad"
expect_rc 4 "E: a malformed cache config fails the build (Code::corrupt)"
expect_contains "$err" "cache $work_dir/bad: config: entries[0]" "E: the error names the cache and the entry"

# --debug-cache-key: the text behind each key, one file per key, framed fields.
run_mb --root "$work_dir/store-a" build --progress plain --debug-cache-key "$work_dir/keys" -t dbg:1 "$ctx"
expect_rc 0 "a build with --debug-cache-key"
expect_equal "$(grep -l '^Tkind 3:run$' "$work_dir/keys"/*.txt 2>/dev/null | wc -l | tr -d ' ')" \
  "$(grep -c '^RUN' "$ctx/Dockerfile")" "one key text per RUN step"
expect_contains "$(cat "$work_dir/keys"/*.txt)" "Tversion 1:1" "key texts start with the recipe version"

# ---- cache-mounts=true: a RUN --mount=type=cache directory travels with the cache ----
ctxm="$work_dir/ctx-mounts"
mkdir -p "$ctxm"
cat >"$ctxm/Dockerfile" <<DOCKERFILE
FROM $REG_ADDR/test/busybox:1
ARG PASS=1
RUN --mount=type=cache,target=/var/cache/x,mode=0700 if [ -f /var/cache/x/pkg ]; then echo "found \$(cat /var/cache/x/pkg)" >/result; else echo missing >/result; echo \$(od -An -N8 -tx8 /dev/urandom) >/var/cache/x/pkg; fi
DOCKERFILE
mounts_ref="$REG_ADDR/cache/mounts:bc"
mount_hex=$(printf '%s' /var/cache/x | sha256sum | cut -c1-64)
mount_dir="cache/mounts/$mount_hex"
# How import lines name the mount: its id when the export knew it, else its directory.
mount_name="(/var/cache/x|dir ${mount_hex:0:12})"
# expect_line REGEX DESCRIPTION: some line of $err matches REGEX (grep -E).
expect_line() {
  if grep -Eq "$1" <<<"$err"; then pass "$2"; else failed "$2: no line matching $1 in: ${err:0:400}"; fi
}
run_mb --root "$work_dir/MA" build --progress plain -t m:1 \
  --cache-to "type=registry,ref=$mounts_ref,cache-mounts=true" "$ctxm"
expect_rc 0 "MA: build with --cache-to ...,cache-mounts=true"
expect_contains "$err" "exported 1 cache entries (1 layers) and 1 cache mounts" "MA: export line names the mount"
pkg_a=$(cat "$work_dir/MA/$mount_dir/pkg" 2>&1)
run_mb --root "$work_dir/MA" run --rm m:1 cat /result
expect_equal "$out" "missing" "MA: the first RUN found an empty cache mount"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$mounts_ref" 2>&1)
expect_contains "$raw" "\"org.minibuild.cache.mount.dir\":\"$mount_hex\"" "skopeo: the mount layer names its directory"
expect_contains "$raw" '"org.minibuild.cache.mount.mode":"0700"' "skopeo: the mount layer keeps the directory's mode"

# The same build exported without cache-mounts: no mount layer (the artifact as before).
run_mb --root "$work_dir/MA" build --progress plain -t m:1 \
  --cache-to "type=registry,ref=$REG_ADDR/cache/nomounts:bc" "$ctxm"
expect_rc 0 "MA: --cache-to without cache-mounts"
expect_contains "$err" "exported 1 cache entries (1 layers) to " "MA: the export line without mounts is unchanged"
raw=$(skopeo inspect --raw --tls-verify=false "docker://$REG_ADDR/cache/nomounts:bc" 2>&1)
if [[ "$raw" == *"org.minibuild.cache.mount"* ]]; then
  failed "without cache-mounts the manifest still has a mount layer: $raw"
else
  pass "without cache-mounts the manifest has no mount layer"
fi

# A fresh store imports the mount; --no-cache makes the RUN run, and it finds A's file.
run_mb --root "$work_dir/MB" build --progress plain --no-cache -t m:1 \
  --cache-from "type=registry,ref=$mounts_ref" "$ctxm"
expect_rc 0 "MB: build with --cache-from of an artifact with a cache mount"
expect_line "^cache: filled cache mount $mount_name from $mounts_ref \\(" "MB: the mount is filled at import"
run_mb --root "$work_dir/MB" run --rm m:1 cat /result
expect_equal "$out" "found $pkg_a" "MB: the RUN saw A's file in /var/cache/x"
expect_equal "$(stat -c %a "$work_dir/MB/$mount_dir")" 700 "MB: the mount directory has the exported mode"
if ls -a "$work_dir/MB/cache/mounts" | grep -q '^\.import-'; then
  failed "MB: a temporary import directory was left behind"
else
  pass "MB: no temporary import directory left behind"
fi

# A mount that is not empty locally is left alone.
echo local >"$work_dir/MB/$mount_dir/pkg"
run_mb --root "$work_dir/MB" build --progress plain --no-cache --build-arg PASS=2 -t m:2 \
  --cache-from "type=registry,ref=$mounts_ref" "$ctxm"
expect_rc 0 "MB: second import"
expect_line "^cache: cache mount $mount_name is not empty here: left alone" "MB: a present mount is left alone"
run_mb --root "$work_dir/MB" run --rm m:2 cat /result
expect_equal "$out" "found local" "MB: the RUN saw the local file, not the imported one"

# Parse errors of the new keys are usage errors naming the key.
run_mb --root "$work_dir/MA" build --cache-to "type=registry,ref=$mounts_ref,cache-mounts=yes" "$ctxm"
expect_rc 2 "cache-mounts=yes is refused"
expect_contains "$err" "cache-mounts must be true or false" "the error names cache-mounts"
run_mb --root "$work_dir/MA" build --cache-from "type=registry,ref=$mounts_ref,cache-mounts=true" "$ctxm"
expect_rc 2 "cache-mounts= on --cache-from is refused"

# ---- cache gc ----
# manifest_of REF: the raw manifest bytes the registry serves for REF.
manifest_of() {
  skopeo inspect --raw --tls-verify=false "docker://$1" 2>&1
}
before=$(manifest_of "$cache_ref" | sha256sum)
run_mb --root "$work_dir/G" cache gc "$cache_ref" --keep-duration 24h
expect_rc 0 "gc: 24h on a fresh artifact"
expect_contains "$out" "nothing to remove" "gc: nothing older than 24h"
expect_equal "$(manifest_of "$cache_ref" | sha256sum)" "$before" "gc: the manifest is unchanged"

# A copy of the type=local artifact (A app:3, 6 entries) whose last three steps are dated two
# days back, pushed to the registry.
cp -r "$work_dir/cachedir" "$work_dir/aged"
/usr/bin/python3 - "$work_dir/aged" <<'PYTHON'
import hashlib, json, os, sys, time
root = sys.argv[1]
def blob(digest):
    return os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])
def put(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob(digest), "wb") as f:
        f.write(data)
    return digest, len(data)
index = json.load(open(os.path.join(root, "index.json")))
entry = [m for m in index["manifests"]
         if m["annotations"]["org.opencontainers.image.ref.name"] == "latest"][0]
manifest = json.load(open(blob(entry["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
aged = 0
for e in config["entries"]:
    if "b.txt" in e["createdBy"] or "cat /a.txt" in e["createdBy"] or e["kind"] == "workdir":
        e["lastUsed"] = int(time.time()) - 2 * 86400
        aged += 1
assert aged == 3, aged
data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
manifest["config"]["digest"], manifest["config"]["size"] = put(data)
data = json.dumps(manifest, separators=(",", ":")).encode()
entry["digest"], entry["size"] = put(data)
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump(index, f)
PYTHON
aged_ref="$REG_ADDR/cache/aged:bc"
if /usr/bin/python3 "$(dirname "$0")/tools/push_oci_layout.py" "$work_dir/aged" latest "$aged_ref" \
  >/dev/null 2>"$work_dir/push.err"; then
  pass "gc: the aged artifact is pushed"
else
  failed "gc: push of the aged artifact: $(tail -c 300 "$work_dir/push.err")"
fi
aged_before=$(manifest_of "$aged_ref")
run_mb --root "$work_dir/G" cache gc "type=registry,ref=$aged_ref" --keep-duration 24h
expect_rc 0 "gc: 24h on the aged artifact"
expect_equal "$(grep -c '^removed cache entry sha256:' <<<"$out")" 3 "gc: three entries removed"
expect_contains "$out" "$aged_ref: removed 3 cache entries and 0 cache mounts, 3 layers (" "gc: the summary"
aged_after=$(manifest_of "$aged_ref")
if [ "$aged_after" != "$aged_before" ]; then pass "gc: the tag points at a new manifest"; else
  failed "gc: the manifest did not change"
fi
layer_count() {
  /usr/bin/python3 -c 'import json,sys; print(len(json.loads(sys.stdin.read())["layers"]))'
}
expect_equal "$(layer_count <<<"$aged_before")" 6 "gc: 6 layers before"
expect_equal "$(layer_count <<<"$aged_after")" 3 "gc: 3 layers after"
config_digest=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["config"]["digest"])' <<<"$aged_after")
config=$(curl -sf "http://$REG_ADDR/v2/cache/aged/blobs/$config_digest")
kept=$(/usr/bin/python3 -c 'import json,sys; print(" | ".join(e["createdBy"] for e in json.loads(sys.stdin.read())["entries"]))' <<<"$config")
expect_equal "$(tr '|' '\n' <<<"$kept" | grep -c 'urandom')" 2 "gc: the config keeps the two fresh RUNs"
expect_contains "$kept" "COPY a.txt" "gc: the config keeps COPY a.txt"
if [[ "$kept" == *"b.txt"* || "$kept" == *"WORKDIR"* ]]; then
  failed "gc: an aged entry is still listed: $kept"
else
  pass "gc: the aged entries are gone from the config"
fi
# What is kept still works: a fresh store hits the first three steps and runs the rest.
build F app:1 --cache-from "type=registry,ref=$aged_ref"
expect_rc 0 "F: build from the collected cache"
expect_contains "$err" "imported 3 cache entries (3 layers) from $aged_ref" "F: three entries imported"
expect_equal "$(grep -c '^#[0-9]* CACHED$' <<<"$err")" 3 "F: the first three steps CACHED"

# 0s removes every dated entry (exported more than a second ago).
sleep 1
run_mb --root "$work_dir/G" cache gc "$aged_ref" --keep-duration 0s
expect_rc 0 "gc: 0s"
expect_contains "$out" "removed 3 cache entries" "gc: 0s removes the rest"
expect_equal "$(manifest_of "$aged_ref" | layer_count)" 0 "gc: no layers left"

# A layout: the same rewrite, and the blobs nothing reaches are deleted.
run_mb --root "$work_dir/G" cache gc "type=local,src=$work_dir/aged" --keep-duration 24h
expect_rc 0 "gc: a local layout"
expect_contains "$out" "removed 3 cache entries" "gc: three entries removed from the layout"
expect_contains "$out" "deleted 5 blobs from the layout" "gc: old manifest, config and 3 layers deleted"
if skopeo inspect --raw "oci:$work_dir/aged:latest" | grep -q '"layers":\[{'; then
  pass "gc: skopeo reads the rewritten layout"
else
  failed "gc: skopeo cannot read the rewritten layout"
fi

# Usage errors and a missing cache.
run_mb --root "$work_dir/G" cache gc "$aged_ref"
expect_rc 2 "gc: --keep-duration is required"
run_mb --root "$work_dir/G" cache gc "$aged_ref" --keep-duration 3x
expect_rc 2 "gc: a bad duration"
run_mb --root "$work_dir/G" cache gc "type=local,dest=$work_dir/aged" --keep-duration 1h
expect_rc 2 "gc: dest= is refused"
run_mb --root "$work_dir/G" cache gc "$REG_ADDR/cache/aged@sha256:$(printf x | sha256sum | cut -c1-64)" --keep-duration 1h
expect_rc 2 "gc: a digest reference is refused"
run_mb --root "$work_dir/G" cache gc "$REG_ADDR/cache/none:missing" --keep-duration 1h
expect_rc 3 "gc: no cache at the ref (not found)"
expect_contains "$err" "no cache there" "gc: the error says so"

finish
