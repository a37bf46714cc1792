#!/usr/bin/python3
"""Writes a busybox OCI image layout offline: a small but real root filesystem for RUN tests.

    make_rootfs_image.py OUT_DIR [--tag TAG] [--busybox PATH] [--applets A,B,...] [--fixtures]
                         [--layers N --expected FILE]

Layer 1 is the root filesystem:
  /bin/busybox (Debian's busybox-static) and one symlink /bin/APPLET -> busybox per applet it
  lists (`busybox --list`: sh ls cat ... wget ip unshare mount ...), or only the --applets
  named (fewer files to store and delete where the test needs only a few);
  /etc/passwd (root 0:0, app 1000:1000, nobody 65534:65534), /etc/group (root 0, app 1000,
  extra 2000 with member app, nogroup 65534);
  /tmp 1777, /root 0700, /home/app 0755 owned by 1000:1000, /dev /proc /sys /mnt /etc 0755.

--fixtures adds layer 2, /data, the lower-layer files the RUN tests change:
  keep.txt "keep", modify.txt "before", del.txt, chmod.txt (0644), chown.txt (0:0),
  app-owned.txt (1000:1000, 0640), deldir/x, dir2file/{a,b}, file2dir (a file),
  opaque/{old1,sub/old2}.

--layers N makes an image of N layers: the root filesystem plus N-1 tiny layers under /layers
that add a file each (/layers/f-K holding "K"), delete earlier files and a directory with
whiteouts (.wh.NAME), replace a file with a directory, and make a directory opaque
(.wh..wh..opq). --expected FILE receives the final tree of /layers as the shell command

    find /layers | sort | while read -r p; do
      if [ -d "$p" ]; then echo "d $p"; else echo "f $p $(cat "$p")"; fi; done

prints it inside a container of the image.

Image config: Env PATH=/usr/sbin:/usr/bin:/sbin:/bin, Cmd ["sh"]. Everything is reproducible
(fixed mtimes, gzip headers): the same arguments give the same digests. Prints the manifest
digest on stdout. index.json names the manifest TAG (org.opencontainers.image.ref.name), so
`skopeo copy oci:OUT_DIR:TAG docker://...` finds it.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

from oci_layout import LayoutBlobs

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200  # CREATED, as seconds

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n"


class Entry:
    """One tar entry: kind is "dir", "file", "symlink" or "hardlink"."""

    def __init__(self, path, kind, mode=0o755, uid=0, gid=0, data=b"", link=""):
        self.path, self.kind, self.mode = path, kind, mode
        self.uid, self.gid, self.data, self.link = uid, gid, data, link


def d(path, mode=0o755, uid=0, gid=0):
    return Entry(path, "dir", mode, uid, gid)


def f(path, data, mode=0o644, uid=0, gid=0):
    return Entry(path, "file", mode, uid, gid, data.encode() if isinstance(data, str) else data)


def symlink(path, target):
    return Entry(path, "symlink", 0o777, link=target)


def whiteout(parent, name):
    """The OCI whiteout deleting PARENT/NAME of lower layers (an empty file .wh.NAME)."""
    return f(f"{parent}/.wh.{name}", "", 0o644)


def opaque(directory):
    """The OCI marker hiding every lower-layer entry of DIRECTORY."""
    return f(f"{directory}/.wh..wh..opq", "", 0o644)


class Layout(LayoutBlobs):

    def put_layer(self, entries):
        """Writes ENTRIES in order as a gzip layer; returns (descriptor, diff_id)."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in entries:
                info = tarfile.TarInfo(e.path + ("/" if e.kind == "dir" else ""))
                info.mtime = MTIME
                info.uid, info.gid = e.uid, e.gid
                info.uname = info.gname = ""
                info.mode = e.mode
                if e.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif e.kind == "symlink":
                    info.type = tarfile.SYMTYPE
                    info.linkname = e.link
                    tar.addfile(info)
                elif e.kind == "hardlink":
                    info.type = tarfile.LNKTYPE
                    info.linkname = e.link
                    tar.addfile(info)
                else:
                    info.size = len(e.data)
                    tar.addfile(info, io.BytesIO(e.data))
        uncompressed = raw.getvalue()
        compressed = io.BytesIO()
        with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(uncompressed)
        digest, size = self.put_bytes(compressed.getvalue())
        return ({"mediaType": MEDIA_LAYER, "digest": digest, "size": size},
                "sha256:" + hashlib.sha256(uncompressed).hexdigest())


def busybox_applets(busybox):
    listed = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True)
    return sorted({name for name in listed.stdout.split() if name and "/" not in name} -
                  {"busybox"})


def rootfs_layer(busybox, only):
    with open(busybox, "rb") as src:
        binary = src.read()
    applets = busybox_applets(busybox)
    if only:
        missing = sorted(set(only) - set(applets))
        if missing:
            raise SystemExit(f"make_rootfs_image: {busybox} has no applet {', '.join(missing)}")
        applets = sorted(set(only))
    entries = [d("bin"), f("bin/busybox", binary, 0o755)]
    entries += [symlink(f"bin/{a}", "busybox") for a in applets]
    entries += [d("dev"), d("etc"), f("etc/passwd", PASSWD), f("etc/group", GROUP),
                d("home"), d("home/app", 0o755, 1000, 1000), d("mnt"), d("proc"),
                d("root", 0o700), d("sys"), d("tmp", 0o1777), d("usr"), d("usr/bin")]
    return entries


def fixtures_layer():
    return [d("data"), f("data/keep.txt", "keep\n"), f("data/modify.txt", "before\n"),
            f("data/del.txt", "delete me\n"), f("data/chmod.txt", "chmod\n"),
            f("data/chown.txt", "chown\n"), f("data/app-owned.txt", "app\n", 0o640, 1000, 1000),
            d("data/deldir"), f("data/deldir/x", "x\n"),
            d("data/dir2file"), f("data/dir2file/a", "a\n"), f("data/dir2file/b", "b\n"),
            f("data/file2dir", "file\n"),
            d("data/opaque"), f("data/opaque/old1", "old1\n"), d("data/opaque/sub"),
            f("data/opaque/sub/old2", "old2\n")]


def many_layers(count):
    """The layers 2..COUNT of --layers and the final tree {path: None (dir) | content}."""
    tree = {"/layers": None}
    layers = []

    def remove(path):
        for p in [p for p in tree if p == path or p.startswith(path + "/")]:
            del tree[p]

    last = count - 1
    for k in range(1, count):
        name = f"f-{k:03d}"
        entries = [d("layers"), f(f"layers/{name}", f"{k}\n")]
        tree[f"/layers/{name}"] = f"{k}"
        if k == 2:  # a directory made opaque near the top
            entries += [d("layers/opq"), f("layers/opq/old-a", "a\n"), d("layers/opq/sub"),
                        f("layers/opq/sub/old-b", "b\n")]
            tree.update({"/layers/opq": None, "/layers/opq/old-a": "a", "/layers/opq/sub": None,
                         "/layers/opq/sub/old-b": "b"})
        if k == 3:  # a directory deleted whole later
            entries += [d("layers/gone"), f("layers/gone/x", "x\n")]
            tree.update({"/layers/gone": None, "/layers/gone/x": "x"})
        if k == 4:  # a file that becomes a directory later
            entries += [f("layers/replace", "file\n")]
            tree["/layers/replace"] = "file"
        if k % 10 == 0 and k > 5:  # delete the file of five layers below
            gone = f"f-{k - 5:03d}"
            entries += [whiteout("layers", gone)]
            remove(f"/layers/{gone}")
        if k == min(30, last - 1) and k > 3:
            entries += [whiteout("layers", "gone")]
            remove("/layers/gone")
        if k == min(40, last - 1) and k > 4:
            entries += [whiteout("layers", "replace"), d("layers/replace"),
                        f("layers/replace/inner", "inner\n")]
            remove("/layers/replace")
            tree.update({"/layers/replace": None, "/layers/replace/inner": "inner"})
        if k == last and k > 2:
            entries += [d("layers/opq"), opaque("layers/opq"), f("layers/opq/new", "new\n")]
            remove("/layers/opq")
            tree.update({"/layers/opq": None, "/layers/opq/new": "new"})
        layers.append(entries)
    return layers, tree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--tag", default="latest")
    parser.add_argument("--busybox", default="/bin/busybox")
    parser.add_argument("--applets", default="")
    parser.add_argument("--fixtures", action="store_true")
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--expected")
    args = parser.parse_args()

    layer_entries = [rootfs_layer(args.busybox, [a for a in args.applets.split(",") if a])]
    if args.fixtures:
        layer_entries.append(fixtures_layer())
    if args.layers > 1:
        extra, tree = many_layers(args.layers)
        layer_entries += extra
        if args.expected:
            with open(args.expected, "w") as out:
                for path in sorted(tree):
                    value = tree[path]
                    out.write(f"d {path}\n" if value is None else f"f {path} {value}\n")

    layout = Layout(args.out)
    layers, diff_ids = [], []
    for entries in layer_entries:
        descriptor, diff_id = layout.put_layer(entries)
        layers.append(descriptor)
        diff_ids.append(diff_id)
    config = {
        "created": CREATED, "os": "linux", "architecture": "amd64",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": f"make_rootfs_image.py: layer {i + 1}"}
                    for i in range(len(layers))],
    }
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": layout.put_json(MEDIA_CONFIG, config), "layers": layers}
    top = layout.put_json(MEDIA_MANIFEST, manifest)
    top["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    with open(os.path.join(args.out, "oci-layout"), "w") as out:
        json.dump({"imageLayoutVersion": "1.0.0"}, out)
    with open(os.path.join(args.out, "index.json"), "w") as out:
        json.dump({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [top]}, out)
    print(top["digest"])


if __name__ == "__main__":
    sys.exit(main())
