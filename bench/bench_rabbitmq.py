"""RabbitMQ backend numbers, against the server of ``bash scripts/services start rabbitmq``:

* enqueue rate of the Python producer with publisher confirms: one ``push`` (one confirm)
  at a time, and ``push_many`` (one confirm wait per batch);
* delay from publish to claim on an idle consumer (``claim`` blocked with a timeout), and
  from publish to process start on an idle runner: median and 99th percentile;
* tasks/s of trivial shell tasks through RabbitMQ next to the bare spawn loop in the same
  run (bench/_baseline.py; target: >= 0.8 of the bare rate), with the machine's CPU per
  task (the RabbitMQ server's included) and the ceiling it puts on that ratio.

    .venv/bin/python bench/bench_rabbitmq.py [--tasks 2000] [--samples 300] [--parallel 2 8]

Every queue it makes (prefix ``phlask.bench.<random>-``) is deleted at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(__file__))
from _baseline import HEADER, Meter, Sample, compare, row  # noqa: E402

from phlask import Task  # noqa: E402
from phlask.brokers.rabbitmq import RabbitBroker  # noqa: E402
from phlask.runner import Runner  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOOP = os.path.join(HERE, "tasks", "noop.sh")
URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PREFIX = f"phlask.bench.{uuid.uuid4().hex[:8]}-"
opened: list[RabbitBroker] = []


def broker(queues: str = "") -> RabbitBroker:
    b = RabbitBroker(f"{URL}{'&' if '?' in URL else '?'}prefix={PREFIX}" + (f"&queues={queues}" if queues else ""))
    opened.append(b)
    return b


def drain(b: RabbitBroker, queue: str) -> None:
    while claims := b.claim([queue], 500, 60):
        for c in claims:
            b.succeed(c, {})


def enqueue_rates(n: int, batch: int) -> tuple[float, float]:
    b = broker()
    tasks = [Task(lang="shell", file=NOOP, queue="enq") for _ in range(n)]
    t0 = time.perf_counter()
    for t in tasks:
        b.push(t)
    one = n / (time.perf_counter() - t0)
    drain(b, "enq")
    tasks = [Task(lang="shell", file=NOOP, queue="enq") for _ in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        b.push_many(tasks[i:i + batch])
    many = n / (time.perf_counter() - t0)
    drain(b, "enq")
    return one, many


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) * 1000, s[min(len(s) - 1, int(0.99 * len(s)))] * 1000


def claim_delay(samples: int) -> tuple[float, float]:
    """Publish -> claim returned, on a consumer already blocked in claim(timeout)."""
    producer, consumer = broker(), broker()
    sent: dict[str, float] = {}
    delays: list[float] = []
    got = threading.Event()

    def consume() -> None:
        while len(delays) < samples:
            for c in consumer.claim(["lat"], 1, 60, timeout=5):
                delays.append(time.perf_counter() - sent[c.id])
                consumer.succeed(c, {})
                got.set()

    t = threading.Thread(target=consume)
    t.start()
    for i in range(samples):
        time.sleep(0.01)  # the consumer is back in its idle wait
        got.clear()
        task = Task(lang="shell", file=NOOP, queue="lat", id=f"lat-{i}")
        sent[task.id] = time.perf_counter()
        producer.push(task)
        got.wait(10)
    t.join()
    return percentiles(delays)


def start_delay(samples: int) -> tuple[float, float]:
    """Publish -> the task's process runs its first command, on an idle runner."""
    producer, tasks = broker(), broker()
    started: dict[str, float] = {}
    done = threading.Event()

    class Results:  # the runner hands every result here; stdout is the start time
        def record(self, claim, result):
            started[claim.id] = int(result["stdout_tail"].strip()) / 1e9
            done.set()

    runner = Runner(tasks=tasks, results=Results(), daemon=True, allow_inline=True, queues=["start"],
                    wait=1000, roots=[HERE], max_processes=2)
    t = threading.Thread(target=runner.run)
    t.start()
    delays = []
    time.sleep(0.5)
    for i in range(samples):
        time.sleep(0.02)
        done.clear()
        task = Task(lang="shell", code="date +%s%N", queue="start", id=f"start-{i}")
        t0 = time.time()
        producer.push(task)
        done.wait(10)
        delays.append(started[task.id] - t0)
    runner.stop(hard=True)
    t.join()
    return percentiles(delays)


def runner_run(n: int, parallel: int) -> Sample:
    b = broker()
    b.push_many([Task(lang="shell", file=NOOP, queue=f"tp{parallel}") for _ in range(n)])
    with Meter(n, server="beam.smp") as m:  # the machine's CPU: the RabbitMQ server's counts too
        stats = Runner(tasks=b, queues=[f"tp{parallel}"], max_processes=parallel, wait=5, roots=[HERE]).run()
    assert stats.succeeded == n, stats
    assert m.sample is not None
    return m.sample


def cleanup() -> None:
    names = set()
    for b in opened:
        names |= b.declared_names
        b.close()
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    ch = conn.channel()
    for name in names:
        if ch.is_closed:
            ch = conn.channel()
        try:
            ch.queue_delete(name)
        except pika.exceptions.ChannelClosedByBroker:
            pass
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--parallel", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--rounds", type=int, default=2, help="alternating throughput rounds; the best of each is kept")
    args = ap.parse_args()
    logging.getLogger("phlask").setLevel(logging.ERROR)
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    try:
        one, many = enqueue_rates(args.tasks, args.batch)
        print(f"enqueue, confirms one by one   {one:>9.0f} tasks/s")
        print(f"enqueue, push_many of {args.batch:<5}   {many:>9.0f} tasks/s")
        med, p99 = claim_delay(args.samples)
        print(f"publish -> claim (idle)        median {med:.2f} ms, p99 {p99:.2f} ms ({args.samples} samples)")
        med, p99 = start_delay(args.samples)
        print(f"publish -> process start (idle runner) median {med:.2f} ms, p99 {p99:.2f} ms")
        print(HEADER)
        for p in args.parallel:
            bare, phl = compare(["/bin/sh", NOOP], args.tasks, p, args.rounds, runner_run)
            print(row(p, bare, phl) + f"   (RabbitMQ server: {phl.server / phl.tasks * 1e6:.0f} us/task)")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
