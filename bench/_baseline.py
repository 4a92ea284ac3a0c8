"""The baseline every throughput benchmark compares against: a bare Python loop that
spawns the same processes with the same parallelism, with no queue and no supervision."""

from __future__ import annotations

import subprocess
import threading
import time


def bare_spawn_rate(argv: list[str], n_tasks: int, parallel: int) -> float:
    """Tasks per second for ``n_tasks`` runs of ``argv``, ``parallel`` at a time."""
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
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n_tasks / (time.perf_counter() - t0)
