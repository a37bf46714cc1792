#!/usr/bin/env bash
# An image of 120 layers runs a RUN step (issue #5: the overlay's lowerdir option is limited to a
# page, so 120 long layer paths do not fit in it), as root and as a user with a subordinate id
# range. The layers add files, delete files and a directory with whiteouts, replace a file with a
# directory and make a directory opaque: the step must see the tree they give (computed by
# tools/make_rootfs_image.py), and its own changes must land on top: checked in the image umoci
# unpacks and with `minibuild run`.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/images_lib.sh"
source "$(dirname "$0")/users_lib.sh"
registry_require_tools
images_require_tools
users_require_tools
command -v chroot >/dev/null || skip "chroot is not installed (coreutils)"
ways_setup minibuild-it-runml

layers=120
registry_start REG plain
make_many_layer_image "$REG_ADDR" test/many:1 "$layers"

ctx="$work_dir/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $REG_ADDR/test/many:1
RUN $LAYERS_TREE_CMD >/seen-tree.txt && echo top >/layers/f-from-run && rm /layers/f-001 && touch /layers/opq/run-new
DOCKERFILE
# What the step leaves: the base's tree without f-001, with the step's two files.
expected_after="$work_dir/expected-after.txt"
{
  grep -vx 'f /layers/f-001 1' "$MANY_LAYERS_EXPECTED"
  echo "f /layers/f-from-run top"
  echo "f /layers/opq/run-new "
} | LC_ALL=C sort -t ' ' -k2,2 >"$expected_after" # by path, as `find | sort` lists them
expected_before=$(cat "$MANY_LAYERS_EXPECTED")

for way in root sub; do
  if [[ " $WAYS " != *" $way "* ]]; then
    echo "skipped: $way: $(way_skip_reason "$way")"
    continue
  fi
  home=$(way_home "$way")
  r="$work_dir/rootfs-$way"
  mb "$way" build -t ml/app:1 --progress plain --output "type=oci,dest=$home/layout" "$ctx"
  expect_rc 0 "$way: a RUN step on a $layers-layer image"
  if [ "$rc" -eq 0 ] && oci_unpack "$home/layout" 1 "$r"; then
    expect_equal "$(cat "$r/seen-tree.txt")" "$expected_before" \
      "$way: the step sees the tree of the $layers layers (whiteouts, opaque, replaced entries)"
    chroot "$r" /bin/sh -c "$LAYERS_TREE_CMD" >"$work_dir/after-$way.txt" 2>&1
    expect_equal "$(cat "$work_dir/after-$way.txt")" "$(cat "$expected_after")" \
      "$way: umoci's unpacked image has the step's changes on top"
    if oci_layer_listings "$home/layout" 1 "$work_dir/layers-$way"; then
      expect_equal "$LAYER_COUNT" $((layers + 1)) "$way: the image has the $layers base layers and the step's"
      top="$work_dir/layers-$way/layer-$layers.txt"
      expect_contains "$(cat "$top")" "layers/.wh.f-001" "$way: the step's layer deletes f-001 with a whiteout"
      expect_contains "$(grep -F 'layers/f-from-run' "$top")" " 0/0 " "$way: the step's file is root-owned in the tar"
    else failed "$way: cannot list the layers: $(cat "$work_dir/layers-$way/tar.err")"; fi
  else failed "$way: tree checks not run: the build or the unpack failed"; fi

  mb "$way" run --rm ml/app:1 sh -c "$LAYERS_TREE_CMD"
  expect_rc 0 "$way: minibuild run on the $((layers + 1))-layer image"
  expect_equal "$out" "$(cat "$expected_after")" "$way: run sees the same tree"
done

finish
