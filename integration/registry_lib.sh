# shellcheck shell=bash
# Real registries on loopback for integration tests. Source it AFTER lib.sh.
#
# Every function is called from the test's main shell (never inside $(...) or a pipeline): it
# exports variables, and the processes it starts are tied to that shell. They are killed when the
# script exits (the EXIT trap of lib.sh is chained, so $work_dir is still removed afterwards), and
# also if the script itself is killed (each one runs under `setpriv --pdeathsig TERM`).
# Nothing is written outside $work_dir. Sourcing this file points skopeo (and any client honouring
# the same variables) at empty per-test configuration: REGISTRY_AUTH_FILE, DOCKER_CONFIG and
# CONTAINERS_REGISTRIES_CONF live in $work_dir, so no credentials of the machine leak in.
#
# registry_start NAME MODE
#     Starts docker-registry (Debian's distribution 2.8) on 127.0.0.1:<free port>, MODE one of
#     plain | https | https+mtls | basic | token | https+basic | https+token. https+mtls also
#     demands a client certificate signed by the same CA: NAME_CLIENT_CERT, NAME_CLIENT_KEY. Waits until /v2/ answers; if it
#     does not within 10 s, prints the registry log and exits the test (FAIL). Exports:
#       NAME_ADDR   127.0.0.1:PORT        NAME_PORT, NAME_URL (http[s]://NAME_ADDR), NAME_PID
#       NAME_LOG    registry log (warn level + access log)   NAME_DIR (config, storage, certs)
#       NAME_CA     https: the CA that signed the server certificate (SANs 127.0.0.1, localhost),
#                   alone in its directory (usable as skopeo's --cert-dir)
#       NAME_USER, NAME_PASS   basic/token: tester / s3cret-pass
#       NAME_AUTH_FILE         basic/token: a containers-auth.json holding those credentials
#       NAME_TOKEN_URL, NAME_TOKEN_LOG, NAME_TOKEN_PID   token: the token server (realm) and its
#                              log, one line per token request (tools/token_server.py)
#     In token modes the registry's service is "minibuild-test-registry", the issuer
#     "minibuild-test-issuer"; with https+token the token server speaks HTTPS (same CA).
#     Token server options can be passed in TOKEN_SERVER_ARGS (e.g. "--anonymous-401").
# registry_stop NAME
#     Stops that registry (and its token server): for "registry went away" tests.
# certs_d_for NAME DIR
#     Writes DIR/NAME_ADDR/ca.crt (docker certs.d layout) for an https registry.
# registry_skopeo_args NAME src|dest
#     Prints the skopeo options reaching that registry: --X-tls-verify=false or --X-cert-dir=...,
#     plus --X-creds=USER:PASS in auth modes. Use unquoted: skopeo copy $(registry_skopeo_args R dest) ...
# proxy_start NAME TARGET_ADDR
#     Starts tools/fault_proxy.py in front of a plain-HTTP server at TARGET_ADDR (a registry's
#     NAME_ADDR). Exports NAME_ADDR, NAME_PORT, NAME_URL, NAME_LOG (one line per request with
#     the action taken), NAME_PLAN (the control file), NAME_PID. Starts with no faults.
# proxy_faults NAME SPEC
#     Replaces the proxy's fault plan: SPEC is a JSON list of rules (see tools/fault_proxy.py),
#     e.g. '[{"method":"GET","path":"/blobs/","times":1,"status":503}]'; "" clears it. Hit
#     counters start again with every call. Takes effect on the next request.
# push_test_image ADDR REPO:TAG [SKOPEO-COPY-ARGS...]
#     Pushes a small image made offline (tools/make_oci_image.py: /bin/busybox in one layer;
#     TEST_IMAGE_OPTS adds make_oci_image.py options, e.g. "--layers 3 --layer-size 1000000"
#     or "--seed 2") to docker://ADDR/REPO:TAG. Without args it passes --dest-tls-verify=false.
#     Returns skopeo's status; sets PUSHED_DIGEST (manifest digest as pushed), TEST_IMAGE_DIGEST
#     (the digest in the layout: the same, skopeo keeps the OCI manifest), TEST_IMAGE_LAYOUT
#     (the OCI layout, tag "test") and PUSH_ERR (skopeo's stderr).
# push_test_index ADDR REPO:TAG [SKOPEO-COPY-ARGS...]
#     Like push_test_image with a two-platform OCI index (linux/amd64, linux/arm64), each image
#     holding /platform.txt = "linux/ARCH\n", copied with `skopeo copy --all`.

# registry_require_tools
#     Skips the test (exit 77, with the reason) unless it runs as root and docker-registry,
#     skopeo, htpasswd, openssl, curl, setpriv, Debian's python3 with cryptography and
#     busybox-static are there. Every registry test calls it first.

# Set by lib.sh, read here.
: "${work_dir:?source lib.sh before registry_lib.sh}"
registry_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
registry_python=/usr/bin/python3 # Debian's, with python3-cryptography (not a pyenv shim)
registry_test_user=tester
registry_test_pass=s3cret-pass

export REGISTRY_AUTH_FILE="$work_dir/registry-auth.json"
export DOCKER_CONFIG="$work_dir/docker-config"
export CONTAINERS_REGISTRIES_CONF="$work_dir/registries.conf"
: >"$CONTAINERS_REGISTRIES_CONF"

_rl_pids=()
_rl_plan_generation=0

# Stops every process this library started: TERM, up to 3 s, then KILL.
_rl_cleanup() {
  local pid i
  for pid in "${_rl_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${_rl_pids[@]}"; do
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  _rl_pids=()
}

# Chain the EXIT trap: our processes die first, then lib.sh removes $work_dir.
_rl_third_arg() { printf '%s' "${3:-}"; }
_rl_previous_exit_trap=$(eval "_rl_third_arg $(trap -p EXIT)")
# shellcheck disable=SC2064 # expand the previous trap now, on purpose
trap "_rl_cleanup; ${_rl_previous_exit_trap}" EXIT

# _rl_fatal MESSAGE [LOG]: the infrastructure is broken; report it with the log and end the test.
_rl_fatal() {
  failed "$1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    echo "    --- $2 (last 40 lines) ---"
    tail -n 40 "$2" | sed 's/^/    | /'
  fi
  finish
  exit 1
}

_rl_check_name() {
  [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || _rl_fatal "registry_lib: NAME \"$1\" is not a shell identifier"
}

# _rl_spawn LOG CMD...: starts CMD in the background, output to LOG, killed with us; sets _rl_pid.
_rl_spawn() {
  local log=$1
  shift
  setpriv --pdeathsig TERM "$@" >>"$log" 2>&1 &
  _rl_pid=$!
  _rl_pids+=("$_rl_pid")
}

# _rl_forget PID: reaps a process we started and drops it from the cleanup list, so that the
# cleanup never signals a later process that reuses the pid.
_rl_forget() {
  local pid=$1 kept=() p
  wait "$pid" 2>/dev/null
  for p in "${_rl_pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  _rl_pids=("${kept[@]}")
}

_rl_free_port() {
  "$registry_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _rl_wait_port_file FILE PID WHAT LOG: waits (10 s) for a python server to write its port.
_rl_wait_port_file() {
  local file=$1 pid=$2 what=$3 log=$4 i
  for ((i = 0; i < 100; i++)); do
    [ -s "$file" ] && return 0
    kill -0 "$pid" 2>/dev/null || _rl_fatal "$what exited at start" "$log"
    sleep 0.1
  done
  _rl_fatal "$what did not start within 10 s" "$log"
}

# _rl_make_tls DIR: a CA and a server certificate for 127.0.0.1 and localhost (EC P-256);
# DIR/ca/ca.crt is the CA alone, for clients.
_rl_make_tls() {
  local dir=$1
  mkdir -p "$dir"
  cat >"$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = minibuild test
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF
  {
    openssl req -x509 -config "$dir/openssl.cnf" -extensions ca_ext -newkey ec \
      -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=minibuild test CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" &&
      openssl req -new -config "$dir/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" &&
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 30 \
        -extfile "$dir/openssl.cnf" -extensions server_ext -out "$dir/server.crt" &&
      openssl req -new -config "$dir/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -subj "/CN=minibuild test client" -keyout "$dir/client.key" -out "$dir/client.csr" &&
      openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 30 \
        -extfile "$dir/openssl.cnf" -extensions client_ext -out "$dir/client.crt"
  } >"$dir/openssl.log" 2>&1 || _rl_fatal "openssl could not make the test certificates" "$dir/openssl.log"
  # Clients get a directory holding only the CA: skopeo takes any *.key there for a client key.
  mkdir -p "$dir/ca"
  cp "$dir/ca.crt" "$dir/ca/ca.crt"
}

_rl_write_auth_file() {
  local file=$1 addr=$2 user=$3 pass=$4
  "$registry_python" -c '
import base64, json, sys
addr, user, password, path = sys.argv[1:]
auth = base64.b64encode(f"{user}:{password}".encode()).decode()
json.dump({"auths": {addr: {"auth": auth}}}, open(path, "w"))' "$addr" "$user" "$pass" "$file"
}

registry_start() {
  local name=$1 mode=$2 tls=0 auth=none mtls=0
  _rl_check_name "$name"
  case "$mode" in
    plain) ;;
    https) tls=1 ;;
    https+mtls) tls=1 mtls=1 ;;
    basic) auth=basic ;;
    token) auth=token ;;
    https+basic) tls=1 auth=basic ;;
    https+token) tls=1 auth=token ;;
    *) _rl_fatal "registry_start: unknown MODE \"$mode\" (plain|https|https+mtls|basic|token|https+basic|https+token)" ;;
  esac
  local dir="$work_dir/registry-$name"
  mkdir -p "$dir/data"
  local scheme=http
  [ "$tls" = 1 ] && scheme=https && _rl_make_tls "$dir/tls"

  local auth_yaml=""
  if [ "$auth" = basic ]; then
    htpasswd -Bbc "$dir/htpasswd" "$registry_test_user" "$registry_test_pass" 2>"$dir/htpasswd.log" ||
      _rl_fatal "htpasswd failed" "$dir/htpasswd.log"
    auth_yaml="auth:
  htpasswd:
    realm: minibuild-test
    path: $dir/htpasswd"
  elif [ "$auth" = token ]; then
    mkdir -p "$dir/token"
    printf '%s:%s\n' "$registry_test_user" "$registry_test_pass" >"$dir/token/credentials"
    local token_tls=()
    [ "$tls" = 1 ] && token_tls=(--tls-cert "$dir/tls/server.crt" --tls-key "$dir/tls/server.key")
    # shellcheck disable=SC2086 # TOKEN_SERVER_ARGS is a list of options
    _rl_spawn "$dir/token/stderr.log" "$registry_python" "$registry_lib_dir/tools/token_server.py" \
      --port-file "$dir/token/port" --cert-out "$dir/token/signing.crt" --log "$dir/token/requests.log" \
      --credentials "$dir/token/credentials" "${token_tls[@]}" ${TOKEN_SERVER_ARGS:-}
    local token_pid=$_rl_pid
    _rl_wait_port_file "$dir/token/port" "$token_pid" "token server for $name" "$dir/token/stderr.log"
    local token_url
    token_url="$scheme://127.0.0.1:$(cat "$dir/token/port")/token"
    declare -gx "${name}_TOKEN_URL=$token_url" "${name}_TOKEN_LOG=$dir/token/requests.log" \
      "${name}_TOKEN_PID=$token_pid"
    auth_yaml="auth:
  token:
    realm: $token_url
    service: minibuild-test-registry
    issuer: minibuild-test-issuer
    rootcertbundle: $dir/token/signing.crt"
  fi

  # The port comes from the kernel, but another process may take it before the registry binds
  # it: try a few ports.
  local attempt port pid i log="$dir/registry.log" up=0 nonce
  for attempt in 1 2 3; do
    port=$(_rl_free_port)
    # Every answer carries this header: it proves that our registry answers on the port, not
    # another process that had it.
    nonce="$name-$attempt-$$-$RANDOM"
    {
      printf 'version: 0.1\nlog:\n  level: warn\n  formatter: text\n'
      printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/data"
      printf '  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n'
      printf 'http:\n  addr: 127.0.0.1:%s\n  secret: minibuild-test-secret\n' "$port"
      printf '  headers:\n    X-Minibuild-Test-Registry: [%s]\n' "$nonce"
      if [ "$tls" = 1 ]; then
        printf '  tls:\n    certificate: %s\n    key: %s\n' "$dir/tls/server.crt" "$dir/tls/server.key"
        [ "$mtls" = 1 ] && printf '    clientcas:\n      - %s\n' "$dir/tls/ca.crt"
      fi
      [ -n "$auth_yaml" ] && printf '%s\n' "$auth_yaml"
    } >"$dir/config.yml"
    : >"$log"
    # docker-registry reads REGISTRY_* variables as configuration overrides; REGISTRY_AUTH_FILE
    # (set above, for clients) would become auth.file.
    local unset_env=() var
    for var in $(compgen -e); do [[ "$var" == REGISTRY_* ]] && unset_env+=(-u "$var"); done
    _rl_spawn "$log" env "${unset_env[@]}" docker-registry serve "$dir/config.yml"
    pid=$_rl_pid
    local curl_tls=()
    [ "$tls" = 1 ] && curl_tls=(--cacert "$dir/tls/ca.crt")
    [ "$mtls" = 1 ] && curl_tls+=(--cert "$dir/tls/client.crt" --key "$dir/tls/client.key")
    for ((i = 0; i < 100; i++)); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if curl -s -D - -o /dev/null --max-time 2 "${curl_tls[@]}" "$scheme://127.0.0.1:$port/v2/" |
        grep -qi "^X-Minibuild-Test-Registry: $nonce"; then
        up=1
        break
      fi
      sleep 0.1
    done
    [ "$up" = 1 ] && break
    kill -0 "$pid" 2>/dev/null && _rl_fatal "registry $name ($mode) did not answer /v2/ within 10 s" "$log"
    grep -q "address already in use" "$log" || _rl_fatal "registry $name ($mode) exited at start" "$log"
    _rl_forget "$pid"
  done
  [ "$up" = 1 ] || _rl_fatal "registry $name ($mode): no free port after 3 attempts" "$log"

  declare -gx "${name}_ADDR=127.0.0.1:$port" "${name}_PORT=$port" \
    "${name}_URL=$scheme://127.0.0.1:$port" "${name}_PID=$pid" "${name}_LOG=$log" \
    "${name}_DIR=$dir" "${name}_MODE=$mode"
  [ "$tls" = 1 ] && declare -gx "${name}_CA=$dir/tls/ca/ca.crt"
  [ "$mtls" = 1 ] && declare -gx "${name}_CLIENT_CERT=$dir/tls/client.crt" "${name}_CLIENT_KEY=$dir/tls/client.key"
  if [ "$auth" != none ]; then
    declare -gx "${name}_USER=$registry_test_user" "${name}_PASS=$registry_test_pass" \
      "${name}_AUTH_FILE=$dir/auth.json"
    _rl_write_auth_file "$dir/auth.json" "127.0.0.1:$port" "$registry_test_user" "$registry_test_pass"
  fi
  return 0
}

registry_stop() {
  local name=$1 var pid
  _rl_check_name "$name"
  for var in "${name}_PID" "${name}_TOKEN_PID"; do
    pid=${!var:-}
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null
    _rl_forget "$pid"
  done
  return 0
}

certs_d_for() {
  local name=$1 dir=$2
  _rl_check_name "$name"
  local addr_var="${name}_ADDR" ca_var="${name}_CA"
  [ -n "${!ca_var:-}" ] || _rl_fatal "certs_d_for: $name is not an https registry"
  mkdir -p "$dir/${!addr_var}"
  cp "${!ca_var}" "$dir/${!addr_var}/ca.crt"
}

registry_skopeo_args() {
  local name=$1 side=$2
  _rl_check_name "$name"
  local ca_var="${name}_CA" user_var="${name}_USER" pass_var="${name}_PASS"
  if [ -n "${!ca_var:-}" ]; then
    echo "--$side-cert-dir=$(dirname "${!ca_var}")"
  else
    echo "--$side-tls-verify=false"
  fi
  [ -n "${!user_var:-}" ] && echo "--$side-creds=${!user_var}:${!pass_var}"
  return 0
}

proxy_start() {
  local name=$1 target=$2
  _rl_check_name "$name"
  local dir="$work_dir/proxy-$name"
  mkdir -p "$dir"
  : >"$dir/plan.json"
  : >"$dir/requests.log"
  _rl_spawn "$dir/stderr.log" "$registry_python" "$registry_lib_dir/tools/fault_proxy.py" \
    --upstream "$target" --plan "$dir/plan.json" --log "$dir/requests.log" --port-file "$dir/port"
  local pid=$_rl_pid
  _rl_wait_port_file "$dir/port" "$pid" "fault proxy $name" "$dir/stderr.log"
  local port
  port=$(cat "$dir/port")
  declare -gx "${name}_ADDR=127.0.0.1:$port" "${name}_PORT=$port" \
    "${name}_URL=http://127.0.0.1:$port" "${name}_PID=$pid" "${name}_LOG=$dir/requests.log" \
    "${name}_PLAN=$dir/plan.json" "${name}_DIR=$dir"
}

proxy_faults() {
  local name=$1 spec=${2:-}
  _rl_check_name "$name"
  local plan_var="${name}_PLAN"
  [ -n "${!plan_var:-}" ] || _rl_fatal "proxy_faults: no proxy named $name"
  _rl_plan_generation=$((_rl_plan_generation + 1))
  "$registry_python" -c '
import json, os, sys
spec, generation, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rules = json.loads(spec) if spec.strip() else []
if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
    sys.exit("proxy_faults: SPEC must be a JSON list of rule objects")
with open(path + ".tmp", "w") as f:
    json.dump({"generation": generation, "rules": rules}, f)
os.replace(path + ".tmp", path)' "$spec" "$_rl_plan_generation" "${!plan_var}" 2>"$work_dir/proxy_faults.err" ||
    _rl_fatal "proxy_faults $name: bad SPEC: $spec" "$work_dir/proxy_faults.err"
}

# shellcheck disable=SC2034 # TEST_IMAGE_DIGEST is for the caller
# _rl_test_layout KIND: makes (once per option set) the OCI layout to push; sets TEST_IMAGE_*.
_rl_test_layout() {
  local kind=$1 opts=${TEST_IMAGE_OPTS:-}
  local key
  key=$(printf '%s|%s' "$kind" "$opts" | sha256sum | cut -c1-16)
  TEST_IMAGE_LAYOUT="$work_dir/test-images/$key"
  mkdir -p "$work_dir/test-images"
  if [ ! -s "$TEST_IMAGE_LAYOUT.digest" ]; then
    local extra=()
    [ "$kind" = index ] && extra=(--platform linux/amd64 --platform linux/arm64 --platform-file)
    # shellcheck disable=SC2086 # TEST_IMAGE_OPTS is a list of options
    "$registry_python" "$registry_lib_dir/tools/make_oci_image.py" "$TEST_IMAGE_LAYOUT" --tag test \
      "${extra[@]}" $opts >"$TEST_IMAGE_LAYOUT.digest" 2>"$TEST_IMAGE_LAYOUT.err" ||
      _rl_fatal "make_oci_image.py failed" "$TEST_IMAGE_LAYOUT.err"
  fi
  TEST_IMAGE_DIGEST=$(cat "$TEST_IMAGE_LAYOUT.digest")
}

# _rl_push KIND ADDR REPO:TAG [ARGS...]
# shellcheck disable=SC2034 # PUSH_ERR, PUSHED_DIGEST, TEST_IMAGE_* are for the caller
_rl_push() {
  local kind=$1 addr=$2 ref=$3
  shift 3
  _rl_test_layout "$kind"
  local args=("$@") all=()
  [ ${#args[@]} -eq 0 ] && args=(--dest-tls-verify=false)
  [ "$kind" = index ] && all=(--all)
  rm -f "$work_dir/push.digest"
  PUSHED_DIGEST=""
  local rc=0
  skopeo --insecure-policy copy -q --retry-times 0 "${all[@]}" --digestfile "$work_dir/push.digest" \
    "${args[@]}" "oci:$TEST_IMAGE_LAYOUT:test" "docker://$addr/$ref" >/dev/null 2>"$work_dir/push.err" || rc=$?
  PUSH_ERR=$(cat "$work_dir/push.err")
  [ -s "$work_dir/push.digest" ] && PUSHED_DIGEST=$(cat "$work_dir/push.digest")
  return "$rc"
}

push_test_image() { _rl_push image "$@"; }
push_test_index() { _rl_push index "$@"; }

registry_require_tools() {
  [ "$(id -u)" -eq 0 ] || skip "not root: the registry integration tests run as root only"
  local tool
  for tool in docker-registry skopeo htpasswd openssl curl setpriv; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh installs it)"
  done
  "$registry_python" -c 'import cryptography' 2>/dev/null ||
    skip "$registry_python lacks the cryptography module (apt-get install python3-cryptography)"
  [ -r /bin/busybox ] || skip "/bin/busybox is missing (apt-get install busybox-static)"
}
