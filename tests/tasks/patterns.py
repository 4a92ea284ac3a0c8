"""Deterministic content shared by big_output.py and the tests that check its tails."""


def stream_bytes(tag: bytes, size: int) -> bytes:
    """Return ``size`` bytes of numbered lines like ``out 0000000042\\n``."""
    line = len(tag) + 12
    count = size // line + 1
    return b"".join(b"%s %010d\n" % (tag, i) for i in range(count))[:size]
