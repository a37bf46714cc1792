#!/usr/bin/env bash
# The command-line contract: commands, help, global options, short form, exit codes, errors.
source "$(dirname "$0")/lib.sh"

run_mb
expect_rc 2 "no arguments is a usage error"
expect_contains "$err" "Usage: minibuild" "no arguments prints usage"

for command in build parse pull push run images inspect history rmi prune login logout fsck save version; do
  run_mb "$command" --help
  expect_rc 0 "$command --help"
  expect_contains "$out" "minibuild $command" "$command --help shows its usage line"
done

run_mb --version
expect_rc 0 "--version"
expect_contains "$out" "minibuild version" "--version prints the version"
run_mb version --format json
expect_rc 0 "version --format json"
expect_contains "$out" '"libseccomp"' "version lists library versions"

run_mb build --no-such-flag .
expect_rc 2 "an unknown flag is a usage error"

ctx="$work_dir/ctx"
mkdir -p "$ctx"
printf 'FROM scratch\nCOPY a /a\n' >"$ctx/Dockerfile"

# Global options work before and after the command name, and the short form means `build`.
run_mb --root "$work_dir/root" parse -f "$ctx/Dockerfile"
expect_rc 0 "--root before the command"
run_mb parse --root "$work_dir/root" -f "$ctx/Dockerfile"
expect_rc 0 "--root after the command"
run_mb --root "$work_dir/root" build -t app:1 "$ctx"
long_rc=$rc long_err=$err
run_mb --root "$work_dir/root" -t app:1 "$ctx"
[ "$rc" -eq "$long_rc" ] && [ "$err" = "$long_err" ] &&
  pass "short form behaves as build (exit $rc)" || failed "short form: exit $rc vs $long_rc"
run_mb --root "$work_dir/root" -f "$ctx/Dockerfile" -t app:1 "$ctx"
expect_rc 1 "a COPY of a missing file fails the build"
expect_contains "$err" "Dockerfile:2" "the error names the COPY line"
echo hello >"$ctx/a"
run_mb --root "$work_dir/root" -f "$ctx/Dockerfile" -t app:1 "$ctx"
expect_rc 0 "build of FROM scratch + COPY"
run_mb --root "$work_dir/root" -q -t app:2 "$ctx"
expect_rc 0 "build -q"
[[ "$out" =~ ^sha256:[0-9a-f]{64}$ ]] && pass "build -q prints only the image id" ||
  failed "build -q printed: $out"

run_mb --root "$work_dir/root" build "$work_dir/nonexistent"
expect_rc 3 "a missing context is not_found"
expect_contains "$err" "nonexistent" "the error names the context"
run_mb parse -f "$work_dir/missing.Dockerfile"
expect_rc 3 "a missing Dockerfile is not_found"
expect_contains "$err" "missing.Dockerfile" "the error names the Dockerfile"

run_mb --root "$work_dir/root" run --pull never no-such-image:1 true
expect_rc 3 "run of an image the store lacks, with --pull never, is not_found"
expect_contains "$err" "no-such-image:1" "the error names the image"
run_mb pull "Not/A:Valid:Reference"
expect_rc 2 "an invalid image reference is a usage error"
expect_contains "$err" "Not/A:Valid:Reference" "the error quotes the reference"
run_mb push no-such-image:1 localhost:1/x:1
expect_rc 3 "pushing an image that is not stored is not_found"

# Dockerfile errors: exit 2, file:line:column, the line and a caret.
printf 'FROM scratch\nRUNN echo hi\n' >"$ctx/Dockerfile"
run_mb parse --format plan -f "$ctx/Dockerfile"
expect_rc 2 "an unknown instruction is a Dockerfile error"
expect_contains "$err" "Dockerfile:2:1: " "the error names file, line and column"
expect_contains "$err" 'unknown instruction "RUNN" (did you mean RUN?)' "the error suggests RUN"
expect_contains "$err" " 2 | RUNN echo hi" "the error quotes the line"
run_mb --root "$work_dir/root" -t x "$ctx"
expect_rc 2 "build rejects the same Dockerfile"

printf 'FROM scratch\nRUN <<EOF\necho never closed\n' >"$ctx/Dockerfile"
run_mb parse -f "$ctx/Dockerfile"
expect_rc 2 "an unterminated heredoc is an error"
expect_contains "$err" "EOF" "the error names the heredoc"

printf 'FROM scratch\nCOPY --chwon=1 a /a\n' >"$ctx/Dockerfile"
run_mb parse --format plan -f "$ctx/Dockerfile"
expect_rc 2 "an unknown flag in the Dockerfile is an error"
expect_contains "$err" "chwon" "the error names the flag"

printf 'FROM scratch\nCMD [\"a\", [\"b\"]]\n' >"$ctx/Dockerfile"
run_mb parse -f "$ctx/Dockerfile"
expect_rc 2 "an exec form with a non-string element is an error"

printf 'ARG 1BAD=x\nFROM scratch\n' >"$ctx/Dockerfile"
run_mb parse --format plan -f "$ctx/Dockerfile"
expect_rc 2 "an invalid ARG name is an error"

# stdin, JSON format and plan with --target.
printf 'FROM busybox AS base\nFROM base AS app\nCOPY --from=base /bin/sh /sh\nFROM scratch AS other\n' >"$ctx/Dockerfile"
STDIN_FILE="$ctx/Dockerfile" run_mb parse -f - --format json
expect_rc 0 "parse reads stdin"
expect_contains "$out" '"keyword": "copy"' "json output has the instructions"
run_mb parse --format plan --target app -f "$ctx/Dockerfile"
expect_rc 0 "plan with --target"
expect_contains "$out" "app" "the plan shows the target stage"
run_mb parse --format plan --target nope -f "$ctx/Dockerfile"
expect_rc 3 "an unknown --target is not_found"
expect_contains "$err" "nope" "the error names the target"

finish
