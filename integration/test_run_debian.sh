#!/usr/bin/env bash
# RUN in a real distribution (issue #5): the image-slimming guides' classic example. FROM a
# Debian 12 image made on this machine by mmdebstrap (debian_image.sh), apt-get installs gcc
# from the host's own mirror through the host network, a COPY'd hello.c is compiled and run in
# the next step, and `minibuild run` runs the result. Two ways: as root, and as a user the test
# creates with a subordinate id range (apt drops to its _apt user, gcc's files belong to root:
# this needs ids 1..65536 mapped). Each way gets its own store, so neither reuses the other's
# layers; each prints how long it took (the whole test should stay under ~5 min on 2 cores,
# most of it downloading and unpacking gcc).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/debian_image.sh"
source "$(dirname "$0")/users_lib.sh"
registry_require_tools
users_require_tools
for tool in mmdebstrap umoci tar timeout; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh installs it)"
done
debian_image_mirror_reachable || skip "$DEBIAN_IMAGE_REASON"

# Every minibuild call gets this long; a hung sandbox then fails the test instead of ctest.
export MB_TIMEOUT=600

registry_start REG plain
started=$SECONDS
make_debian_image "$REG_ADDR" test/debian:12 && image_rc=0 || image_rc=$?
[ "$image_rc" -eq 77 ] && skip "$DEBIAN_IMAGE_REASON"
if [ "$image_rc" -ne 0 ]; then
  failed "make the Debian 12 base image: $DEBIAN_IMAGE_REASON"
  [ -f "$DEBIAN_IMAGE_LOG" ] && tail -n 30 "$DEBIAN_IMAGE_LOG" | sed 's/^/    | /'
  finish
  exit 1
fi
pass "the Debian 12 base image is in the registry ($((SECONDS - started)) s)"

chmod 0755 "$work_dir"
ctx="$work_dir/ctx"
mkdir -p "$ctx"
cat >"$ctx/hello.c" <<'EOF'
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("Hello from a minibuild RUN step");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
EOF
# The exec-form RUN checks that the compiled program is in the next step's root, run without a
# shell.
cat >"$ctx/Dockerfile" <<EOF
FROM $REG_ADDR/test/debian:12
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
WORKDIR /src
COPY hello.c .
RUN gcc -O2 -o /usr/local/bin/hello hello.c && hello
RUN ["/usr/local/bin/hello", "exec", "form"]
CMD ["hello"]
EOF
chmod -R a+rX "$ctx"

# check_way WHO LAYOUT: builds the image (also written to the OCI layout LAYOUT, a path WHO
# can create), checks its layers, runs it.
check_way() {
  local who=$1 layout=$2 name="test/hello-debian:$1" begin=$SECONDS
  mb "$who" build -f "$ctx/Dockerfile" -t "$name" --output "type=oci,dest=$layout" "$ctx"
  expect_rc 0 "$who: build (apt-get install gcc, compile, run) in $((SECONDS - begin)) s"
  if [ "$who" = sub ]; then
    if [[ "$err" == *"no subordinate ids"* ]]; then
      failed "sub: unexpected single-id fallback notice: $err"
    else
      pass "sub: no single-id fallback notice"
    fi
  fi
  [ "$rc" -eq 0 ] || return 0
  expect_contains "$out$err" "Hello from a minibuild RUN step exec form" \
    "$who: the exec-form RUN ran the program compiled by the step before"

  # The layers, read with tar: the compiler and the program are there, and nothing the builder
  # supplies (resolv.conf, hosts, hostname) leaked into a RUN layer.
  local manifest listing="$work_dir/listing-$who"
  manifest=$(/usr/bin/python3 -c '
import json, sys
index = json.load(open(sys.argv[1] + "/index.json"))
print(index["manifests"][0]["digest"].split(":")[1])' "$layout")
  /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1] + "/blobs/sha256/" + sys.argv[2]))
for layer in m["layers"][1:]:
    print(layer["digest"].split(":")[1])' "$layout" "$manifest" |
    while read -r blob; do tar -tf "$layout/blobs/sha256/$blob"; done 2>&1 | sed 's|^\./||' >"$listing"
  if grep -qx 'usr/local/bin/hello' "$listing"; then
    pass "$who: /usr/local/bin/hello is in a layer"
  else
    failed "$who: no usr/local/bin/hello in the RUN layers: $(head -c 300 "$listing")"
  fi
  if grep -q '^usr/bin/gcc' "$listing"; then pass "$who: gcc is in a layer"; else
    failed "$who: no usr/bin/gcc* in the RUN layers"
  fi
  local leaked
  leaked=$(grep -xE 'etc/(resolv\.conf|hosts|hostname)' "$listing")
  expect_equal "$leaked" "" "$who: no builder-supplied /etc file in a RUN layer"

  begin=$SECONDS
  mb "$who" run --rm "$name"
  expect_rc 0 "$who: minibuild run --rm IMAGE (CMD [\"hello\"]) in $((SECONDS - begin)) s"
  expect_equal "$out" "Hello from a minibuild RUN step" "$who: the container prints the greeting"
  mb "$who" run --rm "$name" sh -c 'exit 7'
  expect_rc 7 "$who: minibuild run passes the command's exit code on"
  echo "     ($who way: $((SECONDS - begin_way)) s in all)"
}

# Root, and a user of its own with a subordinate id range (users_lib.sh); the single-id way
# cannot install packages (apt drops to _apt, an id the namespace lacks), as with rootless podman.
ways_setup minibuild-it-rundeb
for way in root sub; do
  if [[ " $WAYS " != *" $way "* ]]; then
    echo "skipped: $way: $(way_skip_reason "$way")"
    continue
  fi
  begin_way=$SECONDS
  mkdir -p "$(way_home "$way")"
  [ "$way" = root ] || chown "$SUB_UID:$SUB_GID" "$(way_home "$way")"
  check_way "$way" "$(way_home "$way")/layout"
done

echo "     (whole test: $SECONDS s)"
finish
