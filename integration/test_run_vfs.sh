#!/usr/bin/env bash
# The vfs storage driver (docs/run.md, "Storage drivers"): RUN on a plain copy of the stage's
# root filesystem, its layer found by comparing the tree before and after. The same Dockerfile
# built with overlay and with vfs must give the same tree (umoci unpacks both); the automatic
# fallback is forced with MINIBUILD_NO_OVERLAY=1, which plays a kernel refusing overlay. Three
# ways, as the other RUN tests.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/images_lib.sh"
source "$(dirname "$0")/users_lib.sh"
registry_require_tools
images_require_tools
users_require_tools
ways_setup minibuild-it-runvfs

registry_start REG plain
make_busybox_image "$REG_ADDR" test/busybox:1

ctx="$work_dir/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $REG_ADDR/test/busybox:1
RUN mkdir -p /data/sub /data/opq /data/gone && echo a >/data/a && echo b >/data/sub/b && echo o >/data/opq/old && touch /data/gone/x && ln -s a /data/ln && ln /data/a /data/hard
RUN rm /data/a && echo mod >>/data/sub/b && chmod 600 /data/sub/b && rm -rf /data/opq /data/gone && mkdir /data/opq && touch /data/opq/new && rm /bin/vi && mkdir /data/a-dir
DOCKERFILE

# The tree as `find` lists it: path, type, mode and content of regular files.
tree_of() {
  (cd "$1" && find . -path ./proc -prune -o -printf '%p %y %m %l\n' | LC_ALL=C sort)
  (cd "$1" && find ./data -type f -exec sh -c 'for f; do printf "%s: %s\n" "$f" "$(cat "$f")"; done' _ {} + | LC_ALL=C sort)
}

for way in root sub single; do
  if [[ " $WAYS " != *" $way "* ]]; then
    echo "skipped: $way: $(way_skip_reason "$way")"
    continue
  fi
  home=$(way_home "$way")
  for driver in overlay vfs; do
    mb "$way" build --no-cache -t "vfs/$driver:1" --storage-driver "$driver" --output "type=oci,dest=$home/$driver" "$ctx"
    expect_rc 0 "$way: build with --storage-driver $driver"
    oci_unpack "$home/$driver" 1 "$work_dir/tree-$way-$driver" || failed "$way: umoci cannot unpack the $driver image: $(cat "$work_dir/umoci.log")"
  done
  overlay_tree=$(tree_of "$work_dir/tree-$way-overlay")
  expect_equal "$(tree_of "$work_dir/tree-$way-vfs")" "$overlay_tree" "$way: vfs and overlay give the same tree"
  expect_tree_absent "$work_dir/tree-$way-vfs" data/a "$way: vfs: a deleted lower file is gone"
  expect_tree_absent "$work_dir/tree-$way-vfs" data/opq/old "$way: vfs: a removed-and-made-again directory hides its old content"
  expect_tree_absent "$work_dir/tree-$way-vfs" bin/vi "$way: vfs: a file of the base image is deleted"
  expect_tree_file "$work_dir/tree-$way-vfs" data/sub/b $'b\nmod' "$way: vfs: a changed file"
  expect_tree_stat "$work_dir/tree-$way-vfs" data/sub/b %a 600 "$way: vfs: a changed mode"

  # A kernel that refuses overlay: the build says so once and goes on with copies.
  MINIBUILD_NO_OVERLAY=1 mb "$way" build --no-cache -t vfs/auto:1 --progress plain --output "type=oci,dest=$home/auto" "$ctx"
  expect_rc 0 "$way: build when overlay is refused"
  expect_contains "$err" "using the vfs driver for this build" "$way: the fallback is announced"
  expect_equal "$(grep -c 'using the vfs driver' <<<"$err")" 1 "$way: ... once"
  oci_unpack "$home/auto" 1 "$work_dir/tree-$way-auto" || failed "$way: umoci cannot unpack the fallback image"
  expect_equal "$(tree_of "$work_dir/tree-$way-auto")" "$overlay_tree" "$way: the fallback gives the same tree"
  MINIBUILD_NO_OVERLAY=1 mb "$way" build --no-cache --storage-driver overlay "$ctx"
  expect_rc 6 "$way: --storage-driver overlay does not fall back"
  expect_contains "$err" "mount the overlay root filesystem" "$way: the error names the step"

  MINIBUILD_NO_OVERLAY=1 mb "$way" run --rm vfs/auto:1 cat /data/sub/b
  expect_rc 0 "$way: minibuild run when overlay is refused"
  expect_equal "$out" $'b\nmod' "$way: run on a copy sees the image"
  mb "$way" run --rm --storage-driver vfs vfs/auto:1 sh -c 'test ! -e /data/a && echo ok'
  expect_equal "$out" ok "$way: run --storage-driver vfs"
  mb "$way" fsck
  expect_rc 0 "$way: the store is consistent"
  expect_equal "$(find "$(way_store "$way")/tmp" -mindepth 1 2>/dev/null | wc -l)" 0 "$way: nothing is left in the store's tmp/"
done

# A relative --root reaches the sandbox as an absolute path (the helpers work elsewhere).
(cd "$work_dir" && "$MINIBUILD" --root relative-store build -q "$ctx" >"$work_dir/rel.out" 2>&1) && rc=0 || rc=$?
err=$(cat "$work_dir/rel.out")
expect_rc 0 "root: RUN with a relative --root"

finish
