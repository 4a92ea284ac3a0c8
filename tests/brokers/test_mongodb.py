"""What only the MongoDB backend must do, against the server at ``$MONGODB_URL`` (default: the
FerretDB of ``bash scripts/services start mongodb``): the layout of spec/backends/mongodb.md,
the generation protocol under real concurrency (4 processes), leases across SIGKILL, and
the server going away. The shared contract suite (test_contract.py) covers the rest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from bson import ObjectId, json_util
from pymongo.errors import AutoReconnect

from phlask import Task
from phlask.brokers import LeaseLost, Message, connect
from phlask.brokers.mongodb import (CLAIM_SORT, CLAIMS_INDEXES, DEFAULT_COLLECTION, INDEXES, Lease, MongoBroker,
                                    claim_filters, claim_id, now_utc, parse_url, producer_document, redact)
from phlask.errors import BrokerUnavailable, ConfigError, DuplicateTask
from phlask.wire import DeadReason

from . import backend_mongodb as backend

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "spec" / "backends" / "mongodb.md"
TASKS = ROOT / "tests" / "tasks" / "runner"
PHLASK = [sys.executable, "-m", "phlask.cli"]
LONG = 60.0


def task(**fields) -> Task:
    return Task(lang="shell", file="x.sh", **fields)


def nonzero(counts):
    return {q: {s: n for s, n in by.items() if n} for q, by in counts.items() if any(by.values())}


@pytest.fixture(scope="module")
def server():
    """A plain pymongo client of the server under test: a producer's or operator's view."""
    reason = backend.available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mongodb backend unavailable: {reason} (CI=true: every backend must run)", pytrace=False)
        pytest.skip(f"mongodb backend unavailable: {reason}")
    with backend.client() as c:
        yield c


@pytest.fixture
def make_mongo(server, tmp_path):
    """``make_mongo(**options)``: a fresh broker on its own collections, dropped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(backend.make(tmp_path, f"m{uuid.uuid4().hex[:12]}-", **options))


@pytest.fixture
def mongo(make_mongo):
    return make_mongo()


def raw(server, broker: MongoBroker):
    """The broker's task and claims collections through the plain client."""
    db = server[broker.database]
    return db[broker.collection_name], db[broker.claims_name]


def spec_block(marker: str, extended: bool = True):
    """The JSON block after ``<!-- phlask:marker -->`` in spec/backends/mongodb.md (Extended JSON)."""
    m = re.search(rf"<!-- phlask:{marker} -->\s*```json\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"spec/backends/mongodb.md has no phlask:{marker} block"
    if not extended:
        return json.loads(m.group(1))
    return json_util.loads(m.group(1), json_options=json_util.RELAXED_JSON_OPTIONS.with_options(
        tz_aware=True, tzinfo=timezone.utc))


def bson_types(doc: dict) -> dict[str, str]:
    return {k: "null" if v is None else "int" if isinstance(v, int) else type(v).__name__ for k, v in doc.items()}


# --- the document, read from the spec ------------------------------------------------------------


def test_spec_indexes_are_the_ones_the_runner_creates():
    documented = {(i["collection"].replace(DEFAULT_COLLECTION, "<tasks>"), i["name"]): dict(i["key"])
                  for i in spec_block("indexes")}
    ours = {("<tasks>", i["name"]): i["key"] for i in INDEXES}
    ours |= {("<tasks>_claims", i["name"]): i["key"] for i in CLAIMS_INDEXES}
    assert documented == ours
    # and the claim sort is the index order after queue and state
    assert list(INDEXES[0]["key"].items())[2:] == CLAIM_SORT


def test_spec_producer_document_is_what_the_python_producer_writes():
    example = spec_block("producer-document")
    msg = Message.from_body(example["body"])
    ours = producer_document(msg, now=example["enqueued_at"])
    # Same fields in the same order, same BSON types (bar the optional nulls), same values
    assert list(example) == list(ours)
    assert bson_types(example) == bson_types(ours)
    assert {k: v for k, v in ours.items() if k != "seq"} == {k: v for k, v in example.items() if k != "seq"}
    assert (example["_id"], example["queue"], example["priority"]) == (msg.id, msg.queue, msg.priority)


def test_spec_claim_queries_and_generation_claim_match_the_runner():
    now = now_utc()
    documented = spec_block("claim-queries", extended=False)
    ours = json.loads(json.dumps(claim_filters(["<queue>"], now), default=lambda v: {"$date": "<now>"}))
    assert documented == ours
    example = spec_block("generation-claim")
    assert example["_id"] == claim_id(example["task"], example["seq"], example["gen"])
    shared = {"state": "running", "lease_token": example["token"], "lease_until": now, "reason": None}
    ours = MongoBroker._gen_claim(SimpleNamespace(_runner="r"), example["task"], example["seq"], example["gen"],
                                  "claim", now, shared, example["token"])
    assert list(example) == list(ours) and list(example["set"]) == list(ours["set"])
    assert {k: v for k, v in example.items() if k not in ("by", "at", "set")} == \
           {k: v for k, v in ours.items() if k not in ("by", "at", "set")}


# --- URL -----------------------------------------------------------------------------------------


def test_url_names_database_and_collection():
    t = parse_url("mongodb://u:p@h1:27017,h2/jobs?replicaSet=rs0&collection=work")
    assert (t.database, t.collection) == ("jobs", "work")
    assert t.client_url == "mongodb://u:p@h1:27017,h2/jobs?replicaSet=rs0"
    assert parse_url("mongodb://h/jobs").collection == DEFAULT_COLLECTION == "phlask_tasks"
    assert parse_url("mongodb://h/jobs?collection=a", collection="b").collection == "b"
    assert redact("mongodb://user:s3cret@h/db") == "mongodb://user:***@h/db"


@pytest.mark.parametrize("url", ["mongodb://h", "mongodb://h/", "mongodb://h/a.b", "redis://h/db",
                                 "mongodb://h/db?collection=system.x"])
def test_bad_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match="mongodb"):
        parse_url(url)


def test_server_down_at_start_is_broker_unavailable_naming_the_url_after_a_bounded_wait():
    # Given a port nobody listens on
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"mongodb://runner:pw@127.0.0.1:{port}/phlask_test"
    # When a broker opens it with a 2 s wait
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable) as err:
        connect(url, connect_timeout=2)
    # Then it gives up after about that long, naming the URL but not the password
    assert time.monotonic() - t0 < 10
    assert f"127.0.0.1:{port}/phlask_test" in str(err.value) and "pw" not in str(err.value)
    assert err.value.url == f"mongodb://runner:***@127.0.0.1:{port}/phlask_test"


def test_url_of_a_broker_opens_the_same_collections(mongo):
    mongo.push(task(id="here"))
    with connect(mongo.url) as other:
        assert other.collection_name == mongo.collection_name
        assert [c.id for c in other.claim(["default"], 5, LONG)] == ["here"]


# --- producers and indexes ---------------------------------------------------------------------


def test_a_document_a_foreign_producer_inserts_per_the_spec_is_claimed(mongo, server):
    # Given documents written field by field as section 6 says, one body stored as a string
    tasks, _ = raw(server, mongo)
    now = now_utc()
    node_body = task(id="node-1", args=["ünï"]).encode()
    for tid, body, run_at in [("php-1", task(id="php-1").encode(), now),
                              ("node-1", node_body.decode(), now),
                              ("go-later", task(id="go-later").encode(), now + timedelta(hours=1))]:
        tasks.insert_one({"_id": tid, "queue": "default", "state": "queued", "priority": 0, "run_at": run_at,
                          "expires_at": None, "seq": ObjectId(), "gen": 0, "attempts": 0, "body": body,
                          "signature": None, "key_id": None, "enqueued_at": now, "updated_at": now})
    # When a runner claims
    claims = mongo.claim(["default"], 10, LONG)
    # Then the ready ones come back with their exact bytes; the delayed one waits
    assert [(c.id, c.attempt) for c in claims] == [("php-1", 1), ("node-1", 1)]
    assert claims[1].body == node_body
    assert nonzero(mongo.counts()) == {"default": {"running": 2, "queued": 1}}


def test_indexes_are_created_when_a_runner_starts_and_again_harmlessly(mongo, server):
    tasks, claims = raw(server, mongo)
    with MongoBroker(mongo.url, connect_timeout=10):
        pass
    assert {i["name"]: dict(i["key"]) for i in tasks.list_indexes()} == {
        "_id_": {"_id": 1}, **{i["name"]: i["key"] for i in INDEXES}}
    assert {i["name"] for i in claims.list_indexes()} == {"_id_"} | {i["name"] for i in CLAIMS_INDEXES}


def test_the_claim_query_walks_the_claim_index_in_order(mongo):
    mongo.push_many([task(priority=i % 10) for i in range(50)])
    cmd = {"find": mongo.collection_name, "filter": claim_filters(["default"], now_utc())[0],
           "sort": dict(CLAIM_SORT), "limit": 5}
    plan = mongo._client[mongo.database].command("explain", cmd, verbosity="queryPlanner")
    if "filterPushdown" in plan:
        pytest.skip(f"{mongo.server}: its SQLite handler uses no secondary index (explain: filterPushdown="
                    f"{plan['filterPushdown']}, sortPushdown={plan['sortPushdown']}); see the spec, section 10")
    text = json.dumps(plan["queryPlanner"]["winningPlan"])
    assert "phlask_claim" in text and '"SORT"' not in text


def test_enqueue_of_the_same_bytes_again_is_the_same_task_other_bytes_are_a_duplicate(mongo):
    body = task(id="same").encode()
    assert mongo.push(body) == "same"
    assert mongo.push(body) == "same"  # a retry whose first try landed
    with pytest.raises(DuplicateTask):
        mongo.push(task(id="same", args=["other"]).encode())
    assert nonzero(mongo.counts()) == {"default": {"queued": 1}}


# --- the server going away (simulated: exact failure points) ------------------------------------


class Flaky:
    """Wrap one collection method: the first ``times`` calls run it (when ``land``) and then raise
    AutoReconnect, as when the reply is lost after the server did the work."""

    def __init__(self, monkeypatch, coll, name, times=1, land=True):
        self.calls, real = 0, getattr(coll, name)

        def flaky(*a, **kw):
            self.calls += 1
            if self.calls <= times:
                if land:
                    real(*a, **kw)
                raise AutoReconnect("connection closed (simulated)")
            return real(*a, **kw)

        monkeypatch.setattr(coll, name, flaky)


def test_an_enqueue_retried_after_its_first_try_landed_is_not_a_duplicate(mongo, monkeypatch, caplog):
    flaky = Flaky(monkeypatch, mongo._tasks, "insert_many")
    with caplog.at_level(logging.WARNING, logger="phlask.brokers.mongodb"):
        assert mongo.push_many([task(id=f"e{i}") for i in range(3)]) == ["e0", "e1", "e2"]
    assert flaky.calls == 2 and "retry 1" in caplog.text
    assert nonzero(mongo.counts()) == {"default": {"queued": 3}}


def test_a_settle_retried_after_its_first_try_landed_counts_once(mongo, server, monkeypatch):
    mongo.push(task(id="s1"))
    (c,) = mongo.claim(["default"], 1, LONG)
    Flaky(monkeypatch, mongo._claims, "insert_many")
    mongo.succeed(c, {"exit_code": 0})
    info = mongo.inspect("s1")
    assert (info.state, info.attempts) == ("succeeded", 1)
    assert sorted(g["op"] for g in raw(server, mongo)[1].find({"task": "s1"})) == ["claim", "succeed"]


def test_a_settle_the_runner_retries_after_a_broker_error_reuses_its_generation(mongo, monkeypatch):
    # Given a succeed whose generation claim landed, and whose update then failed for good
    mongo.push(task(id="s2"))
    (c,) = mongo.claim(["default"], 1, LONG)
    mongo.retry_for = 0.3
    for write in ("bulk_write", "update_many", "update_one"):  # MongoDB's and FerretDB's ways of applying
        Flaky(monkeypatch, mongo._tasks, write, times=10**6, land=False)
    with pytest.raises(BrokerUnavailable):
        mongo.succeed(c, {"exit_code": 0})
    # When the runner settles again once the server is back
    monkeypatch.undo()
    mongo.succeed(c, {"exit_code": 0})
    # Then it is settled once, as the first try meant
    assert (mongo.inspect("s2").state, mongo.inspect("s2").attempts) == ("succeeded", 1)


def test_transient_errors_are_retried_and_logged_never_read_as_no_tasks(mongo, monkeypatch, caplog):
    mongo.push(task(id="there"))
    Flaky(monkeypatch, mongo._tasks, "find", times=2, land=False)
    with caplog.at_level(logging.WARNING, logger="phlask.brokers.mongodb"):
        assert [c.id for c in mongo.claim(["default"], 1, LONG)] == ["there"]
    assert [r.name for r in caplog.records].count("phlask.brokers.mongodb") == 2


def test_an_outage_longer_than_retry_for_raises_broker_unavailable_not_an_empty_claim(mongo, monkeypatch):
    mongo.push(task())
    mongo.retry_for = 0.5
    Flaky(monkeypatch, mongo._tasks, "find", times=10**6, land=False)
    with pytest.raises(BrokerUnavailable, match="claim"):
        mongo.claim(["default"], 1, LONG)


# --- the generation protocol ---------------------------------------------------------------------


def test_every_change_is_one_generation_won_by_one_insert(mongo, server):
    tasks, claims = raw(server, mongo)
    mongo.push(task(id="g", max_attempts=2))
    (c,) = mongo.claim(["default"], 1, LONG)
    assert mongo.renew([c], LONG) == []
    mongo.retry(c, {"exit_code": 1}, 0)
    (c,) = mongo.claim(["default"], 1, LONG)
    mongo.dead(c, DeadReason.FAILED, {"exit_code": 1})
    assert mongo.dead_retry(["g"]) == 1
    doc = tasks.find_one({"_id": "g"})
    ops = [(g["gen"], g["op"]) for g in claims.find({"task": "g"}).sort("gen", 1)]
    assert ops == [(1, "claim"), (2, "renew"), (3, "retry"), (4, "claim"), (5, "dead"), (6, "revive")]
    assert (doc["gen"], doc["state"], doc["attempts"]) == (6, "queued", 0)
    assert all(g["_id"] == claim_id("g", doc["seq"], g["gen"]) for g in claims.find({"task": "g"}))


def test_a_generation_whose_owner_died_before_applying_it_is_repaired(make_mongo, server):
    # Given a runner that won generation 1 of a task (a 1 s lease) and died before writing it
    mongo = make_mongo(lag_grace=0.3)
    tasks, claims = raw(server, mongo)
    mongo.push(task(id="orphan"))
    doc = tasks.find_one({"_id": "orphan"})
    now = now_utc()
    claims.insert_one(mongo._gen_claim("orphan", doc["seq"], 1, "claim", now, {
        "state": "running", "attempts": 0, "run_at": doc["run_at"], "lease_token": "dead-runner",
        "lease_until": now + timedelta(seconds=1), "reason": None}))
    # When other runners try to claim it: they lose, and after lag_grace they apply it
    assert mongo.claim(["default"], 1, LONG) == []
    time.sleep(0.4)
    assert mongo.claim(["default"], 1, LONG) == []
    assert tasks.find_one({"_id": "orphan"})["lease_token"] == "dead-runner"
    # Then, once the dead runner's lease expires, the task is claimed again, same attempt
    time.sleep(1.0)
    (c,) = mongo.claim(["default"], 1, LONG)
    assert (c.id, c.attempt, c.receipt.gen) == ("orphan", 1, 2)


def test_a_stale_settle_after_its_generation_was_pruned_still_raises_lease_lost(mongo, server):
    # Given a stale claim, and every generation claim pruned (as after an hour)
    tasks, claims = raw(server, mongo)
    mongo.push(task(id="old"))
    (stale,) = mongo.claim(["default"], 1, 1.0)
    time.sleep(1.5)
    (current,) = mongo.claim(["default"], 1, LONG)
    assert mongo.prune(older_than=0) == 2
    # When the stale runner settles: its insert succeeds, its conditioned update cannot
    with pytest.raises(LeaseLost):
        mongo.succeed(stale, {"exit_code": 0})
    # Then nothing changed, its stray claim is gone, and the current runner settles normally
    assert tasks.find_one({"_id": "old"})["state"] == "running" and claims.count_documents({}) == 0
    mongo.succeed(current, {"exit_code": 0})
    assert mongo.inspect("old").state == "succeeded"


def test_prune_keeps_young_and_unapplied_generation_claims(mongo, server):
    tasks, claims = raw(server, mongo)
    mongo.push_many([task(id="a"), task(id="b")])
    for c in mongo.claim(["default"], 2, LONG):
        mongo.succeed(c, {"exit_code": 0})
    seq = tasks.find_one({"_id": "a"})["seq"]
    claims.insert_one(mongo._gen_claim("a", seq, 3, "revive", now_utc(), {"state": "queued"}))  # not applied
    assert mongo.prune() == 0  # all younger than prune_age
    assert mongo.prune(older_than=0) == 4
    assert [g["_id"] for g in claims.find()] == [claim_id("a", seq, 3)]


def test_claims_are_plain_data_and_a_foreign_receipt_is_never_trusted(mongo):
    mongo.push(task(id="r"))
    (c,) = mongo.claim(["default"], 1, LONG)
    assert isinstance(c.receipt, Lease) and c.receipt.gen == 1
    forged = type(c)(id="r", queue="default", body=c.body, attempt=1, receipt="guess")
    assert mongo.renew([forged], LONG) == [forged]
    with pytest.raises(LeaseLost):
        mongo.succeed(forged, {"exit_code": 0})


# --- leases and dead runners ---------------------------------------------------------------------


def test_a_renewed_lease_is_never_reclaimed_while_its_runner_lives(mongo):
    # Given a task claimed under a 2 s lease, renewed every 0.5 s for 6 s
    mongo.push(task(id="long"))
    (c,) = mongo.claim(["default"], 1, 2.0)
    stolen = []
    with connect(mongo.url) as thief:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert mongo.renew([c], 2.0) == []
            stolen += thief.claim(["default"], 1, LONG)  # another runner keeps trying
            time.sleep(0.5)
    # Then nobody else ever got it, and it settles normally
    assert stolen == []
    mongo.succeed(c, {"exit_code": 0})


CLAIM_AND_HANG = """
import sys, time
from phlask.brokers import connect
b = connect(sys.argv[1])
claims = b.claim(["default"], 10, float(sys.argv[2]))
print(" ".join(c.id for c in claims), flush=True)
time.sleep(600)
"""


def test_tasks_of_a_claimer_killed_with_sigkill_are_claimed_again_after_the_lease(mongo):
    # Given a process that claimed three tasks under a 2 s lease
    mongo.push_many([task(id=f"k{i}") for i in range(3)])
    p = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG, mongo.url, "2"], stdout=subprocess.PIPE, text=True)
    assert sorted(p.stdout.readline().split()) == ["k0", "k1", "k2"]
    # When it is killed with SIGKILL
    p.send_signal(signal.SIGKILL)
    p.wait()
    # Then its tasks stay claimed until the lease expires, and are then claimed again, same attempt
    assert mongo.claim(["default"], 10, LONG) == []
    time.sleep(2.5)
    assert sorted((c.id, c.attempt) for c in mongo.claim(["default"], 10, LONG)) == [("k0", 1), ("k1", 1), ("k2", 1)]


def test_a_runner_killed_with_sigkill_mid_task_has_it_run_again_by_another(mongo, tmp_path):
    # Given a real runner running a 3 s task under a 2 s lease
    record = tmp_path / "record.txt"
    record.touch()
    tid = mongo.push(Task(lang="shell", file="slow.sh", args=["3"], env={"RECORD": str(record)}))
    args = ["run", "--broker", mongo.url, "--root", str(TASKS), "--lease", "2", "--wait", "50", "--config", "/dev/null"]
    a = subprocess.Popen(PHLASK + args + ["--daemon"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while "start" not in record.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    # When it is killed with SIGKILL
    a.send_signal(signal.SIGKILL)
    a.wait()
    # Then a second runner, after the lease expired, runs it to success as the same attempt
    while mongo.inspect(tid).state != "succeeded" and time.monotonic() < deadline:
        b = subprocess.run(PHLASK + args, capture_output=True, text=True, timeout=120)
        assert b.returncode == 0, b.stderr
        time.sleep(0.5)
    info = mongo.inspect(tid)
    assert (info.state, info.attempts) == ("succeeded", 1)
    starts = [line.split() for line in record.read_text().splitlines() if line.startswith("start")]
    assert len(starts) == 2 and {s[2] for s in starts} == {"1"}


# --- four processes ------------------------------------------------------------------------------


def _drain(url: str, options: dict, start, limit: int) -> list[str]:
    """Claim ``limit`` at a time and succeed until nothing is queued or running; the ids run."""
    ran = []
    with connect(url, connect_timeout=30, **options) as b:
        start.wait()
        while True:
            claims = b.claim(["default"], limit, LONG)
            for c in claims:
                b.succeed(c, {"exit_code": 0})
                ran.append(c.id)
            if not claims and not {s: n for s, n in b.counts().get("default", {}).items()
                                   if s in ("queued", "running") and n}:
                return ran


def _race(url: str, options: dict, start) -> list[tuple[str, int]]:
    """Claim one at a time until two claims in a row find nothing; what was claimed."""
    got, empty = [], 0
    with connect(url, connect_timeout=30, **options) as b:
        start.wait()
        while empty < 2:
            claims = b.claim(["default"], 1, LONG)
            got += [(c.id, c.attempt) for c in claims]
            empty = 0 if claims else empty + 1
    return got


def _four(fn, broker: MongoBroker, *args):
    """Run ``fn`` in four fresh processes (spawn) on the broker's collections and write path,
    started together; their return values."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(4) as pool:
            options = {"point_writes": broker.point_writes}
            pending = pool.starmap_async(fn, [(broker.url, options, start, *args) for _ in range(4)])
            time.sleep(1.0)  # let all four connect, then start them together
            start.set()
            return pending.get(timeout=1100)


# Both ways of writing a task document: the server's default (on FerretDB: point reads and
# writes by _id) and conditional updates (MongoDB's default), the latter with fewer tasks on
# FerretDB, where each conditional update reads the whole collection.
WRITES = [pytest.param(None, 2000, id="default-writes"), pytest.param(False, 500, id="conditional-writes")]


@pytest.mark.timeout(1200)  # FerretDB reads the whole collection for each claim: minutes, not seconds
@pytest.mark.parametrize("writes,n", WRITES)
def test_four_processes_claim_2000_tasks_and_each_runs_exactly_once(make_mongo, server, writes, n):
    # Given 2,000 queued tasks in one collection
    mongo = make_mongo(**({} if writes is None else {"point_writes": writes}))
    ids = mongo.push_many([task(id=f"c{i:04d}") for i in range(n)])
    # When four processes each claim 8 at a time and succeed until nothing is left
    runs = _four(_drain, mongo, 8)
    # Then every task ran exactly once, and each went through exactly two generations
    everything = [i for ran in runs for i in ran]
    assert len(everything) == n and set(everything) == set(ids)
    assert all(ran for ran in runs), "each process should have had a share"
    assert nonzero(mongo.counts()) == {"default": {"succeeded": n}}
    tasks, claims = raw(server, mongo)
    assert claims.count_documents({}) == 2 * n
    assert tasks.count_documents({"gen": 2, "attempts": 1}) == n


@pytest.mark.parametrize("writes", [None, False], ids=["default-writes", "conditional-writes"])
def test_expired_leases_are_reclaimed_exactly_once_by_four_racing_processes(make_mongo, writes):
    # Given 20 tasks whose runner's 1 s leases have expired
    mongo = make_mongo(**({} if writes is None else {"point_writes": writes}))
    mongo.push_many([task(id=f"x{i:02d}") for i in range(20)])
    stale = mongo.claim(["default"], 20, 1.0)
    assert len(stale) == 20
    time.sleep(1.5)
    # When four processes race to claim them, one at a time
    got = [g for part in _four(_race, mongo) for g in part]
    # Then each was reclaimed exactly once, with the same attempt number
    assert sorted(got) == [(f"x{i:02d}", 1) for i in range(20)]
    # and the first runner's settles are refused
    for c in stale:
        with pytest.raises(LeaseLost):
            mongo.succeed(c, {"exit_code": 0})


# --- the real server restarting ------------------------------------------------------------------


def _services(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "services"), *args], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)


def test_the_server_restarting_mid_loop_loses_nothing_and_settles_nothing_twice(make_mongo, caplog):
    if not (ROOT / "scripts" / "services").exists() or parse_url(backend.URL).client_url != \
            "mongodb://127.0.0.1:27017/phlask_test":
        pytest.skip("restarts the local test server of scripts/services; MONGODB_URL names another one")
    mongo = make_mongo(retry_for=300)
    # Given a producer-and-runner loop in a thread: push one, claim up to 4, succeed them;
    # it keeps pushing until the server has restarted, then 20 more, then drains
    pushed, succeeded, lost, errors = [], [], [], []
    restarted = threading.Event()

    def loop():
        try:
            last = None
            while True:
                if last is None and restarted.is_set():
                    last = len(pushed) + 20
                if len(pushed) < (last if last is not None else 400):
                    pushed.append(mongo.push(task(id=f"r{len(pushed):04d}")))
                for c in mongo.claim(["default"], 4, LONG):
                    try:
                        mongo.succeed(c, {"exit_code": 0})
                        succeeded.append(c.id)
                    except LeaseLost:
                        lost.append(c.id)
                if last is not None and len(pushed) >= last and len(succeeded) + len(lost) >= len(pushed):
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="phlask.brokers.mongodb"):
        worker = threading.Thread(target=loop, daemon=True)
        worker.start()
        while len(succeeded) < 20 and worker.is_alive():
            time.sleep(0.05)
        # When the server is stopped mid-loop and started again a few seconds later
        _services("stop", "mongodb")
        time.sleep(3)
        _services("start", "mongodb")
        restarted.set()
        worker.join(timeout=600)
    # Then the loop went on: every task succeeded exactly once, nothing lost, no stale settle
    assert not worker.is_alive() and not errors, errors
    assert sorted(succeeded) == sorted(pushed) and len(set(pushed)) == len(pushed) > 40 and lost == []
    assert nonzero(mongo.counts()) == {"default": {"succeeded": len(pushed)}}
    assert all(mongo.inspect(i).attempts == 1 for i in pushed[::10])
    # and it said so while it waited
    assert "retry" in caplog.text
