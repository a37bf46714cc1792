#!/usr/bin/env bash
# RUN in a busybox image (issue #5), three ways: as root; as a user with a subordinate id range;
# as uid 65534 without one (single-id map). RUN steps create, modify, chmod, chown, hardlink,
# symlink, delete lower-layer files, replace a directory with a file and a file with a directory,
# and make a directory opaque. The exported image is checked with independent tools: umoci
# unpacks the final tree (contents, modes, numeric owners, links, whiteouts honoured) and tar
# lists each layer (.wh. entries, container owners). `minibuild run` passes the exit code on,
# attaches stdin and honours the image's ENV, WORKDIR and USER.
# With the single-id map, ids other than root do not exist in the container: chown to them fails
# inside the step (as with rootless podman without subordinate ids), and so does USER app; the
# test asserts that they fail cleanly.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"
source "$(dirname "$0")/images_lib.sh"
source "$(dirname "$0")/users_lib.sh"
registry_require_tools
images_require_tools
users_require_tools
ways_setup minibuild-it-runbb

registry_start REG plain
make_busybox_image "$REG_ADDR" test/busybox:1 --fixtures

ctx="$work_dir/ctx"
mkdir -p "$ctx"

# The main Dockerfile; CHOWN is empty in the single way. Line numbers matter below.
write_dockerfile() {
  local chown=$1
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $REG_ADDR/test/busybox:1
ENV GREETING=hello-env
RUN echo created >/data/new.txt && mkdir -p /data/newdir/sub && echo deep >/data/newdir/sub/deep.txt && echo tmp >/data/rm-in-next.txt
RUN set -e; \\
    echo after >>/data/modify.txt; \\
    chmod 0600 /data/chmod.txt; chmod 0751 /data/newdir; \\
    echo suid >/data/suid; chmod 4750 /data/suid; \\
    stat -c %u:%g /data/app-owned.txt >/data/seen-owner; \\
    $chown \\
    echo linked >/data/link-src; ln /data/link-src /data/link-dst; ln /data/new.txt /data/new-link.txt; \\
    ln -s keep.txt /data/sym-rel; ln -s /data/newdir /data/sym-abs; \\
    rm /data/del.txt /data/rm-in-next.txt; rm -r /data/deldir; \\
    rm -r /data/dir2file; echo nowfile >/data/dir2file; \\
    rm /data/file2dir; mkdir /data/file2dir; echo inside >/data/file2dir/inside; \\
    rm -rf /data/opaque; mkdir /data/opaque; touch /data/opaque/new
RUN ["/bin/sh", "-c", "echo \\"exec \$GREETING\\" >/data/exec.txt"]
RUN ["touch", "/data/exec-touched"]
DOCKERFILE
}
printf 'FROM %s/test/busybox:1\nENV GREETING=hello-env\nWORKDIR /home/app/work\nUSER app\n' \
  "$REG_ADDR" >"$ctx/Dockerfile.app"
printf 'FROM %s/test/busybox:1\nRUN touch /f && chown 1000:2000 /f\n' "$REG_ADDR" >"$ctx/Dockerfile.chown"

# clean_failure: $rc is a failure minibuild reports (not a crash, a usage error or "not
# implemented").
clean_failure() {
  [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$rc" -ne 7 ] && [ "$rc" -ne 70 ] && [ "$rc" -lt 128 ]
}

# check_tree WAY ROOTFS: the final tree of the main image.
check_tree() {
  local way=$1 r=$2
  expect_tree_file "$r" data/new.txt created "$way: a file created by RUN"
  expect_tree_stat "$r" data/new.txt %a 644 "$way: umask 022 for a new file"
  expect_tree_stat "$r" data/newdir/sub %a 755 "$way: umask 022 for a new directory"
  expect_tree_file "$r" data/newdir/sub/deep.txt deep "$way: a file in new directories"
  expect_tree_file "$r" data/modify.txt $'before\nafter' "$way: a lower-layer file modified"
  expect_tree_file "$r" data/keep.txt keep "$way: an untouched lower-layer file"
  expect_tree_stat "$r" data/chmod.txt %a 600 "$way: chmod 0600 of a lower-layer file"
  expect_tree_stat "$r" data/newdir %a 751 "$way: chmod 0751 of a directory"
  expect_tree_stat "$r" data/suid %a 4750 "$way: a setuid mode is kept"
  expect_tree_stat "$r" data/app-owned.txt %u:%g 1000:1000 "$way: a lower-layer file keeps its owner"
  if [ "$way" = single ]; then
    expect_tree_stat "$r" data/chown.txt %u:%g 0:0 "$way: no chown, root-owned"
  else
    expect_tree_file "$r" data/seen-owner 1000:1000 "$way: RUN sees the lower-layer owner 1000:1000"
    expect_tree_stat "$r" data/chown.txt %u:%g 1000:2000 "$way: chown 1000:2000 of a lower-layer file"
    expect_tree_stat "$r" data/ids %u:%g 123:456 "$way: chown 123:456 of a new file"
  fi
  expect_equal "$(stat -c %i "$r/data/link-dst" 2>&1)" "$(stat -c %i "$r/data/link-src" 2>&1)" \
    "$way: a hardlink made by RUN is one inode"
  expect_tree_stat "$r" data/link-src %h 2 "$way: the hardlinked file has 2 links"
  expect_equal "$(stat -c %i "$r/data/new-link.txt" 2>&1)" "$(stat -c %i "$r/data/new.txt" 2>&1)" \
    "$way: a hardlink to a file of the previous RUN layer is one inode"
  expect_equal "$(readlink "$r/data/sym-rel")" keep.txt "$way: a relative symlink"
  expect_equal "$(readlink "$r/data/sym-abs")" /data/newdir "$way: an absolute symlink"
  expect_tree_absent "$r" data/del.txt "$way: a deleted lower-layer file is gone"
  expect_tree_absent "$r" data/deldir "$way: a deleted lower-layer directory is gone"
  expect_tree_absent "$r" data/rm-in-next.txt "$way: a file of the previous RUN, deleted, is gone"
  expect_tree_file "$r" data/dir2file nowfile "$way: a directory replaced by a file"
  expect_tree_file "$r" data/file2dir/inside inside "$way: a file replaced by a directory"
  # shellcheck disable=SC2012 # plain names, made by the test
  expect_equal "$(ls -A "$r/data/opaque" 2>&1 | tr '\n' ' ')" "new " \
    "$way: an opaque directory holds only its new entry"
  expect_tree_file "$r" data/exec.txt "exec hello-env" "$way: exec form with ENV in the environment"
  expect_tree_file "$r" data/exec-touched "" "$way: exec form without a shell"
  expect_tree_stat "$r" bin/busybox %a 755 "$way: the base layer is there"
  expect_tree_stat "$r" tmp %a 1777 "$way: /tmp keeps 1777"
  local f
  for f in etc/hosts etc/resolv.conf etc/hostname; do
    expect_tree_absent "$r" "$f" "$way: /$f supplied by the builder is not in the image"
  done
}

# check_layers WAY DIR: the layer tars (DIR/layer-I.txt). Layers: 0 rootfs, 1 fixtures, 2..5 the RUNs.
check_layers() {
  local way=$1 l=$2
  expect_equal "$LAYER_COUNT" 6 "$way: 2 base layers + 4 RUN layers"
  local run1="$l/layer-2.txt" run2="$l/layer-3.txt"
  expect_contains "$(cat "$run1")" "data/rm-in-next.txt" "$way: RUN 1's layer holds the file RUN 2 deletes"
  local name
  for name in data/.wh.del.txt data/.wh.deldir data/.wh.rm-in-next.txt data/opaque/.wh..wh..opq; do
    if grep -Eq "^-[^ ]+ +0/0 +0 .* $name\$" "$run2"; then pass "$way: RUN 2's layer has the whiteout $name"; else
      failed "$way: no empty root-owned $name in RUN 2's layer: $(grep -F '.wh.' "$run2" | head -5)"
    fi
  done
  if grep -Eq '^h.* data/link-(src|dst) link to data/link-(src|dst)$' "$run2"; then
    pass "$way: the hardlink is a tar hardlink entry"
  else failed "$way: no hardlink entry for data/link-*: $(grep -F 'data/link' "$run2")"; fi
  expect_contains "$(grep -E ' data/sym-rel ' "$run2")" "data/sym-rel -> keep.txt" "$way: the symlink entry"
  expect_contains "$(grep -E ' data/suid$' "$run2")" "-rwsr-x---" "$way: the setuid mode in the tar"
  if [ "$way" != single ]; then
    expect_contains "$(grep -E ' data/chown.txt$' "$run2")" " 1000/2000 " "$way: the tar owner of chown.txt is the container's 1000/2000"
    expect_contains "$(grep -E ' data/ids$' "$run2")" " 123/456 " "$way: the tar owner of ids is the container's 123/456"
  fi
  local all
  all=$(cat "$l"/layer-[2-5].txt)
  if grep -Eq ' (\./)?etc/(hosts|resolv\.conf|hostname)$' <<<"$all"; then
    failed "$way: a RUN layer holds a file the builder supplies: $(grep -E 'etc/' <<<"$all")"
  else pass "$way: no RUN layer holds /etc/hosts, /etc/resolv.conf or /etc/hostname"; fi
  if grep -q '^c' <<<"$all"; then failed "$way: a RUN layer holds a device (unconverted whiteout?): $(grep '^c' <<<"$all" | head -3)"; else
    pass "$way: no character device in a RUN layer (whiteouts converted)"
  fi
  if grep -Eq " $(id -u nobody)/| [1-9][0-9]{5,}/" <<<"$all"; then
    failed "$way: host ids in a RUN layer: $(grep -E " $(id -u nobody)/| [1-9][0-9]{5,}/" <<<"$all" | head -3)"
  else pass "$way: every owner in the RUN layers is a container id"; fi
}

for way in root sub single; do
  if [[ " $WAYS " != *" $way "* ]]; then
    echo "skipped: $way: $(way_skip_reason "$way")"
    continue
  fi
  home=$(way_home "$way")
  chown_cmds="chown 1000:2000 /data/chown.txt; touch /data/ids; chown 123:456 /data/ids;"
  [ "$way" = single ] && chown_cmds=""
  write_dockerfile "$chown_cmds"

  mb "$way" build -t rb/main:1 --progress plain --output "type=oci,dest=$home/layout" "$ctx"
  expect_rc 0 "$way: build the RUN Dockerfile FROM the registry busybox"
  if [ "$rc" -eq 0 ]; then
    if oci_unpack "$home/layout" 1 "$work_dir/rootfs-$way"; then
      pass "$way: umoci unpacks the exported image"
      check_tree "$way" "$work_dir/rootfs-$way"
    else failed "$way: umoci raw unpack: $(tail -c 400 "$work_dir/umoci.log")"; fi
    if oci_layer_listings "$home/layout" 1 "$work_dir/layers-$way"; then
      check_layers "$way" "$work_dir/layers-$way"
    else failed "$way: cannot list the exported layers: $(cat "$work_dir/layers-$way/tar.err" 2>/dev/null)"; fi
  else
    failed "$way: tree and layer checks not run: the build failed"
  fi

  # ---- minibuild run ----
  mb "$way" run --rm rb/main:1 sh -c 'exit 3'
  expect_rc 3 "$way: run passes the command's exit code on"
  echo "hi from stdin" >"$work_dir/stdin.txt"
  STDIN_FILE="$work_dir/stdin.txt" mb "$way" run --rm rb/main:1 cat
  expect_rc 0 "$way: run cat"
  expect_equal "$out" "hi from stdin" "$way: stdin reaches the command, its stdout ours"
  mb "$way" run --rm rb/main:1 sh -c 'echo to-stderr >&2; cat /data/exec.txt; ls -A /data/opaque'
  expect_equal "$out" $'exec hello-env\nnew' "$way: run sees the image's tree"
  expect_contains "$err" "to-stderr" "$way: the command's stderr is ours"
  mb "$way" run --rm rb/main:1 /no/such/command
  if clean_failure; then
    pass "$way: a missing command fails cleanly (exit $rc)"
    expect_contains "$err" "/no/such/command" "$way: the error names the missing command"
  else failed "$way: a missing command: exit $rc: $(tail -c 300 <<<"$err")"; fi

  mb "$way" build -f "$ctx/Dockerfile.app" -t rb/app:1 "$ctx"
  expect_rc 0 "$way: build an image with ENV, WORKDIR and USER app"
  # shellcheck disable=SC2016 # expanded in the container
  mb "$way" run --rm rb/app:1 sh -c 'echo "$GREETING|$(pwd)|$(id -u)|$(id -g)|$(id -G)|$HOME"'
  if [ "$way" = single ]; then
    if clean_failure && [ -n "$err" ]; then
      pass "$way: USER app (uid 1000, not mapped) fails cleanly (exit $rc)"
      # The cause is known (issue #5: "a hint when the cause is known"): say which id.
      if [[ "$err" == *1000* ]]; then pass "$way: the error names the user's uid (1000)"; else
        failed "$way: the error does not say which user could not be set: $(tail -c 300 <<<"$err")"
      fi
    else failed "$way: USER app with the single-id map: exit $rc, out \"$out\", err $(tail -c 300 <<<"$err")"; fi
  else
    expect_rc 0 "$way: run as the image's USER"
    expect_equal "$out" "hello-env|/home/app/work|1000|1000|1000 2000|/home/app" \
      "$way: ENV, WORKDIR and USER app with its group extra (2000) and HOME are honoured"
  fi
  # shellcheck disable=SC2016 # expanded in the container
  mb "$way" run --rm -u root -w /tmp -e K=V rb/app:1 sh -c 'echo "$(id -u)|$(pwd)|$K|$GREETING|$HOME"'
  expect_rc 0 "$way: run -u root -w /tmp -e K=V"
  expect_equal "$out" "0|/tmp|V|hello-env|/root" "$way: -u, -w and -e override the image's config"

  if [ "$way" = single ]; then
    mb "$way" build -f "$ctx/Dockerfile.chown" -t rb/chown:1 --progress plain "$ctx"
    expect_rc 1 "$way: chown to an unmapped id fails the step"
    expect_contains "$err" "Dockerfile.chown:2" "$way: the error names the step's line"
    expect_contains "$err" "exit code 1" "$way: the error gives the exit code"
    expect_contains "$err" "Invalid argument" "$way: the step's output (chown's complaint) is shown"
  fi
  mb "$way" fsck
  expect_rc 0 "$way: fsck is clean afterwards"
done

finish
