"""Allocates 16 MiB blocks, writing to each, until refused or $1 blocks are held.

Prints the MiB held after each block; on MemoryError says how far it got and exits 3.
Bounded by $1 so that a runner without a memory limit cannot take the host down.
"""
import sys

blocks = []
limit = int(sys.argv[1]) if len(sys.argv) > 1 else 64
try:
    while len(blocks) < limit:
        block = bytearray(16 << 20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page
        blocks.append(block)
        print(f"holding {16 * len(blocks)} MiB", flush=True)
except MemoryError:
    print(f"MemoryError after {16 * len(blocks)} MiB", file=sys.stderr, flush=True)
    sys.exit(3)
print(f"allocated all {16 * limit} MiB: no memory limit applied", file=sys.stderr)
