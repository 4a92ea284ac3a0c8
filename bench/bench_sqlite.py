"""Throughput of trivial shell tasks through the embedded SQLite queue, next to a bare
spawn loop run in the same process (bench/_baseline.py).

    .venv/bin/python bench/bench_sqlite.py [--tasks 2000] [--parallel 2 8]

Prints tasks/s for each and the ratio (target: >= 0.8 of the bare spawn rate).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _baseline import bare_spawn_rate  # noqa: E402

from phlask import Task, connect  # noqa: E402
from phlask.runner import Runner  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOOP = os.path.join(HERE, "tasks", "noop.sh")


def phlask_rate(n_tasks: int, parallel: int, tmp: str) -> float:
    url = f"sqlite:///{tmp}/bench-{parallel}-{time.monotonic_ns()}.db"
    broker = connect(url)
    broker.push_many([Task(lang="shell", file=NOOP) for _ in range(n_tasks)])
    t0 = time.perf_counter()
    stats = Runner(tasks=broker, max_processes=parallel, wait=5, roots=[HERE]).run()
    elapsed = time.perf_counter() - t0
    assert stats.succeeded == n_tasks, stats
    broker.close()
    return n_tasks / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--parallel", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept")
    args = ap.parse_args()
    logging.getLogger("phlask").setLevel(logging.WARNING)
    print(f"{'parallel':>8} {'bare tasks/s':>13} {'phlask tasks/s':>15} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.parallel:
            bare = best = 0.0
            for _ in range(args.rounds):
                bare = max(bare, bare_spawn_rate(["/bin/sh", NOOP], args.tasks, p))
                best = max(best, phlask_rate(args.tasks, p, tmp))
            print(f"{p:>8} {bare:>13.1f} {best:>15.1f} {best / bare:>6.2f}")


if __name__ == "__main__":
    main()
