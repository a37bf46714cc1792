#!/usr/bin/env bash
# Pull benchmark: `minibuild pull` (parallel streaming download + verify + unpack into the store)
# against `skopeo copy docker://… oci:DIR` (download + verify, no unpack) of the same multi-layer
# image from a docker-registry on loopback, interleaved round by round in one run.
#
#   bench/pull.sh [-m MINIBUILD] [-w WORKDIR] [-r ROUNDS] [-j DOWNLOADS] [-k]
#
#   -m  the minibuild binary (default: build/src/minibuild; a Release or RelWithDebInfo build)
#   -w  work directory (default: a new directory under /var/tmp); the image context, the
#       registry's storage and the pull targets live there
#   -r  rounds; each round times one minibuild pull and one skopeo copy (default 5)
#   -j  minibuild --max-concurrent-downloads (default 4)
#   -k  keep the work directory (a later run with the same -w reuses the image)
#
# The image: 6 layers made by `minibuild build` (FROM scratch, one COPY per layer) from real
# files of this machine (/usr/bin, /usr/lib/gcc, /usr/include, /usr/share/locale, ...), at
# least 200 MB compressed, pushed to the registry with skopeo. Needs root (docker-registry is
# started as a child; umoci unpacks with owners), docker-registry, skopeo, umoci, python3.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

minibuild=build/src/minibuild
workdir=""
rounds=5
downloads=4
keep=0
while getopts "m:w:r:j:k" option; do
  case "$option" in
    m) minibuild=$OPTARG ;;
    w) workdir=$OPTARG ;;
    r) rounds=$OPTARG ;;
    j) downloads=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
for tool in docker-registry skopeo umoci /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing (scripts/setup.sh)" >&2; exit 2; }
done
minibuild=$(realpath "$minibuild")
[[ -z $workdir ]] && workdir=$(mktemp -d /var/tmp/minibuild-pull-bench.XXXXXX)
mkdir -p "$workdir"
registry_pid=""
cleanup() {
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null || true
  if [[ $keep -eq 0 ]]; then rm -rf "$workdir"; fi
}
trap cleanup EXIT

# --- the registry ---------------------------------------------------------------------------
bench_start_registry "$workdir" "delete: {enabled: true}"

# --- the image ------------------------------------------------------------------------------
ctx=$workdir/ctx
if [[ ! -f $workdir/layout/index.json ]]; then
  mkdir -p "$ctx"
  sources=(/usr/bin /usr/lib/gcc /usr/include /usr/share/locale /usr/lib/python3.11 /usr/share/doc
           /usr/libexec /usr/share/perl /usr/lib/llvm-14/lib)
  dockerfile="FROM scratch"
  layers=0
  for source in "${sources[@]}"; do
    [[ -d $source ]] || continue
    name=layer$layers
    cp -a "$source" "$ctx/$name"
    dockerfile+=$'\n'"COPY $name /$name"
    layers=$((layers + 1))
    [[ $layers -ge 6 ]] && break
  done
  printf '%s\n' "$dockerfile" >"$ctx/Dockerfile"
  "$minibuild" --root "$workdir/build-store" build -q -t bench/pull:1 \
    --output "type=oci,dest=$workdir/layout" "$ctx" >/dev/null
  rm -rf "$workdir/build-store" "$ctx"
fi
skopeo copy -q --dest-tls-verify=false "oci:$workdir/layout" "docker://$addr/bench/pull:1"
read -r layer_count compressed < <(/usr/bin/python3 - "$workdir/layout" <<'EOF'
import json, os, sys
d = sys.argv[1]
index = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(os.path.join(d, "blobs", "sha256", index["manifests"][0]["digest"][7:])))
print(len(m["layers"]), sum(l["size"] for l in m["layers"]))
EOF
)
echo "image: $layer_count layers, $((compressed / 1000000)) MB compressed, registry $addr"

# --- rounds ---------------------------------------------------------------------------------
# Three rows: minibuild pull (blobs verified AND unpacked into layer trees); skopeo copy to an
# OCI layout (blobs verified, nothing unpacked: the issue's comparison); and skopeo copy followed
# by `umoci raw unpack` (the same end state as minibuild: a root filesystem on disk).
now() { date +%s.%N; }
elapsed() { awk -v end="$(now)" -v start="$1" 'BEGIN { printf "%.3f", end - start }'; }
mb_times=()
sk_times=()
eq_times=()
# Every round writes into new directories, and nothing is deleted until the end: ext4 skips
# inodes freed in the last ~30 s when it allocates new ones, which made a run right after
# `rm -rf` of the previous round's 21,000 files up to 1.5x slower (perf: recently_deleted()
# under ext4_create) -- for minibuild and umoci, not for skopeo, which writes a few files.
for round in $(seq "$rounds"); do
  dir=$workdir/round-$round
  rm -rf "$dir"
  mkdir -p "$dir"
  sync
  start=$(now)
  "$minibuild" --root "$dir/mb-store" pull -q --max-concurrent-downloads "$downloads" \
    "$addr/bench/pull:1" >/dev/null
  mb_times+=("$(elapsed "$start")")
  sync
  start=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$addr/bench/pull:1" "oci:$dir/sk-layout:x"
  sk_times+=("$(elapsed "$start")")
  sync
  start=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$addr/bench/pull:1" "oci:$dir/sk-layout2:x"
  umoci raw unpack --image "$dir/sk-layout2:x" "$dir/sk-rootfs" >/dev/null 2>&1
  eq_times+=("$(elapsed "$start")")
  echo "round $round: minibuild ${mb_times[-1]} s, skopeo ${sk_times[-1]} s, skopeo+umoci ${eq_times[-1]} s"
done
"$minibuild" --root "$workdir/round-$rounds/mb-store" fsck >/dev/null && echo "minibuild store: fsck clean"
rm -rf "$workdir"/round-*

summary() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "best %.2f s, median %.2f s", a[1], a[int((NR+1)/2)]}'
}
echo "minibuild pull (unpacked, -j $downloads): $(summary "${mb_times[@]}")"
echo "skopeo copy to oci: (not unpacked):        $(summary "${sk_times[@]}")"
echo "skopeo copy + umoci raw unpack:             $(summary "${eq_times[@]}")"
mb_median=$(printf '%s\n' "${mb_times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
sk_median=$(printf '%s\n' "${sk_times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
eq_median=$(printf '%s\n' "${eq_times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "speed-up vs skopeo copy (median / median):          $(awk -v s="$sk_median" -v m="$mb_median" 'BEGIN { printf "%.2f", s / m }')x"
echo "speed-up vs skopeo copy + umoci unpack (same work): $(awk -v s="$eq_median" -v m="$mb_median" 'BEGIN { printf "%.2f", s / m }')x"
