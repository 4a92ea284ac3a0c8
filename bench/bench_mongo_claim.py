"""Cost of one claim (+ its succeed) on the MongoDB backend with a small and a large backlog.

    .venv/bin/python bench/bench_mongo_claim.py [--url mongodb://127.0.0.1:27017/phlask_bench]
        [--sizes 100 100000] [--claims 30] [--throughput 1000]

For each size: a fresh collection, that many queued tasks inserted with insert_many in
batches (the document a producer writes), then ``--claims`` rounds of claim(limit 1) +
succeed, timed one by one. Prints median and p95 in ms for claim, succeed and both, the
ratio of the largest size to the smallest, and what the server says about the claim
query plan (explain): MongoDB should answer with an IXSCAN of ``phlask_claim`` and no SORT
stage; FerretDB reports whether it pushed the filter, sort and limit down to its storage.
``--throughput N`` also runs N trivial shell tasks through the real runner and compares
with the bare spawn loop (bench/_baseline.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _baseline import bare_spawn_rate  # noqa: E402

from phlask import Task  # noqa: E402
from phlask.brokers import Message  # noqa: E402
from phlask.brokers.mongodb import CLAIM_SORT, MongoBroker, claim_filters, now_utc, producer_document  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOOP = os.path.join(HERE, "tasks", "noop.sh")
BATCH = 5000


def fill(broker: MongoBroker, n: int) -> float:
    """Insert ``n`` queued tasks as a producer would; returns seconds taken."""
    body = Task(lang="shell", file=NOOP, id="x" * 36).encode()
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        now = now_utc()
        docs = [producer_document(Message(id=f"bench-{i:07d}", queue="default", body=body), now)
                for i in range(start, min(n, start + BATCH))]
        broker._tasks.insert_many(docs, ordered=False)
    return time.perf_counter() - t0


def plan(broker: MongoBroker) -> str:
    """A one-line summary of the server's plan for the ready-task claim query."""
    ready = claim_filters(["default"], now_utc())[0]
    cmd = {"find": broker.collection_name, "filter": ready, "sort": dict(CLAIM_SORT), "limit": 5}
    out = broker._client[broker.database].command("explain", cmd, verbosity="executionStats")
    if "filterPushdown" in out:  # FerretDB
        return (f"filterPushdown={out.get('filterPushdown')} sortPushdown={out.get('sortPushdown')} "
                f"limitPushdown={out.get('limitPushdown')} backend plan={out.get('queryPlanner', {}).get('Plan')}")
    stages, node = [], out.get("queryPlanner", {}).get("winningPlan", {})
    node = node.get("queryPlan", node)  # MongoDB 7 wraps the classic plan
    while node:
        stages.append(node.get("stage", "?") + (f"({node['indexName']})" if "indexName" in node else ""))
        node = node.get("inputStage") or (node.get("inputStages") or [None])[0]
    stats = out.get("executionStats", {})
    return (f"{' <- '.join(stages)}; keysExamined={stats.get('totalKeysExamined')} "
            f"docsExamined={stats.get('totalDocsExamined')}")


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure(url: str, size: int, rounds: int) -> dict[str, list[float]]:
    name = f"bench_claim_{size}_{os.getpid()}"
    broker = MongoBroker(url, collection=name, connect_timeout=10, prune_every=0)
    try:
        took = fill(broker, size)
        print(f"  {size:>7} queued: inserted in {took:.1f}s; plan: {plan(broker)}", flush=True)
        broker.claim(["default"], 1, 60)  # warm up the connection pool and the server's caches
        times: dict[str, list[float]] = {"claim": [], "succeed": [], "both": []}
        for _ in range(rounds):
            t0 = time.perf_counter()
            (c,) = broker.claim(["default"], 1, 60)
            t1 = time.perf_counter()
            broker.succeed(c, {"exit_code": 0})
            t2 = time.perf_counter()
            times["claim"].append((t1 - t0) * 1000)
            times["succeed"].append((t2 - t1) * 1000)
            times["both"].append((t2 - t0) * 1000)
        return times
    finally:
        broker._client[broker.database].drop_collection(broker.collection_name)
        broker._client[broker.database].drop_collection(broker.claims_name)
        broker.close()


def throughput(url: str, n: int, parallel: int) -> None:
    from phlask.runner import Runner

    broker = MongoBroker(url, collection=f"bench_run_{os.getpid()}", connect_timeout=10)
    try:
        bare = bare_spawn_rate(["/bin/sh", NOOP], n, parallel)
        broker.push_many([Task(lang="shell", file=NOOP) for _ in range(n)])
        t0 = time.perf_counter()
        stats = Runner(tasks=broker, max_processes=parallel, wait=5, roots=[HERE]).run()
        rate = n / (time.perf_counter() - t0)
        assert stats.succeeded == n, stats
        print(f"throughput, {n} shell tasks, {parallel} at a time: bare {bare:.1f}/s, "
              f"phlask on {broker.server} {rate:.1f}/s, ratio {rate / bare:.2f}")
    finally:
        broker._client[broker.database].drop_collection(broker.collection_name)
        broker._client[broker.database].drop_collection(broker.claims_name)
        broker.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/phlask_test"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 100_000])
    ap.add_argument("--claims", type=int, default=30, help="timed claim+succeed rounds per size")
    ap.add_argument("--throughput", type=int, default=0, metavar="N", help="also run N shell tasks")
    ap.add_argument("--parallel", type=int, default=8)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with MongoBroker(args.url, connect_timeout=10, prune_every=0) as probe:
        print(f"server: {probe.server} at {args.url}")
    results = {}
    for size in args.sizes:
        results[size] = measure(args.url, size, args.claims)
    print(f"\n{'queued':>8} {'op':>8} {'median ms':>10} {'p95 ms':>9}")
    for size, times in results.items():
        for op, values in times.items():
            print(f"{size:>8} {op:>8} {statistics.median(values):>10.2f} {pct(values, 0.95):>9.2f}")
    small, large = min(results), max(results)
    if small != large:
        for op in ("claim", "both"):
            a, b = results[small][op], results[large][op]
            print(f"ratio {large}/{small} ({op}): median {statistics.median(b) / statistics.median(a):.2f}x, "
                  f"p95 {pct(b, 0.95) / pct(a, 0.95):.2f}x")
    if args.throughput:
        throughput(args.url, args.throughput, args.parallel)


if __name__ == "__main__":
    main()
