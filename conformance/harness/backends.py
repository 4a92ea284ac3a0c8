"""The three backends as the matrix uses them: a fresh place per run, a probe, the
runner's options, a way to read a task's state back, and cleanup.

SQLite is a file in the run's directory; MongoDB a database named for the run on the
server of ``$MONGODB_URL``; RabbitMQ queues named for the run on ``$AMQP_URL``'s server,
with a SQLite result store so that the runner's settles can be read back (RabbitMQ itself
forgets an acked message).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from phlask.brokers import connect
from phlask.results import open_results

from .drivers import ROOT

BACKENDS = ("sqlite", "mongodb", "rabbitmq")


def server_urls() -> dict[str, str]:
    """``MONGODB_URL`` and ``AMQP_URL``: from the environment, else ``scripts/services env``."""
    urls = {k: os.environ[k] for k in ("MONGODB_URL", "AMQP_URL") if os.environ.get(k)}
    if len(urls) < 2:
        try:
            out = subprocess.run(["bash", str(ROOT / "scripts" / "services"), "env"], capture_output=True,
                                 text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in out.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                key, _, value = words[1].partition("=")
                urls.setdefault(key, value)
    return urls


@dataclass
class Backend:
    """One backend for one run."""

    name: str
    url: str  # the broker URL producers and the runner use
    results: str | None = None  # the runner's --results URL, where the broker cannot inspect
    queues: list[str] = field(default_factory=list)  # phlask queues used, for cleanup

    def probe(self) -> str | None:
        """None when the server answers; otherwise why not."""
        options = {} if self.name == "sqlite" else {"connect_timeout": 5}  # a short wait: is it up?
        try:
            connect(self.url, **options).close()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            return f"{self.name} at {_redact(self.url)} is not reachable: {exc}"
        return None

    def runner_options(self) -> list[str]:
        return ["--results", self.results] if self.results else []

    def reader(self) -> Any:
        """Something with ``inspect(task_id) -> TaskInfo`` (raising TaskNotFound) and
        ``close()``: the broker, or the runner's result store where the broker cannot inspect."""
        return open_results(self.results) if self.results else connect(self.url)

    def cleanup(self) -> str | None:
        """Remove what this run created on the server. None, or what could not be removed."""
        try:
            if self.name == "mongodb":
                import pymongo

                client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=5000)
                try:
                    client.drop_database(urlsplit(self.url).path.lstrip("/"))
                finally:
                    client.close()
            elif self.name == "rabbitmq":
                _delete_rabbit_queues(self.url, self.queues)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            return f"cleanup of {self.name} failed: {exc}"
        return None


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def _delete_rabbit_queues(url: str, queues: list[str]) -> None:
    """Delete the work and dead queues of each phlask queue (spec/backends/rabbitmq.md,
    section 3). Delay and hold queues, if any were made, expire on their own."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        for q in queues:
            for name in (f"phlask.{q}", f"phlask.{q}:dead"):
                ch.queue_delete(name)
    finally:
        conn.close()


def make_backends(run_id: str, workdir: Path, urls: dict[str, str]) -> dict[str, Backend | str]:
    """Each backend for this run, or the reason it has no server URL."""
    out: dict[str, Backend | str] = {"sqlite": Backend("sqlite", f"sqlite:///{workdir / 'queue.db'}")}
    mongo = urls.get("MONGODB_URL")
    if mongo:
        parts = urlsplit(mongo)
        out["mongodb"] = Backend("mongodb", urlunsplit(parts._replace(path=f"/phlask_conformance_{run_id}")))
    else:
        out["mongodb"] = "MONGODB_URL is not set and `scripts/services env` gave none"
    amqp = urls.get("AMQP_URL")
    if amqp:
        out["rabbitmq"] = Backend("rabbitmq", amqp, results=f"sqlite:///{workdir / 'rabbitmq-results.db'}")
    else:
        out["rabbitmq"] = "AMQP_URL is not set and `scripts/services env` gave none"
    return out
