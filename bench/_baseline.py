"""The baseline every throughput benchmark compares against, and the meter that explains
the comparison.

:func:`bare_spawn_rate` is a bare Python loop that spawns the same processes with the same
parallelism, with no queue and no supervision (one thread per slot).

:class:`Meter` reads the whole machine's CPU time (``/proc/stat``, every core, so the
broker server, the runner, its tasks and the bare loop's threads all count) over a
measurement. On a machine whose cores are all busy, throughput is CPU per task: a runner
that spends more CPU per task than the bare loop cannot reach the bare rate, however well
it overlaps its waits. ``ceiling`` is the ratio it would reach using the cores as fully as
the bare loop does: bare CPU per task / phlask CPU per task.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time every core of the machine has spent working: user, nice, system, irq and
    softirq (not idle, iowait, the hypervisor's steal, or guest time, counted in user)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / _TICK


def process_cpu(comm: str) -> float:
    """CPU seconds used so far by every process named ``comm`` (a broker server, say)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name == comm:
            total += (int(rest[11]) + int(rest[12])) / _TICK  # utime, stime
    return total


@dataclass
class Sample:
    tasks: int
    wall: float  # seconds
    busy: float  # CPU seconds, all cores
    server: float = 0.0  # CPU seconds of the processes named by Meter(server=...)

    @property
    def rate(self) -> float:
        return self.tasks / self.wall

    @property
    def cpu_us(self) -> float:
        """Machine CPU per task, in microseconds."""
        return self.busy / self.tasks * 1e6

    @property
    def cores(self) -> float:
        """Cores busy on average during the run."""
        return self.busy / self.wall


class Meter:
    """``with Meter(n) as m: ...`` then ``m.sample``: wall time and machine CPU of the block
    (and the CPU of the processes named ``server``, if given)."""

    def __init__(self, tasks: int, server: str | None = None):
        self.tasks = tasks
        self.server = server
        self.sample: Sample | None = None

    def __enter__(self) -> Meter:
        self._s0 = process_cpu(self.server) if self.server else 0.0
        self._t0, self._b0 = time.perf_counter(), _busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy = time.perf_counter() - self._t0, _busy_seconds() - self._b0
        server = process_cpu(self.server) - self._s0 if self.server else 0.0
        self.sample = Sample(self.tasks, wall, busy, server)


def bare_spawn(argv: list[str], n_tasks: int, parallel: int) -> Sample:
    """``n_tasks`` runs of ``argv``, ``parallel`` at a time, measured."""
    remaining = [n_tasks]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={"PATH": "/usr/bin:/bin"}, start_new_session=True, check=True)

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    with Meter(n_tasks) as m:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert m.sample is not None
    return m.sample


def bare_spawn_rate(argv: list[str], n_tasks: int, parallel: int) -> float:
    """Tasks per second for ``n_tasks`` runs of ``argv``, ``parallel`` at a time."""
    return bare_spawn(argv, n_tasks, parallel).rate


HEADER = (f"{'parallel':>8} {'bare tasks/s':>13} {'phlask tasks/s':>15} {'ratio':>6}"
          f" {'CPU us/task bare':>17} {'phlask':>7} {'cores bare':>11} {'phlask':>7} {'ceiling':>8}")


def row(parallel: int, bare: Sample, phlask: Sample) -> str:
    """One line under :data:`HEADER`."""
    return (f"{parallel:>8} {bare.rate:>13.1f} {phlask.rate:>15.1f} {phlask.rate / bare.rate:>6.2f}"
            f" {bare.cpu_us:>17.0f} {phlask.cpu_us:>7.0f} {bare.cores:>11.2f} {phlask.cores:>7.2f}"
            f" {bare.cpu_us / phlask.cpu_us:>8.2f}")


def compare(argv: list[str], n_tasks: int, parallel: int, rounds: int,
            run: Callable[[int, int], Sample]) -> tuple[Sample, Sample]:
    """The bare loop and ``run(n_tasks, parallel)`` (phlask), alternated ``rounds`` times;
    the fastest round of each."""
    bare: Sample | None = None
    phlask: Sample | None = None
    for _ in range(rounds):
        b, p = bare_spawn(argv, n_tasks, parallel), run(n_tasks, parallel)
        bare = b if bare is None or b.rate > bare.rate else bare
        phlask = p if phlask is None or p.rate > phlask.rate else phlask
    assert bare is not None and phlask is not None
    return bare, phlask
