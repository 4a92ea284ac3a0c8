"""The wire layout of the RabbitMQ backend: the code form of spec/backends/rabbitmq.md.

Header names, queue names and arguments, property values and limits, the delay buckets,
publisher confirms, and the small pure helpers that read and write headers and URLs. The
constants are that document's (a test compares them); :mod:`phlask.brokers.rabbitmq` holds
the broker that follows this layout, and re-exports the public names.
"""

from __future__ import annotations

import json
import re
import time
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel

from ..errors import BrokerError, ConfigError


class Header(StrEnum):
    """Message headers (spec/backends/rabbitmq.md, section 5)."""

    SIGNATURE = "x-phlask-signature"
    KEY_ID = "x-phlask-key-id"
    NOT_BEFORE = "x-phlask-not-before"
    ATTEMPTS = "x-phlask-attempts"
    DEAD_REASON = "x-phlask-dead-reason"
    DEAD_AT = "x-phlask-dead-at"
    RESULT = "x-phlask-result"
    LEASE = "x-phlask-lease"


DEFAULT_PREFIX = "phlask."
CONTENT_TYPE = "application/json"
MAX_PRIORITY = 10
MAX_DELAY_MS = 86_400_000  # a longer delay takes several hops
DELAY_EXPIRES_EXTRA_MS = 600_000
HOLD_EXPIRES_EXTRA_MS = 3_600_000
RESULT_HEADER_MAX = 32_768

# A copy carries every header but the server's dead-letter history and phlask's own, which
# are set afresh for each hop (signature and key id excepted).
_DROP = {h.value for h in Header} - {Header.SIGNATURE, Header.KEY_ID}
_DEATH = re.compile(r"^x-(death|first-death-.*|last-death-.*)$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._:-]{0,100}$")
_QUEUE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def work_queue_args() -> dict[str, Any]:
    return {"x-queue-type": "classic", "x-max-priority": MAX_PRIORITY}


def dead_queue_args() -> dict[str, Any]:
    return {"x-queue-type": "classic"}


def delay_queue_args(work: str, ttl_ms: int) -> dict[str, Any]:
    return {"x-queue-type": "classic", "x-message-ttl": ttl_ms, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": work, "x-expires": ttl_ms + DELAY_EXPIRES_EXTRA_MS}


def hold_queue_args(work: str, expires_ms: int) -> dict[str, Any]:
    return {"x-queue-type": "classic", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": work,
            "x-expires": expires_ms}


def delay_bucket(remaining_ms: int) -> int:
    """The delay queue (its TTL in ms) for a task due in ``remaining_ms`` ms: the delay
    rounded down to two significant digits, at most one day. Never longer than the delay,
    so a task is never early; a runner sends one that arrives early on (spec, 7.2)."""
    ms = max(int(remaining_ms), 1)
    if ms >= 100:
        scale = 10 ** (len(str(ms)) - 2)
        ms = ms // scale * scale
    return min(ms, MAX_DELAY_MS)


class _Confirms:
    """Publisher confirms with many messages in flight. pika's BlockingChannel in confirm
    mode waits for each publish; batching needs the underlying channel's ack callback and
    BlockingChannel's own wait loop (private names, stable across pika 1.x)."""

    def __init__(self, ch: BlockingChannel):
        self.ch = ch
        self.seq = 0
        self.pending: dict[int, int] = {}  # publish sequence number -> index in ``done``, ascending
        self.failed: list[str] = []
        self.done: list[bool] = []
        ready: list[Any] = []
        ch._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=ready.append)
        ch._impl.add_on_return_callback(self._on_return)
        ch._flush_output(lambda: bool(ready))

    def publish(self, routing_key: str, props: pika.BasicProperties, body: bytes, index: int = -1) -> None:
        # Not BlockingChannel.basic_publish, which flushes the socket after every message.
        self.ch._impl.basic_publish("", routing_key, body, props, mandatory=True)
        self.seq += 1
        self.pending[self.seq] = index
        if self.seq % 256 == 0:
            self.ch.connection.process_data_events(time_limit=0)

    def wait(self, timeout: float = 60.0) -> None:
        """Until every published message is confirmed. Raises BrokerError for one that was
        refused or unroutable, or not confirmed in time."""
        deadline = time.monotonic() + timeout
        wake = self.ch.connection.call_later(timeout, lambda: None)
        try:  # returns at the last confirm (process_data_events would sit out its time limit)
            self.ch._flush_output(lambda: not self.pending, lambda: time.monotonic() >= deadline)
        finally:
            self.ch.connection.remove_timeout(wake)
        failed, self.failed, self.done = self.failed, [], []
        if self.pending:
            self.pending.clear()
            raise BrokerError(f"RabbitMQ did not confirm a publish within {timeout:g}s")
        if failed:
            raise BrokerError(f"RabbitMQ refused {len(failed)} message(s): {failed[0]}")

    def _on_confirm(self, frame: Any) -> None:
        m = frame.method
        tags = [m.delivery_tag]
        if m.multiple:  # every pending number up to this one; ``pending`` is in ascending order
            tags = []
            for t in self.pending:
                if t > m.delivery_tag:
                    break
                tags.append(t)
        for t in tags:
            index = self.pending.pop(t, -1)
            if isinstance(m, pika.spec.Basic.Nack):
                self.failed.append("negatively acknowledged (an internal error of the server)")
            elif 0 <= index < len(self.done):
                self.done[index] = True

    def _on_return(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        self.failed.append(f"unroutable to {method.routing_key!r} ({method.reply_text}): its queue is missing")


def _int(value: Any) -> int | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _result_header(result: dict[str, Any] | None) -> str | None:
    if result is None:
        return None
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > RESULT_HEADER_MAX:
        result = {k: (v[-2048:] if k in ("stdout_tail", "stderr_tail") and isinstance(v, str) else v)
                  for k, v in result.items() if k != "result"}
        text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) > RESULT_HEADER_MAX and isinstance(result.get("error"), str):
            # An error may quote a huge field (a 1 MiB id): its start says what was wrong.
            result["error"] = result["error"][:2048] + " [...]"
            text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        # The limit is in bytes: cut by characters, 4-byte ones made a header frame over the
        # server's frame_max, which closed the connection and redelivered the task forever.
        text = text.encode()[:RESULT_HEADER_MAX].decode("utf-8", "ignore")
    return text


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """pika's URL and phlask's options (prefix, connect_timeout, queues) from a broker URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("amqp", "amqps") or not parts.hostname:
        raise ConfigError(f"broker URL {_safe(url)!r}: write amqp://user:pass@host:5672/vhost "
                          "(the vhost percent-encoded: %2F for /)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("prefix", "connect_timeout", "queues")}
    theirs = [(k, v) for k, v in query if k not in ours]
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def _safe(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


__all__ = ["Header", "delay_bucket", "work_queue_args", "dead_queue_args", "delay_queue_args", "hold_queue_args",
           "MAX_PRIORITY", "MAX_DELAY_MS", "CONTENT_TYPE", "DEFAULT_PREFIX", "DELAY_EXPIRES_EXTRA_MS",
           "HOLD_EXPIRES_EXTRA_MS", "RESULT_HEADER_MAX"]
