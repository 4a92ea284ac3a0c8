"""A result store: where a runner records every attempt's result when its broker cannot.

RabbitMQ forgets a message once it is acked, so ``phlask inspect`` and the ``succeeded``
count in ``phlask status`` need somewhere else to look. ``phlask run --results URL``
records each settled attempt in a SQLite file or a MongoDB collection, and
``phlask inspect ID --results URL`` / ``phlask status --results URL`` read it back.

Layout (one record per task, the latest attempt wins): ``phlask_results`` with id, queue,
state, reason, attempts, body (the envelope text), result (spec/result.schema.json JSON),
updated_at (Unix seconds).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .brokers.base import Claim, TaskInfo
from .errors import BrokerUnavailable, ConfigError, TaskNotFound

_DDL = """
CREATE TABLE IF NOT EXISTS phlask_results (
  id TEXT PRIMARY KEY,
  queue TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  attempts INTEGER NOT NULL,
  body BLOB NOT NULL,
  result TEXT,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS phlask_results_queue_state ON phlask_results(queue, state);
"""


def _attempts(result: dict[str, Any]) -> int:
    return int(result.get("attempt", 1))


class SqliteResults:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.url = f"sqlite:///{path}"
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_DDL)
        self._lock = threading.Lock()

    def record(self, claim: Claim, result: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO phlask_results(id, queue, state, reason, attempts, body, result, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET queue=excluded.queue, state=excluded.state, "
                "reason=excluded.reason, attempts=excluded.attempts, body=excluded.body, result=excluded.result, "
                "updated_at=excluded.updated_at",
                (claim.id, claim.queue, result["state"], result.get("reason"), _attempts(result), claim.body,
                 json.dumps(result, ensure_ascii=False), time.time()))

    def inspect(self, task_id: str) -> TaskInfo:
        row = self._db.execute("SELECT id, queue, state, reason, attempts, body, result, updated_at "
                               "FROM phlask_results WHERE id=?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return TaskInfo(id=row[0], queue=row[1], state=row[2], reason=row[3], attempts=row[4], body=bytes(row[5]),
                        result=json.loads(row[6]) if row[6] else None, updated_at=row[7])

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for q, st, n in self._db.execute("SELECT queue, state, COUNT(*) FROM phlask_results GROUP BY queue, state"):
            out.setdefault(q, {})[st] = n
        return out

    def close(self) -> None:
        self._db.close()


class MongoResults:
    def __init__(self, url: str):
        import pymongo
        from pymongo.errors import PyMongoError

        parts = urlsplit(url)
        self.url = url
        db = parts.path.lstrip("/") or "phlask"
        coll = parse_qs(parts.query).get("results_collection", ["phlask_results"])[0]
        self._client = pymongo.MongoClient(url, serverSelectionTimeoutMS=10_000)
        try:
            self._client.admin.command("ping")
        except PyMongoError as exc:
            raise BrokerUnavailable(url, str(exc)) from None
        self._c = self._client[db][coll]
        self._c.create_index([("queue", 1), ("state", 1)])

    def record(self, claim: Claim, result: dict[str, Any]) -> None:
        self._c.replace_one({"_id": claim.id}, {
            "_id": claim.id, "queue": claim.queue, "state": result["state"], "reason": result.get("reason"),
            "attempts": _attempts(result), "body": claim.body.decode("utf-8", "replace"),
            "result": json.dumps(result, ensure_ascii=False), "updated_at": time.time()}, upsert=True)

    def inspect(self, task_id: str) -> TaskInfo:
        d = self._c.find_one({"_id": task_id})
        if d is None:
            raise TaskNotFound(task_id)
        return TaskInfo(id=d["_id"], queue=d["queue"], state=d["state"], reason=d.get("reason"),
                        attempts=d["attempts"], body=d["body"].encode(), result=json.loads(d["result"]),
                        updated_at=d.get("updated_at"))

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for row in self._c.aggregate([{"$group": {"_id": {"q": "$queue", "s": "$state"}, "n": {"$sum": 1}}}]):
            out.setdefault(row["_id"]["q"], {})[row["_id"]["s"]] = row["n"]
        return out

    def close(self) -> None:
        self._client.close()


def open_results(url: str):
    """Open a result store: ``sqlite:///path.db`` or ``mongodb://host/db``."""
    if url.startswith("sqlite:"):
        from .brokers.sqlite import parse_url  # one URL rule for every SQLite file
        return SqliteResults(str(parse_url(url)))
    if url.startswith(("mongodb:", "mongodb+srv:")):
        return MongoResults(url)
    raise ConfigError(f"results URL {url!r}: use sqlite:///path/results.db or mongodb://host:27017/dbname")
