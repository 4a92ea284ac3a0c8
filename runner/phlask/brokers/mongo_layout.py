"""The document layout of the MongoDB backend: the code form of spec/backends/mongodb.md.

Collection names, indexes and the claim order, the broker URL, the task document a producer
inserts and how the runner reads one back, the claim queries and generation-claim ids. The
normative blocks of that document are :data:`INDEXES`, :func:`producer_document` and
:func:`claim_filters` (tests fail on drift); :mod:`phlask.brokers.mongodb` holds the broker
that follows this layout, and re-exports the public names.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from ..errors import ConfigError
from ..wire import State
from .base import Message, TaskInfo

from bson import ObjectId

DEFAULT_COLLECTION = "phlask_tasks"
CLAIMS_SUFFIX = "_claims"

#: Indexes the runner creates at start (idempotent). ``phlask_claim`` serves the claim
#: queries: equality on queue and state, then the claim order, so MongoDB walks the index
#: in order and stops at the limit (no in-memory sort).
INDEXES: list[dict[str, Any]] = [
    {"name": "phlask_claim", "key": {"queue": 1, "state": 1, "priority": -1, "run_at": 1, "seq": 1}},
]
CLAIMS_INDEXES: list[dict[str, Any]] = [
    {"name": "phlask_at", "key": {"at": 1}},
]
CLAIM_SORT = [("priority", -1), ("run_at", 1), ("seq", 1)]


# --- URL ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MongoTarget:
    """A parsed broker URL: what pymongo gets, and where the tasks live."""

    client_url: str
    database: str
    collection: str


def parse_url(url: str, collection: str | None = None) -> MongoTarget:
    """Split a ``mongodb://`` URL into the client URL, the database and the task collection.

    ``collection`` (argument) wins over ``?collection=`` (URL), which wins over
    :data:`DEFAULT_COLLECTION`. Raises ConfigError saying how to write the URL."""
    how = "write mongodb://host:27017/dbname (optionally ?collection=phlask_tasks)"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("mongodb", "mongodb+srv"):
        raise ConfigError(f"broker URL {redact(url)!r} is not a mongodb URL; {how}")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(f"broker URL {redact(url)!r} names no database; {how}")
    if any(ch in database for ch in '/\\. "$\0') or len(database) > 63:
        raise ConfigError(f"broker URL {redact(url)!r}: {database!r} is not a valid MongoDB database name")
    ours = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "collection"]
    name = collection or (ours[-1] if ours else "") or DEFAULT_COLLECTION
    if "$" in name or "\0" in name or name.startswith("system.") or len(name) > 100:
        raise ConfigError(f"broker URL {redact(url)!r}: {name!r} is not a usable collection name")
    return MongoTarget(_with_collection(url, None), database, name)


def _with_collection(url: str, name: str | None) -> str:
    """``url`` with its ``collection`` option replaced by ``name`` (removed for None); the
    other options are kept byte for byte, as pymongo parses them."""
    parts = urlsplit(url)
    query = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != "collection"]
    query += [f"collection={quote(name, safe='')}"] if name else []
    return urlunsplit(parts._replace(query="&".join(query), fragment=""))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    cred, _, hosts = parts.netloc.rpartition("@")
    user = cred.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{hosts}" if ":" in cred else f"{user}@{hosts}",
                       parts.path, parts.query, parts.fragment))


# --- documents -----------------------------------------------------------------------------------

def now_utc() -> datetime:
    """Now, truncated to the millisecond a BSON date holds."""
    ms = time.time_ns() // 1_000_000
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def _date(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(round(seconds * 1000) / 1000, timezone.utc)


def _secs(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return float(value) if isinstance(value, (int, float)) else None


def producer_document(message: Message, now: datetime | None = None) -> dict[str, Any]:
    """The task document a producer inserts (spec/backends/mongodb.md, section 6)."""
    now = now or now_utc()
    return {
        "_id": message.id,
        "queue": message.queue,
        "state": State.QUEUED.value,
        "priority": message.priority,
        "run_at": _date(message.not_before) if message.not_before is not None else now,
        "expires_at": _date(message.expires_at),
        "seq": ObjectId(),
        "gen": 0,
        "attempts": 0,
        "body": bytes(message.body),
        "signature": message.signature,
        "key_id": message.key_id,
        "enqueued_at": now,
        "updated_at": now,
    }


def _bytes(value: Any) -> bytes:
    # The spec says binary; a producer that stored the text as a BSON string gets its UTF-8 back.
    if isinstance(value, str):
        return value.encode()
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value or b"")
    # A number or a document is no envelope: its text is what the runner refuses as invalid
    # (bytes(5 ** 20) would allocate 95 trillion bytes, bytes({...}) would raise).
    return str(value).encode()


def _count(value: Any) -> int:
    """An integer field of a task document (attempts, priority, gen). What a broken producer
    may have written instead (a string, a date) reads as 0: one odd document must not make
    every claim of its queue fail."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return int(value)


def _result(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    return json.loads(value)


def _json(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def _info(doc: dict[str, Any]) -> TaskInfo:
    return TaskInfo(id=doc["_id"], queue=doc.get("queue", ""), state=doc.get("state", ""),
                    attempts=_count(doc.get("attempts")), body=_bytes(doc.get("body")),
                    priority=_count(doc.get("priority")), run_at=_secs(doc.get("run_at")),
                    enqueued_at=_secs(doc.get("enqueued_at")), updated_at=_secs(doc.get("updated_at")),
                    reason=doc.get("reason"), result=_result(doc.get("result")),
                    signature=doc.get("signature"), key_id=doc.get("key_id"),
                    lease_until=_secs(doc.get("lease_until")))


def claim_filters(queues: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """The two claim queries (spec section 8.1), each sorted by :data:`CLAIM_SORT`: queued
    tasks that are due, and running tasks whose lease expired (their runner died)."""
    return [{"queue": {"$in": list(queues)}, "state": State.QUEUED.value, "run_at": {"$lte": now}},
            {"queue": {"$in": list(queues)}, "state": State.RUNNING.value, "lease_until": {"$lt": now}}]


def claim_id(task_id: str, seq: Any, gen: int) -> str:
    """The ``_id`` of the generation claim that owns change number ``gen`` of a task."""
    return f"{task_id}:{seq}:{gen}"


__all__ = ["INDEXES", "CLAIMS_INDEXES", "CLAIM_SORT", "DEFAULT_COLLECTION", "CLAIMS_SUFFIX", "MongoTarget",
           "claim_filters", "claim_id", "now_utc", "parse_url", "producer_document", "redact"]
