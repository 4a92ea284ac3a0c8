"""Read all of stdin; print its size and SHA-256."""
import hashlib
import json
import sys

data = sys.stdin.buffer.read()
print(json.dumps({"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
