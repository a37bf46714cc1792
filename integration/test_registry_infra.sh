#!/usr/bin/env bash
# The registry test infrastructure (registry_lib.sh and tools/), checked with independent clients
# only (skopeo, curl): every registry mode starts and takes a push, TLS is trusted only through
# the generated CA, Basic and token auth refuse anonymous pushes and accept the test user, the
# two-platform index arrives whole, and the fault proxy really injects each fault it offers.
# The minibuild registry tests build on this; if this fails, fix the infrastructure first.
# registry_skopeo_args prints options to be word-split, on purpose:
# shellcheck disable=SC2046
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/registry_lib.sh"
registry_require_tools

# check DESCRIPTION CMD...: passes when CMD succeeds; otherwise shows its stderr.
check() {
  local description=$1
  shift
  if "$@" >"$work_dir/check.out" 2>"$work_dir/check.err"; then pass "$description"; else
    failed "$description: $(head -c 400 "$work_dir/check.err")"
  fi
}

# refuse DESCRIPTION CMD...: passes when CMD fails.
refuse() {
  local description=$1
  shift
  if "$@" >"$work_dir/check.out" 2>"$work_dir/check.err"; then failed "$description: it succeeded"
  else pass "$description"; fi
}

# inspect_digest ARGS...: the Digest that `skopeo inspect ARGS` reports ("" on failure).
inspect_digest() {
  skopeo inspect "$@" 2>"$work_dir/inspect.err" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["Digest"])' 2>/dev/null
}

# http_status ARGS...: the status code curl gets (000 when no HTTP answer).
http_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"
}

# layout_intact DIR: every blob of an OCI layout hashes to its name.
layout_intact() {
  /usr/bin/python3 -c '
import hashlib, os, sys
d = os.path.join(sys.argv[1], "blobs", "sha256")
bad = [n for n in os.listdir(d) if hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest() != n]
sys.exit("corrupt blobs: %s" % bad if bad else 0)' "$1"
}

# ---- plain HTTP ----
registry_start PLAIN plain
expect_equal "$(http_status "$PLAIN_URL/v2/")" 200 "plain: /v2/ answers 200 at $PLAIN_ADDR"
if push_test_image "$PLAIN_ADDR" infra/busybox:1; then pass "plain: skopeo pushes the test image"
else failed "plain: push: $PUSH_ERR"; fi
expect_equal "$PUSHED_DIGEST" "$TEST_IMAGE_DIGEST" "plain: pushed digest = the layout's manifest digest"
expect_equal "$(inspect_digest --tls-verify=false "docker://$PLAIN_ADDR/infra/busybox:1")" \
  "$TEST_IMAGE_DIGEST" "plain: skopeo inspect shows the pushed digest"
header=$(curl -s -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$PLAIN_URL/v2/infra/busybox/manifests/1")
expect_contains "$header" "Docker-Content-Digest: $TEST_IMAGE_DIGEST" \
  "plain: HEAD manifest has Docker-Content-Digest"

# delete is enabled: a second, different image can be deleted by digest
busybox_digest=$TEST_IMAGE_DIGEST
TEST_IMAGE_OPTS="--no-busybox --layers 1 --layer-size 2000 --seed delete-me" \
  push_test_image "$PLAIN_ADDR" infra/scratch:del || failed "plain: push scratch: $PUSH_ERR"
if [ "$PUSHED_DIGEST" != "$busybox_digest" ]; then pass "plain: TEST_IMAGE_OPTS makes a different image"
else failed "plain: TEST_IMAGE_OPTS did not change the image"; fi
expect_equal "$(http_status -X DELETE "$PLAIN_URL/v2/infra/scratch/manifests/$PUSHED_DIGEST")" 202 \
  "plain: DELETE manifest by digest answers 202"
expect_equal "$(http_status -I "$PLAIN_URL/v2/infra/scratch/manifests/$PUSHED_DIGEST")" 404 \
  "plain: the deleted manifest is gone"

# ---- HTTPS with a generated CA ----
registry_start TLS https
expect_equal "$(http_status "https://$TLS_ADDR/v2/")" 000 "https: curl without the CA refuses the server"
expect_equal "$(http_status --cacert "$TLS_CA" "https://$TLS_ADDR/v2/")" 200 "https: trusted with the CA (127.0.0.1)"
expect_equal "$(http_status --cacert "$TLS_CA" "https://localhost:$TLS_PORT/v2/")" 200 \
  "https: the certificate also names localhost"
if push_test_image "$TLS_ADDR" infra/busybox:1 --dest-tls-verify=true; then
  failed "https: skopeo push without the CA succeeded"
else
  expect_contains "$PUSH_ERR" "certificate" "https: skopeo push without the CA fails on the certificate"
fi
certs_d_for TLS "$work_dir/certs.d"
check "certs_d_for writes DIR/HOST:PORT/ca.crt" cmp "$TLS_CA" "$work_dir/certs.d/$TLS_ADDR/ca.crt"
if push_test_image "$TLS_ADDR" infra/busybox:1 --dest-cert-dir "$work_dir/certs.d/$TLS_ADDR"; then
  pass "https: skopeo pushes trusting the CA via --dest-cert-dir only"
else failed "https: push with --dest-cert-dir: $PUSH_ERR"; fi
expect_equal "$(inspect_digest --cert-dir "$work_dir/certs.d/$TLS_ADDR" "docker://$TLS_ADDR/infra/busybox:1")" \
  "$TEST_IMAGE_DIGEST" "https: skopeo inspect shows the pushed digest"

# ---- htpasswd Basic auth ----
registry_start BASIC basic
header=$(curl -s -D - -o /dev/null "$BASIC_URL/v2/")
expect_contains "$header" "401" "basic: anonymous /v2/ is 401"
expect_contains "$header" 'Www-Authenticate: Basic realm="minibuild-test"' "basic: challenge is Basic"
expect_equal "$(http_status -u "$BASIC_USER:$BASIC_PASS" "$BASIC_URL/v2/")" 200 "basic: curl with the test user gets 200"
if push_test_image "$BASIC_ADDR" infra/busybox:1 --dest-tls-verify=false; then
  failed "basic: anonymous push succeeded"
else expect_contains "$PUSH_ERR" "authentication required" "basic: anonymous push fails (401)"; fi
refuse "basic: push with a wrong password fails" \
  push_test_image "$BASIC_ADDR" infra/busybox:1 --dest-tls-verify=false --dest-creds "$BASIC_USER:wrong"
if push_test_image "$BASIC_ADDR" infra/busybox:1 $(registry_skopeo_args BASIC dest); then
  pass "basic: push with --dest-creds works"
else failed "basic: push with creds: $PUSH_ERR"; fi
expect_equal "$(inspect_digest --tls-verify=false --authfile "$BASIC_AUTH_FILE" \
  "docker://$BASIC_ADDR/infra/busybox:1")" \
  "$TEST_IMAGE_DIGEST" "basic: skopeo inspect with BASIC_AUTH_FILE shows the digest"

# ---- token auth ----
registry_start BEARER token
header=$(curl -s -D - -o /dev/null "$BEARER_URL/v2/")
expect_contains "$header" "Www-Authenticate: Bearer realm=\"$BEARER_TOKEN_URL\",service=\"minibuild-test-registry\"" \
  "token: anonymous /v2/ is challenged with Bearer, realm = the token server"
anon=$(curl -s "$BEARER_TOKEN_URL?service=minibuild-test-registry&scope=repository:infra/busybox:pull")
access=$(printf '%s' "$anon" | /usr/bin/python3 -c '
import base64, json, sys
claims = json.load(sys.stdin)["token"].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["access"])' 2>&1)
expect_equal "$access" "[]" "token: an anonymous token grants nothing"
expect_equal "$(http_status -u "$BEARER_USER:nope" "$BEARER_TOKEN_URL?service=minibuild-test-registry")" 401 \
  "token: a wrong password gets 401 from the token server"
if push_test_image "$BEARER_ADDR" infra/busybox:1 --dest-tls-verify=false; then
  failed "token: anonymous push succeeded"
else expect_contains "$PUSH_ERR" "denied: requested access to the resource is denied" \
  "token: anonymous push fails (denied, 401)"; fi
: >"$BEARER_TOKEN_LOG"
if push_test_image "$BEARER_ADDR" infra/busybox:1 $(registry_skopeo_args BEARER dest); then
  pass "token: push with --dest-creds works (the registry accepts the x5c-signed JWT)"
else failed "token: push with creds: $PUSH_ERR"; fi
want="GET /token user=tester auth=basic service=minibuild-test-registry"
want+=" scope=repository:infra/busybox:pull,push -> 200 access=repository:infra/busybox:pull,push"
expect_contains "$(cat "$BEARER_TOKEN_LOG")" "$want" "token: the token server log shows the push's token request"
expect_equal "$(inspect_digest --tls-verify=false --creds "$BEARER_USER:$BEARER_PASS" \
  "docker://$BEARER_ADDR/infra/busybox:1")" \
  "$TEST_IMAGE_DIGEST" "token: skopeo inspect shows the pushed digest"
oauth=$(curl -s -d grant_type=password -d "username=$BEARER_USER" -d "password=$BEARER_PASS" \
  -d service=minibuild-test-registry -d client_id=infra-test -d scope=repository:infra/busybox:pull "$BEARER_TOKEN_URL")
refresh=$(printf '%s' "$oauth" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin).get("refresh_token", ""))' 2>/dev/null)
if [ -n "$refresh" ]; then pass "token: POST grant_type=password returns a refresh_token"
else failed "token: POST password grant: ${oauth:0:300}"; fi
token=$(curl -s -d grant_type=refresh_token -d "refresh_token=$refresh" -d service=minibuild-test-registry \
  -d scope=repository:infra/busybox:pull "$BEARER_TOKEN_URL" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null)
expect_equal "$(http_status -H "Authorization: Bearer $token" "$BEARER_URL/v2/infra/busybox/tags/list")" 200 \
  "token: a refresh-grant token lets curl list tags"

# ---- TLS combined with auth ----
registry_start TLSBASIC https+basic
if push_test_image "$TLSBASIC_ADDR" infra/busybox:1 $(registry_skopeo_args TLSBASIC dest); then
  pass "https+basic: push with the CA and creds"
else failed "https+basic: push: $PUSH_ERR"; fi
registry_start TLSTOKEN https+token
expect_contains "$TLSTOKEN_TOKEN_URL" "https://" "https+token: the realm is https"
if push_test_image "$TLSTOKEN_ADDR" infra/busybox:1 $(registry_skopeo_args TLSTOKEN dest); then
  pass "https+token: push with the CA and creds"
else failed "https+token: push: $PUSH_ERR"; fi
expect_contains "$(cat "$TLSTOKEN_TOKEN_LOG")" "-> 200 access=repository:infra/busybox:pull,push" \
  "https+token: the token server (over TLS) issued the push token"

# ---- two-platform index ----
if push_test_index "$PLAIN_ADDR" infra/multi:1; then pass "index: skopeo copy --all pushes it"
else failed "index: push: $PUSH_ERR"; fi
expect_equal "$PUSHED_DIGEST" "$TEST_IMAGE_DIGEST" "index: pushed digest = the layout's index digest"
platforms=$(skopeo inspect --raw --tls-verify=false "docker://$PLAIN_ADDR/infra/multi:1" 2>"$work_dir/inspect.err" |
  /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["mediaType"], len(d["manifests"]),
      " ".join(m["platform"]["os"] + "/" + m["platform"]["architecture"] for m in d["manifests"]))' 2>&1)
expect_equal "$platforms" "application/vnd.oci.image.index.v1+json 2 linux/amd64 linux/arm64" \
  "index: skopeo inspect --raw lists 2 manifests (amd64, arm64)"
check "index: skopeo copies the arm64 image" skopeo --insecure-policy copy -q --src-tls-verify=false \
  --override-arch arm64 "docker://$PLAIN_ADDR/infra/multi:1" "oci:$work_dir/arm64:1"
content=$(/usr/bin/python3 -c '
import json, os, sys, tarfile
root = sys.argv[1]
blob = lambda d: os.path.join(root, "blobs", *d.split(":"))
manifest = json.load(open(blob(json.load(open(os.path.join(root, "index.json")))["manifests"][0]["digest"])))
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as t:
        if "platform.txt" in t.getnames():
            print(t.extractfile("platform.txt").read().decode().strip())' "$work_dir/arm64" 2>&1)
expect_equal "$content" "linux/arm64" "index: the arm64 image holds /platform.txt = linux/arm64"

# ---- the fault proxy ----
proxy_start PX "$PLAIN_ADDR"
TEST_IMAGE_OPTS="--layers 1 --layer-size 300000 --seed proxy"
if push_test_image "$PX_ADDR" infra/proxied:1; then pass "proxy: skopeo pushes through the proxy"
else failed "proxy: push: $PUSH_ERR"; fi
expect_contains "$(grep '^PATCH ' "$PX_LOG")" "status=202 req=300" "proxy: upload bodies are streamed to the registry"
expect_equal "$(inspect_digest --tls-verify=false "docker://$PLAIN_ADDR/infra/proxied:1")" "$TEST_IMAGE_DIGEST" \
  "proxy: the registry behind it has the image"
unset TEST_IMAGE_OPTS
layer=$(skopeo inspect --tls-verify=false "docker://$PX_ADDR/infra/busybox:1" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["Layers"][0])')
blob_url="$PX_URL/v2/infra/busybox/blobs/$layer"

proxy_faults PX '[{"path": "^/v2/$", "times": 1, "status": 429, "retry_after": "3"}]'
first=$(curl -s -D - -o /dev/null "$PX_URL/v2/")
expect_contains "$first" "429" "proxy: status 429 is injected"
expect_contains "$first" "Retry-After: 3" "proxy: with Retry-After"
expect_equal "$(http_status "$PX_URL/v2/")" 200 "proxy: times=1: the next request passes"

proxy_faults PX '[{"method": "GET", "path": "/blobs/", "truncate_after": 100}]'
header=$(curl -s -D - -o "$work_dir/blob" "$blob_url") && rc=0 || rc=$?
expect_equal "$rc/$(stat -c %s "$work_dir/blob")" "18/100" "proxy: truncate_after 100 (curl: partial file, 100 bytes)"
expect_contains "$header" "Content-Length: $(stat -c %s "$TEST_IMAGE_LAYOUT/blobs/sha256/${layer#sha256:}")" \
  "proxy: truncated answer still announces the full Content-Length"

proxy_faults PX '[{"method": "GET", "path": "/blobs/", "corrupt_byte": 10}]'
curl -s -o "$work_dir/blob" "$blob_url"
expect_equal "$(stat -c %s "$work_dir/blob")" "$(stat -c %s "$TEST_IMAGE_LAYOUT/blobs/sha256/${layer#sha256:}")" \
  "proxy: corrupt_byte keeps the size"
expect_equal "$(cmp -l "$work_dir/blob" "$TEST_IMAGE_LAYOUT/blobs/sha256/${layer#sha256:}" | wc -l)" 1 \
  "proxy: corrupt_byte changes exactly one byte"
refuse "proxy: skopeo copy of a corrupted blob fails" skopeo --insecure-policy copy -q \
  --src-tls-verify=false "docker://$PX_ADDR/infra/busybox:1" "oci:$work_dir/corrupt:1"
expect_contains "$(cat "$work_dir/check.err")" "Digest did not match" "proxy: skopeo reports the digest mismatch"

proxy_faults PX '[{"method": "GET", "path": "/blobs/", "drop": true}]'
curl -s -o /dev/null --max-time 5 "$blob_url" && rc=0 || rc=$?
expect_equal "$rc" 52 "proxy: drop closes without an answer (curl: empty reply)"

proxy_faults PX '[{"path": "^/v2/$", "delay": 2}]'
curl -s -o /dev/null --max-time 0.5 "$PX_URL/v2/" && rc=0 || rc=$?
expect_equal "$rc" 28 "proxy: delay 2 makes a 0.5 s client time out"

# skopeo 1.9.3 with --retry-times retries network errors (a dropped connection) but not a 503:
# each is checked on its own, and the proxy log proves the fault happened exactly once.
proxy_faults PX '[{"method": "GET", "path": "/blobs/sha256:", "times": 1, "drop": true}]'
: >"$PX_LOG"
check "proxy: one drop: skopeo copy --retry-times 3 still succeeds" skopeo --insecure-policy \
  copy -q --retry-times 3 --src-tls-verify=false "docker://$PX_ADDR/infra/busybox:1" "oci:$work_dir/retried:1"
expect_equal "$(grep -c 'action=drop ' "$PX_LOG")" 1 "proxy: the log shows exactly one drop"
check "proxy: the retried copy is intact (every blob matches its digest)" layout_intact "$work_dir/retried"
proxy_faults PX '[{"method": "GET", "path": "/blobs/sha256:", "times": 1, "status": 503}]'
: >"$PX_LOG"
refuse "proxy: one 503: skopeo copy fails (skopeo does not retry 5xx)" skopeo --insecure-policy \
  copy -q --retry-times 3 --src-tls-verify=false "docker://$PX_ADDR/infra/busybox:1" "oci:$work_dir/503:1"
expect_contains "$(cat "$work_dir/check.err")" "503" "proxy: skopeo reports the 503"
expect_equal "$(grep -c 'action=status status=503' "$PX_LOG")" 1 "proxy: the log shows exactly one 503"
check "proxy: after the one 503, skopeo copy succeeds" skopeo --insecure-policy copy -q \
  --src-tls-verify=false "docker://$PX_ADDR/infra/busybox:1" "oci:$work_dir/after503:1"

proxy_faults PX ''
expect_equal "$(http_status "$PX_URL/v2/")" 200 "proxy: an empty plan passes everything"

finish
