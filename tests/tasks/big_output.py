"""Write the same deterministic N bytes to stdout and to stderr, interleaved in 1 MiB blocks.

A supervisor that drains only one stream at a time deadlocks here: each blocking write
waits for the pipe to be read.
"""
import sys

from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from patterns import stream_bytes  # noqa: E402

size = int(sys.argv[1])
out, err = stream_bytes(b"out", size), stream_bytes(b"err", size)
block = 1 << 20
for i in range(0, size, block):
    sys.stdout.buffer.write(out[i:i + block])
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(err[i:i + block])
    sys.stderr.buffer.flush()
