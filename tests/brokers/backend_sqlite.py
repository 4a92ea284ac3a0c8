"""The embedded SQLite backend for the contract suite: the model for other backend modules
(their interface is documented in conftest.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from phlask.brokers.sqlite import PRODUCER_INSERT, SqliteBroker

NAME = "sqlite"


def available() -> str | None:
    return None  # the standard library is enough


@contextlib.contextmanager
def make(tmp_path: Path, queue_prefix: str) -> Iterator[SqliteBroker]:
    # A fresh file per test is all the isolation needed; tmp_path is removed by pytest.
    broker = SqliteBroker(f"sqlite://{tmp_path / 'queue.db'}")
    try:
        yield broker
    finally:
        broker.close()


def store_raw(broker: SqliteBroker, task_id: str, queue: str, body: bytes) -> None:
    # What a producer in another language does (spec/backends/sqlite.md, section 6),
    # through its own connection.
    with contextlib.closing(sqlite3.connect(broker.path, timeout=30, isolation_level=None)) as db:
        db.execute(PRODUCER_INSERT, {"id": task_id, "queue": queue, "priority": 0, "not_before": None,
                                     "expires_at": None, "body": body, "signature": None, "key_id": None})
