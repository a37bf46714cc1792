#!/usr/bin/python3
"""Pushes one image of an OCI layout to a plain-HTTP registry, blobs in parallel.

    push_oci_layout.py LAYOUT TAG ADDR/REPO:REF

For images of many small layers, where skopeo's per-blob round trips dominate (120 layers take
it about 9 s). Each blob missing from the repository (HEAD) is uploaded monolithically, as the
distribution spec describes: POST /v2/REPO/blobs/uploads/, then PUT LOCATION?digest=D with the
whole blob. Then the manifest is PUT under REF. No authentication, no TLS: loopback test
registries only. Exits non-zero with the failing request on stderr.
"""

import concurrent.futures
import http.client
import json
import os
import sys
import urllib.parse


class Registry:
    def __init__(self, addr):
        self.addr = addr

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.addr, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def push_blob(registry, repo, layout, digest):
    path = os.path.join(layout, "blobs", *digest.split(":", 1))
    status, _, _ = registry.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    if status == 200:
        return
    status, headers, body = registry.request("POST", f"/v2/{repo}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"POST upload of {digest}: HTTP {status}: {body[:200]!r}")
    location = headers.get("Location") or headers.get("location")
    parts = urllib.parse.urlsplit(location)
    query = parts.query + ("&" if parts.query else "") + "digest=" + urllib.parse.quote(digest)
    with open(path, "rb") as blob:
        data = blob.read()
    status, _, body = registry.request(
        "PUT", f"{parts.path}?{query}", body=data,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    if status != 201:
        raise RuntimeError(f"PUT of {digest}: HTTP {status}: {body[:200]!r}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    layout, tag, dest = sys.argv[1:]
    addr, _, rest = dest.partition("/")
    repo, _, ref = rest.rpartition(":")
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    top = next((m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag), None)
    if top is None:
        sys.exit(f"push_oci_layout: no manifest named {tag} in {layout}/index.json")
    with open(os.path.join(layout, "blobs", *top["digest"].split(":", 1)), "rb") as f:
        manifest_bytes = f.read()
    manifest = json.loads(manifest_bytes)
    digests = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    registry = Registry(addr)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(push_blob, registry, repo, layout, d) for d in digests]:
            future.result()
    status, _, body = registry.request(
        "PUT", f"/v2/{repo}/manifests/{ref}", body=manifest_bytes,
        headers={"Content-Type": manifest["mediaType"]})
    if status != 201:
        sys.exit(f"push_oci_layout: PUT manifest {ref}: HTTP {status}: {body[:200]!r}")
    print(top["digest"])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, KeyError, ValueError) as e:
        sys.exit(f"push_oci_layout: {e}")
