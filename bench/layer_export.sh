#!/usr/bin/env bash
# Layer export benchmark: minibuild's one-pass export (tar + compression + both digests) against
# `tar -c | gzip`, `tar -c | pigz` and `tar -c | zstd` on the same tree, in the same run.
# See bench/README.md for the tree and how to read the figures.
#
#   bench/layer_export.sh [-b BENCH_BINARY] [-w WORKDIR] [-r REPEATS] [-k]
#
#   -b  the layer_export_bench binary (default: build/bench/layer_export_bench; build it in a
#       Release tree: cmake -DCMAKE_BUILD_TYPE=Release ... && ninja layer_export_bench)
#   -w  work directory for the tree and the outputs (default: a new directory under /var/tmp)
#   -r  runs per tool; the table shows the best and the median (default 3)
#   -k  keep the work directory (a later run with the same -w reuses the tree)
set -euo pipefail

bench=build/bench/layer_export_bench
workdir=""
repeats=3
keep=0
while getopts "b:w:r:k" option; do
  case "$option" in
    b) bench=$OPTARG ;;
    w) workdir=$OPTARG ;;
    r) repeats=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done

if [[ ! -x $bench ]]; then
  echo "layer_export.sh: $bench is not built (ninja layer_export_bench)" >&2
  exit 2
fi
bench=$(realpath "$bench")
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d /var/tmp/minibuild-layer-bench.XXXXXX)
fi
mkdir -p "$workdir"
if [[ $keep -eq 0 ]]; then
  trap 'rm -rf "$workdir"' EXIT
fi
tree=$workdir/tree
out=$workdir/out
mkdir -p "$out"

target_files=20000
target_bytes=$((500 * 1000 * 1000))
copy_files=17000
copy_bytes=$((420 * 1000 * 1000))

# --- the tree -------------------------------------------------------------------------------
# 1. Real files from /usr (binaries, shared libraries, headers, docs), taken in a fixed
#    pseudo-random order (sort, then shuf seeded with `yes`) until 17,000 files or 420 MB:
#    the mix of an image layer, binaries compressing ~2.5-3x and text ~4x.
# 2. Generated files up to 20,000 files and 500 MB in total: slices of a 4 MiB seed made of
#    /usr/include text with 1/4 random bytes, sizes cycling from 512 B to 256 KiB.
make_tree() {
  set +o pipefail # head and awk stop reading early on purpose
  rm -rf "$tree"
  mkdir -p "$tree/usr" "$tree/gen"
  local list=$workdir/files.txt
  find /usr/lib/x86_64-linux-gnu /usr/bin /usr/include /usr/share/doc /usr/lib/gcc \
      -type f -size -16M -readable -printf '%p\t%s\n' 2>/dev/null | LC_ALL=C sort |
    shuf --random-source=<(yes) |
    awk -F'\t' -v max_files="$copy_files" -v max_bytes="$copy_bytes" '
      total + $2 > max_bytes || count >= max_files { exit }
      { total += $2; count++; print $1 }' > "$list"
  tar -cf - -P -T "$list" 2>/dev/null | tar -xf - -C "$tree"
  local copied_files copied_bytes
  copied_files=$(find "$tree" -type f | wc -l)
  copied_bytes=$(du -sb --apparent-size "$tree" | cut -f1)

  local seed=$workdir/seed
  {
    find /usr/include -name '*.h' -type f | LC_ALL=C sort | head -2000 | xargs cat 2>/dev/null |
      head -c $((3 * 1024 * 1024))
    head -c $((1024 * 1024)) /dev/urandom
  } > "$seed"
  local sizes=(512 2048 8192 32768 131072 262144 4096 65536)
  local remaining_files=$((target_files - copied_files))
  local remaining_bytes=$((target_bytes - copied_bytes))
  local i=0 size offset dir
  while (( remaining_files > 1 )); do
    size=${sizes[$((i % ${#sizes[@]}))]}
    if (( size > remaining_bytes / remaining_files * 4 )); then
      size=$((remaining_bytes / remaining_files))
    fi
    offset=$(( (i * 7919) % (4 * 1024 * 1024 - size - 1) ))
    dir=$tree/gen/d$((i / 200))
    [[ -d $dir ]] || mkdir -p "$dir"
    tail -c +$((offset + 1)) "$seed" | head -c "$size" > "$dir/f$i"
    remaining_bytes=$((remaining_bytes - size))
    remaining_files=$((remaining_files - 1))
    i=$((i + 1))
  done
  # The last file takes the rest of the byte budget.
  if (( remaining_bytes > 0 )); then
    for ((j = 0; j * 4194304 < remaining_bytes; j++)); do cat "$seed"; done |
      head -c "$remaining_bytes" > "$tree/gen/last"
  fi
  # Fixed mtimes so every run compresses the same tar.
  find "$tree" -exec touch -h -d @1700000000 {} +
  set -o pipefail
}

if [[ -f $workdir/tree.complete ]]; then
  echo "== reusing the tree in $tree (delete $workdir/tree.complete to rebuild it)"
else
  echo "== building the tree in $tree"
  make_tree
  touch "$workdir/tree.complete"
fi
files=$(find "$tree" -type f | wc -l)
dirs=$(find "$tree" -type d | wc -l)
bytes=$(du -sb --apparent-size "$tree" | cut -f1)
echo "tree: $files files, $dirs directories, $((bytes / 1000000)) MB"
tar -cf /dev/null -C "$tree" . # warm the page cache

cpus=$(nproc)
echo "cpus: $cpus; load: $(cut -d' ' -f1-3 /proc/loadavg)"
have_pigz=1
if ! command -v pigz > /dev/null; then
  have_pigz=0
  echo "pigz is not installed: the tar | pigz row is skipped (apt-get install pigz)"
fi

# Each tool is a shell function; every round runs all of them once, so a change in the machine's
# load (other builds on a shared box) hits every tool alike. Wall and CPU (user + sys of the
# whole pipeline) are recorded per run; the table shows the best and median wall time and the
# median CPU time.
mb_gzip() { "$bench" --compression gzip "$tree" "$out/mb.tar.gz"; }
mb_gzip_1() { "$bench" --compression gzip --threads 1 "$tree" "$out/mb1.tar.gz"; }
tar_pigz() { tar -cf - -C "$tree" . | pigz -6 -p "$cpus" > "$out/tar.pigz.gz"; }
tar_gzip() { tar -cf - -C "$tree" . | gzip -6 > "$out/tar.gz"; }
# The same work as minibuild's export: pigz plus a SHA-256 of the tar (diffID) and of the blob
# (digest), hashed with OpenSSL (SHA-NI) like minibuild; sha256sum(1) is 4-5x slower.
hash_cmd() { if command -v openssl > /dev/null; then openssl dgst -sha256; else sha256sum; fi; }
tar_pigz_digests() {
  rm -f "$workdir/tar.fifo" "$workdir/blob.fifo"
  mkfifo "$workdir/tar.fifo" "$workdir/blob.fifo"
  hash_cmd < "$workdir/tar.fifo" > "$out/tar.sha256" &
  hash_cmd < "$workdir/blob.fifo" > "$out/blob.sha256" &
  tar -cf - -C "$tree" . | tee "$workdir/tar.fifo" | pigz -6 -p "$cpus" |
    tee "$workdir/blob.fifo" > "$out/tar.pigz2.gz"
  wait
}
mb_zstd() { "$bench" --compression zstd "$tree" "$out/mb.tar.zst"; }
tar_zstd() { tar -cf - -C "$tree" . | zstd -q -3 -T"$cpus" > "$out/tar.zst"; }
mb_none() { "$bench" --compression none "$tree" "$out/mb.tar"; }

tools=(mb_gzip tar_pigz tar_pigz_digests mb_gzip_1 tar_gzip mb_zstd tar_zstd mb_none)
declare -A label output
label[mb_gzip]="minibuild gzip -6 ($cpus threads)"; output[mb_gzip]=$out/mb.tar.gz
label[mb_gzip_1]="minibuild gzip -6 (1 thread)"; output[mb_gzip_1]=$out/mb1.tar.gz
label[tar_pigz]="tar -c | pigz -6 -p $cpus"; output[tar_pigz]=$out/tar.pigz.gz
label[tar_gzip]="tar -c | gzip -6"; output[tar_gzip]=$out/tar.gz
label[tar_pigz_digests]="tar -c | pigz + both sha256"; output[tar_pigz_digests]=$out/tar.pigz2.gz
label[mb_zstd]="minibuild zstd -3 ($cpus threads)"; output[mb_zstd]=$out/mb.tar.zst
label[tar_zstd]="tar -c | zstd -3 -T$cpus"; output[tar_zstd]=$out/tar.zst
label[mb_none]="minibuild none (tar + sha256)"; output[mb_none]=$out/mb.tar
if [[ $have_pigz -eq 0 ]]; then
  tools=("${tools[@]/tar_pigz_digests/}")
  tools=("${tools[@]/tar_pigz/}")
fi
declare -A walls cpus_used

echo "== timing ($repeats rounds, tools interleaved)"
TIMEFORMAT='%R %U %S'
for ((round = 1; round <= repeats; round++)); do
  for tool in "${tools[@]}"; do
    [[ -n $tool ]] || continue
    rm -f "${output[$tool]}"
    { time "$tool" > /dev/null 2>&1; } 2> "$workdir/time"
    read -r real user sys < "$workdir/time"
    walls[$tool]+="$real "
    cpus_used[$tool]+="$(echo "$user + $sys" | bc -l) "
    printf 'round %d  %-34s %7.2fs wall %7.2fs cpu\n' "$round" "${label[$tool]}" "$real" \
      "$(echo "$user + $sys" | bc -l)"
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
best() { tr ' ' '\n' | grep . | sort -g | head -1; }
rows=()
for tool in "${tools[@]}"; do
  [[ -n $tool ]] || continue
  b=$(echo "${walls[$tool]}" | best)
  m=$(echo "${walls[$tool]}" | median)
  c=$(echo "${cpus_used[$tool]}" | median)
  rows+=("$(printf '%-34s %7.2f %7.2f %7.2f %7.1f %12d' "${label[$tool]}" "$b" "$m" "$c" \
    "$(echo "$bytes / 1000000 / $b" | bc -l)" "$(stat -c %s "${output[$tool]}")")")
done

echo "== checks"
"$bench" --compression gzip --threads 1 "$tree" "$out/check1.tar.gz" | grep digest > "$out/d1"
"$bench" --compression gzip --threads "$((cpus * 2))" "$tree" "$out/check2.tar.gz" |
  grep digest > "$out/d2"
if cmp -s "$out/d1" "$out/d2" && cmp -s "$out/check1.tar.gz" "$out/mb.tar.gz"; then
  echo "gzip blob identical for 1, $cpus and $((cpus * 2)) threads: $(cut -c12- "$out/d1")"
else
  echo "MISMATCH between thread counts" >&2
  exit 1
fi
gzip -t "$out/mb.tar.gz" && echo "gzip -t: ok"
zstd -q -t "$out/mb.tar.zst" && echo "zstd -t: ok"
diff_id=$("$bench" --compression none "$tree" "$out/mb.tar" | awk '/diff_id/ {print $2}')
if [[ "sha256:$(gzip -dc "$out/mb.tar.gz" | sha256sum | cut -d' ' -f1)" == "$diff_id" ]]; then
  echo "diffID = sha256(gunzip(blob)): ok"
else
  echo "diffID mismatch" >&2
  exit 1
fi

echo
echo "== results: $files files, $((bytes / 1000000)) MB, $cpus CPUs"
printf '%-34s %7s %7s %7s %7s %12s\n' "tool" "best s" "med s" "cpu s" "MB/s" "output bytes"
printf '%s\n' "${rows[@]}"
