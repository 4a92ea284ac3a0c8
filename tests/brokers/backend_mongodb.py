"""The MongoDB backend for the contract suite (interface: conftest.py), against the server at
``$MONGODB_URL`` (default: the FerretDB that ``bash scripts/services start mongodb`` runs).

Each test gets its own pair of collections, named after its queue prefix, dropped on exit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pymongo

from phlask.brokers import Message
from phlask.brokers.mongodb import MongoBroker, parse_url, producer_document, redact

NAME = "mongodb"
URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/phlask_test")
# How the broker writes task documents: unset picks by server (point writes on FerretDB,
# conditional updates on MongoDB); "conditional" runs MongoDB's way on FerretDB too.
WRITES = {"point": True, "conditional": False}.get(os.environ.get("PHLASK_TEST_MONGODB_WRITES", ""))


def client(url: str = URL, **options) -> pymongo.MongoClient:
    """A plain pymongo client for the server under test (what a producer or operator uses)."""
    options = {"serverSelectionTimeoutMS": 5000} | options
    return pymongo.MongoClient(parse_url(url).client_url, tz_aware=True, **options)


def available() -> str | None:
    try:
        with client(serverSelectionTimeoutMS=1500) as c:
            c.admin.command("ping")
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return (f"no MongoDB at {redact(URL)} ({type(exc).__name__}: {str(exc)[:120]}); start it with "
                "`bash scripts/services start mongodb` or set MONGODB_URL")
    return None


def collection_for(queue_prefix: str) -> str:
    return "t_" + queue_prefix.strip("-").replace("-", "_")


@contextlib.contextmanager
def make(tmp_path: Path, queue_prefix: str, **options) -> Iterator[MongoBroker]:
    options = {"point_writes": WRITES} | options
    broker = MongoBroker(URL, collection=collection_for(queue_prefix), connect_timeout=10, **options)
    try:
        yield broker
    finally:
        broker.close()
        drop(broker)


def drop(broker: MongoBroker) -> None:
    with client() as c:
        c[broker.database].drop_collection(broker.collection_name)
        c[broker.database].drop_collection(broker.claims_name)


def store_raw(broker: MongoBroker, task_id: str, queue: str, body: bytes) -> None:
    # What a producer in another language does (spec/backends/mongodb.md, section 6), through
    # its own connection, with a body that was never validated.
    with client() as c:
        c[broker.database][broker.collection_name].insert_one(
            producer_document(Message(id=task_id, queue=queue, body=body)))
