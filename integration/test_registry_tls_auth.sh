#!/usr/bin/env bash
# minibuild against registries that need trust or credentials: HTTPS with a CA the test makes
# (trusted only through certs.d or --registry-ca), mutual TLS with a client certificate from
# certs.d, htpasswd Basic auth, and Bearer tokens from
# a token server (integration/tools/token_server.py, for docker-registry's `auth: token`).
# Also login/logout (file mode, content, secrets never printed).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/registry_lib.sh"
registry_require_tools

expect_not_contains() {
  local haystack=$1 needle=$2 description=$3
  if [[ "$haystack" != *"$needle"* ]]; then pass "$description"; else
    failed "$description: \"$needle\" appears in: ${haystack:0:400}"
  fi
}

export MINIBUILD_ROOT="$work_dir/store"
# A private HOME: ~/.config/containers/certs.d is one of the certs.d roots minibuild reads, and
# login writes $DOCKER_CONFIG/config.json (registry_lib.sh points DOCKER_CONFIG into $work_dir).
export HOME="$work_dir/home"
mkdir -p "$HOME"
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
ctx="$work_dir/ctx"
mkdir -p "$ctx"
echo "secret-free content" >"$ctx/file.txt"

# ---- HTTPS with a generated CA ----
registry_start TLS https
push_test_image "$TLS_ADDR" test/busybox:1 --dest-cert-dir "$(dirname "$TLS_CA")" ||
  failed "skopeo push to the https registry: $PUSH_ERR"
run_mb pull "$TLS_ADDR/test/busybox:1"
expect_rc 5 "https without trusting the CA fails"
expect_contains "$err" "certificate" "the error says the certificate is not trusted"
run_mb --insecure-registry "$TLS_ADDR" pull "$TLS_ADDR/test/busybox:1"
expect_rc 5 "--insecure-registry never bypasses TLS verification of an https registry"
run_mb --registry-ca "$TLS_CA" pull "$TLS_ADDR/test/busybox:1"
expect_rc 0 "--registry-ca trusts the CA"
rm -rf "$MINIBUILD_ROOT"
certs_d_for TLS "$HOME/.config/containers/certs.d"
run_mb pull "$TLS_ADDR/test/busybox:1"
expect_rc 0 "certs.d (~/.config/containers/certs.d/HOST:PORT/ca.crt) trusts the CA"
printf 'FROM %s/test/busybox:1\nCOPY file.txt /\n' "$TLS_ADDR" >"$ctx/Dockerfile"
run_mb build -t "$TLS_ADDR/test/app:1" --push "$ctx"
expect_rc 0 "build --push over HTTPS"
if skopeo inspect --cert-dir "$(dirname "$TLS_CA")" "docker://$TLS_ADDR/test/app:1" >/dev/null 2>&1; then
  pass "skopeo reads the image pushed over HTTPS"
else failed "skopeo inspect of the HTTPS push"; fi

# ---- mutual TLS: a client certificate from certs.d ----
registry_start MTLS https+mtls
mkdir -p "$work_dir/skopeo-mtls" && cp "$MTLS_CA" "$MTLS_CLIENT_CERT" "$work_dir/skopeo-mtls/" &&
  cp "$MTLS_CLIENT_KEY" "$work_dir/skopeo-mtls/client.key" &&
  mv "$work_dir/skopeo-mtls/client.crt" "$work_dir/skopeo-mtls/client.cert"
push_test_image "$MTLS_ADDR" test/busybox:1 --dest-cert-dir "$work_dir/skopeo-mtls" ||
  failed "skopeo push to the mTLS registry: $PUSH_ERR"
run_mb --registry-ca "$MTLS_CA" pull "$MTLS_ADDR/test/busybox:1"
expect_rc 5 "mTLS: without a client certificate the registry refuses the connection"
mkdir -p "$HOME/.config/containers/certs.d/$MTLS_ADDR"
cp "$MTLS_CA" "$HOME/.config/containers/certs.d/$MTLS_ADDR/ca.crt"
cp "$MTLS_CLIENT_CERT" "$HOME/.config/containers/certs.d/$MTLS_ADDR/client.cert"
cp "$MTLS_CLIENT_KEY" "$HOME/.config/containers/certs.d/$MTLS_ADDR/client.key"
run_mb pull "$MTLS_ADDR/test/busybox:1"
expect_rc 0 "mTLS: certs.d's client.cert + client.key are presented"

# ---- htpasswd Basic auth ----
registry_start BASIC basic
push_test_image "$BASIC_ADDR" test/busybox:1 $(registry_skopeo_args BASIC dest) ||
  failed "skopeo push to the basic registry: $PUSH_ERR"
run_mb pull "$BASIC_ADDR/test/busybox:1"
expect_rc 5 "basic: an anonymous pull is refused"
expect_contains "$err" "minibuild login" "basic: the error says how to log in"
STDIN_FILE="$work_dir/wrong" && echo "not-the-password" >"$STDIN_FILE"
run_mb login -u "$BASIC_USER" --password-stdin "$BASIC_ADDR"
expect_rc 5 "basic: login with a wrong password fails"
expect_not_contains "$err$out" "not-the-password" "basic: the wrong password is not printed"
[ ! -e "$DOCKER_CONFIG/config.json" ] || ! grep -q "$BASIC_ADDR" "$DOCKER_CONFIG/config.json" &&
  pass "basic: a failed login saves nothing" || failed "basic: a failed login saved credentials"
STDIN_FILE="$work_dir/right" && echo "$BASIC_PASS" >"$STDIN_FILE"
run_mb login -u "$BASIC_USER" --password-stdin "$BASIC_ADDR"
expect_rc 0 "basic: login with the right password"
expect_contains "$out" "Login Succeeded" "basic: login says so"
expect_not_contains "$err$out" "$BASIC_PASS" "basic: the password is not printed"
unset STDIN_FILE
expect_equal "$(stat -c %a "$DOCKER_CONFIG/config.json")" 600 "basic: config.json has mode 0600"
expect_equal "$(/usr/bin/python3 -c 'import json,sys,base64; d=json.load(open(sys.argv[1])); print(base64.b64decode(d["auths"][sys.argv[2]]["auth"]).decode())' "$DOCKER_CONFIG/config.json" "$BASIC_ADDR")" \
  "$BASIC_USER:$BASIC_PASS" "basic: config.json holds Docker's auths entry"
run_mb pull "$BASIC_ADDR/test/busybox:1"
expect_rc 0 "basic: pull with the saved credentials"
printf 'FROM %s/test/busybox:1\nCOPY file.txt /\n' "$BASIC_ADDR" >"$ctx/Dockerfile"
run_mb build -t "$BASIC_ADDR/test/app:1" --push "$ctx"
expect_rc 0 "basic: build --push with the saved credentials"
run_mb history --no-trunc "$BASIC_ADDR/test/app:1"
expect_not_contains "$out" "$BASIC_PASS" "basic: the history holds no secret"
run_mb inspect "$BASIC_ADDR/test/app:1"
expect_not_contains "$out" "$BASIC_PASS" "basic: the config holds no secret"
run_mb logout "$BASIC_ADDR"
expect_rc 0 "basic: logout"
rm -rf "$MINIBUILD_ROOT"
run_mb pull "$BASIC_ADDR/test/busybox:1"
expect_rc 5 "basic: after logout the pull is anonymous again and refused"
run_mb logout "$BASIC_ADDR"
expect_rc 3 "basic: logging out twice says there was nothing to remove"
REGISTRY_AUTH_FILE="$BASIC_AUTH_FILE" run_mb pull "$BASIC_ADDR/test/busybox:1"
expect_rc 0 "basic: credentials from \$REGISTRY_AUTH_FILE (containers-auth.json) work"

# ---- Bearer tokens ----
registry_start BEARER token
TEST_IMAGE_OPTS="--layers 3 --layer-size 200000" \
  push_test_image "$BEARER_ADDR" test/busybox:1 $(registry_skopeo_args BEARER dest) ||
  failed "skopeo push to the token registry: $PUSH_ERR"
rm -rf "$MINIBUILD_ROOT"
run_mb pull "$BEARER_ADDR/test/busybox:1"
expect_rc 5 "token: an anonymous token grants nothing: the pull is refused"
STDIN_FILE="$work_dir/right" run_mb login -u "$BEARER_USER" --password-stdin "$BEARER_ADDR"
expect_rc 0 "token: login (the token server accepts the user)"
before=$(wc -l <"$BEARER_TOKEN_LOG")
run_mb pull "$BEARER_ADDR/test/busybox:1"
expect_rc 0 "token: pull with a bearer token"
after=$(wc -l <"$BEARER_TOKEN_LOG")
token_requests=$((after - before))
if [ "$token_requests" -ge 1 ] && [ "$token_requests" -le 2 ]; then
  pass "token: a 4-layer pull asked the token server $token_requests time(s): the token is cached"
else failed "token: $token_requests token requests for one pull"; fi
printf 'FROM %s/test/busybox:1\nCOPY file.txt /\n' "$BEARER_ADDR" >"$ctx/Dockerfile"
run_mb build -t "$BEARER_ADDR/test/app:1" --push "$ctx"
expect_rc 0 "token: build --push (a pull,push token)"
if skopeo inspect --tls-verify=false --creds "$BEARER_USER:$BEARER_PASS" \
  "docker://$BEARER_ADDR/test/app:1" >/dev/null 2>&1; then
  pass "token: skopeo reads what minibuild pushed"
else failed "token: skopeo inspect of the pushed image"; fi
expect_not_contains "$(cat "$BEARER_TOKEN_LOG")" "$BEARER_PASS" "token: the token server log has no password"

finish
