"""The RabbitMQ backend for the contract suite (interface: conftest.py).

The server is the one ``bash scripts/services start rabbitmq`` runs (``$AMQP_URL``). Each
test gets its own queue names through the URL's ``prefix`` option, and every queue of that
prefix is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pika

from phlask.brokers.rabbitmq import RabbitBroker, work_queue_args

NAME = "rabbitmq"
URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def url_with(**options: str) -> str:
    """``$AMQP_URL`` with phlask's query options added."""
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in options.items())
    return f"{URL}{'&' if '?' in URL else '?'}{query}" if query else URL


def available() -> str | None:
    try:
        pika.BlockingConnection(_params(timeout=2)).close()
    except Exception as exc:  # any failure to connect is a reason to skip, and says which
        return f"no RabbitMQ at {URL} ({exc!r}); start it with: bash scripts/services start rabbitmq"
    return None


def _params(timeout: float = 10) -> pika.URLParameters:
    params = pika.URLParameters(URL)
    params.socket_timeout = params.stack_timeout = timeout
    params.connection_attempts = 1
    return params


@contextlib.contextmanager
def make(tmp_path: Path, queue_prefix: str) -> Iterator[RabbitBroker]:
    broker = RabbitBroker(url_with(prefix=f"phlask.test.{queue_prefix}", connect_timeout=5))
    try:
        yield broker
    finally:
        names = set(broker.declared_names) | {broker.work(q) for q in broker._known} \
            | {broker.dead_name(q) for q in broker._known}
        broker.close()
        delete_queues(names)


def delete_queues(names: set[str]) -> None:
    """Delete these queues (missing ones are fine)."""
    conn = pika.BlockingConnection(_params())
    try:
        ch = conn.channel()
        for name in sorted(names):
            if ch.is_closed:
                ch = conn.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                ch.queue_delete(name)
    finally:
        conn.close()


def publish_raw(broker: RabbitBroker, queue: str, body: bytes, properties: pika.BasicProperties) -> None:
    """Publish bytes as a foreign producer would: declare the work queue as the spec says,
    publish through the default exchange, wait for the confirm."""
    conn = pika.BlockingConnection(_params())
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(broker.work(queue), durable=True, arguments=work_queue_args())
        broker.declared_names.add(broker.work(queue))
        ch.basic_publish("", broker.work(queue), body, properties, mandatory=True)
    finally:
        conn.close()


def store_raw(broker: RabbitBroker, task_id: str, queue: str, body: bytes) -> None:
    publish_raw(broker, queue, body, pika.BasicProperties(message_id=task_id, delivery_mode=2,
                                                          content_type="application/json"))
