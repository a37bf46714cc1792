#!/usr/bin/env bash
# Build cache benchmark: `minibuild build` against `buildah build --layers` on the same
# 20-instruction Dockerfile with a 20,000-file context, FROM the same busybox image on the same
# loopback registry, interleaved case by case and round by round in one run.
#
#   bench/build_cache.sh [-m MINIBUILD] [-w WORKDIR] [-r ROUNDS] [-n FILES] [-k]
#
#   -m  the minibuild binary (default: build/src/minibuild; a Release or RelWithDebInfo build)
#   -w  work directory (default: a new directory under /var/tmp): registry, context, stores
#   -r  rounds (default 5)
#   -n  files in the context's src/ (default 20000, 100 per directory)
#   -k  keep the work directory
#
# Cases, each round, both tools (minibuild first in odd rounds, buildah first in even ones):
#   cold           a new store / new buildah storage (--root, --runroot) per round, the base
#                  image pulled into it beforehand (not timed): the build alone is timed
#   cached         the same input again, same store
#   change app.sh  after rewriting app.sh, which only the single-file COPY near the end reads
#   change src/    after rewriting one file of src/, which the big `COPY src /src` reads
#   push           the built image to a new repository of the registry (a new name per round
#                  and tool): `minibuild push` / `buildah push`
# Every row prints min / median / max over the rounds, then minibuild/buildah per case (medians)
# and the targets of issue 6. Checks on the way: minibuild's cached rebuild gives the cold
# build's image id and runs no step; the changed builds give new ids.
#
# buildah is optional (a missing one is named and its rows skipped). Its storage lives in
# WORKDIR, driver overlay; RUN steps use the host network as minibuild's do; it uses its default
# OCI runtime (crun on Debian 12) and falls back to runc when crun cannot run here (crun refuses
# hybrid cgroup v1/v2 hosts). Build output goes to WORKDIR/commands.log, never to a terminal.
# Needs root, docker-registry, skopeo, umoci, curl, python3, busybox-static.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

minibuild=build/src/minibuild
workdir=""
rounds=5
files=20000
keep=0
while getopts "m:w:r:n:k" option; do
  case "$option" in
    m) minibuild=$OPTARG ;;
    w) workdir=$OPTARG ;;
    r) rounds=$OPTARG ;;
    n) files=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
  esac
done
[[ $files -ge 100 && $((files % 100)) -eq 0 ]] || { echo "build_cache.sh: -n takes a multiple of 100" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "build_cache.sh: run it as root (buildah runs rootful, overlay)" >&2; exit 2; }
for tool in docker-registry skopeo umoci curl /bin/busybox /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "build_cache.sh: $tool is missing (scripts/setup.sh)" >&2; exit 2; }
done
have_buildah=0
if command -v buildah >/dev/null; then have_buildah=1; else
  echo "build_cache.sh: buildah is missing: its rows are skipped (apt-get install buildah)"
fi
minibuild=$(realpath "$minibuild")
[[ -z $workdir ]] && workdir=$(mktemp -d /var/tmp/minibuild-cache-bench.XXXXXX)
mkdir -p "$workdir"
workdir=$(realpath "$workdir")
registry_pid=""
cleanup() {
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
  bench_unmount_under "$workdir"
  if [[ $keep -eq 0 ]]; then rm -rf "$workdir"; fi
}
trap cleanup EXIT

# --- the registry and the base image -------------------------------------------------------
bench_start_registry "$workdir"
image=$addr/bench/busybox:1

# Debian's static busybox with every applet linked to it: the RUN steps use find, tar, wc, du.
rm -rf "$workdir/image"
mkdir -p "$workdir/image/rootfs/bin" "$workdir/image/rootfs/tmp" "$workdir/image/rootfs/etc"
cp /bin/busybox "$workdir/image/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox ]] || ln -s busybox "$workdir/image/rootfs/bin/$applet"
done
tar -C "$workdir/image/rootfs" --owner=0 --group=0 --numeric-owner -cf "$workdir/image/layer.tar" .
{
  umoci init --layout "$workdir/image/layout"
  umoci new --image "$workdir/image/layout:busybox"
  umoci raw add-layer --image "$workdir/image/layout:busybox" "$workdir/image/layer.tar"
  umoci config --image "$workdir/image/layout:busybox" --no-history --config.cmd=sh \
    --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
} >"$workdir/image/umoci.log" 2>&1
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$workdir/image/layout:busybox" "docker://$image"

# --- the context -----------------------------------------------------------------------------
# src/: FILES text files, 100 per directory, 100 B to 2 KB each (deterministic content), all
# mtimes fixed; app.sh; a Dockerfile of 20 instructions.
ctx=$workdir/ctx
mkdir -p "$ctx"
/usr/bin/python3 - "$ctx/src" "$files" <<'EOF'
import os, sys
root, files = sys.argv[1], int(sys.argv[2])
stamp = 1767225600  # 2026-01-01T00:00:00Z
dirs = []
for i in range(files):
    d = os.path.join(root, "d%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d)
        dirs.append(d)
    size = 100 + (i * 7919) % 1948
    line = ("dir %d file %d: the quick brown fox jumps over the lazy dog\n" % (i // 100, i % 100)).encode()
    body = (line * (size // len(line) + 1))[:size]
    path = os.path.join(d, "f%03d.txt" % (i % 100))
    with open(path, "wb") as f:
        f.write(body)
    os.utime(path, (stamp, stamp))
for d in dirs + [root]:
    os.utime(d, (stamp, stamp))
EOF
write_app() {
  cat >"$ctx/app.sh" <<EOF
#!/bin/sh
# The "app": a report on what the image holds. Revision: $1
set -e
echo "app \$APP_VERSION, revision $1"
echo "files: \$(cat /count)"
echo "directories: \$(ls /src | wc -l)"
echo "tar bytes: \$(cat /src.tar.size)"
EOF
}
write_app 0
cat >"$ctx/Dockerfile" <<EOF
FROM $image
ARG VERSION=1.0
ENV APP_HOME=/src APP_VERSION=\${VERSION}
LABEL org.opencontainers.image.title="build cache bench"
WORKDIR /work
COPY src /src
RUN find /src -type f | wc -l > /count
RUN tar -cf /src.tar /src
RUN wc -c < /src.tar > /src.tar.size
RUN rm /src.tar
RUN du -sk /src > /work/src.du
ENV REPORT=/work/report
LABEL org.opencontainers.image.version=\${VERSION}
WORKDIR /app
COPY app.sh /app/app.sh
RUN sh /app/app.sh > /work/report
RUN cat /work/report /work/src.du
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["sh", "/app/app.sh"]
EOF
[[ $(grep -c . "$ctx/Dockerfile") -eq 20 ]] || { echo "build_cache.sh: the Dockerfile must have 20 lines" >&2; exit 1; }

# --- measuring -----------------------------------------------------------------------------
now_ns() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
summary_s() {
  sort -n | awk '{ a[NR] = $1 } END {
    printf "min %8.3f s   median %8.3f s   max %8.3f s   (%d rounds)",
      a[1] / 1e9, a[int((NR + 1) / 2)] / 1e9, a[NR] / 1e9, NR }'
}
# time_ns CMD...: runs CMD (output to the log), prints its wall time in ns; fails with CMD.
time_ns() {
  local start end
  start=$(now_ns)
  "$@" >>"$workdir/commands.log" 2>&1 || { echo "build_cache.sh: failed: $* (see $workdir/commands.log)" >&2; return 1; }
  end=$(now_ns)
  echo $((end - start))
}
ms() { echo $(($1 / 1000000)); }

mb() { "$minibuild" --root "$workdir/mb/$round" "$@"; }
mb_build() { mb build --iidfile "$workdir/mb-iid" -t bench/app:1 "$ctx"; }
mb_push() { mb push bench/app:1 "$addr/bench/mb-$round:1"; }
bh_runtime=()
bh() {
  buildah --root "$workdir/bh/$round/root" --runroot "$workdir/bh/$round/run" --storage-driver overlay "$@"
}
bh_build() {
  bh build "${bh_runtime[@]}" --layers --pull=never --network=host --iidfile "$workdir/bh-iid" \
    -t bench/app:1 "$ctx"
}
bh_push() { bh push --tls-verify=false bench/app:1 "docker://$addr/bench/bh-$round:1"; }

# A first build of each, not timed: the page cache, the binaries, the peer's runtime choice.
round=warmup
mb pull -q "$image" >/dev/null
mb_build >>"$workdir/commands.log" 2>&1
if [[ $have_buildah -eq 1 ]]; then
  bh pull -q --tls-verify=false "$image" >/dev/null
  container=$(bh from -q --pull=never "$image")
  if ! bh run --network=host "$container" true >"$workdir/peer-probe.log" 2>&1 && command -v runc >/dev/null; then
    bh_runtime=(--runtime runc)
    echo "build_cache.sh: buildah's default runtime fails here ($(tail -n 1 "$workdir/peer-probe.log")): using runc"
  fi
  if ! bh run "${bh_runtime[@]}" --network=host "$container" true >"$workdir/peer-probe.log" 2>&1; then
    echo "build_cache.sh: buildah cannot run true here, its rows are skipped: $(tail -n 2 "$workdir/peer-probe.log")"
    have_buildah=0
  else
    bh rm "$container" >/dev/null
    bh_build >>"$workdir/commands.log" 2>&1
  fi
fi

cases=(cold cached change-app change-src push)
declare -A label=([cold]="cold build" [cached]="fully cached rebuild"
  [change-app]="rebuild, app.sh changed (single-file COPY)"
  [change-src]="rebuild, one src/ file changed (big COPY)" [push]="push to a new repository")
declare -A times=()
problems=()
add() { times[$1]+="$2"$'\n'; }
# mb_case / bh_case CASE: one timed build or push of the round, recorded and checked.
mb_case() {
  local t
  if [[ $1 == push ]]; then t=$(time_ns mb_push); else t=$(time_ns mb_build); fi
  add "mb-$1" "$t"
  line+=" minibuild $(ms "$t")"
  case $1 in
    cold) cold_id=$(cat "$workdir/mb-iid") ;;
    cached) [[ $(cat "$workdir/mb-iid") == "$cold_id" ]] ||
      problems+=("round $round: minibuild's cached rebuild gave $(cat "$workdir/mb-iid"), the cold build $cold_id") ;;
    change-*) [[ $(cat "$workdir/mb-iid") != "$cold_id" ]] ||
      problems+=("round $round: minibuild's $1 build kept the image id $cold_id") ;;
  esac
}
bh_case() {
  local t
  if [[ $have_buildah -eq 0 ]]; then return; fi
  if [[ $1 == push ]]; then t=$(time_ns bh_push); else t=$(time_ns bh_build); fi
  add "bh-$1" "$t"
  line+=" buildah $(ms "$t")"
  if [[ $1 == cold ]]; then bh_cold_id=$(cat "$workdir/bh-iid"); fi
  if [[ $1 == cached && $(cat "$workdir/bh-iid") != "$bh_cold_id" ]]; then bh_new_id=1; fi
}
# Odd rounds run minibuild first in every case, even rounds buildah: each tool meets the other's
# disk writeback alike.
for ((round = 1; round <= rounds; round++)); do
  mb pull -q "$image" >/dev/null
  if [[ $have_buildah -eq 1 ]]; then bh pull -q --tls-verify=false "$image" >/dev/null; fi
  line="round $round (ms):"
  for case in "${cases[@]}"; do
    case $case in
      change-app) write_app "$round" ;;
      change-src) printf 'changed in round %d\n' "$round" >"$ctx/src/d$(printf %03d $(((files / 100) / 2)))/f050.txt" ;;
    esac
    line+=" $case"
    if ((round % 2 == 1)); then mb_case "$case"; bh_case "$case"; else bh_case "$case"; mb_case "$case"; fi
    line+=";"
  done
  echo "$line"
done

# Untimed: what the cached rebuild ran (every keyed step must say CACHED, none may run).
round=$rounds
mb build --progress=plain -t bench/app:1 "$ctx" >"$workdir/plain.log" 2>&1
keyed_steps=$(grep -cE '^#[0-9]+ \[[0-9]+/[0-9]+\] STEP [0-9]+/[0-9]+: (RUN|COPY|ADD|WORKDIR) ' "$workdir/plain.log" || true)
cached_steps=$(grep -cE '^#[0-9]+ CACHED$' "$workdir/plain.log" || true)
if [[ $keyed_steps -eq 0 || $cached_steps -ne $keyed_steps ]]; then
  problems+=("minibuild's cached rebuild: $cached_steps of $keyed_steps steps CACHED ($workdir/plain.log)")
fi

echo
echo "per build or push, $rounds rounds, $files context files ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)):"
row() { printf '%-52s %s\n' "$1" "$(printf '%s' "${times[$2]}" | summary_s)"; }
for case in "${cases[@]}"; do
  row "minibuild ${label[$case]}" "mb-$case"
  if [[ $have_buildah -eq 1 ]]; then row "buildah   ${label[$case]}" "bh-$case"; fi
done
echo
echo "minibuild's cached rebuild (one more, untimed, --progress=plain): $cached_steps of $keyed_steps RUN/COPY/WORKDIR steps CACHED"
echo "checks (cached rebuild = cold build's image id, changed builds = new ids, all steps CACHED): $([[ ${#problems[@]} -eq 0 ]] && echo passed || echo FAILED)"
if [[ $have_buildah -eq 1 ]]; then
  echo "buildah's cached rebuild kept its cold image id: $([[ -z ${bh_new_id:-} ]] && echo yes || echo no)"
fi
for problem in "${problems[@]}"; do echo "CHECK FAILED: $problem"; done
mb_median() { printf '%s' "${times[mb-$1]}" | median; }
if [[ $have_buildah -eq 1 ]]; then
  bh_median() { printf '%s' "${times[bh-$1]}" | median; }
  echo
  echo "minibuild / buildah (medians):"
  for case in "${cases[@]}"; do
    awk -v m="$(mb_median "$case")" -v p="$(bh_median "$case")" -v c="${label[$case]}" \
      'BEGIN { printf "  %-48s %.3f\n", c, m / p }'
  done
  echo
  awk -v m="$(mb_median cold)" -v p="$(bh_median cold)" 'BEGIN {
    printf "target cold build <= 0.8x buildah: %.2f: %s\n", m / p, (m / p <= 0.8 ? "met" : "MISSED") }'
  awk -v m="$(mb_median cached)" -v p="$(bh_median cached)" 'BEGIN {
    printf "target cached rebuild < 0.3 s: %.3f s: %s; <= 0.05x buildah: %.3f: %s\n", m / 1e9,
      (m < 3e8 ? "met" : "MISSED"), m / p, (m / p <= 0.05 ? "met" : "MISSED") }'
else
  awk -v m="$(mb_median cached)" 'BEGIN {
    printf "target cached rebuild < 0.3 s: %.3f s: %s\n", m / 1e9, (m < 3e8 ? "met" : "MISSED") }'
fi
[[ ${#problems[@]} -eq 0 ]]
