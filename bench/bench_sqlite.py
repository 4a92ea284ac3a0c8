"""Throughput of trivial shell tasks through the embedded SQLite queue, next to a bare
spawn loop run in the same process (bench/_baseline.py).

    .venv/bin/python bench/bench_sqlite.py [--tasks 2000] [--parallel 2 8] [--lang shell]

Prints tasks/s for each and the ratio (target: >= 0.8 of the bare spawn rate), the whole
machine's CPU per task and cores busy for each, and the ceiling those CPU costs put on the
ratio (bench/_baseline.py). ``--lang php`` (node, python, ruby) runs an empty script of
that language instead of an empty ``sh`` script: the same comparison with a real
interpreter's start-up in every task.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _baseline import HEADER, Meter, Sample, compare, row  # noqa: E402

from phlask import Task, connect  # noqa: E402
from phlask.adapters import AdapterTable  # noqa: E402
from phlask.runner import Runner  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOOP = {"shell": "noop.sh", "php": "noop.php", "node": "noop.js", "python": "noop.py", "ruby": "noop.rb"}


def script(lang: str) -> tuple[str, list[str]]:
    """The empty task script of ``lang`` and the argv the runner starts it with."""
    path = os.path.join(HERE, "tasks", NOOP[lang])
    return path, AdapterTable.from_config().resolve(lang).argv_for(path, [])


def phlask_run(n_tasks: int, parallel: int, tmp: str, lang: str) -> Sample:
    url = f"sqlite:///{tmp}/bench-{parallel}-{time.monotonic_ns()}.db"
    broker = connect(url)
    broker.push_many([Task(lang=lang, file=script(lang)[0]) for _ in range(n_tasks)])
    with Meter(n_tasks) as m:
        stats = Runner(tasks=broker, max_processes=parallel, wait=5, roots=[HERE]).run()
    assert stats.succeeded == n_tasks, stats
    broker.close()
    assert m.sample is not None
    return m.sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--parallel", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept")
    ap.add_argument("--lang", choices=sorted(NOOP), default="shell", help="language of the empty task")
    args = ap.parse_args()
    logging.getLogger("phlask").setLevel(logging.WARNING)
    argv = script(args.lang)[1]
    print(f"{args.lang} tasks: {' '.join(argv)}")
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.parallel:
            bare, phl = compare(argv, args.tasks, p, args.rounds,
                                lambda n, par: phlask_run(n, par, tmp, args.lang))
            print(row(p, bare, phl))


if __name__ == "__main__":
    main()
