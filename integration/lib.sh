# Shared helpers for integration scripts. Source it; call `finish` at the end.
# Each check prints "ok" or "FAIL" with a description; `finish` prints the totals and exits
# non-zero when anything failed. `skip REASON` exits 77, which ctest reports as skipped.
set -u
: "${MINIBUILD:?MINIBUILD must point at the minibuild binary (ctest sets it)}"

checks_passed=0
checks_failed=0
work_dir=$(mktemp -d "${TMPDIR:-/tmp}/minibuild-it.XXXXXX")
trap 'rm -rf "$work_dir"' EXIT
# Never touch the real store (/var/lib/minibuild for root) from a test.
export MINIBUILD_ROOT="$work_dir/default-root"

skip() {
  echo "skipped: $*"
  exit 77
}

pass() {
  checks_passed=$((checks_passed + 1))
  echo "ok   - $*"
}

failed() {
  checks_failed=$((checks_failed + 1))
  echo "FAIL - $*"
}

# run_mb ARGS...: runs minibuild, capturing stdout, stderr and the exit code in
# $out, $err and $rc.
run_mb() {
  local stdin_file="${STDIN_FILE:-/dev/null}"
  out=$("$MINIBUILD" "$@" <"$stdin_file" 2>"$work_dir/stderr") && rc=0 || rc=$?
  err=$(cat "$work_dir/stderr")
}

expect_rc() {
  local want=$1 description=$2
  if [ "$rc" -eq "$want" ]; then pass "$description (exit $rc)"; else
    # The error is at the end of stderr (after any progress output).
    local start=$((${#err} > 600 ? ${#err} - 600 : 0))
    failed "$description: exit $rc, wanted $want; stderr ends: ${err:start}"
  fi
}

expect_contains() {
  local haystack=$1 needle=$2 description=$3
  if [[ "$haystack" == *"$needle"* ]]; then pass "$description"; else
    failed "$description: missing \"$needle\" in: ${haystack:0:400}"
  fi
}

expect_equal() {
  local got=$1 want=$2 description=$3
  if [ "$got" = "$want" ]; then pass "$description"; else
    failed "$description: got \"${got:0:300}\", wanted \"${want:0:300}\""
  fi
}

finish() {
  echo "$checks_passed passed, $checks_failed failed"
  [ "$checks_failed" -eq 0 ]
}
