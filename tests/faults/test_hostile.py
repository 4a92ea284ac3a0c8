"""Hostile tasks: a fork bomb, a memory hog, a task that closes its output and runs on, and
tasks that leave their process group. Each is contained and its result says what happened;
ordinary tasks on the same runner keep running.

Process limit as root: RLIMIT_NPROC (``[limits] processes``, applied with prlimit) counts
the processes of the task's *user* and Linux does not enforce it for root, so a runner
running as root (as CI does) cannot bound a fork bomb with it alone. This suite runs the
bomb through an adapter that drops to uid 65534 with setpriv after prlimit set the limit:
``[adapters.nobody-shell] argv = ["setpriv", "--reuid=65534", "--regid=65534",
"--clear-groups", "/bin/sh", "{file}", "{args}"]``. Without that, only the timeout (SIGTERM,
then SIGKILL to the whole process group) stops a bomb, after it has taken what it could.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from phlask import Task

from . import figures
from .harness import Proof, Runners, outcomes, result_record, settled, wait_for, write_config

NOBODY = 65534
NPROC = 64
MEMORY = 256 << 20


def _uid_processes(uid: int) -> int:
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                n += os.stat(entry.path).st_uid == uid
            except OSError:
                pass
    return n


class Sampler(threading.Thread):
    """The peak number of processes of one uid, sampled every 20 ms."""

    def __init__(self, uid: int):
        super().__init__(daemon=True)
        self.uid, self.peak, self.done = uid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, _uid_processes(self.uid))
            time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_hostile_tasks_are_contained_and_reported(backend, tmp_path, queue_prefix):
    if os.geteuid() != 0:
        pytest.skip("the fork bomb runs under uid 65534 through setpriv, which needs root (CI runs as root)")
    assert _uid_processes(NOBODY) == 0, "uid 65534 already runs processes here; the bomb's count would be wrong"
    proof = Proof(tmp_path / "proof.txt")
    config = write_config(tmp_path / "phlask.toml", limits={"memory_bytes": MEMORY, "processes": NPROC}, adapters={
        "nobody-shell": {"argv": ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/bin/sh",
                                  "{file}", "{args}"]}})
    hostile = {
        "fork-bomb": Task(lang="nobody-shell", file="fork_bomb.sh", id="fork-bomb", timeout=3),
        "memory-hog": Task(lang="python", file="memory_hog.py", id="memory-hog", args=["64"], timeout=60),
        "closed-output": Task(lang="shell", file="close_stdout.sh", id="closed-output", timeout=2),
        "escape-and-exit": Task(lang="python", file="escape_group.py", id="escape-and-exit", timeout=30),
        "escape-and-stay": Task(lang="python", file="escape_group.py", id="escape-and-stay", args=["stay"], timeout=2),
    }
    ordinary = [Task(lang="shell", file="proof.sh", id=f"plain-{i}", args=[str(proof.path), "0.1"]) for i in range(20)]
    sampler = Sampler(NOBODY)
    with backend.make(tmp_path, queue_prefix) as broker:
        results = None if broker.supports_inspect else str(tmp_path / "results.db")
        # Given a runner with a memory limit and a process limit, and an adapter that drops root
        runners = Runners(broker.url, tmp_path, max_processes=8, lease=10, results=results, config=config,
                          extra=["--kill-grace", "1"])
        try:
            runners.start()
            sampler.start()
            # When it runs the hostile tasks, and ordinary ones beside them
            t0 = time.monotonic()
            broker.push_many(list(hostile.values()) + ordinary)
            ids = [*hostile, *(t.id for t in ordinary)]
            assert wait_for(lambda: settled(outcomes(broker, ids, results)) or runners.crashed(), timeout=180,
                            interval=0.2), runners.logs()
            took = time.monotonic() - t0
            got = outcomes(broker, ids, results)
            rec = {i: result_record(broker, i, results) for i in hostile}
            escapees = {i: int(re.search(r"escapee (\d+)", rec[i]["stdout_tail"]).group(1))
                        for i in ("escape-and-exit", "escape-and-stay")}
            # (the runner's orphan sweep runs every second; give it a few)
            swept = wait_for(lambda: all(_gone(p) for p in escapees.values()), timeout=15)
            bomb_left = wait_for(lambda: _uid_processes(NOBODY) == 0, timeout=15)
            sampler.done.set()
            alive = not runners.crashed()
            [(r, code)] = runners.stop()
            log = r.tail(200_000)
        finally:
            sampler.done.set()
            runners.close()
    # Then every ordinary task succeeded, and the runner lived through it all and exited cleanly
    assert alive and code == 0, runners.logs()
    assert all(got[t.id] == [("succeeded", None)] for t in ordinary), got
    assert len(proof.ids("done")) == len(ordinary)
    # the fork bomb hit its process limit, was stopped at its timeout, and left nothing behind
    bomb = rec["fork-bomb"]
    assert got["fork-bomb"] == [("dead", "timed_out")] and bomb["timed_out"] is True, bomb
    assert bomb["signal"] in ("SIGTERM", "SIGKILL") and bomb["exit_code"] is None
    assert "Cannot fork" in bomb["stderr_tail"] or "fork" in bomb["stderr_tail"].lower(), bomb["stderr_tail"][-500:]
    assert 1 < sampler.peak <= NPROC, sampler.peak
    assert bomb_left, f"{_uid_processes(NOBODY)} processes of uid {NOBODY} still alive"
    # the memory hog was refused memory at the limit and failed, saying so
    hog = rec["memory-hog"]
    assert got["memory-hog"] == [("dead", "failed")] and hog["exit_code"] == 3, hog
    reached = int(re.search(r"MemoryError after (\d+) MiB", hog["stderr_tail"]).group(1))
    assert reached < MEMORY >> 20
    assert "exited with status 3" in hog["error"]
    # the task that closed its output still met its timeout
    quiet = rec["closed-output"]
    assert got["closed-output"] == [("dead", "timed_out")] and quiet["timed_out"] is True, quiet
    assert quiet["stdout_tail"] == "closing my output now\n" and quiet["duration"] < 2 + 1 + 5
    # and what left its process group was killed by the sweep, whether the task exited or timed out
    assert got["escape-and-exit"] == [("succeeded", None)], rec["escape-and-exit"]
    assert got["escape-and-stay"] == [("dead", "timed_out")], rec["escape-and-stay"]
    assert swept, {i: p for i, p in escapees.items() if not _gone(p)}
    assert "escaped their task's process group" in log
    assert rec["escape-and-exit"]["duration"] < 10  # not held up by the escapee's open pipes
    figures.add(backend.NAME, hostile=len(hostile))
    figures.note(backend.NAME, f"hostile: fork bomb peaked at {sampler.peak} processes (limit {NPROC}), dead timed_out "
                               f"after {bomb['duration']:.1f}s, none left; memory hog refused at {reached} MiB "
                               f"(limit {MEMORY >> 20} MiB); 5 hostile + 20 ordinary tasks in {took:.1f}s")
