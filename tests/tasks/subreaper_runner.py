"""A miniature runner that checks the orphan sweep; prints what it saw as JSON.

It becomes a subreaper, runs escape_setsid.py (whose escapee is reparented to this
process once the task exits), then calls kill_orphans. Run as its own process because
being a subreaper is a property of the whole process.
"""
import json
import os
import sys
import time
from pathlib import Path

from phlask import supervise

HERE = Path(__file__).resolve().parent


def parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return int(fields[1]), fields[0].decode()


subreaper = supervise.become_subreaper()
spec = supervise.ProcessSpec(
    argv=[sys.executable, str(HERE / "escape_setsid.py")],
    env={"PATH": os.environ.get("PATH", os.defpath)},
    cwd=str(HERE),
    timeout=30,
)
outcome = supervise.run(spec)
escapee = int(outcome.stdout_tail.split()[0])
before = parent_and_state(escapee)
swept = supervise.kill_orphans(exclude_pids=[], min_age=0)
after = parent_and_state(escapee)
# A second sweep finds nothing left to do.
again = supervise.kill_orphans(exclude_pids=[], min_age=0)
print(json.dumps({
    "me": os.getpid(),
    "subreaper": subreaper,
    "escapee": escapee,
    "parent_before": before[0] if before else None,
    "swept": swept,
    "alive_after": after is not None and after[1] != "Z",
    "exists_after": after is not None,
    "second_sweep": again,
}))
