#!/usr/bin/env bash
# `minibuild parse --format buildkit` against BuildKit's parser test files, through the CLI:
# every positive case prints its `result` byte for byte, every negative case exits 2; and every
# real-world Dockerfile parses and plans.
source "$(dirname "$0")/lib.sh"

conformance="${MINIBUILD_CONFORMANCE_DIR:-}"
[ -d "$conformance/buildkit-parser" ] || skip "conformance data not found at '$conformance'"

for case_dir in "$conformance"/buildkit-parser/*/; do
  name=$(basename "$case_dir")
  [ -f "$case_dir/Dockerfile" ] || continue
  [ "$name" = testfile-line ] && continue
  if [ -f "$case_dir/result" ]; then
    "$MINIBUILD" parse --format buildkit -f "$case_dir/Dockerfile" >"$work_dir/out" 2>"$work_dir/err" && rc=0 || rc=$?
    if [ "$rc" -eq 0 ] && cmp -s "$work_dir/out" "$case_dir/result"; then
      pass "buildkit-parser/$name"
    else
      failed "buildkit-parser/$name: exit $rc; $(diff "$case_dir/result" "$work_dir/out" | head -5)"
    fi
  else
    "$MINIBUILD" parse -f "$case_dir/Dockerfile" >/dev/null 2>"$work_dir/err" && rc=0 || rc=$?
    if [ "$rc" -eq 2 ]; then pass "buildkit-parser/$name is rejected: $(head -1 "$work_dir/err")"; else
      failed "buildkit-parser/$name: exit $rc, wanted 2"
    fi
  fi
done

for dockerfile in "$conformance"/real-dockerfiles/*/Dockerfile; do
  name=$(basename "$(dirname "$dockerfile")")
  "$MINIBUILD" parse --format plan -f "$dockerfile" >/dev/null 2>"$work_dir/err" && rc=0 || rc=$?
  if [ "$rc" -eq 0 ]; then pass "real-dockerfiles/$name plans"; else
    failed "real-dockerfiles/$name: exit $rc: $(head -3 "$work_dir/err")"
  fi
done

finish
