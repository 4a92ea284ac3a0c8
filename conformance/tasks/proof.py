"""Conformance proof task (see README.md): append one JSON line to $CONFORMANCE_PROOF.

Strings are read as UTF-8 bytes whatever locale the runner gives the process."""
import json
import os
import sys


def env(name):
    value = os.environb.get(name.encode())
    return None if value is None else value.decode("utf-8")


line = json.dumps({
    "lang": "python",
    "argv": [os.fsencode(a).decode("utf-8") for a in sys.argv[1:]],
    "text": env("CONFORMANCE_TEXT"),
    "leak": env("CONFORMANCE_RUNNER_ONLY"),
    "stdin": sys.stdin.buffer.read().decode("utf-8"),
    "task_id": env("PHLASK_TASK_ID"),
    "attempt": env("PHLASK_ATTEMPT"),
    "queue": env("PHLASK_QUEUE"),
}, ensure_ascii=False)
with open(os.environ["CONFORMANCE_PROOF"], "a", encoding="utf-8") as f:
    f.write(line + "\n")
