"""Bad input fed straight into each backend's storage, bypassing every producer: each bad
record ends dead with the reason spec/README.md section 5.1 gives it (oracle.py works it
out from spec/ alone), good tasks mixed in still run, and the runner neither crashes nor
stalls. Cases are generated with hypothesis (badinput.py); the first tests pin the
runner bugs this suite found.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pika
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from phlask.brokers import Broker, Message
from phlask.results import open_results
from phlask.runner import Runner, Stats

from . import figures
from .badinput import GHOST, KEY_ID, SECRET, Case, batch, envelope, make_root, record_ids, sign
from .conftest import LONG, SEED
from .harness import Raw, clear_queue, outcomes, queue_counts, store_raw_many
from .oracle import SUCCEEDED, Oracle

#: The long form's rounds outlast pytest's default 300 s per test (FerretDB, which decodes
#: every document of the collection for each claim, slows down as the queue grows).
pytestmark = pytest.mark.timeout(3600 if LONG else 300)

#: A batch that takes longer than this to settle is a stalled runner.
RUN_BOUND = 120.0
#: Long form: at least 1,000 cases per backend; short form: about a hundred.
EXAMPLES, BATCH = (80, (12, 16)) if LONG else (7, (12, 16))


class _Errors(logging.Handler):
    """Collects what the runner logs at ERROR or above: each is a runner crash (an
    exception it did not expect), even when its loop carried on."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@dataclasses.dataclass
class Run:
    stats: Stats | None
    errors: list[str]
    stalled: bool
    seconds: float


@dataclasses.dataclass
class Bed:
    """A backend, a task root and a result store, shared by every batch of one test."""

    backend: ModuleType
    broker: Broker
    root: Path
    runs_ok: set[str]
    ran: Path
    results_path: str | None
    results: Any

    def run(self, queue: str, keyring: bool, bound: float = RUN_BOUND) -> Run:
        """Drain ``queue`` with an in-process runner, in a thread, within ``bound`` seconds."""
        runner = Runner(tasks=self.broker, results=self.results, queues=[queue], roots=[str(self.root)], wait=10,
                        max_processes=4, keys={KEY_ID: SECRET} if keyring else {}, adapters=GHOST,
                        kill_with_runner=False, default_timeout=60)
        handler = _Errors()
        logging.getLogger("phlask").addHandler(handler)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["stats"] = runner.run()
            except BaseException as exc:  # noqa: BLE001 - a crash is what we are looking for
                box["exc"] = exc

        t0 = time.monotonic()
        thread = threading.Thread(target=target, name="bad-input-runner", daemon=True)
        thread.start()
        thread.join(bound)
        stalled = thread.is_alive()
        if stalled:
            runner.stop(hard=True)
            thread.join(30)
        logging.getLogger("phlask").removeHandler(handler)
        errors = [handler.text()] if handler.records else []
        if "exc" in box:
            errors.append(f"Runner.run raised {box['exc']!r}")
        return Run(box.get("stats"), errors, stalled, time.monotonic() - t0)

    def clear(self, queue: str, ids: list[str]) -> None:
        """Remove a checked batch, so that later batches do not wade through its megabytes
        (FerretDB decodes every document of a collection for most queries)."""
        clear_queue(self.backend, self.broker, queue, ids)

    def ran_lines(self) -> list[str]:
        return self.ran.read_text().splitlines()


@contextlib.contextmanager
def bed(backend: ModuleType, tmp_path: Path, queue_prefix: str):
    ran = tmp_path / "ran.txt"
    ran.touch()
    root, runs_ok = make_root(tmp_path, ran)
    with backend.make(tmp_path, queue_prefix) as broker:
        results_path = None if broker.supports_inspect else str(tmp_path / "results.db")
        results = open_results(f"sqlite:///{results_path}") if results_path else None
        try:
            yield Bed(backend, broker, root, runs_ok, ran, results_path, results)
        finally:
            if results is not None:
                results.close()


def store(b: Bed, queue: str, cases: list[Case], rids: list[str]) -> list[bool]:
    return store_raw_many(b.backend, b.broker, [Raw(r, c.body, queue, c.signature, c.key_id)
                                                for r, c in zip(rids, cases)])


# --- regressions: runner bugs this suite found ------------------------------------------------------


def _good(tid: str) -> Case:
    return Case("good", json.dumps(envelope(tid)).encode())


@pytest.mark.parametrize("what, body, reason, says", [
    ("a file name longer than the filesystem allows (ENAMETOOLONG)",
     json.dumps(envelope("bad", file="x" * 300 + ".sh")).encode(), "missing_file", "does not exist"),
    ("input nested 5,000 deep (msgspec raised RecursionError)",
     json.dumps(envelope("bad", input="NEST")).encode().replace(b'"NEST"', b"[" * 5000 + b"]" * 5000),
     "invalid", "nested too deeply"),
    ("bytes that are not UTF-8 inside input (msgspec keeps input raw, unchecked)",
     json.dumps(envelope("bad", input="NOT-UTF8")).encode().replace(b"NOT-UTF8", b"caf\xe9"),
     "invalid", "not valid UTF-8"),
    ("an id of 40,000 emoji: its error, quoting it, made RabbitMQ's dead-letter header 128 KiB (over frame_max)",
     json.dumps(envelope("😀" * 40_000), ensure_ascii=False).encode(), "invalid", "$.id: '😀😀"),
    ("a member name given twice (spec 2.1: runners SHOULD refuse)",
     b'{"phlask":1,"id":"bad","lang":"shell","file":"ok.sh","created_at":"2026-11-28T02:44:03Z",'
     b'"file":"../../../etc/passwd"}', "invalid", "$.file: member `file` is given more than once"),
])
def test_a_hostile_record_is_settled_dead_and_the_rest_of_its_claim_still_runs(
        backend, tmp_path, queue_prefix, what, body, reason, says):
    # Given the hostile record, signed, claimed in one batch with good tasks on either side
    with bed(backend, tmp_path, queue_prefix) as b:
        cases = [_signed(c, True) for c in (_good("good-1"), Case("hostile", body), _good("good-2"))]
        rids = ["good-1", "bad", "good-2"]
        assert all(store(b, "q", cases, rids))
        # When a runner that checks signatures drains the queue
        run = b.run("q", keyring=True, bound=60)
        got = outcomes(b.broker, rids, b.results_path)
        # Then the runner raised nothing, the record is dead with its reason, the others ran
        assert not run.errors and not run.stalled, run.errors
        assert got == {"good-1": [("succeeded", None)], "bad": [("dead", reason)], "good-2": [("succeeded", None)]}
        record = b.broker.dead_list("q")[0].result
        assert says in record["error"], record["error"]
        assert sorted(b.ran_lines()) == ["ran good-1", "ran good-2"]


@pytest.mark.parametrize("header", ["x-pad", "x-phlask-signature"])
def test_an_amqp_message_whose_headers_fill_a_frame_is_settled_dead(backend, tmp_path, queue_prefix, header):
    if backend.NAME != "rabbitmq":
        pytest.skip(f"{backend.NAME}: message headers are an AMQP matter")
    from brokers.backend_rabbitmq import publish_raw
    # Given a bad message whose own headers nearly fill an AMQP frame (RabbitMQ took it from
    # its producer), claimed with a good task
    with bed(backend, tmp_path, queue_prefix) as b:
        publish_raw(b.broker, "q", b'{"not": "an envelope"}', pika.BasicProperties(
            message_id="bad", delivery_mode=2, headers={header: "p" * 130_700}))
        store(b, "q", [_good("good-1")], ["good-1"])
        # When a runner drains the queue
        run = b.run("q", keyring=False, bound=60)
        got = outcomes(b.broker, ["bad", "good-1"], b.results_path)
    # Then the message is dead (its copy to the dead queue fits a frame) and the good task ran once
    assert not run.errors and not run.stalled, run
    assert got == {"bad": [("dead", "invalid")], "good-1": [("succeeded", None)]}
    assert b.ran_lines() == ["ran good-1"]


def _store_with_wrong_types(b: Bed, queue: str, task_id: str, body: bytes, odd_body: str) -> str:
    """Store a record whose own scheduling fields have the wrong types, and one (``odd_body``)
    whose body is not bytes at all, as broken producers writing straight into the store
    would. Returns what was broken."""
    name = b.backend.NAME
    if name == "sqlite":
        store(b, queue, [Case("good", body), Case("good", b"{}")], [task_id, odd_body])
        with contextlib.closing(sqlite3.connect(b.broker.path, isolation_level=None)) as db:
            db.execute("UPDATE phlask_tasks SET attempts = 'none yet' WHERE id = ?", (task_id,))
            db.execute("UPDATE phlask_tasks SET body = 1000000000000000 WHERE id = ?", (odd_body,))
        return "attempts 'none yet'; a body that is the integer 10^15"
    if name == "mongodb":
        from phlask.brokers.mongodb import producer_document
        doc = producer_document(Message(id=task_id, queue=queue, body=body))
        doc.update(attempts="none yet", priority="high", gen="first")
        other = producer_document(Message(id=odd_body, queue=queue, body=b"{}"))
        other["body"] = json.loads(body)  # the envelope as a document, not the bytes the spec asks for
        with b.backend.client() as c:
            c[b.broker.database][b.broker.collection_name].insert_many([doc, other])
        return "attempts 'none yet', priority 'high', gen 'first'; a body that is a document"
    from brokers.backend_rabbitmq import publish_raw
    publish_raw(b.broker, queue, body, pika.BasicProperties(message_id=task_id, delivery_mode=2, headers={
        "x-phlask-attempts": "none yet", "x-phlask-not-before": "soon"}))
    store(b, queue, [Case("good", b"1000000000000000")], [odd_body])
    return "x-phlask-attempts 'none yet', x-phlask-not-before 'soon'; a body that is a number"


def test_a_record_whose_own_fields_have_wrong_types_neither_stalls_the_queue_nor_the_runner(
        backend, tmp_path, queue_prefix):
    # Given a record with a valid envelope but scheduling fields of the wrong types, and a good task
    with bed(backend, tmp_path, queue_prefix) as b:
        broken = _store_with_wrong_types(b, "q", "odd", json.dumps(envelope("odd")).encode(), "odd-body")
        store(b, "q", [_good("good-1")], ["good-1"])
        # When a runner drains the queue
        run = b.run("q", keyring=False, bound=60)
        got = outcomes(b.broker, ["odd", "odd-body", "good-1"], b.results_path)
    # Then the odd one ran as a first attempt, the one without a body is dead invalid, the
    # good one ran, and the runner logged no error
    assert not run.errors and not run.stalled, (broken, run)
    assert got == {"odd": [("succeeded", None)], "odd-body": [("dead", "invalid")],
                   "good-1": [("succeeded", None)]}, broken
    assert sorted(b.ran_lines()) == ["ran good-1", "ran odd"]


# --- property-based -------------------------------------------------------------------------------


@dataclasses.dataclass
class Tally:
    cases: int = 0
    bad: int = 0
    good: int = 0
    wrong: list[str] = dataclasses.field(default_factory=list)
    crashes: list[str] = dataclasses.field(default_factory=list)
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    batches: int = 0
    slowest: float = 0.0


def check_batch(b: Bed, n: int, keyring: bool, cases: list[Case], tally: Tally) -> None:
    queue = f"q{n}"
    prefix = f"e{n}"
    # Two good tasks in every batch, besides those drawn.
    cases = cases + [_signed(_good(f"{prefix}-g{i}"), keyring) for i in (1, 2)]
    rids = record_ids(prefix, cases[:-2]) + [f"{prefix}-g1", f"{prefix}-g2"]
    stored = store(b, queue, cases, rids)
    oracle = Oracle([str(b.root)], {KEY_ID: SECRET} if keyring else {}, {"shell"}, b.runs_ok, now=time.time())
    expected: dict[str, list[str]] = collections.defaultdict(list)
    for rid, c, ok in zip(rids, cases, stored):
        tally.cases += 1
        tally.kinds[c.kind.split(":")[0].split(" [")[0]] += 1
        if not ok:  # a second record with a reused id: the store refused it
            assert b.broker.supports_unique_ids, "only stores with unique ids may refuse a record"
            tally.bad += 1
            continue
        want = oracle.expect(c.body, c.signature, c.key_id)
        expected[rid].append(want)
        tally.reasons[want] += 1
        if want == SUCCEEDED:
            tally.good += 1
        else:
            tally.bad += 1
    ran_before = len(b.ran_lines())
    run = b.run(queue, keyring)
    tally.batches += 1
    tally.slowest = max(tally.slowest, run.seconds)
    if run.errors or run.stalled:
        tally.crashes += [f"batch {n}: " + ("stalled; " if run.stalled else "") + "; ".join(run.errors)]
    got = outcomes(b.broker, expected, b.results_path, queue=queue)
    by_rid = {r: c for r, c in zip(rids, cases)}
    for rid, wants in expected.items():
        dead_wanted = sorted(w for w in wants if w != SUCCEEDED)
        dead_got = sorted(reason for state, reason in got[rid] if state == "dead")
        ok = dead_wanted == dead_got and (SUCCEEDED not in wants or ("succeeded", None) in got[rid]
                                          or not b.broker.supports_inspect and dead_got)
        if b.broker.supports_inspect:
            ok = ok and len(got[rid]) == 1
        if not ok:
            tally.wrong.append(f"{rid}: expected {wants}, got {got[rid]}: {by_rid[rid].short()}")
    n_good = sum(w == SUCCEEDED for ws in expected.values() for w in ws)
    n_dead = sum(w != SUCCEEDED for ws in expected.values() for w in ws)
    if run.stats is not None and (run.stats.succeeded, run.stats.dead) != (n_good, n_dead):
        tally.wrong.append(f"batch {n}: runner settled {run.stats.succeeded} succeeded, {run.stats.dead} dead; "
                           f"expected {n_good} and {n_dead}")
    if len(b.ran_lines()) - ran_before != n_good:
        tally.wrong.append(f"batch {n}: {len(b.ran_lines()) - ran_before} good tasks ran, expected {n_good}")
    left = queue_counts(b.broker, queue)
    if left.get("queued") or left.get("running"):
        tally.wrong.append(f"batch {n}: left in the queue: {left}")
    b.clear(queue, sorted(set(rids)))


def _signed(c: Case, keyring: bool) -> Case:
    if keyring:
        c.signature, c.key_id = sign(c.body), KEY_ID
    return c


def test_generated_bad_input_ends_dead_with_the_right_reason(backend, tmp_path, queue_prefix):
    tally = Tally()
    with bed(backend, tmp_path, queue_prefix) as b:
        counter = iter(range(10**6))

        @seed(SEED)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), print_blob=True)
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            n = next(counter)
            keyring, cases = data.draw(batch(f"e{n}", str(b.root), BATCH), label="batch")
            check_batch(b, n, keyring, cases, tally)

        check()
    figures.add(backend.NAME, bad_inputs=tally.bad, good_mixed_in=tally.good, wrong_outcome=len(tally.wrong),
                crashes=len(tally.crashes))
    figures.note(backend.NAME, f"bad input: {tally.cases} records in {tally.batches} batches "
                               f"({', '.join(f'{k} {v}' for k, v in sorted(tally.kinds.items()))}), "
                               f"expected {', '.join(f'{k} {v}' for k, v in tally.reasons.most_common())}; "
                               f"slowest batch {tally.slowest:.1f}s")
    assert not tally.crashes, "\n".join(tally.crashes)
    assert not tally.wrong, f"{len(tally.wrong)} wrong outcomes:\n" + "\n".join(tally.wrong[:40])
    if LONG:
        assert tally.cases >= 1000, f"only {tally.cases} cases; raise EXAMPLES"
