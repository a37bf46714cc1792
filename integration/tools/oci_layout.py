"""Writing blobs of an OCI image layout: shared by the test-image makers of this folder."""
import hashlib
import json
import os


class LayoutBlobs:
    """The blobs/sha256 store of the layout at ROOT; subclasses add layers and the index."""

    def __init__(self, root):
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)

    def put_bytes(self, data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.blobs, digest), "wb") as out:
            out.write(data)
        return "sha256:" + digest, len(data)

    def put_json(self, media_type, value):
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        digest, size = self.put_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": size}
