#!/usr/bin/python3
"""Writes a small OCI image layout offline, for pushing to test registries.

    make_oci_image.py OUT_DIR [--tag TAG] [--platform OS/ARCH[/VARIANT]]...
                      [--busybox PATH | --no-busybox] [--file SRC:DEST]...
                      [--layers N --layer-size BYTES] [--seed N] [--platform-file]

One --platform (default linux/amd64) writes one image manifest; two or more write an image index
whose manifests are one image per platform. index.json holds one descriptor, annotated with
org.opencontainers.image.ref.name = TAG, so `skopeo copy [--all] oci:OUT_DIR:TAG ...` finds it.

Layer 1 holds /bin/busybox (unless --no-busybox), every --file, and with --platform-file a
/platform.txt naming the image's platform ("linux/arm64\n"). --layers N adds N layers, each with
one file /data/layer-K.bin of --layer-size pseudo-random (incompressible) bytes derived from
--seed, so big images cost no disk space beforehand and different seeds give different blobs.

The output is reproducible: fixed mtimes, owners and gzip headers, so the same arguments always
give the same digests. Prints the digest of the top-level manifest or index on stdout.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import tempfile

from oci_layout import LayoutBlobs

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200  # CREATED, as seconds


class HashingWriter:
    """A write-only file object that hashes and counts what passes through to `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)

    def tell(self):
        return self.size

    def flush(self):
        if self.inner is not None:
            self.inner.flush()


class PseudoRandomReader:
    """Reads `size` deterministic pseudo-random bytes without holding them all in memory."""

    def __init__(self, seed, size):
        self.rng = random.Random(seed)
        self.left = size

    def read(self, n=-1):
        if n < 0 or n > self.left:
            n = self.left
        self.left -= n
        return self.rng.randbytes(n)


class Layout(LayoutBlobs):

    def put_layer(self, entries):
        """entries: (path, mode, reader-or-None, size) tuples; None is a directory.

        Returns (descriptor, diff_id)."""
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            compressed = HashingWriter(out)
            gz = gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6)
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for path, mode, reader, size in entries:
                    info = tarfile.TarInfo(path)
                    info.mtime = MTIME
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = mode
                    if reader is None:
                        info.type = tarfile.DIRTYPE
                        tar.addfile(info)
                    else:
                        info.size = size
                        tar.addfile(info, reader)
            gz.close()
        digest = compressed.sha.hexdigest()
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(self.blobs, digest))
        descriptor = {"mediaType": MEDIA_LAYER, "digest": "sha256:" + digest,
                      "size": compressed.size}
        return descriptor, "sha256:" + uncompressed.sha.hexdigest()


def parse_platform(text):
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f"make_oci_image: bad --platform {text!r}, want os/arch[/variant]")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


def platform_name(platform):
    name = platform["os"] + "/" + platform["architecture"]
    return name + ("/" + platform["variant"] if "variant" in platform else "")


def parent_dirs(path):
    """Directory entries ("bin/", ...) a tar needs before `path`, outermost first."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def build_image(layout, args, platform):
    """Writes one platform's layers, config and manifest; returns the manifest descriptor."""
    files = []  # (dest path without leading '/', mode, bytes)
    if args.busybox:
        with open(args.busybox, "rb") as f:
            files.append(("bin/busybox", 0o755, f.read()))
    for spec in args.file:
        src, sep, dest = spec.partition(":")
        if not sep or not dest:
            raise SystemExit(f"make_oci_image: bad --file {spec!r}, want SRC:DEST")
        with open(src, "rb") as f:
            files.append((dest.lstrip("/"), os.stat(src).st_mode & 0o7777, f.read()))
    if args.platform_file:
        files.append(("platform.txt", 0o644, (platform_name(platform) + "\n").encode()))

    layers, diff_ids, history = [], [], []
    if files:
        entries, seen = [], set()
        for dest, mode, data in files:
            for d in parent_dirs(dest):
                if d not in seen:
                    seen.add(d)
                    entries.append((d, 0o755, None, 0))
            entries.append((dest, mode, io.BytesIO(data), len(data)))
        descriptor, diff_id = layout.put_layer(entries)
        layers.append(descriptor)
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": "make_oci_image.py: files"})
    for k in range(args.layers):
        path = f"data/layer-{k}.bin"
        reader = PseudoRandomReader(f"{args.seed}/{k}", args.layer_size)
        descriptor, diff_id = layout.put_layer(
            [("data/", 0o755, None, 0), (path, 0o644, reader, args.layer_size)])
        layers.append(descriptor)
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": f"make_oci_image.py: {path}"})

    config = dict(platform)
    config.update({
        "created": CREATED,
        "config": {"Cmd": ["/bin/busybox", "sh"] if args.busybox else ["/bin/sh"],
                   "Env": ["PATH=/bin", f"TEST_IMAGE_SEED={args.seed}"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": layout.put_json(MEDIA_CONFIG, config),
        "layers": layers,
    }
    descriptor = layout.put_json(MEDIA_MANIFEST, manifest)
    descriptor["platform"] = platform
    return descriptor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--tag", default="latest")
    parser.add_argument("--platform", action="append", default=[])
    parser.add_argument("--busybox", default="/bin/busybox")
    parser.add_argument("--no-busybox", dest="busybox", action="store_const", const="")
    parser.add_argument("--file", action="append", default=[])
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--layer-size", type=int, default=4096)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--platform-file", action="store_true")
    args = parser.parse_args()

    platforms = [parse_platform(p) for p in (args.platform or ["linux/amd64"])]
    layout = Layout(args.out)
    manifests = [build_image(layout, args, p) for p in platforms]
    if len(manifests) == 1:
        top = manifests[0]
        del top["platform"]
    else:
        top = layout.put_json(MEDIA_INDEX, {"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                            "manifests": manifests})
    top["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [top]}, f)
    print(top["digest"])


if __name__ == "__main__":
    sys.exit(main())
