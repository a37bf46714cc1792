#!/usr/bin/env bash
# Parallel stages (issue 6, `build --jobs N`, docs/multistage.md "Parallel stages"):
# - two independent stages whose RUN steps can only finish together (each waits for the other's
#   mark in a shared cache mount) build with --jobs 2 and with the default (one job per CPU),
#   and time out with --jobs 1, which builds one stage after the other: proof that the steps
#   overlap, not a timing guess;
# - the stage that uses both waits for them (its COPY --from sees their files);
# - a rebuild is fully CACHED and gives the same manifest digest;
# - a failing stage stops the other one at once: its running step is killed and reported
#   cancelled, the build names the failing line, and nothing is left running or in tmp/;
# - the stages meet the rootless ways too: a user with a subordinate id range, and uid 65534
#   with the single-id map (users_lib.sh).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/images_lib.sh"
source "$(dirname "$0")/users_lib.sh"
registry_require_tools
images_require_tools
users_require_tools
ways_setup minibuild-it-par

registry_start REG plain
make_busybox_image "$REG_ADDR" test/busybox:1
make_busybox_image "$REG_ADDR" test/other:1 --fixtures
base="$REG_ADDR/test/busybox:1"

# rendezvous_dockerfile DIR ID: stages a and b each leave a mark in the cache mount ID and wait
# (at most 5 s, then exit 3) for the other's; the last stage copies both results.
rendezvous_dockerfile() {
  local dir=$1 id=$2
  mkdir -p "$dir"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM $base AS a
RUN --mount=type=cache,id=$id,target=/meet touch /meet/a && i=0; while [ ! -e /meet/b ]; do i=\$((i+1)); [ \$i -lt 50 ] || exit 3; sleep 0.1; done; echo from-a >/a

FROM $base AS b
RUN --mount=type=cache,id=$id,target=/meet touch /meet/b && i=0; while [ ! -e /meet/a ]; do i=\$((i+1)); [ \$i -lt 50 ] || exit 3; sleep 0.1; done; echo from-b >/b

FROM $base
COPY --from=a /a /a
COPY --from=b /b /b
RUN cat /a /b >/ab
DOCKERFILE
}
manifest_digest() {
  sed -n 's/^manifest \(sha256:[0-9a-f]*\)$/\1/p' <<<"$err" | tail -1
}

# ---- --jobs 2: the two RUN steps overlap ----
rendezvous_dockerfile "$work_dir/ctx2" meet-jobs2
run_mb --root "$work_dir/s2" build --progress plain --jobs 2 -t par:1 "$work_dir/ctx2"
expect_rc 0 "--jobs 2: stages a and b meet"
first=$(manifest_digest)
run_mb --root "$work_dir/s2" run --rm par:1 cat /ab
expect_rc 0 "--jobs 2: run the image"
expect_equal "$out" $'from-a\nfrom-b' "the last stage copied both stages' results"

run_mb --root "$work_dir/s2" build --progress plain --jobs 2 -t par:1 "$work_dir/ctx2"
expect_rc 0 "--jobs 2: rebuild"
cached=$(grep -c '^#[0-9]* CACHED$' <<<"$err")
expect_equal "$cached" 5 "the rebuild's 5 RUN/COPY steps are CACHED"
expect_equal "$(manifest_digest)" "$first" "the rebuild gives the same manifest digest"

# ---- two stages on two images not yet stored: both pulled, at the same time ----
mkdir -p "$work_dir/ctxp"
cat >"$work_dir/ctxp/Dockerfile" <<DOCKERFILE
FROM $base AS one
RUN echo one >/one

FROM $REG_ADDR/test/other:1 AS two
RUN echo two >/two

FROM $base
COPY --from=one /one /one
COPY --from=two /two /two
DOCKERFILE
run_mb --root "$work_dir/sp" build --progress plain --jobs 2 -t par:3 "$work_dir/ctxp"
expect_rc 0 "--jobs 2 into an empty store: the stages' two base images are pulled in parallel"
run_mb --root "$work_dir/sp" images
expect_contains "$out" "test/other" "the second base image is in the store"
run_mb --root "$work_dir/sp" run --rm par:3 cat /one /two
expect_equal "$out" $'one\ntwo' "the image holds both stages' files"

# ---- --jobs 1: one stage after the other, so they cannot meet ----
rendezvous_dockerfile "$work_dir/ctx1" meet-jobs1
run_mb --root "$work_dir/s1" build --progress plain --jobs 1 -t par:1 "$work_dir/ctx1"
expect_rc 1 "--jobs 1: the first stage waits for the second in vain"
expect_contains "$err" "did not complete successfully: exit code 3" "--jobs 1: the wait timed out"

# ---- the default: one job per CPU ----
if [ "$(nproc)" -ge 2 ]; then
  rendezvous_dockerfile "$work_dir/ctxd" meet-default
  run_mb --root "$work_dir/sd" build --progress plain -t par:1 "$work_dir/ctxd"
  expect_rc 0 "default --jobs ($(nproc) CPUs): stages a and b meet"
else
  echo "note: one CPU, so the default --jobs is 1: its check is skipped"
fi

# ---- a failing stage cancels the other ----
mkdir -p "$work_dir/ctxf"
cat >"$work_dir/ctxf/Dockerfile" <<DOCKERFILE
FROM $base AS slow
RUN sleep 60; echo never >/slow

FROM $base AS broken
RUN sleep 0.5; exit 5

FROM scratch
COPY --from=slow /slow /slow
COPY --from=broken /bin /bin
DOCKERFILE
start=$(date +%s)
run_mb --root "$work_dir/sf" build --progress plain --jobs 2 -t par:2 "$work_dir/ctxf"
elapsed=$(($(date +%s) - start))
expect_rc 1 "a failing stage fails the build"
expect_contains "$err" "Dockerfile:5:1: process \"/bin/sh -c sleep 0.5; exit 5\" did not complete successfully: exit code 5" \
  "the error names the failing stage's line"
expect_contains "$err" "ERROR: cancelled: another stage failed" "the other stage's step is reported cancelled"
# The slow step sleeps 60 s: the build ending well before proves it was killed.
if [ "$elapsed" -lt 30 ]; then pass "the build ended in ${elapsed}s, not after the 60 s step"; else
  failed "the build took ${elapsed}s: the other stage's step was not cancelled"
fi
if pgrep -f "sleep 60" >/dev/null; then failed "a 'sleep 60' process is still running"; else
  pass "no step process is left"
fi
left=$(find "$work_dir/sf/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
expect_equal "$left" 0 "the store's tmp/ is empty"
run_mb --root "$work_dir/sf" fsck
expect_rc 0 "fsck after the failed parallel build"

# ---- the rootless ways ----
for way in sub single; do
  if [[ " $WAYS " != *" $way "* ]]; then
    echo "skipped: $way: $(way_skip_reason "$way")"
    continue
  fi
  rendezvous_dockerfile "$work_dir/ctx-$way" "meet-$way"
  chmod -R a+rX "$work_dir/ctx-$way"
  mb "$way" build --progress plain --jobs 2 -t par:1 "$work_dir/ctx-$way"
  expect_rc 0 "$way: --jobs 2: stages a and b meet"
  mb "$way" run --rm par:1 cat /ab
  expect_equal "$out" $'from-a\nfrom-b' "$way: the last stage copied both stages' results"
done

finish
