"""The embedded SQLite backend: one file shared by every runner and producer on a host.

URL rule, as for ``file:`` URLs: the path is what follows ``sqlite:`` and an empty
``//`` authority, taken as written (no percent-decoding, no ``~`` expansion).

* ``sqlite:///var/lib/phlask/queue.db`` is the absolute path ``/var/lib/phlask/queue.db``;
  extra leading slashes name the same file (``sqlite:////var/...``, ``sqlite:/var/...``).
* ``sqlite:queue.db`` (no slash after the colon) is ``queue.db`` relative to the working
  directory of the process that opens it.

Missing parent directories are created.

The table layout, the producer INSERT other languages use, and the claim / lease /
settle protocol are specified in spec/backends/sqlite.md; :data:`SCHEMA` and
:data:`PRODUCER_INSERT` below are the exact SQL blocks of that document (a test fails
when they drift). Every write is one short ``BEGIN IMMEDIATE`` transaction on a WAL
database, so runners and producers in several processes never lose an update.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import BrokerError, BrokerUnavailable, ConfigError, DuplicateTask, TaskNotFound
from ..wire import State
from .base import Broker, Claim, LeaseLost, Message, Settle, TaskInfo

SCHEMA_VERSION = 1

SCHEMA = """\
-- phlask:schema 1
CREATE TABLE IF NOT EXISTS phlask_tasks (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    queue       TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    priority    INTEGER NOT NULL DEFAULT 0,
    run_at      REAL    NOT NULL,
    expires_at  REAL,
    body        BLOB    NOT NULL,
    signature   TEXT,
    key_id      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until REAL,
    reason      TEXT,
    result      TEXT,
    enqueued_at REAL    NOT NULL DEFAULT (round((julianday('now') - 2440587.5) * 86400.0, 3)),
    updated_at  REAL    NOT NULL DEFAULT (round((julianday('now') - 2440587.5) * 86400.0, 3))
);
CREATE INDEX IF NOT EXISTS phlask_tasks_claim
    ON phlask_tasks (queue, state, priority DESC, run_at, seq);
PRAGMA user_version = 1;
"""

PRODUCER_INSERT = """\
-- phlask:producer-insert
INSERT INTO phlask_tasks (id, queue, state, priority, run_at, expires_at, body, signature, key_id)
VALUES (:id, :queue, 'queued', :priority,
        coalesce(:not_before, round((julianday('now') - 2440587.5) * 86400.0, 3)),
        :expires_at, CAST(:body AS BLOB), :signature, :key_id);
"""

# The claim is a few index seeks, whatever the backlog: for each queue, walk the distinct
# priorities that have queued rows (highest first, one seek each) and take the ready rows
# of each level in (run_at, seq) order, a range of phlask_tasks_claim; stop at `limit`.
# One ORDER BY priority DESC, run_at, seq query would instead step over every delayed row
# of a higher priority. Expired leases are found among the running rows, which the
# runners' concurrency bounds. The few candidates are then merged in Python.
NEXT_PRIORITY = """\
SELECT priority FROM phlask_tasks
WHERE queue = :queue AND state = 'queued' AND priority < :below
ORDER BY priority DESC LIMIT 1"""

CLAIM_READY = """\
SELECT seq, id, queue, priority, run_at, body, signature, key_id, attempts FROM phlask_tasks
WHERE queue = :queue AND state = 'queued' AND priority = :priority AND run_at <= :now
ORDER BY run_at, seq LIMIT :limit"""

CLAIM_EXPIRED = """\
SELECT seq, id, queue, priority, run_at, body, signature, key_id, attempts FROM phlask_tasks
WHERE queue = :queue AND state = 'running' AND ifnull(lease_until, 0) < :now
ORDER BY priority DESC, run_at, seq LIMIT :limit"""

_MARK_RUNNING = ("UPDATE phlask_tasks SET state = 'running', lease_token = ?, lease_until = ?, "
                 "updated_at = ? WHERE seq = ?")

# Every settle is conditioned on the lease token: a claim whose lease was reclaimed by
# another runner (new token) or already settled (token cleared) matches no row.
_SETTLE = ("UPDATE phlask_tasks SET {set}, lease_token = NULL, lease_until = NULL, updated_at = :now "
           "WHERE id = :id AND lease_token = :token AND state = 'running'")
_SETTLES = {
    "succeed": _SETTLE.format(set="state = 'succeeded', attempts = attempts + 1, result = :result"),
    "retry": _SETTLE.format(set="state = 'queued', attempts = attempts + 1, result = :result, "
                                "run_at = :now + :delay"),
    "dead": _SETTLE.format(set="state = 'dead', attempts = attempts + 1, result = :result, reason = :reason"),
}
_RELEASE = _SETTLE.format(set="state = 'queued', run_at = min(run_at, :now)")


def parse_url(url: str) -> Path:
    """Return the absolute database path of a sqlite URL (rule: module docstring).

    Raises ConfigError for anything else, saying how to write it."""
    how = ("write sqlite:///absolute/path/queue.db, or sqlite:relative/queue.db for a path "
           "relative to the working directory")
    scheme, colon, rest = url.partition(":")
    if scheme.lower() != "sqlite" or not colon:
        raise ConfigError(f"broker URL {url!r} is not a sqlite URL; {how}")
    path = rest
    if rest.startswith("//"):
        host, slash, tail = rest[2:].partition("/")
        if host:
            raise ConfigError(f"broker URL {url!r}: a sqlite file has no host ({host!r}); {how}")
        path = slash + tail
    if not path.strip("/"):
        raise ConfigError(f"broker URL {url!r} names no file; {how}")
    if "?" in path or "#" in path:
        raise ConfigError(f"broker URL {url!r}: the sqlite backend takes no ?options or #fragment; {how}")
    bare = path.lstrip("/")
    if bare == ":memory:":
        raise ConfigError(f"broker URL {url!r}: no in-memory queue, runners and producers share a file; {how}")
    if bare.startswith("~"):
        raise ConfigError(f"broker URL {url!r}: '~' is not expanded; give the absolute path, "
                          f"e.g. sqlite://{Path(bare).expanduser()}")
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    return Path(os.path.abspath(path))


class SqliteBroker(Broker):
    """The broker at ``sqlite:///abs/path.db`` or ``sqlite:rel/path.db`` (rule: the module
    docstring and spec/backends/sqlite.md).

    Opening creates missing parent directories, switches the file to WAL and creates the
    schema if absent. Safe to share between threads (one connection behind a lock) and
    across ``fork`` (a child opens its own connection). Raises ConfigError for a bad URL,
    BrokerUnavailable when the file cannot be opened and BrokerError when it holds a schema
    from a newer phlask.
    """

    schemes = ("sqlite",)

    def __init__(self, url: str, *, signing_key: tuple[str, str | bytes] | None = None,
                 busy_timeout: float = 30.0):
        super().__init__(url, signing_key=signing_key)
        self.path = parse_url(url)
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._expired_checked = 0.0
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        # A connection inherited through fork must never be used or closed in the child
        # (closing it could drop the parent's locks); keep it referenced so GC leaves it be.
        self._inherited: list[sqlite3.Connection] = []
        with self._lock:
            self._connection()

    # --- connection and transactions -------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            self._inherited.append(self._conn)
        self._conn, self._pid = None, os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise BrokerUnavailable(self.url, f"cannot open {self.path}: {exc}") from None
        try:
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise BrokerError(f"{self.path}: cannot switch to WAL mode (got {mode!r}); "
                                  "keep the queue file on a local filesystem")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise BrokerUnavailable(self.url, f"cannot use {self.path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            elif version != SCHEMA_VERSION:
                raise BrokerError(f"{self.path} has schema version {version}; this phlask knows "
                                  f"version {SCHEMA_VERSION}: upgrade phlask")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _db(self, write: bool) -> Iterator[sqlite3.Connection]:
        """The connection, inside ``BEGIN IMMEDIATE ... COMMIT`` when ``write``; sqlite3
        errors become BrokerError."""
        with self._lock:
            conn = self._connection()
            try:
                if write:
                    conn.execute("BEGIN IMMEDIATE")
                yield conn
                if write:
                    conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise BrokerError(f"sqlite {self.path}: {exc}") from exc
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            elif self._conn is not None:
                self._inherited.append(self._conn)
            self._conn = None

    # --- producer side -----------------------------------------------------------------

    def enqueue(self, messages: Sequence[Message]) -> list[str]:
        """Insert every message in one transaction: all are stored, or none (DuplicateTask)."""
        rows = [{"id": m.id, "queue": m.queue, "priority": m.priority, "not_before": m.not_before,
                 "expires_at": m.expires_at, "body": m.body, "signature": m.signature,
                 "key_id": m.key_id} for m in messages]
        try:
            with self._db(write=True) as db:
                db.executemany(PRODUCER_INSERT, rows)
        except BrokerError as exc:
            duplicate = self._first_duplicate(messages) if isinstance(exc.__cause__, sqlite3.IntegrityError) else None
            if duplicate is not None:
                raise DuplicateTask(duplicate) from None
            raise
        return [m.id for m in messages]

    def _first_duplicate(self, messages: Sequence[Message]) -> str | None:
        # executemany does not say which row failed; the batch was rolled back, so look.
        seen: set[str] = set()
        with self._db(write=False) as db:
            for m in messages:
                if m.id in seen or db.execute("SELECT 1 FROM phlask_tasks WHERE id = ?", (m.id,)).fetchone():
                    return m.id
                seen.add(m.id)
        return None

    # --- runner side -------------------------------------------------------------------

    def claim(self, queues: Sequence[str], limit: int, lease: float, timeout: float = 0.0) -> list[Claim]:
        """See :meth:`Broker.claim`. Polls: returns at once, ignoring ``timeout``."""
        if isinstance(queues, str):
            queues = [queues]
        if limit <= 0 or not queues:
            return []
        with self._db(write=True) as db:
            return self._claim(db, queues, limit, lease)

    def settle_and_claim(self, settles: Sequence[Settle], queues: Sequence[str], limit: int, lease: float,
                         timeout: float = 0.0) -> tuple[list[Exception | None], list[Claim]]:
        """See :meth:`Broker.settle_and_claim`: here one transaction for the whole turn."""
        if isinstance(queues, str):
            queues = [queues]
        with self._db(write=True) as db:
            now = time.time()
            errors = [self._settle_in(db, s, now) for s in settles]
            claims = self._claim(db, queues, limit, lease) if limit > 0 and queues else []
        return errors, claims

    def _claim(self, db: sqlite3.Connection, queues: Sequence[str], limit: int, lease: float) -> list[Claim]:
        now = time.time()  # after BEGIN IMMEDIATE, which may have waited for the lock
        rows: list[sqlite3.Row] = []
        for queue in dict.fromkeys(queues):
            rows += _ready(db, queue, now, limit)
        # Expired leases (a runner died) are looked for at every claim that ready tasks do not
        # fill, and at least once a second otherwise: a busy runner saves a query per claim,
        # and a crashed runner's task waits at most a second longer than its lease.
        if len(rows) < limit or now - self._expired_checked >= 1.0:
            self._expired_checked = now
            for queue in dict.fromkeys(queues):
                rows += db.execute(CLAIM_EXPIRED, {"queue": queue, "now": now, "limit": limit}).fetchall()
        if len(rows) > 1:
            rows.sort(key=lambda r: (-_number(r["priority"]), _number(r["run_at"]), r["seq"]))
        claims = [Claim(id=r["id"], queue=r["queue"], body=_bytes(r["body"]),
                        attempt=int(_number(r["attempts"])) + 1,
                        signature=r["signature"], key_id=r["key_id"], receipt=secrets.token_hex(16),
                        claimed_at=now)
                  for r in rows[:limit]]
        if len(claims) == 1:  # the usual turn of a busy runner: one statement, no iterator
            db.execute(_MARK_RUNNING, (claims[0].receipt, now + lease, now, rows[0]["seq"]))
        elif claims:
            db.executemany(_MARK_RUNNING, [(c.receipt, now + lease, now, r["seq"]) for c, r in zip(claims, rows)])
        return claims

    def renew(self, claims: Sequence[Claim], lease: float) -> list[Claim]:
        if not claims:
            return []
        lost = []
        with self._db(write=True) as db:
            now = time.time()
            for c in claims:
                cur = db.execute("UPDATE phlask_tasks SET lease_until = ?, updated_at = ? "
                                 "WHERE id = ? AND lease_token = ? AND state = 'running'",
                                 (now + lease, now, c.id, c.receipt))
                if cur.rowcount != 1:
                    lost.append(c)
        return lost

    def _settle_in(self, db: sqlite3.Connection, s: Settle, now: float) -> LeaseLost | None:
        params = {"id": s.claim.id, "token": s.claim.receipt, "now": now}
        if s.how == "release":
            # run_at was <= now when claimed; keeping it keeps the task's place in line.
            sql = _RELEASE
        else:
            sql = _SETTLES.get(s.how)
            if sql is None:
                raise ValueError(f"unknown settle {s.how!r}")
            params["result"] = _json(s.result or {})
            params["reason"] = str(s.reason)
            params["delay"] = max(0.0, s.delay)
        cur = db.execute(sql, params)
        if cur.rowcount == 1:
            return None
        return LeaseLost(f"task {s.claim.id!r}: this runner's lease is gone (the task was claimed "
                         "again or already settled); its outcome was not recorded")

    def _settle(self, s: Settle) -> None:
        with self._db(write=True) as db:
            lost = self._settle_in(db, s, time.time())
        if lost is not None:
            raise lost

    def succeed(self, claim: Claim, result: dict[str, Any]) -> None:
        self._settle(Settle(claim, "succeed", result))

    def retry(self, claim: Claim, result: dict[str, Any], delay: float) -> None:
        self._settle(Settle(claim, "retry", result, delay=delay))

    def dead(self, claim: Claim, reason: str, result: dict[str, Any]) -> None:
        self._settle(Settle(claim, "dead", result, reason=reason))

    def release(self, claim: Claim) -> None:
        self._settle(Settle(claim, "release"))

    # --- operators ---------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Every queue that has tasks, with a count for each of the four states (zeros included)."""
        out: dict[str, dict[str, int]] = {}
        with self._db(write=False) as db:
            for queue, state, n in db.execute(
                    "SELECT queue, state, count(*) FROM phlask_tasks GROUP BY queue, state"):
                out.setdefault(queue, dict.fromkeys(State, 0))[state] = n
        return {q: {str(s): n for s, n in states.items()} for q, states in out.items()}

    def inspect(self, task_id: str) -> TaskInfo:
        with self._db(write=False) as db:
            row = db.execute("SELECT * FROM phlask_tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return _info(row)

    def dead_list(self, queue: str | None = None, limit: int = 100) -> list[TaskInfo]:
        where, args = ("state = 'dead'", []) if queue is None else ("queue = ? AND state = 'dead'", [queue])
        with self._db(write=False) as db:
            rows = db.execute(f"SELECT * FROM phlask_tasks WHERE {where} "
                              "ORDER BY updated_at DESC, seq DESC LIMIT ?", (*args, limit)).fetchall()
        return [_info(r) for r in rows]

    def dead_retry(self, task_ids: Sequence[str] | None = None) -> int:
        sql = ("UPDATE phlask_tasks SET state = 'queued', attempts = 0, reason = NULL, run_at = :now, "
               "updated_at = :now WHERE state = 'dead'")
        with self._db(write=True) as db:
            now = time.time()
            if task_ids is None:
                return db.execute(sql, {"now": now}).rowcount
            return db.executemany(sql + " AND id = :id",
                                  [{"now": now, "id": i} for i in dict.fromkeys(task_ids)]).rowcount

    def dead_purge(self, queue: str | None = None) -> int:
        with self._db(write=True) as db:
            if queue is None:
                return db.execute("DELETE FROM phlask_tasks WHERE state = 'dead'").rowcount
            return db.execute("DELETE FROM phlask_tasks WHERE queue = ? AND state = 'dead'", (queue,)).rowcount


def _ready(db: sqlite3.Connection, queue: str, now: float, limit: int) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = []
    below = 2**63 - 1
    while len(rows) < limit:
        level = db.execute(NEXT_PRIORITY, {"queue": queue, "below": below}).fetchone()
        if level is None:
            break
        below = level[0]
        rows += db.execute(CLAIM_READY, {"queue": queue, "priority": below, "now": now,
                                         "limit": limit - len(rows)}).fetchall()
    return rows


def _number(value: Any) -> float:
    """A numeric column as stored. SQLite keeps whatever a broken producer wrote (text in an
    INTEGER column); that reads as 0 rather than failing every claim of the queue."""
    return value if isinstance(value, (int, float)) else 0


def _bytes(value: bytes | str | float) -> bytes:
    # A producer that bound the body as text despite the CAST still gets its UTF-8 bytes back;
    # a number is no envelope, and its text is what the runner refuses (bytes(10**15) would
    # try to allocate a petabyte).
    if isinstance(value, str):
        return value.encode()
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value).encode()


# What json.dumps(result, ensure_ascii=False, separators=(",", ":")) builds on every call.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(result: dict[str, Any]) -> str:
    return _encoder.encode(result)


def _info(row: sqlite3.Row) -> TaskInfo:
    return TaskInfo(id=row["id"], queue=row["queue"], state=row["state"], attempts=row["attempts"],
                    body=_bytes(row["body"]), priority=row["priority"], run_at=row["run_at"],
                    enqueued_at=row["enqueued_at"], updated_at=row["updated_at"], reason=row["reason"],
                    result=json.loads(row["result"]) if row["result"] else None,
                    signature=row["signature"], key_id=row["key_id"], lease_until=row["lease_until"])


__all__ = ["SqliteBroker", "parse_url", "SCHEMA", "SCHEMA_VERSION", "PRODUCER_INSERT",
           "NEXT_PRIORITY", "CLAIM_READY", "CLAIM_EXPIRED"]
