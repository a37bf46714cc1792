#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60) on a seed corpus
# made from the project's test data and, when present, ../shared/conformance. Prints libFuzzer's
# final statistics (executions, coverage). Exits non-zero if a target crashes.
#   scripts/fuzz-smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMINIBUILD_FUZZ=ON -DMINIBUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_dockerfile fuzz_shell_lexer fuzz_registry_answers

corpus=build-fuzz/corpus
mkdir -p "$corpus/dockerfile" "$corpus/shell"
i=0
while IFS= read -r -d '' file; do
  cp "$file" "$corpus/dockerfile/seed-$i"
  i=$((i + 1))
done < <(find tests/data ../shared/conformance/buildkit-parser ../shared/conformance/real-dockerfiles \
  -name Dockerfile -type f -print0 2>/dev/null)
if [ -f ../shared/conformance/buildkit-shell/envVarTest ]; then
  grep -v '^#' ../shared/conformance/buildkit-shell/envVarTest | cut -d'|' -f2 |
    sed 's/^ *//;s/ *$//' | split -l 1 - "$corpus/shell/seed-"
fi
printf '%s' '${a:-${b#x*}}"$c"'"'"'d'"'" >"$corpus/shell/seed-handmade"
# Registry answers: the first byte picks the reader (fuzz/fuzz_registry_answers.cpp).
mkdir -p "$corpus/registry"
printf '\000Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"' >"$corpus/registry/challenge"
printf '\001Wed, 21 Oct 2015 07:28:00 GMT' >"$corpus/registry/retry-after"
printf '\002localhost:5000/org/app:1.0@sha256:%064d' 0 >"$corpus/registry/reference"
printf '\003{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}' >"$corpus/registry/error"
j=0
while IFS= read -r -d '' file; do
  for selector in '\004' '\005' '\006' '\007'; do
    { printf "$selector"; cat "$file"; } >"$corpus/registry/doc-$j-${selector#\\}"
  done
  j=$((j + 1))
done < <(find tests/data ../shared/conformance/oci-image-spec -name '*.json' -type f -print0 2>/dev/null | head -z -n 200)

for target in fuzz_dockerfile fuzz_shell_lexer fuzz_registry_answers; do
  dir=$corpus/${target#fuzz_}
  [ "$target" = fuzz_shell_lexer ] && dir=$corpus/shell
  [ "$target" = fuzz_registry_answers ] && dir=$corpus/registry
  echo "== $target for ${seconds}s"
  build-fuzz/fuzz/$target -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -print_final_stats=1 "$dir" 2>&1 | grep -E '^(stat::|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)' || true
  # libFuzzer writes crash-*/timeout-* files into the working directory on failure.
  if ls crash-* timeout-* leak-* oom-* >/dev/null 2>&1; then
    echo "fuzz-smoke: $target found a problem: $(ls crash-* timeout-* leak-* oom-* 2>/dev/null)" >&2
    exit 1
  fi
done
