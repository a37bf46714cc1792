#!/usr/bin/env bash
# Sharing the build cache (issue 6, docs/cache.md "Sharing the cache"): store A builds with
# --cache-to type=registry,mode=max; a fresh store B builds the same Dockerfile with
# --cache-from and runs nothing: every step is CACHED, the layers are imported, a RUN that
# records the time shows A's value, and the image digest is A's. Then one context file changes:
# B rebuilds from the COPY that reads it. Also: a type=local round trip, a --cache-from of a
# missing ref (a warning, the build works), and skopeo's view of the artifact.
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

finish
