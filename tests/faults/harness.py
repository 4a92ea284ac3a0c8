"""What the fault tests share: runner processes, the proof file, raw storage in batches,
and reading back what became of every task on each backend.

Runners are real ``phlask run`` processes (``python -m phlask.cli``), as in
tests/test_runner.py. Backends are the modules of tests/brokers/ (``backend_<name>.py``);
this file adds only what a batch of hostile writes needs on top of their ``store_raw``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from phlask.brokers import Broker, Message
from phlask.errors import TaskNotFound

ROOT = Path(__file__).resolve().parents[2]
TASKS = Path(__file__).resolve().parent / "tasks"
PHLASK = [sys.executable, "-m", "phlask.cli"]


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true; that value, or None at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def write_config(path: Path, *, adapters: dict[str, dict[str, Any]] | None = None,
                 limits: dict[str, int] | None = None) -> Path:
    """A phlask.toml with these ``[adapters.NAME]`` and ``[limits]`` (and nothing else)."""
    lines = []
    for name, entry in (adapters or {}).items():
        lines.append(f"[adapters.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    if limits:
        lines.append("[limits]")
        lines += [f"{k} = {v}" for k, v in limits.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- runner processes ------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class RunnerProcess:
    proc: subprocess.Popen
    log: Path
    killed: bool = False  # by us, with SIGKILL
    stopped: bool = False  # by us, with SIGTERM

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class Runners:
    """``phlask run --daemon`` processes against one broker, started, killed and stopped on
    demand. Every process ever started is kept, with how it ended."""

    def __init__(self, url: str, tmp: Path, *, root: Path = TASKS, max_processes: int = 4, lease: float = 5,
                 results: str | None = None, config: Path | None = None, extra: Sequence[str] = ()):
        """``results``: path of a SQLite result store the runners record into (RabbitMQ)."""
        self.tmp = tmp
        self.args = ["run", "--broker", url, "--root", str(root), "--daemon", "--wait", "50",
                     "--max-processes", str(max_processes), "--lease", str(lease), "--log-format", "human",
                     "--config", str(config or "/dev/null"),
                     *(["--results", f"sqlite:///{results}"] if results else []), *extra]
        self.all: list[RunnerProcess] = []

    def start(self) -> RunnerProcess:
        log = self.tmp / f"runner-{len(self.all)}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(PHLASK + self.args, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    cwd=self.tmp)
        r = RunnerProcess(proc, log)
        self.all.append(r)
        return r

    @property
    def live(self) -> list[RunnerProcess]:
        return [r for r in self.all if not r.killed and not r.stopped]

    def kill(self, r: RunnerProcess) -> None:
        r.killed = True
        r.proc.send_signal(signal.SIGKILL)
        r.proc.wait(timeout=30)

    @property
    def pids(self) -> set[int]:
        return {r.pid for r in self.all}

    @property
    def killed_pids(self) -> set[int]:
        return {r.pid for r in self.all if r.killed}

    def crashed(self) -> list[RunnerProcess]:
        """Runners that ended by themselves (nobody killed or stopped them)."""
        return [r for r in self.live if r.proc.poll() is not None]

    def stop(self, timeout: float = 60) -> list[tuple[RunnerProcess, int | None]]:
        """SIGTERM every live runner; their exit statuses (None: still running after ``timeout``,
        then killed)."""
        live = [r for r in self.live if r.proc.poll() is None]
        for r in live:
            r.stopped = True
            r.proc.send_signal(signal.SIGTERM)
        out = []
        deadline = time.monotonic() + timeout
        for r in live:
            try:
                out.append((r, r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))))
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
                out.append((r, None))
        return out

    def close(self) -> None:
        for r in self.all:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- runner pid {r.pid} ({'killed' if r.killed else 'stopped' if r.stopped else 'live'})"
                         f" exit {r.proc.poll()}:\n{r.tail()}" for r in self.all)


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set of a live process (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise LookupError(f"no VmHWM for pid {pid}")


# --- the proof file --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Line:
    kind: str  # start, done, term, ran
    id: str
    attempt: int
    runner: int  # the runner's pid (the task's parent)
    pid: int


class Proof:
    """What tasks wrote to a proof file (tasks/proof.sh and friends), in the order written."""

    def __init__(self, path: Path):
        self.path = path
        path.touch()
        path.chmod(0o666)

    def lines(self) -> list[Line]:
        out = []
        for raw in self.path.read_text().splitlines():
            parts = raw.split()
            if len(parts) == 5:
                out.append(Line(parts[0], parts[1], int(parts[2]), int(parts[3]), int(parts[4])))
        return out

    def ids(self, kind: str) -> set[str]:
        return {x.id for x in self.lines() if x.kind == kind}

    def starts(self) -> dict[str, list[Line]]:
        out: dict[str, list[Line]] = {}
        for x in self.lines():
            if x.kind == "start":
                out.setdefault(x.id, []).append(x)
        return out

    def duplicated(self) -> dict[str, list[Line]]:
        """Tasks started more than once."""
        return {i: s for i, s in self.starts().items() if len(s) > 1}

    def interrupted(self, killed: set[int], runners: set[int]) -> int:
        """Runs started by a runner that was then killed (see :meth:`unexplained`) that
        never wrote their "done" line."""
        ended = {(x.id, x.pid) for x in self.lines() if x.kind == "done"}
        return sum(1 for x in self.lines() if x.kind == "start" and _by_killed(x, killed, runners)
                   and (x.id, x.pid) not in ended)

    def unexplained(self, killed: set[int], runners: set[int], strict: bool) -> dict[str, list[Line]]:
        """Tasks started more than once where no SIGKILL explains it.

        A start is a killed runner's when its parent pid is one of ``killed``, or is no
        runner at all (``runners``: every runner pid): the runner died between spawning the
        task and the task reading its parent pid, so the task saw init (or a subreaper).
        ``strict`` (lease backends): every start but the last must be a killed runner's.
        Otherwise (RabbitMQ, whose settles copy a message before acking it; its spec section
        12): at least one start before the last must be."""
        out = {}
        for i, starts in self.duplicated().items():
            earlier = [_by_killed(s, killed, runners) for s in starts[:-1]]
            if not (all(earlier) if strict else any(earlier)):
                out[i] = starts
        return out


def _by_killed(line: Line, killed: set[int], runners: set[int]) -> bool:
    return line.runner in killed or line.runner not in runners


# --- raw storage in batches ----------------------------------------------------------------


@dataclasses.dataclass
class Raw:
    """One record a hostile producer writes straight into a backend's storage."""

    id: str
    body: bytes
    queue: str = "default"
    signature: str | None = None
    key_id: str | None = None


def store_raw_many(backend: ModuleType, broker: Broker, items: Sequence[Raw]) -> list[bool]:
    """Store every item as its backend's spec says a producer does, without validating the
    body. Returns, per item, whether the store took it (False: it refused a reused id)."""
    return _STORES[backend.NAME](backend, broker, items)


def _store_sqlite(backend: ModuleType, broker: Broker, items: Sequence[Raw]) -> list[bool]:
    from phlask.brokers.sqlite import PRODUCER_INSERT
    out = []
    with contextlib.closing(sqlite3.connect(broker.path, timeout=30, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        for m in items:
            try:
                db.execute("SAVEPOINT one")
                db.execute(PRODUCER_INSERT, {"id": m.id, "queue": m.queue, "priority": 0, "not_before": None,
                                             "expires_at": None, "body": m.body, "signature": m.signature,
                                             "key_id": m.key_id})
                db.execute("RELEASE one")
                out.append(True)
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK TO one")
                db.execute("RELEASE one")
                out.append(False)
        db.execute("COMMIT")
    return out


def _store_mongodb(backend: ModuleType, broker: Broker, items: Sequence[Raw]) -> list[bool]:
    from phlask.brokers.mongodb import producer_document
    from pymongo.errors import BulkWriteError
    docs = [producer_document(Message(id=m.id, queue=m.queue, body=m.body, signature=m.signature,
                                      key_id=m.key_id)) for m in items]
    refused: set[int] = set()
    with backend.client() as c:
        try:
            c[broker.database][broker.collection_name].insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            assert all(e["code"] == 11000 for e in errors), errors
            refused = {e["index"] for e in errors}
    return [i not in refused for i in range(len(items))]


def _store_rabbitmq(backend: ModuleType, broker: Broker, items: Sequence[Raw]) -> list[bool]:
    import pika
    from phlask.brokers.rabbitmq import CONTENT_TYPE, Header, work_queue_args
    params = pika.URLParameters(backend.URL)
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for q in dict.fromkeys(m.queue for m in items):
            ch.queue_declare(broker.work(q), durable=True, arguments=work_queue_args())
            broker.declared_names.add(broker.work(q))
            broker._known.setdefault(q)
        for m in items:
            headers = {k: v for k, v in ((Header.SIGNATURE.value, m.signature), (Header.KEY_ID.value, m.key_id))
                       if v is not None}
            ch.basic_publish("", broker.work(m.queue), m.body, pika.BasicProperties(
                message_id=m.id, delivery_mode=2, content_type=CONTENT_TYPE, headers=headers or None),
                mandatory=True)
    finally:
        conn.close()
    return [True] * len(items)  # RabbitMQ keeps no index of ids (spec/backends/rabbitmq.md)


_STORES = {"sqlite": _store_sqlite, "mongodb": _store_mongodb, "rabbitmq": _store_rabbitmq}


def clear_queue(backend: ModuleType, broker: Broker, queue: str, ids: Sequence[str]) -> None:
    """Delete every record of ``queue`` (whose task ids are ``ids``), whatever its state."""
    if backend.NAME == "sqlite":
        with contextlib.closing(sqlite3.connect(broker.path, timeout=30, isolation_level=None)) as db:
            db.execute("DELETE FROM phlask_tasks WHERE queue = ?", (queue,))
    elif backend.NAME == "mongodb":
        with backend.client() as c:
            db = c[broker.database]
            db[broker.collection_name].delete_many({"queue": queue})
            db[broker.claims_name].delete_many({"task": {"$in": list(ids)}})
    else:
        broker.dead_purge(queue)


# --- what became of the tasks ------------------------------------------------------------------


def outcomes(broker: Broker, ids: Iterable[str], results: str | None = None,
             queue: str | None = None) -> dict[str, list[tuple[str, str | None]]]:
    """Each id's ``(state, dead reason)`` records, as the backend keeps them.

    Backends with inspect answer for themselves (one record per id). RabbitMQ forgets a
    task once acked: its dead tasks are read from its dead queues (one entry per message,
    so an id stored twice can show twice; ``queue`` limits the search to one) and the rest
    from the runners' ``--results`` store (``results``, a SQLite path)."""
    ids = list(dict.fromkeys(ids))
    out: dict[str, list[tuple[str, str | None]]] = {i: [] for i in ids}
    if broker.supports_inspect:
        for i in ids:
            try:
                info = broker.inspect(i)
            except TaskNotFound:
                continue
            out[i].append((info.state, info.reason))
        return out
    for d in broker.dead_list(queue, limit=1_000_000):
        if d.id in out:
            out[d.id].append(("dead", d.reason))
    if results and os.path.exists(results):
        with contextlib.closing(sqlite3.connect(results)) as db:
            try:
                rows = db.execute("SELECT id, state, reason FROM phlask_results").fetchall()
            except sqlite3.OperationalError:  # the runner has not created it yet
                rows = []
        for i, state, reason in rows:
            if i in out and state != "dead":
                out[i].append((state, reason))
    return out


def settled(got: dict[str, list[tuple[str, str | None]]]) -> bool:
    """Every id of an :func:`outcomes` answer has reached succeeded or dead."""
    return all(v and all(state in ("succeeded", "dead") for state, _ in v) for v in got.values())


def result_record(broker: Broker, task_id: str, results: str | None = None) -> dict[str, Any] | None:
    """The last attempt's result record of one task (spec/result.schema.json)."""
    if broker.supports_inspect:
        return broker.inspect(task_id).result
    assert results, "RabbitMQ keeps no result; pass the runner's --results store"
    with contextlib.closing(sqlite3.connect(results)) as db:
        row = db.execute("SELECT result FROM phlask_results WHERE id = ?", (task_id,)).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def queue_counts(broker: Broker, queue: str = "default") -> dict[str, int]:
    """Non-zero counts of one queue."""
    return {s: n for s, n in broker.counts().get(queue, {}).items() if n}


# --- RabbitMQ housekeeping -----------------------------------------------------------------------


def delete_session_queues(session: str) -> None:
    """Delete every queue this session's runners made (hold and delay queues included, which
    the runner processes declare and the test's broker object never hears of)."""
    try:
        listed = subprocess.run(["bash", str(ROOT / "scripts" / "services"), "rabbitmqctl", "list_queues", "-q",
                                 "--no-table-headers", "name"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return
    names = {n.strip() for n in listed.stdout.splitlines() if n.strip().startswith(f"phlask.test.f{session}")}
    if names:
        from brokers.backend_rabbitmq import delete_queues
        with contextlib.suppress(Exception):
            delete_queues(names)


