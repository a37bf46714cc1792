# shellcheck shell=bash
# shellcheck disable=SC2034 # LAYER_COUNT, LAYERS_TREE_CMD and MANY_LAYERS_EXPECTED are for the caller
# Base images for RUN tests, made offline and pushed to a test registry, and independent checks of
# what minibuild exports. Source it AFTER lib.sh and registry_lib.sh; call from the main shell.
#
# images_require_tools
#     Skips the test (exit 77, with the reason) without umoci, tar or Debian's busybox-static
#     (registry_require_tools covers skopeo and python3).
# make_busybox_image ADDR REPO:TAG [--fixtures]
#     Writes a busybox image (tools/make_rootfs_image.py: /bin/busybox, a symlink per applet,
#     /etc/passwd with root, app 1000:1000 and nobody, /etc/group with root, app 1000 and extra
#     2000 whose member is app, /tmp 1777; --fixtures adds a second layer, /data, of files for RUN
#     steps to change) and pushes it with skopeo to docker://ADDR/REPO:TAG. Fails the test (and
#     exits) when either step fails. Sets IMAGE_LAYOUT (the OCI layout written, tag "src").
# make_many_layer_image ADDR REPO:TAG N
#     The same root filesystem plus N-1 tiny layers under /layers that add files, delete files and a
#     directory with whiteouts, replace a file with a directory and make a directory opaque; only
#     the applets $LAYERS_TREE_CMD and simple steps need (sh find sort cat echo rm touch test ls
#     mkdir), so that the 120 layers cost few files.
#     Sets MANY_LAYERS_EXPECTED: a file holding the final tree of /layers, as printed in a
#     container by the shell command in $LAYERS_TREE_CMD. Pushed by tools/push_oci_layout.py
#     (skopeo takes ~9 s for 120 blobs) and then read back by `skopeo inspect`.
# oci_unpack LAYOUT TAG DIR
#     Unpacks image TAG of the OCI layout with `umoci raw unpack` into DIR (numeric owners kept:
#     run as root). Returns umoci's status; its output is in $work_dir/umoci.log.
# oci_layer_listings LAYOUT TAG DIR
#     Writes DIR/layer-I.txt (I from 0, base first): `tar --numeric-owner -tvf` of each layer blob
#     of image TAG, with any leading "./" of names removed. Sets LAYER_COUNT. Returns non-zero when
#     the layout or a blob cannot be read.

: "${work_dir:?source lib.sh before images_lib.sh}"
images_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck disable=SC2016 # expanded by the container's shell
LAYERS_TREE_CMD='find /layers | sort | while read -r p; do if [ -d "$p" ]; then echo "d $p"; else echo "f $p $(cat "$p")"; fi; done'

images_require_tools() {
  local tool
  for tool in umoci tar skopeo; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup.sh installs it)"
  done
  if ! /bin/busybox --list >/dev/null 2>&1; then
    skip "/bin/busybox is missing (apt-get install busybox-static)"
  fi
}

# _il_make_and_push NAME ADDR REF ARGS...: tools/make_rootfs_image.py ARGS into a new layout, then
# skopeo copy to ADDR/REF.
_il_make_and_push() {
  local name=$1 addr=$2 ref=$3
  shift 3
  IMAGE_LAYOUT="$work_dir/images/$name"
  mkdir -p "$work_dir/images"
  rm -rf "$IMAGE_LAYOUT"
  /usr/bin/python3 "$images_lib_dir/tools/make_rootfs_image.py" "$IMAGE_LAYOUT" --tag src "$@" \
    >"$IMAGE_LAYOUT.digest" 2>"$IMAGE_LAYOUT.err" || {
    failed "make_rootfs_image.py $*: $(tail -c 400 "$IMAGE_LAYOUT.err")"
    finish
    exit 1
  }
  # skopeo spends ~70 ms a blob: many-layer images go through tools/push_oci_layout.py (parallel
  # monolithic uploads), and skopeo then checks what the registry serves.
  if [ "${_il_fast_push:-0}" = 1 ]; then
    /usr/bin/python3 "$images_lib_dir/tools/push_oci_layout.py" "$IMAGE_LAYOUT" src "$addr/$ref" \
      >/dev/null 2>"$IMAGE_LAYOUT.push.err" &&
      skopeo inspect --raw --tls-verify=false "docker://$addr/$ref" >/dev/null 2>>"$IMAGE_LAYOUT.push.err"
  else
    skopeo --insecure-policy copy -q --retry-times 0 --dest-tls-verify=false \
      "oci:$IMAGE_LAYOUT:src" "docker://$addr/$ref" >/dev/null 2>"$IMAGE_LAYOUT.push.err"
  fi || {
    failed "push of $ref: $(tail -c 400 "$IMAGE_LAYOUT.push.err")"
    finish
    exit 1
  }
}

make_busybox_image() {
  local addr=$1 ref=$2
  shift 2
  _il_make_and_push "busybox-$(printf '%s' "$ref$*" | sha256sum | cut -c1-12)" "$addr" "$ref" "$@"
}

make_many_layer_image() {
  local addr=$1 ref=$2 count=$3
  MANY_LAYERS_EXPECTED="$work_dir/images/many-$count.expected"
  mkdir -p "$work_dir/images"
  _il_fast_push=1 _il_make_and_push "many-$count" "$addr" "$ref" --layers "$count" \
    --expected "$MANY_LAYERS_EXPECTED" --applets "sh,find,sort,cat,echo,rm,touch,test,[,ls,mkdir"
}

oci_unpack() {
  local layout=$1 tag=$2 dir=$3
  rm -rf "$dir"
  umoci raw unpack --image "$layout:$tag" "$dir" >"$work_dir/umoci.log" 2>&1
}

oci_layer_listings() {
  local layout=$1 tag=$2 dir=$3 digest i=0
  mkdir -p "$dir"
  rm -f "$dir"/layer-*.txt
  LAYER_COUNT=0
  local layers
  layers=$(/usr/bin/python3 -c '
import json, os, sys
layout, tag = sys.argv[1], sys.argv[2]
def blob(digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))
index = json.load(open(os.path.join(layout, "index.json")))
for m in index["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
        manifest = json.load(open(blob(m["digest"])))
        print("\n".join(blob(layer["digest"]) for layer in manifest["layers"]))
        break
else:
    sys.exit(f"no manifest named {tag} in {layout}/index.json")' "$layout" "$tag") || return 1
  for digest in $layers; do
    tar --numeric-owner -tvf "$digest" 2>>"$dir/tar.err" | sed -E 's#^(([^ ]+ +){5})\./#\1#' \
      >"$dir/layer-$i.txt" || return 1
    i=$((i + 1))
  done
  LAYER_COUNT=$i
}

# expect_tree_file ROOT PATH CONTENT DESCRIPTION: PATH under ROOT is a regular file holding
# CONTENT (compared as $(cat), so without the last newline).
expect_tree_file() {
  local root=$1 path=$2 want=$3 description=$4
  if [ -f "$root/$path" ] && [ ! -L "$root/$path" ]; then
    expect_equal "$(cat "$root/$path")" "$want" "$description"
  else failed "$description: $path is not a regular file in the unpacked tree"; fi
}

# expect_tree_stat ROOT PATH FORMAT WANT DESCRIPTION: `stat -c FORMAT` of PATH (not followed).
expect_tree_stat() {
  local root=$1 path=$2 format=$3 want=$4 description=$5
  expect_equal "$(stat -c "$format" "$root/$path" 2>&1)" "$want" "$description"
}

# expect_tree_absent ROOT PATH DESCRIPTION
expect_tree_absent() {
  local root=$1 path=$2 description=$3
  if [ -e "$root/$path" ] || [ -L "$root/$path" ]; then failed "$description: $path exists"; else
    pass "$description"
  fi
}
