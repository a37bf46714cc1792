#!/usr/bin/env bash
# The image-slimming guides' examples end to end (issue #6), on the local registry's Debian and
# busybox images, with the build cache and squash:
#   (1) a C hello world compiled in a gcc stage, copied FROM scratch with COPY --from=0, run;
#   (2) named stages (AS builder, COPY --from=builder), WORKDIR, ENV, ARG, USER, EXPOSE and an
#       exec-form ENTRYPOINT;
#   (3) the layered anti-pattern (install a toolchain, build, remove the toolchain in separate
#       RUNs) built plain, with --squash, with --squash-all and as a multi-stage build: sizes
#       reported; the squashed layer holds the result, not the toolchain.
# Cache: a second build of the same input runs no step, gives the same digest and takes under
# 5 % of the first; changing one context file reruns only the steps from the COPY that reads it.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/images_lib.sh"
source "$(dirname "$0")/debian_image.sh"
registry_require_tools
images_require_tools
debian_image_mirror_reachable || skip "$DEBIAN_IMAGE_REASON"

registry_start REG plain
make_debian_image "$REG_ADDR" test/debian:12 && image_rc=0 || image_rc=$?
[ "$image_rc" -eq 77 ] && skip "$DEBIAN_IMAGE_REASON"
[ "$image_rc" -eq 0 ] || {
  failed "make the Debian 12 image: $DEBIAN_IMAGE_REASON"
  finish
  exit 1
}
make_busybox_image "$REG_ADDR" test/busybox:1
store="$work_dir/store"
mbx() { run_mb --root "$store" "$@"; }

# Layer sizes (compressed) of a stored image, one per line, and their sum.
layer_sizes() {
  mbx inspect "$1"
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); m=d["Manifest"]; print(" ".join(str(l["size"]) for l in m["layers"]))' <<<"$out"
}
# Steps the cache answered: their progress ends with "#N CACHED" instead of "#N DONE".
steps_cached() { grep -cE '^#[0-9]+ CACHED' <<<"$err"; }

ctx="$work_dir/ctx"
mkdir -p "$ctx"
cat >"$ctx/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { puts("hello, slim world"); return 0; }
EOF

# ---- (1) gcc stage → FROM scratch ----
cat >"$ctx/Dockerfile.1" <<EOF
FROM $REG_ADDR/test/debian:12
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
COPY hello.c /src/hello.c
RUN gcc -static -O2 -o /hello /src/hello.c

FROM scratch
COPY --from=0 /hello /hello
CMD ["/hello"]
EOF
started=$(date +%s%N)
MB_TIMEOUT=600 mbx build --progress plain -f "$ctx/Dockerfile.1" -t slim/hello:1 "$ctx"
first_ms=$((($(date +%s%N) - started) / 1000000))
expect_rc 0 "(1) multi-stage: gcc stage, COPY --from=0 into scratch ($first_ms ms)"
first_digest=$(grep -oE 'exporting manifest sha256:[0-9a-f]+' <<<"$err" | cut -d' ' -f3)
expect_contains "$err" "manifest $first_digest" "the build ends with a summary naming the digest"
expect_contains "$err" "COPY /hello /hello # buildkit" "... each layer's instruction"
expect_contains "$err" " in 1 layers (compressed)" "... and the total"
mbx run --rm slim/hello:1
expect_equal "$out" "hello, slim world" "(1) minibuild run of the scratch image"
read -r -a sizes <<<"$(layer_sizes slim/hello:1)"
expect_equal "${#sizes[@]}" 1 "(1) the final image has one layer (the binary): ${sizes[*]} bytes"

# ---- cache: the same build again ----
started=$(date +%s%N)
mbx build --progress plain -f "$ctx/Dockerfile.1" -t slim/hello:1 "$ctx"
second_ms=$((($(date +%s%N) - started) / 1000000))
expect_rc 0 "cache: a second build of the same input ($second_ms ms)"
expect_equal "$(steps_cached)" 4 "cache: every step (RUN, COPY, RUN, COPY --from) is CACHED"
expect_equal "$(grep -oE 'exporting manifest sha256:[0-9a-f]+' <<<"$err" | cut -d' ' -f3)" "$first_digest" \
  "cache: the same image digest"
if [ $((second_ms * 20)) -lt "$first_ms" ]; then pass "cache: the rebuild takes under 5 % of the first ($second_ms / $first_ms ms)"; else
  failed "cache: the rebuild took $second_ms ms, the first $first_ms ms (wanted under 5 %)"
fi

# ---- cache: one context file changes ----
sed -i 's/slim world/slimmer world/' "$ctx/hello.c"
mbx build --progress plain -f "$ctx/Dockerfile.1" -t slim/hello:1 "$ctx"
expect_rc 0 "cache: a build after hello.c changed"
expect_equal "$(steps_cached)" 1 "cache: only the step before the COPY is cached"
mbx run --rm slim/hello:1
expect_equal "$out" "hello, slimmer world" "cache: the new source is in the image"

# ---- (2) named stages and metadata ----
cat >"$ctx/Dockerfile.2" <<EOF
ARG BASE=$REG_ADDR/test/busybox:1
FROM \$BASE AS builder
ARG GREETING=hi
WORKDIR /work
RUN echo "\$GREETING from the builder" >message && chmod 644 message

FROM \$BASE
ENV APP_HOME=/srv/app
WORKDIR \$APP_HOME
COPY --from=builder /work/message ./message
USER app
EXPOSE 8080/tcp
ENTRYPOINT ["/bin/sh", "-c", "cat \$APP_HOME/message; id -u; pwd"]
EOF
mbx build --progress plain -f "$ctx/Dockerfile.2" --build-arg GREETING=hello -t slim/named:1 "$ctx"
expect_rc 0 "(2) named stages, WORKDIR, ENV, ARG, USER, EXPOSE, ENTRYPOINT"
mbx run --rm slim/named:1
expect_equal "$out" $'hello from the builder\n1000\n/srv/app' "(2) the entrypoint runs as app in the workdir with the builder's file"
mbx inspect slim/named:1
expect_contains "$out" '"8080/tcp"' "(2) EXPOSE is in the config"
expect_contains "$out" '"User": "app"' "(2) USER is in the config"

# ---- a COPY --from source that is not there says where it looked and what is there ----
cat >"$ctx/Dockerfile.missing" <<EOF
FROM $REG_ADDR/test/busybox:1 AS build
WORKDIR /go
RUN echo hi >hello
FROM scratch
COPY --from=build hello .
EOF
mbx build -f "$ctx/Dockerfile.missing" "$ctx"
expect_rc 1 "COPY --from of a missing path fails the build"
expect_contains "$err" "COPY --from=build hello .: /hello not found in stage build; its WORKDIR is /go and /go/hello exists" \
  "the error names the path, the stage, its WORKDIR and what exists there"

# ---- (3) the layered anti-pattern ----
cat >"$ctx/Dockerfile.3" <<EOF
FROM $REG_ADDR/test/debian:12
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
COPY hello.c /src/hello.c
RUN gcc -O2 -o /usr/local/bin/hello /src/hello.c
RUN apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
CMD ["hello"]
EOF
for mode in plain squash squash_all; do
  flags=()
  [ "$mode" = plain ] || flags=(--"${mode//_/-}")
  mbx build --progress plain "${flags[@]}" -f "$ctx/Dockerfile.3" -t "slim/anti:$mode" \
    --output "type=oci,dest=$work_dir/anti-$mode" "$ctx"
  expect_rc 0 "(3) anti-pattern, $mode"
  read -r -a sizes <<<"$(layer_sizes "slim/anti:$mode")"
  total=0
  for size in "${sizes[@]}"; do total=$((total + size)); done
  echo "     (3) $mode: ${#sizes[@]} layers, ${total} bytes compressed: ${sizes[*]}"
  eval "total_$mode=$total layers_$mode=${#sizes[@]} top_$mode=${sizes[-1]}"
  mbx run --rm "slim/anti:$mode"
  expect_equal "$out" "hello, slimmer world" "(3) $mode: the program runs"
done
expect_equal "$layers_squash" 2 "(3) --squash: the base layer stays, the stage's layers are one"
oci_layer_listings "$work_dir/anti-squash" squash "$work_dir/anti-squash-layers" ||
  failed "(3) cannot list the squashed image's layers"
squashed="$work_dir/anti-squash-layers/layer-1.txt"
expect_contains "$(cat "$squashed")" "usr/local/bin/hello" "(3) --squash: the new layer holds the result"
expect_equal "$(grep -E 'usr/lib/gcc/.*/(cc1|collect2)$|usr/bin/x86_64-linux-gnu-gcc|\.deb$|var/lib/apt/lists/.' "$squashed" | grep -v '/\.wh\.' | awk '{print $NF}')" "" \
  "(3) --squash: ... and not the toolchain, the package lists or the downloaded packages ($top_squash bytes; whiteouts of base files are expected)"
if [ "$total_squash" -lt "$total_plain" ]; then pass "(3) --squash is smaller than plain ($total_squash < $total_plain bytes)"; else
  failed "(3) --squash is not smaller: $total_squash vs $total_plain"; fi
expect_equal "$layers_squash_all" 1 "(3) --squash-all: one layer"
mbx history slim/anti:squash
expect_contains "$out" "minibuild squash of 4 layers" "(3) --squash: the history names the squash"

mbx fsck
expect_rc 0 "the store is consistent"
finish
