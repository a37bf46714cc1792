#!/usr/bin/env bash
# RUN step benchmark: what an empty `RUN true` costs minibuild (sandbox setup + teardown + layer
# commit), against its peers running `true` on the same busybox image, interleaved round by
# round in one run.
#
#   bench/run_step.sh [-m MINIBUILD] [-w WORKDIR] [-r ROUNDS] [-n STEPS] [-d] [-k]
#
#   -m  the minibuild binary (default: build/src/minibuild; a Release or RelWithDebInfo build)
#   -w  work directory (default: a new directory under /var/tmp): registry, stores, peers' storage
#   -r  rounds (default 5)
#   -n  RUN steps per build, and calls per round for the direct rows (default 20)
#   -d  direct mode: only `minibuild run --rm IMAGE true` (and `podman run --rm IMAGE true`)
#   -k  keep the work directory
#
# Rows (each round, in this order):
#   minibuild RUN step    (build of STEPS x `RUN true # i` - build of the same file with 0 RUN)
#                         / STEPS, both `build --no-cache` FROM the busybox image already pulled
#   minibuild run         `minibuild run --rm IMAGE true`, STEPS calls, median per call
#   buildah run           `buildah run --network=host CONTAINER true`, STEPS calls, median
#   buildah build step    the two Dockerfiles with `buildah build --layers --no-cache`, as above
#   podman run            `podman run --rm --network=host IMAGE true`, STEPS calls, median
# Every row prints min / median / max over the rounds. The peers are optional: a missing one is
# named and its rows are skipped. Their storage lives in WORKDIR (--root/--runroot), driver
# overlay; the network is the host's for everyone, as minibuild's default.
#
# The image: /bin/busybox from Debian's busybox-static with sh and true linked to it, made with
# umoci and served by Debian's docker-registry on 127.0.0.1; minibuild and the peers pull it
# from there. Needs root, docker-registry, skopeo, umoci, curl, busybox-static.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

minibuild=build/src/minibuild
workdir=""
rounds=5
steps=20
direct=0
keep=0
while getopts "m:w:r:n:dk" option; do
  case "$option" in
    m) minibuild=$OPTARG ;;
    w) workdir=$OPTARG ;;
    r) rounds=$OPTARG ;;
    n) steps=$OPTARG ;;
    d) direct=1 ;;
    k) keep=1 ;;
    *) sed -n '2,27p' "$0"; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "run_step.sh: run it as root (the peers run rootful, overlay)" >&2; exit 2; }
for tool in docker-registry skopeo umoci curl /bin/busybox /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "run_step.sh: $tool is missing (scripts/setup.sh)" >&2; exit 2; }
done
have_buildah=0
have_podman=0
if command -v buildah >/dev/null; then have_buildah=1; else
  echo "run_step.sh: buildah is missing: its rows are skipped (apt-get install buildah)"
fi
if command -v podman >/dev/null; then have_podman=1; else
  echo "run_step.sh: podman is missing: its row is skipped (apt-get install podman)"
fi
minibuild=$(realpath "$minibuild")
[[ -z $workdir ]] && workdir=$(mktemp -d /var/tmp/minibuild-run-bench.XXXXXX)
mkdir -p "$workdir"
workdir=$(realpath "$workdir")
registry_pid=""
peer_storage=(--root "$workdir/peer/root" --runroot "$workdir/peer/run" --storage-driver overlay)
cleanup() {
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
  if [[ $have_buildah -eq 1 ]]; then buildah "${peer_storage[@]}" rm --all >/dev/null 2>&1 || true; fi
  if [[ $have_podman -eq 1 ]]; then podman "${peer_storage[@]}" rm --all --force >/dev/null 2>&1 || true; fi
  bench_unmount_under "$workdir"
  if [[ $keep -eq 0 ]]; then rm -rf "$workdir"; fi
}
trap cleanup EXIT

# --- the registry and the image ------------------------------------------------------------
bench_start_registry "$workdir"
image=$addr/bench/busybox:1

rm -rf "$workdir/image"
mkdir -p "$workdir/image/rootfs/bin"
cp /bin/busybox "$workdir/image/rootfs/bin/busybox"
ln -s busybox "$workdir/image/rootfs/bin/sh"
ln -s busybox "$workdir/image/rootfs/bin/true"
tar -C "$workdir/image/rootfs" --owner=0 --group=0 --numeric-owner -cf "$workdir/image/layer.tar" .
{
  umoci init --layout "$workdir/image/layout"
  umoci new --image "$workdir/image/layout:busybox"
  umoci raw add-layer --image "$workdir/image/layout:busybox" "$workdir/image/layer.tar"
  umoci config --image "$workdir/image/layout:busybox" --no-history --config.cmd=sh \
    --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
} >"$workdir/image/umoci.log" 2>&1
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$workdir/image/layout:busybox" "docker://$image"

# Two Dockerfiles: STEPS distinct RUN lines, and none. The shell sees "# i" as a comment.
mkdir -p "$workdir/ctx"
printf 'FROM %s\n' "$image" >"$workdir/ctx/Dockerfile.0"
{
  printf 'FROM %s\n' "$image"
  for ((i = 1; i <= steps; i++)); do printf 'RUN true # %d\n' "$i"; done
} >"$workdir/ctx/Dockerfile.$steps"

# --- measuring -----------------------------------------------------------------------------
now_ns() { date +%s%N; }
# median / summary of integers (ns) on stdin
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
summary_ms() {
  sort -n | awk '{ a[NR] = $1 } END {
    printf "min %7.1f ms   median %7.1f ms   max %7.1f ms   (%d rounds)",
      a[1] / 1e6, a[int((NR + 1) / 2)] / 1e6, a[NR] / 1e6, NR }'
}
# time_ns CMD...: runs CMD (output to the log), prints its wall time in ns; fails with CMD.
time_ns() {
  local start end
  start=$(now_ns)
  "$@" >>"$workdir/commands.log" 2>&1 || { echo "run_step.sh: failed: $* (see $workdir/commands.log)" >&2; return 1; }
  end=$(now_ns)
  echo $((end - start))
}
# median_of_calls CMD...: STEPS calls of CMD, prints the median call in ns.
median_of_calls() {
  local i
  for ((i = 0; i < steps; i++)); do time_ns "$@" || return 1; done | median
}

mb=("$minibuild" --root "$workdir/mb-store")
"${mb[@]}" pull -q "$image" >/dev/null
mb_build() { "${mb[@]}" build -q --no-cache -f "$workdir/ctx/Dockerfile.$1" -t "bench/steps:$1" "$workdir/ctx"; }
# A first build of each, not timed: the page cache, the helper binary, the store's layout.
if [[ $direct -eq 0 ]]; then mb_build 0 >/dev/null && mb_build "$steps" >/dev/null; fi
"${mb[@]}" run --rm "$image" true

# The peers run with their default OCI runtime (crun on Debian 12) when it works here, else with
# runc (crun refuses hybrid cgroup v1/v2 hosts). A peer that cannot run `true` at all is skipped
# with its error.
peer_runtime=()
if [[ $have_buildah -eq 1 ]]; then
  buildah "${peer_storage[@]}" pull -q --tls-verify=false "$image" >/dev/null
  container=$(buildah "${peer_storage[@]}" from -q --pull=never "$image")
  bh_run() { buildah "${peer_storage[@]}" run "${peer_runtime[@]}" --network=host "$container" true; }
  bh_build() {
    buildah "${peer_storage[@]}" build -q "${peer_runtime[@]}" --layers --no-cache --pull=never \
      --network=host -f "$workdir/ctx/Dockerfile.$1" -t "bench/steps:$1" "$workdir/ctx"
  }
  if ! bh_run >"$workdir/peer-probe.log" 2>&1 && command -v runc >/dev/null; then
    peer_runtime=(--runtime runc)
    echo "run_step.sh: buildah's default runtime fails here ($(tail -n 1 "$workdir/peer-probe.log")): using runc"
  fi
  if ! bh_run >"$workdir/peer-probe.log" 2>&1; then
    echo "run_step.sh: buildah cannot run true here, its rows are skipped: $(tail -n 2 "$workdir/peer-probe.log")"
    have_buildah=0
  elif [[ $direct -eq 0 ]]; then
    bh_build 0 >/dev/null && bh_build "$steps" >/dev/null
  fi
fi
if [[ $have_podman -eq 1 ]]; then
  podman "${peer_storage[@]}" pull -q --tls-verify=false "$image" >/dev/null
  pm_run() { podman "${peer_storage[@]}" run "${peer_runtime[@]}" --rm --network=host --pull=never "$image" true; }
  if ! pm_run >"$workdir/peer-probe.log" 2>&1; then
    echo "run_step.sh: podman cannot run true here, its row is skipped: $(tail -n 2 "$workdir/peer-probe.log")"
    have_podman=0
  fi
fi

mb_step=() mb_build0=() mb_buildn=() mb_run=() bh_step=() bh_runs=() pm_runs=()
for ((round = 1; round <= rounds; round++)); do
  line="round $round:"
  if [[ $direct -eq 0 ]]; then
    t0=$(time_ns mb_build 0)
    tn=$(time_ns mb_build "$steps")
    mb_build0+=("$t0") mb_buildn+=("$tn") mb_step+=($(((tn - t0) / steps)))
    line+=" minibuild step $((mb_step[-1] / 1000000)) ms (builds $((t0 / 1000000)) / $((tn / 1000000)) ms);"
  fi
  mb_run+=("$(median_of_calls "${mb[@]}" run --rm "$image" true)")
  line+=" minibuild run $((mb_run[-1] / 1000000)) ms;"
  if [[ $have_buildah -eq 1 && $direct -eq 0 ]]; then
    bh_runs+=("$(median_of_calls bh_run)")
    t0=$(time_ns bh_build 0)
    tn=$(time_ns bh_build "$steps")
    bh_step+=($(((tn - t0) / steps)))
    line+=" buildah run $((bh_runs[-1] / 1000000)) ms; buildah build step $((bh_step[-1] / 1000000)) ms;"
  fi
  if [[ $have_podman -eq 1 ]]; then
    pm_runs+=("$(median_of_calls pm_run)")
    line+=" podman run $((pm_runs[-1] / 1000000)) ms"
  fi
  echo "$line"
done

echo
echo "per RUN step / per call, $rounds rounds, $steps steps or calls per round ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)):"
row() { printf '%-46s %s\n' "$1" "$(printf '%s\n' "${@:2}" | summary_ms)"; }
if [[ $direct -eq 0 ]]; then
  row "minibuild RUN step (build $steps - build 0) / $steps" "${mb_step[@]}"
  row "  minibuild build, 0 RUN" "${mb_build0[@]}"
  row "  minibuild build, $steps RUN" "${mb_buildn[@]}"
fi
row "minibuild run --rm IMAGE true" "${mb_run[@]}"
if [[ ${#bh_runs[@]} -gt 0 ]]; then
  row "buildah run CONTAINER true" "${bh_runs[@]}"
  row "buildah build --layers step (same way)" "${bh_step[@]}"
fi
if [[ ${#pm_runs[@]} -gt 0 ]]; then row "podman run --rm IMAGE true" "${pm_runs[@]}"; fi
if [[ $direct -eq 0 && ${#bh_runs[@]} -gt 0 ]]; then
  step_median=$(printf '%s\n' "${mb_step[@]}" | median)
  peer_median=$(printf '%s\n' "${bh_runs[@]}" | median)
  awk -v m="$step_median" -v p="$peer_median" 'BEGIN {
    printf "minibuild RUN step / buildah run (medians): %.2f (target: under 0.33, and under 50 ms)\n", m / p }'
fi
