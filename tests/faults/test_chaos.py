"""Crashes and restarts: runners killed with SIGKILL, a broker restarted mid-run, and a
graceful shutdown under load. Nothing may be lost; what runs twice is counted and must be
explained by a SIGKILL (README "Stopping and crashes", spec/README.md section 7).

Given / When / Then. Time limits are generous bounds, not measurements.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from phlask import Task

from . import figures
from .conftest import LONG
from .harness import PHLASK, ROOT, Proof, Runners, outcomes, queue_counts, wait_for

#: The long form's rounds outlast pytest's default 300 s per test (FerretDB, which decodes
#: every document of the collection for each claim, slows down as the queue grows).
pytestmark = pytest.mark.timeout(3600 if LONG else 300)

#: Lease of the chaos runners: short, so that a killed runner's tasks come back soon, and
#: long enough that a live runner always renews in time (every lease/3), even when one
#: broker call blocks its loop for seconds. FerretDB decodes every document for each claim:
#: with 2,000 tasks and 3 runners on 2 cores a claim took several seconds, and with a 4 s
#: lease live runners lost leases (15 tasks ran twice with no kill to explain it).
LEASES = {"mongodb": 10.0}
LEASE = 4.0


def _results(broker, tmp_path) -> str | None:
    """A --results store for backends that forget settled tasks (RabbitMQ)."""
    return None if broker.supports_inspect else str(tmp_path / "results.db")


def _lease(backend) -> float:
    return LEASES.get(backend.NAME, LEASE)


def _settled(broker, n: int, proof: Proof, ids: set[str], quiet_since: float, lease: float = LEASE) -> bool:
    """Every task done and nothing left in the backend."""
    if not ids <= proof.ids("done"):
        return False
    try:
        counts = queue_counts(broker)
    except Exception:  # noqa: BLE001 - the server may be coming back; ask again
        return False
    if broker.supports_inspect:
        return counts == {"succeeded": n}
    # RabbitMQ: a killed runner's renewed tasks wait in its hold queue until their copies
    # expire (twice the lease) and come back; wait that long after the last kill.
    return not counts.get("queued") and not counts.get("dead") and time.monotonic() > quiet_since + 2 * lease + 2


def _empty(broker, counts: dict[str, int], n: int) -> bool:
    """After the runners stopped: every task succeeded (or, on RabbitMQ, which forgets
    settled tasks, none is queued or dead)."""
    if broker.supports_inspect:
        return counts == {"succeeded": n}
    return not counts.get("queued") and not counts.get("dead")


def _check_and_report(name, broker, runners, proof, ids, *, strict: bool | None, kills=0, restarts=0,
                      broker_restarts=0):
    """Stop the runners, then count: crashes, lost, run twice, and (``strict`` not None) runs
    twice that no SIGKILL explains."""
    crashed = runners.crashed()
    stops = runners.stop()
    bad_exits = [(r.pid, code) for r, code in stops if code != 0]
    done = proof.ids("done")
    lost = len(ids - done)
    if broker.supports_inspect:
        counts = queue_counts(broker)
        lost = max(lost, len(ids) - counts.get("succeeded", 0))
    else:
        counts = queue_counts(broker)
    dup = proof.duplicated()
    unexplained = {} if strict is None else proof.unexplained(runners.killed_pids, runners.pids, strict=strict)
    figures.add(name, tasks=len(ids), kills=kills, runner_restarts=restarts, broker_restarts=broker_restarts,
                lost=lost, duplicated=len(dup), unexplained_duplicates=len(unexplained),
                crashes=len(crashed) + len(bad_exits))
    return {"crashed": crashed, "bad_exits": bad_exits, "lost": lost, "counts": counts, "dup": dup,
            "unexplained": unexplained, "missing": sorted(ids - done)[:20],
            "interrupted": proof.interrupted(runners.killed_pids, runners.pids)}


# --- chaos -----------------------------------------------------------------------------------


def test_chaos_runners_killed_and_restarted_lose_nothing(backend, tmp_path, queue_prefix, rng):
    # Given N tasks that prove each run in a file, and 3 runner processes
    n, kills = (2000, 8) if LONG else (200, 2)
    proof = Proof(tmp_path / "proof.txt")
    ids = {f"c{i:05d}" for i in range(n)}
    with backend.make(tmp_path, queue_prefix) as broker:
        broker.push_many([Task(lang="shell", file="proof.sh", id=i, args=[str(proof.path),
                                                                           rng.choice(["0", "0.05", "0.1", "0.3"])])
                          for i in sorted(ids)])
        lease = _lease(backend)
        runners = Runners(broker.url, tmp_path, max_processes=4, lease=lease, results=_results(broker, tmp_path))
        t0 = time.monotonic()
        try:
            for _ in range(3):
                runners.start()
            # When one runner at a time is killed with SIGKILL at random points of the run
            # (each when a random share of the tasks is done), and a new one started
            points = sorted(rng.uniform(0.05, 0.85) * n for _ in range(kills))
            last_kill = time.monotonic()
            for point in points:
                if not wait_for(lambda: len(proof.ids("done")) >= point or runners.crashed(), timeout=300):
                    break
                time.sleep(rng.uniform(0, 0.3))  # not always right at a task's end
                runners.kill(rng.choice(runners.live))
                runners.start()
                last_kill = time.monotonic()
            # Then every task runs to success, by the runners alone
            settled = wait_for(lambda: _settled(broker, n, proof, ids, last_kill, lease) or runners.crashed(),
                               timeout=600 if LONG else 240, interval=0.2)
            elapsed = time.monotonic() - t0
            report = _check_and_report(backend.NAME, broker, runners, proof, ids, strict=broker.supports_unique_ids,
                                       kills=len(runners.killed_pids), restarts=len(runners.killed_pids))
        finally:
            runners.close()
        figures.note(backend.NAME, f"chaos: {n} tasks, {len(runners.killed_pids)} SIGKILLs, 3 runners x 4 processes, "
                                   f"lease {lease:g}s: all done in {elapsed:.1f}s; {report['interrupted']} runs cut "
                                   f"short by a kill, {len(report['dup'])} tasks run twice or more")
    assert not report["crashed"] and not report["bad_exits"], runners.logs()
    assert settled, f"not settled: counts {report['counts']}, missing {report['missing']}\n{runners.logs()}"
    assert report["lost"] == 0, report["missing"]
    assert _empty(broker, report["counts"], n), report["counts"]
    assert len(runners.killed_pids) == kills, "the run ended before every kill; make the tasks slower"
    # Every task that ran more than once was on a runner at the moment it was killed.
    assert not report["unexplained"], _explain(report["unexplained"], runners)


def _explain(dups, runners) -> str:
    """The runs of each unexplained duplicate, and what the runners logged about it."""
    out = [f"killed runners: {sorted(runners.killed_pids)}"]
    logs = {r.pid: r.tail(10**7).splitlines() for r in runners.all}
    for task_id, starts in list(dups.items())[:5]:
        out.append(f"{task_id}: started by runners {[s.runner for s in starts]}")
        out += [f"  [{pid}] {line}" for pid, lines in logs.items() for line in lines if task_id in line]
    return "\n".join(out)


# --- broker restart -------------------------------------------------------------------------------


def _services(*args: str) -> float:
    t0 = time.monotonic()
    subprocess.run(["bash", str(ROOT / "scripts" / "services"), *args], check=True, capture_output=True, timeout=180)
    return time.monotonic() - t0


def test_broker_restart_mid_run_loses_nothing_and_runners_recover(backend, tmp_path, queue_prefix, rng):
    if backend.NAME == "sqlite":
        pytest.skip("sqlite: an embedded file, no server to restart")
    # Tasks of about a second, so that the outage falls in the middle of the work even when
    # `services stop` first waits its turn behind another test run's restart.
    n = 400 if LONG else 120
    proof = Proof(tmp_path / "proof.txt")
    ids = {f"r{i:04d}" for i in range(n)}
    with backend.make(tmp_path, queue_prefix) as broker:
        broker.push_many([Task(lang="shell", file="proof.sh", id=i, args=[str(proof.path), rng.choice(["0.6", "1.2"])])
                          for i in sorted(ids)])
        runners = Runners(broker.url, tmp_path, max_processes=4, lease=10, results=_results(broker, tmp_path))
        try:
            for _ in range(2):
                runners.start()
            # When the server goes down while a tenth of the tasks are done, stays down for
            # two seconds (long enough for every runner to hit it), and comes back, data kept
            assert wait_for(lambda: len(proof.ids("done")) >= n // 10 or runners.crashed(), timeout=120)
            before = len(proof.ids("done"))
            down = _services("stop", backend.NAME)
            left = n - len(proof.ids("done"))
            time.sleep(2)
            down += 2 + _services("start", backend.NAME)
            back = time.monotonic()
            # Then the runners carry on by themselves and every task succeeds
            settled = wait_for(lambda: _settled(broker, n, proof, ids, back) or runners.crashed(),
                               timeout=600 if LONG else 240, interval=0.3)
            recovered = time.monotonic() - back
            report = _check_and_report(backend.NAME, broker, runners, proof, ids, strict=None, broker_restarts=1)
        finally:
            runners.close()
        figures.note(backend.NAME, f"broker stopped after {before} of {n} tasks, {left} still to do when it was down; "
                                   f"restarted ({down:.1f}s), all done {recovered:.1f}s later; "
                                   f"{len(report['dup'])} run twice or more")
    assert not report["crashed"] and not report["bad_exits"], runners.logs()
    assert settled, f"not settled: counts {report['counts']}, missing {report['missing']}\n{runners.logs()}"
    assert report["lost"] == 0, report["missing"]
    assert _empty(broker, report["counts"], n), report["counts"]
    assert left > 0, "every task finished before the server stopped; the runners' recovery was not exercised"


# --- graceful shutdown ------------------------------------------------------------------------------


def test_sigterm_under_load_finishes_or_returns_every_task(backend, tmp_path, queue_prefix):
    # Given a runner running 8 tasks: 4 that end within the shutdown grace, 4 that would not
    proof = Proof(tmp_path / "proof.txt")
    quick_rerun = tmp_path / "quick"  # once it exists, the long tasks end at once
    short = [f"s{i}" for i in range(4)]
    long = [f"l{i}" for i in range(4)]
    results = None
    with backend.make(tmp_path, queue_prefix) as broker:
        results = _results(broker, tmp_path)
        broker.push_many([Task(lang="shell", file="sleep_proof.sh", id=i,
                               args=[str(proof.path), seconds, str(quick_rerun)])
                          for ids, seconds in ((short, "1"), (long, "120")) for i in ids])
        runners = Runners(broker.url, tmp_path, max_processes=8, lease=10, results=results,
                          extra=["--shutdown-grace", "3", "--kill-grace", "2"])
        try:
            r = runners.start()
            assert wait_for(lambda: len(proof.ids("start")) == 8 or runners.crashed(), timeout=60), runners.logs()
            # When it gets SIGTERM
            t0 = time.monotonic()
            [(_, code)] = runners.stop(timeout=60)
            took = time.monotonic() - t0
            log = r.tail(20000)
            after_stop = queue_counts(broker)
            states = outcomes(broker, short + long, results)
            # Then the quick ones finished, the others were stopped and returned to the queue
            assert code == 0, log
            assert took < 3 + 2 + 20, took
            assert proof.ids("done") == set(short), proof.lines()
            assert proof.ids("term") == set(long), proof.lines()
            assert "4 succeeded, 0 dead, 0 retried, 4 returned to the queue" in log, log
            assert all(states[i] == [("succeeded", None)] for i in short), states
            if broker.supports_inspect:
                assert all(states[i] == [("queued", None)] for i in long), states
                assert all(broker.inspect(i).attempts == 0 for i in long)
            else:  # released: back in the work queue, no result recorded, nothing dead
                assert all(states[i] == [] for i in long), states
            assert after_stop.get("queued") == 4 and not after_stop.get("dead") and not after_stop.get("running"), \
                after_stop
            # And a later runner runs them as attempt 1: the stop did not count as an attempt
            quick_rerun.touch()
            drain = subprocess.run([*PHLASK, *[a for a in runners.args if a != "--daemon"]],
                                   capture_output=True, text=True, timeout=120, cwd=tmp_path)
            assert drain.returncode == 0, drain.stderr
        finally:
            runners.close()
        assert proof.ids("done") == set(short + long)
        assert {x.attempt for x in proof.lines()} == {1}, proof.lines()
        final = outcomes(broker, short + long, results)
        assert all(final[i] == [("succeeded", None)] for i in short + long), final
        figures.add(backend.NAME, tasks=8, lost=0)
        figures.note(backend.NAME, f"SIGTERM with 8 running: 4 finished, 4 returned (attempt not counted), "
                                   f"runner exited 0 in {took:.1f}s")
