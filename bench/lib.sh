# shellcheck shell=bash disable=SC2034
# (SC2034: registry_pid and addr are for the caller.)
# Shared by the benchmarks: a docker-registry on loopback, and unmounting what peers leave.
# Source it; set -euo pipefail is the caller's.

# bench_start_registry DIR [STORAGE_EXTRA]: serves a registry with its data in DIR/registry on a
# free loopback port, waits until /v2/ answers, and sets registry_pid and addr (127.0.0.1:PORT).
# STORAGE_EXTRA is added to the storage map of its config (e.g. "delete: {enabled: true}").
bench_start_registry() {
  local dir=$1 extra=${2:-}
  local port
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/registry"
  cat >"$dir/registry/config.yml" <<CONFIG
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/registry/data}${extra:+, $extra}}
http: {addr: 127.0.0.1:$port}
CONFIG
  env -u REGISTRY_AUTH_FILE docker-registry serve "$dir/registry/config.yml" \
    >"$dir/registry/log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
    sleep 0.2
  done
  addr=127.0.0.1:$port
}

# bench_unmount_under DIR: containers/storage leaves its overlay home mounted (private);
# unmount whatever is below DIR, deepest first.
bench_unmount_under() {
  awk -v dir="$1/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r mountpoint; do umount -l "$mountpoint" 2>/dev/null || true; done
}
