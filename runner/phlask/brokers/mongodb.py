"""The MongoDB backend: task documents in one collection, every change won by a unique insert.

URL ``mongodb://[user:pass@]host[:port][,host...]/DBNAME[?options]`` (or ``mongodb+srv://``);
the database is required; the task collection is ``phlask_tasks`` unless ``?collection=NAME``
or ``collection=NAME`` says otherwise; other options go to pymongo as they are.

FerretDB's conditional updates read, change and write back without a transaction (two
runners can both "win" one ``update_one({state: "queued"}, ...)``), but both it and MongoDB
refuse a second insert of an ``_id`` atomically. So each change of a task (claim, renewal,
settle, operator retry, purge) is a *generation*: whoever inserts ``"<id>:<seq>:<gen+1>"``
into ``NAME_claims`` owns it and writes it to the task document. Layout, producer insert,
indexes and the safety argument: spec/backends/mongodb.md, whose normative blocks are
:data:`INDEXES`, :func:`producer_document`, :func:`claim_filters` (tests fail on drift),
defined with the rest of the document layout in mongo_layout.py and re-exported here.

Operations retry transient errors with capped exponential backoff for ``retry_for``
seconds, logging each retry on ``phlask.brokers.mongodb``, then raise BrokerUnavailable; an
error is never read as "no tasks". Retried writes are idempotent (enqueue compares bodies,
a generation claim is recognised by its token, updates are conditioned on the generation).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ..errors import BrokerError, BrokerUnavailable, ConfigError, DuplicateTask, TaskNotFound
from ..wire import State
from .base import Broker, Claim, LeaseLost, Message, TaskInfo
# The document layout (spec/backends/mongodb.md), re-exported: tests and tools import these from here.
from .mongo_layout import (CLAIM_SORT, CLAIMS_INDEXES, CLAIMS_SUFFIX, DEFAULT_COLLECTION, INDEXES, MongoTarget,
                           _bytes, _count, _info, _json, _with_collection, claim_filters, claim_id, now_utc, parse_url,
                           producer_document, redact)

from pymongo import DeleteOne, MongoClient, UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors worth retrying: the server is restarting, stepping down or briefly unreachable.
# ConnectionFailure covers AutoReconnect, NotPrimaryError, NetworkTimeout and
# ServerSelectionTimeoutError; these server codes arrive as OperationFailure.
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
DUPLICATE_KEY = 11000


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        if exc.code in TRANSIENT_CODES or exc.has_error_label("RetryableWriteError"):
            return True
        # FerretDB answers InternalError (code 1) for a SQLite transaction cut short, as
        # while it restarts; every write here is keyed by generation, so retrying is safe.
        return exc.code == 1 and "transaction has already been committed or rolled back" in str(exc)
    return False


def _brief(exc: BaseException) -> str:
    text = str(exc).split(", Timeout:", 1)[0].split(" (configured timeouts", 1)[0]
    return f"{type(exc).__name__}: {text[:300]}"


@dataclass(eq=True)
class Lease:
    """A claim's receipt: which incarnation (``seq``) and generation it holds."""

    seq: Any
    gen: int
    token: str
    attempts: int
    run_at: datetime | None
    settled: bool = field(default=False, compare=False)
    pending: dict[str, Any] | None = field(default=None, compare=False, repr=False)


# --- the broker ----------------------------------------------------------------------------------

class MongoBroker(Broker):
    """The broker at ``mongodb://host:27017/DBNAME`` (module docstring; spec/backends/mongodb.md).

    Opening pings the server for up to ``connect_timeout`` seconds, then creates the
    indexes (idempotently). Raises ConfigError for a bad URL and BrokerUnavailable (naming
    the URL, without its password) when the server does not answer in time. Operations
    retry transient errors for up to ``retry_for`` seconds. Thread-safe; not fork-safe
    (open one broker per process).
    """

    schemes = ("mongodb", "mongodb+srv")

    def __init__(self, url: str, *, collection: str | None = None,
                 signing_key: tuple[str, str | bytes] | None = None, connect_timeout: float = 30.0,
                 retry_for: float = 60.0, max_backoff: float = 5.0, lag_grace: float = 10.0,
                 prune_every: float = 600.0, prune_age: float = 3600.0, point_writes: bool | None = None,
                 **client_options: Any):
        target = parse_url(url, collection)
        if collection:  # .url must open the same collection from another process
            url = _with_collection(url, collection)
        super().__init__(url, signing_key=signing_key)
        self.database, self.collection_name = target.database, target.collection
        self.claims_name = target.collection + CLAIMS_SUFFIX
        self.retry_for, self.max_backoff, self.lag_grace = retry_for, max_backoff, lag_grace
        self.prune_every, self.prune_age = prune_every, prune_age
        self._runner = f"{socket.gethostname()}:{secrets.token_hex(4)}"
        self._lock = threading.RLock()
        self._lagging: dict[str, float] = {}
        self._next_prune = time.monotonic() + prune_every * (0.5 + secrets.randbelow(1000) / 1000)
        given = {k.lower() for k, _ in parse_qsl(urlsplit(target.client_url).query)}
        defaults = {"serverSelectionTimeoutMS": 2000, "connectTimeoutMS": 2000, "socketTimeoutMS": 60000,
                    "appname": "phlask"}
        options = {k: v for k, v in defaults.items() if k.lower() not in given} | client_options
        try:
            self._client: MongoClient | None = MongoClient(target.client_url, tz_aware=True, **options)
        except PyMongoError as exc:
            raise ConfigError(f"broker URL {redact(url)!r}: {exc}") from None
        db = self._client[self.database]
        self._tasks, self._claims = db[self.collection_name], db[self.claims_name]
        try:
            info = self._call("connect", lambda: self._client.admin.command("buildInfo"), connect_timeout)
            ferretdb = "ferretdbVersion" in info
            self.server = f"FerretDB {info['ferretdbVersion']}" if ferretdb else f"MongoDB {info.get('version', '?')}"
            #: Check conditions on a point read and write by _id alone (default: on FerretDB, which
            #: reads and decodes every document for any filter but a bare {_id: x}, spec section
            #: 10, and whose conditional updates are not atomic anyway). Else conditional updates.
            self.point_writes = ferretdb if point_writes is None else point_writes
            self._ensure_indexes()
        except BaseException:
            self.close()
            raise
        log.debug("connected to %s at %s (collection %s)", self.server, redact(url), self.collection_name)

    # --- plumbing --------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], retry_for: float | None = None) -> T:
        """Run ``fn``, retrying transient errors with capped exponential backoff."""
        if self._client is None:
            raise BrokerError(f"mongodb broker {redact(self.url)} is closed")
        started = time.monotonic()
        deadline = started + (self.retry_for if retry_for is None else retry_for)
        delay, tries = 0.1, 0
        while True:
            try:
                return fn()
            except PyMongoError as exc:
                if not _transient(exc):
                    raise BrokerError(f"mongodb {what} at {redact(self.url)}: {_brief(exc)}") from exc
                tries += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnavailable(redact(self.url), f"{what} failed for {time.monotonic() - started:.1f}s "
                                                              f"({tries} tries): {_brief(exc)}") from None
                pause = min(delay, left)
                log.warning("mongodb %s at %s failed (%s); retry %d in %.2fs", what, redact(self.url),
                            _brief(exc), tries, pause)
                time.sleep(pause)
                delay = min(delay * 2, self.max_backoff)

    def _ensure_indexes(self) -> None:
        for coll, specs in ((self._tasks, INDEXES), (self._claims, CLAIMS_INDEXES)):
            for spec in specs:
                self._call("create index", lambda c=coll, s=spec: c.create_index(list(s["key"].items()),
                                                                                  name=s["name"]))

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()

    # --- producer side -----------------------------------------------------------------

    def enqueue(self, messages: Sequence[Message]) -> list[str]:
        """Insert in order, stopping at the first duplicate id (earlier messages stay stored).

        A duplicate whose stored body equals this message's body is the same task (a retried
        insert whose first try landed): it is skipped, not an error. Raises DuplicateTask."""
        docs = [producer_document(m) for m in messages]
        i = 0
        while i < len(docs):
            batch = docs[i:]

            def insert() -> int | None:
                try:
                    self._tasks.insert_many(batch, ordered=True)
                    return None
                except BulkWriteError as exc:
                    first = exc.details["writeErrors"][0]
                    if first.get("code") != DUPLICATE_KEY:
                        raise BrokerError(f"mongodb enqueue: {first.get('errmsg')}") from None
                    return first["index"]

            failed = self._call("enqueue", insert)
            if failed is None:
                break
            i += failed + self._already_stored(batch[failed:failed + 1000])
        return [m.id for m in messages]

    def _already_stored(self, docs: list[dict[str, Any]]) -> int:
        """How many of ``docs``, from the first (refused as a duplicate), are stored with the
        same body. A different body there raises DuplicateTask. After a retried batch insert
        the landed tasks are a prefix, so one look-up settles many."""
        ids = [d["_id"] for d in docs]
        stored = self._call("enqueue", lambda: {d["_id"]: _bytes(d.get("body")) for d in self._tasks.find(
            {"_id": {"$in": ids}}, {"body": 1})})
        first = docs[0]
        if first["_id"] in stored and stored[first["_id"]] != first["body"]:
            raise DuplicateTask(first["_id"])
        n = 0
        while n < len(docs) and stored.get(docs[n]["_id"]) == docs[n]["body"]:
            n += 1
        return n

    # --- generations -------------------------------------------------------------------

    def _gen_claim(self, task_id: str, seq: Any, gen: int, op: str, now: datetime, changes: dict[str, Any],
                   token: str | None = None) -> dict[str, Any]:
        token = token or secrets.token_hex(16)
        return {"_id": claim_id(task_id, seq, gen), "task": task_id, "seq": seq, "gen": gen, "op": op,
                "token": token, "by": self._runner, "at": now,
                "set": {**changes, "gen": gen, "gen_token": token, "updated_at": now}}

    def _insert_claims(self, claims: list[dict[str, Any]], maybe_landed: bool) -> list[bool]:
        """Insert generation claims; True for each this process now owns. ``maybe_landed``:
        an earlier call may have inserted them (a settle the runner retries)."""
        tries = 0

        def insert() -> set[int]:
            nonlocal tries
            tries += 1
            try:
                self._claims.insert_many(claims, ordered=False)
                return set()
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
                if other:
                    raise BrokerError(f"mongodb claim: {other[0].get('errmsg')}") from None
                return {e["index"] for e in errors}

        taken = self._call("claim generation", insert) if claims else set()
        if taken and (tries > 1 or maybe_landed):
            # A try that failed in transit may have landed: a claim with our token is ours.
            ids = [claims[i]["_id"] for i in taken]
            found = self._call("claim generation", lambda: {
                d["_id"]: d.get("token") for d in self._claims.find({"_id": {"$in": ids}}, {"token": 1})})
            taken = {i for i in taken if found.get(claims[i]["_id"]) != claims[i]["token"]}
        return [i not in taken for i in range(len(claims))]

    def _apply(self, claims: list[dict[str, Any]], shared: dict[str, Any] | None = None) -> list[bool]:
        """Write owned generation claims to their task documents; True where the document now
        shows that generation (False: the task moved on, was purged or replaced).

        ``shared``: the claims are one batch (one token, one time) that sets these same fields
        on every document; written with one update (FerretDB reads the whole collection for
        each update, so this matters) that moves each document on from the generation before."""
        if not claims:
            return []
        if self.point_writes:
            return [self._call("update", lambda c=c: self._apply_by_id(c)) for c in claims]
        if shared is not None:
            first = claims[0]
            where = {"$or": [{"_id": c["task"], "seq": c["seq"], "gen": c["gen"] - 1 if c["gen"] > 1 else
                              {"$in": [0, None]}} for c in claims]}
            change = {"$set": {**shared, "gen_token": first["token"], "updated_at": first["at"]}, "$inc": {"gen": 1}}
            done = self._call("update", lambda: self._tasks.update_many(where, change)).matched_count
        else:
            def op(c: dict[str, Any]) -> UpdateOne | DeleteOne:
                # $not/$gte also matches a document whose producer left gen out (read as 0).
                where = {"_id": c["task"], "seq": c["seq"], "gen": {"$not": {"$gte": c["gen"]}}}
                return DeleteOne(where) if c["op"] == "purge" else UpdateOne(where, {"$set": c["set"]})

            res = self._call("update", lambda: self._tasks.bulk_write([op(c) for c in claims], ordered=False))
            done = res.matched_count + res.deleted_count
        if done == len(claims):
            return [True] * len(claims)
        # Some matched nothing: already applied (by a repairer, or a try whose reply was lost), or lost.
        ids = list({c["task"] for c in claims})
        docs = self._call("update", lambda: {d["_id"]: d for d in self._tasks.find(
            {"_id": {"$in": ids}}, {"seq": 1, "gen": 1, "gen_token": 1})})
        out = []
        for c in claims:
            d = docs.get(c["task"])
            same = d is not None and d.get("seq") == c["seq"]
            out.append(not same if c["op"] == "purge" else
                       same and d.get("gen") == c["gen"] and d.get("gen_token") == c["token"])
        return out

    def _apply_by_id(self, c: dict[str, Any]) -> bool:
        """One generation claim, FerretDB's way: the condition checked on a point read, then a
        write by _id alone. Not atomic, which FerretDB's own conditional update is not either;
        ownership comes from the generation claim (spec section 9, point 5)."""
        d = self._tasks.find_one({"_id": c["task"]}, {"seq": 1, "gen": 1, "gen_token": 1})
        if d is None or d.get("seq") != c["seq"]:
            return c["op"] == "purge"
        if _count(d.get("gen")) >= c["gen"]:
            return d.get("gen") == c["gen"] and d.get("gen_token") == c["token"] and c["op"] != "purge"
        if c["op"] == "purge":
            return self._tasks.delete_one({"_id": c["task"]}).deleted_count == 1
        return self._tasks.update_one({"_id": c["task"]}, {"$set": c["set"]}).matched_count == 1

    def _transition(self, claims: list[dict[str, Any]], shared: dict[str, Any] | None = None,
                    repair: bool = False, maybe_landed: bool = False) -> list[bool]:
        """Insert generation claims, apply the ones won; True for each change made. A claim
        lost to another process is applied for it when ``repair`` (operator commands)."""
        owned = self._insert_claims(claims, maybe_landed)
        mine = [c for c, ok in zip(claims, owned) if ok]
        applied = dict(zip((c["_id"] for c in mine), self._apply(mine, shared)))
        stray = [c["_id"] for c in mine if not applied[c["_id"]]]
        if stray:  # lost to a newer generation: history now, removed to keep things tidy
            try:
                self._call("discard", lambda: self._claims.delete_many({"_id": {"$in": stray}}), retry_for=0)
            except BrokerError as exc:
                log.debug("could not discard stray generation claims: %s", exc)
        for c, ok in zip(claims, owned):
            if not ok and (repair or self._lagging_behind(c["_id"])):
                self._repair(c["_id"])
        return [applied.get(c["_id"], False) for c in claims]

    def _lagging_behind(self, cid: str) -> bool:
        """Note a race lost for ``cid``; True when it was lost before, ``lag_grace`` or more ago:
        the task document still shows the generation before, so its owner may have died."""
        now = time.monotonic()
        first = self._lagging.setdefault(cid, now)
        if len(self._lagging) > 10_000:
            self._lagging = {k: t for k, t in self._lagging.items() if now - t < self.lag_grace * 3}
        if now - first < self.lag_grace:
            return False
        self._lagging.pop(cid, None)
        return True

    def _repair(self, cid: str) -> None:
        """Apply a stored generation claim that its owner may not have written."""
        stored = self._call("repair", lambda: self._claims.find_one({"_id": cid}))
        if stored is not None and self._apply([stored]) == [True]:
            log.info("task %s: applied generation %s for %s", stored["task"], stored["gen"], stored.get("by"))

    # --- runner side -------------------------------------------------------------------

    def candidates(self, queues: Sequence[str], limit: int, now: datetime) -> list[dict[str, Any]]:
        """Ready task documents in claim order, at most ``limit`` of each kind (queued and
        due, running with an expired lease), merged; without ``result``."""
        docs: list[dict[str, Any]] = []
        filters = claim_filters(queues, now)
        for where in [{"$or": filters}] if self.point_writes else filters:  # one scan on FerretDB
            docs += self._call("claim", lambda w=where: list(
                self._tasks.find(w, {"result": 0}).sort(CLAIM_SORT).limit(limit)))
        epoch = datetime.fromtimestamp(0, timezone.utc)
        docs.sort(key=lambda d: (-_count(d.get("priority")),
                                 d["run_at"] if isinstance(d.get("run_at"), datetime) else epoch, str(d.get("seq"))))
        return docs

    def claim(self, queues: Sequence[str], limit: int, lease: float, timeout: float = 0.0) -> list[Claim]:
        """See :meth:`Broker.claim`. Polls: returns at once, ignoring ``timeout``."""
        queues = [queues] if isinstance(queues, str) else list(dict.fromkeys(queues))
        if limit <= 0 or not queues:
            return []
        self._maybe_prune()
        out: list[Claim] = []
        tried: set[str] = set()
        for _ in range(3):  # another round only when every candidate went to another runner
            now, token = now_utc(), secrets.token_hex(16)
            shared = {"state": State.RUNNING.value, "lease_token": token,
                      "lease_until": now + timedelta(seconds=lease), "reason": None}
            docs = [d for d in self.candidates(queues, limit + max(4, limit), now) if d["_id"] not in tried]
            lost = False
            while docs and len(out) < limit:
                batch, docs = docs[:limit - len(out)], docs[limit - len(out):]
                tried.update(d["_id"] for d in batch)
                gens = [self._gen_claim(d["_id"], d.get("seq"), _count(d.get("gen")) + 1, "claim", now, shared,
                                        token) for d in batch]
                done = self._transition(gens, shared)
                out += [_to_claim(d, g, now) for d, g, ok in zip(batch, gens, done) if ok]
                lost = lost or not all(done)
            if len(out) >= limit or not lost:
                break
        return out

    def renew(self, claims: Sequence[Claim], lease: float) -> list[Claim]:
        with self._lock:
            now, token = now_utc(), secrets.token_hex(16)
            shared = {"state": State.RUNNING.value, "lease_until": now + timedelta(seconds=lease)}
            live = list({id(c): c for c in claims if isinstance(c.receipt, Lease) and not c.receipt.settled}.values())
            gens = [self._gen_claim(c.id, c.receipt.seq, c.receipt.gen + 1, "renew", now, shared, token) for c in live]
            kept = set()
            for c, g, ok in zip(live, gens, self._transition(gens, shared)):
                if ok:
                    c.receipt.gen = g["gen"]
                    kept.add(id(c))
            return [c for c in claims if id(c) not in kept]

    def _settle(self, claim: Claim, op: str, changes: Callable[[datetime], dict[str, Any]]) -> None:
        """Move a claimed task one generation on; ``changes(now)`` gives the new fields."""
        with self._lock:
            r = claim.receipt
            if not isinstance(r, Lease) or r.settled:
                raise LeaseLost(f"task {claim.id!r}: this claim was already settled, or is not this broker's")
            # A settle the runner retries after a BrokerError reuses the generation claim it
            # may already have inserted, so a try that landed is recognised as ours.
            gen = r.pending if r.pending and r.pending["op"] == op and r.pending["gen"] == r.gen + 1 else None
            retried = gen is not None
            if gen is None:
                now = now_utc()
                gen = r.pending = self._gen_claim(claim.id, r.seq, r.gen + 1, op, now, {
                    "lease_token": None, "lease_until": None, **changes(now)})
            (ok,) = self._transition([gen], maybe_landed=retried)
            r.pending = None
            if not ok:
                raise LeaseLost(f"task {claim.id!r}: this runner's lease is gone (the task was claimed "
                                "again or already settled); its outcome was not recorded")
            r.gen, r.settled = gen["gen"], True

    def succeed(self, claim: Claim, result: dict[str, Any]) -> None:
        done = _attempts(claim) + 1
        self._settle(claim, "succeed", lambda now: {"state": State.SUCCEEDED.value, "attempts": done,
                                                    "result": _json(result), "reason": None})

    def retry(self, claim: Claim, result: dict[str, Any], delay: float) -> None:
        done = _attempts(claim) + 1
        self._settle(claim, "retry", lambda now: {"state": State.QUEUED.value, "attempts": done,
                                                  "result": _json(result), "reason": None,
                                                  "run_at": now + timedelta(seconds=max(0.0, delay))})

    def dead(self, claim: Claim, reason: str, result: dict[str, Any]) -> None:
        done = _attempts(claim) + 1
        self._settle(claim, "dead", lambda now: {"state": State.DEAD.value, "attempts": done,
                                                 "result": _json(result), "reason": str(reason)})

    def release(self, claim: Claim) -> None:
        # run_at was <= now when claimed; keeping it keeps the task's place in line.
        run_at = claim.receipt.run_at if isinstance(claim.receipt, Lease) else None
        self._settle(claim, "release", lambda now: {"state": State.QUEUED.value, "attempts": _attempts(claim),
                                                    "run_at": min(run_at, now) if run_at else now})

    # --- operators ---------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Every queue that has tasks, with a count for each of the four states (zeros included)."""
        rows = self._call("counts", lambda: list(self._tasks.aggregate(
            [{"$group": {"_id": {"queue": "$queue", "state": "$state"}, "n": {"$sum": 1}}}])))
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            key = row["_id"]
            states = out.setdefault(str(key.get("queue")), {str(s): 0 for s in State})
            states[str(key.get("state"))] = states.get(str(key.get("state")), 0) + int(row["n"])
        return out

    def inspect(self, task_id: str) -> TaskInfo:
        doc = self._call("inspect", lambda: self._tasks.find_one({"_id": task_id}))
        if doc is None:
            raise TaskNotFound(task_id)
        return _info(doc)

    def dead_list(self, queue: str | None = None, limit: int = 100) -> list[TaskInfo]:
        where: dict[str, Any] = {"state": State.DEAD.value} | ({"queue": queue} if queue is not None else {})
        return [_info(d) for d in self._call("dead list", lambda: list(
            self._tasks.find(where).sort([("updated_at", -1), ("seq", -1)]).limit(max(0, limit))))]

    def _operate(self, op: str, where: dict[str, Any], changes: dict[str, Any]) -> int:
        """Move every dead task matching ``where`` one generation on (operator retry, purge)."""
        with self._lock:
            docs = self._call(op, lambda: list(self._tasks.find(where, {"seq": 1, "gen": 1})))
            now, moved = now_utc(), 0
            for i in range(0, len(docs), 500):
                gens = [self._gen_claim(d["_id"], d.get("seq"), _count(d.get("gen")) + 1, op, now, changes)
                        for d in docs[i:i + 500]]
                moved += sum(self._transition(gens, repair=True))
            return moved

    def dead_retry(self, task_ids: Sequence[str] | None = None) -> int:
        where: dict[str, Any] = {"state": State.DEAD.value}
        if task_ids is not None:
            where["_id"] = {"$in": list(dict.fromkeys(task_ids))}
        return self._operate("revive", where, {"state": State.QUEUED.value, "attempts": 0, "reason": None,
                                               "run_at": now_utc(), "lease_token": None, "lease_until": None})

    def dead_purge(self, queue: str | None = None) -> int:
        where: dict[str, Any] = {"state": State.DEAD.value} | ({"queue": queue} if queue is not None else {})
        return self._operate("purge", where, {})

    def prune(self, older_than: float | None = None) -> int:
        """Delete generation claims older than ``older_than`` seconds (default ``prune_age``)
        that their task document has caught up with, or whose task is gone. Returns how many."""
        cutoff = now_utc() - timedelta(seconds=self.prune_age if older_than is None else older_than)
        old = self._call("prune", lambda: list(self._claims.find(
            {"at": {"$lt": cutoff}}, {"task": 1, "seq": 1, "gen": 1}).limit(5000)))
        if not old:
            return 0
        ids = list({c["task"] for c in old})
        docs = self._call("prune", lambda: {d["_id"]: d for d in self._tasks.find(
            {"_id": {"$in": ids}}, {"seq": 1, "gen": 1})})

        def behind(c: dict[str, Any]) -> bool:
            d = docs.get(c["task"])
            return d is None or d.get("seq") != c.get("seq") or _count(d.get("gen")) >= c["gen"]

        gone = [c["_id"] for c in old if behind(c)]
        if gone:
            self._call("prune", lambda: self._claims.delete_many({"_id": {"$in": gone}}))
        return len(gone)

    def _maybe_prune(self) -> None:
        if self.prune_every <= 0 or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.prune_every
        try:
            n = self.prune()
            if n:
                log.debug("pruned %d old generation claims", n)
        except BrokerError as exc:
            log.warning("could not prune old generation claims: %s", exc)


def _to_claim(doc: dict[str, Any], gen: dict[str, Any], now: datetime) -> Claim:
    attempts = _count(doc.get("attempts"))
    lease = Lease(seq=gen["seq"], gen=gen["gen"], token=gen["set"]["lease_token"], attempts=attempts,
                  run_at=doc.get("run_at"))
    return Claim(id=doc["_id"], queue=doc.get("queue", ""), body=_bytes(doc.get("body")), attempt=attempts + 1,
                 signature=doc.get("signature"), key_id=doc.get("key_id"), receipt=lease,
                 claimed_at=now.timestamp())


def _attempts(claim: Claim) -> int:
    return claim.receipt.attempts if isinstance(claim.receipt, Lease) else claim.attempt - 1


__all__ = ["MongoBroker", "Lease", "INDEXES", "CLAIMS_INDEXES", "CLAIM_SORT", "DEFAULT_COLLECTION",
           "CLAIMS_SUFFIX", "claim_filters", "claim_id", "parse_url", "producer_document", "redact"]
