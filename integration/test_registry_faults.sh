#!/usr/bin/env bash
# minibuild through a fault-injecting proxy (integration/tools/fault_proxy.py) in front of a real
# registry: dropped connections, 500/503/429 answers, truncated and corrupted bodies. Pulls and
# pushes either succeed after retries or fail with a message naming the blob and the cause; the
# store never keeps a corrupt blob (fsck) and names nothing after a failed pull.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/registry_lib.sh"
registry_require_tools

# log_count PATTERN: how many proxy log lines match (grep -E).
log_count() {
  grep -cE "$1" "$PROXY_LOG" || true
}

export MINIBUILD_ROOT="$work_dir/store"
registry_start REG plain
proxy_start PROXY "$REG_ADDR"
TEST_IMAGE_OPTS="--layers 3 --layer-size 400000" push_test_image "$REG_ADDR" test/image:1 ||
  failed "skopeo push of the test image: $PUSH_ERR"
image="$PROXY_ADDR/test/image:1"
# The largest layer (the busybox binary, ~1 MB): the one the body faults aim at.
layer=$(/usr/bin/python3 -c '
import json, sys, os
d = sys.argv[1]
index = json.load(open(os.path.join(d, "index.json")))
m = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(os.path.join(d, "blobs", "sha256", m)))
print(max(manifest["layers"], key=lambda l: l["size"])["digest"])' "$TEST_IMAGE_LAYOUT")

# ---- transient faults: the pull succeeds ----
proxy_faults PROXY '[
  {"method": "GET", "path": "/manifests/", "times": 1, "status": 503},
  {"method": "GET", "path": "/blobs/sha256:", "times": 1, "drop": true},
  {"method": "GET", "path": "/blobs/sha256:", "times": 1, "status": 429, "retry_after": "1"},
  {"method": "GET", "path": "/blobs/sha256:", "times": 1, "status": 500},
  {"method": "GET", "path": "/blobs/'"$layer"'", "times": 1, "truncate_after": 100000}
]'
run_mb pull "$image"
expect_rc 0 "pull succeeds through 503, a dropped connection, 429, 500 and a truncated body"
[ "$(log_count 'action=status status=503')" -ge 1 ] && [ "$(log_count 'action=drop')" -ge 1 ] &&
  [ "$(log_count 'action=status status=429')" -ge 1 ] && [ "$(log_count 'action=truncate_after')" -ge 1 ] &&
  pass "the proxy log shows every fault was injected" || failed "faults missing from the proxy log"
expect_contains "$err" "retrying" "each retry is reported on stderr"
if [ "$(log_count "blobs/$layer .*status=206")" -ge 1 ]; then
  pass "the truncated download resumed with a Range request (206)"
else failed "no 206 for $layer in the proxy log: $(grep "$layer" "$PROXY_LOG")"; fi
run_mb fsck
expect_rc 0 "fsck: everything pulled through faults is intact"

# ---- proxy variables: http_proxy is honoured (the registry's name only the proxy knows) ----
proxy_faults PROXY ''
rm -rf "$MINIBUILD_ROOT"
http_proxy="http://$PROXY_ADDR" no_proxy="" run_mb --insecure-registry registry.invalid:5000 \
  pull registry.invalid:5000/test/image:1
expect_rc 0 "http_proxy: a pull through a forward proxy reaches a host only the proxy can reach"
[ "$(log_count 'forward-proxy-request for registry.invalid:5000')" -ge 3 ] &&
  pass "http_proxy: the manifest and blobs went through the proxy" ||
  failed "http_proxy: the proxy log shows no forwarded requests"

# ---- corruption: retried from scratch, then refused; nothing corrupt is kept ----
rm -rf "$MINIBUILD_ROOT"
proxy_faults PROXY "[{\"method\": \"GET\", \"path\": \"/blobs/$layer\", \"times\": 1, \"corrupt_byte\": 1000}]"
run_mb pull "$image"
expect_rc 0 "one corrupted layer download is fetched again and the pull succeeds"
expect_contains "$err" "retrying from the start" "the corrupt layer is reported and fetched again"
rm -rf "$MINIBUILD_ROOT"
proxy_faults PROXY "[{\"method\": \"GET\", \"path\": \"/blobs/$layer\", \"corrupt_byte\": 5}]"
run_mb pull "$image"
expect_rc 4 "a blob corrupted on every attempt fails the pull as corrupt"
expect_contains "$err" "$layer" "the error names the corrupt blob"
run_mb fsck
expect_rc 0 "fsck after the failed pull: nothing corrupt was kept"
if [ -e "$MINIBUILD_ROOT/blobs/sha256/${layer#sha256:}" ]; then
  failed "the corrupt blob is in the store"
else pass "the corrupt blob is not in the store"; fi
run_mb images -q
expect_equal_empty=$(printf '%s' "$out" | grep -c . || true)
[ "$expect_equal_empty" -eq 0 ] && pass "a failed pull names nothing" || failed "images after a failed pull: $out"

# ---- kill -9 in the middle of a pull: the store stays consistent, the next pull completes ----
rm -rf "$MINIBUILD_ROOT"
proxy_faults PROXY "[{\"method\": \"GET\", \"path\": \"/blobs/$layer\", \"times\": 1, \"delay\": 3}]"
"$MINIBUILD" pull "$image" >/dev/null 2>&1 &
pull_pid=$!
for _ in $(seq 50); do
  grep -q "blobs/$layer" "$PROXY_LOG" 2>/dev/null && break
  sleep 0.1
done
sleep 0.5
kill -9 "$pull_pid" 2>/dev/null
wait "$pull_pid" 2>/dev/null
run_mb fsck
expect_rc 0 "fsck after kill -9 mid-pull: nothing half-written is visible"
run_mb images -q
[ -z "$out" ] && pass "the killed pull named nothing" || failed "images after kill -9: $out"
proxy_faults PROXY ''
run_mb pull "$image"
expect_rc 0 "the next pull completes"
run_mb fsck
expect_rc 0 "fsck after the completed pull"

# ---- the registry keeps failing: a clear network error ----
proxy_faults PROXY '[{"method": "GET", "path": "/manifests/", "status": 503}]'
run_mb pull "$image"
expect_rc 5 "a registry that always answers 503 fails the pull as a network error"
expect_contains "$err" "503" "the error quotes the status"
expect_contains "$err" "attempts" "the error says it was retried"

# ---- push through faults ----
proxy_faults PROXY ''
run_mb pull "$image"
expect_rc 0 "pull without faults"
ctx="$work_dir/ctx"
mkdir -p "$ctx"
head -c 3000000 /dev/urandom >"$ctx/big.bin"
printf 'FROM %s\nCOPY big.bin /big.bin\n' "$image" >"$ctx/Dockerfile"
proxy_faults PROXY '[
  {"method": "POST", "path": "/blobs/uploads/", "times": 1, "status": 503},
  {"method": "PUT", "path": "/blobs/uploads/", "times": 1, "drop": true},
  {"method": "HEAD", "path": "/blobs/", "times": 1, "status": 500},
  {"method": "PUT", "path": "/manifests/", "times": 1, "status": 502}
]'
run_mb build -t "$PROXY_ADDR/test/pushed:1" --push "$ctx"
expect_rc 0 "build --push succeeds through 503, a dropped upload, 500 and 502"
if skopeo copy --src-tls-verify=false "docker://$REG_ADDR/test/pushed:1" "oci:$work_dir/check:x" \
  >/dev/null 2>"$work_dir/copy.err"; then
  pass "skopeo copies the image pushed through faults (every blob verified)"
else failed "skopeo copy: $(head -c 300 "$work_dir/copy.err")"; fi
proxy_faults PROXY '[{"method": "PUT|PATCH", "path": "/blobs/uploads/", "status": 500}]'
printf 'FROM %s\nCOPY Dockerfile /again\n' "$image" >"$ctx/Dockerfile"
run_mb build -t "$PROXY_ADDR/test/pushed:2" --push "$ctx"
expect_rc 5 "a registry that refuses every upload fails the push"
expect_contains "$err" "sha256:" "the push error names the blob"
run_mb fsck
expect_rc 0 "fsck after everything: the store is consistent"

finish
