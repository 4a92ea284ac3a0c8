"""The RabbitMQ backend: ``amqp://user:pass@host:5672/vhost`` through pika, from one thread.

spec/backends/rabbitmq.md specifies the names, queue arguments, properties, headers and the
claim / lease / settle protocol; the constants of amqp_layout.py (re-exported here) are that
document's (a test compares them). In short:

* phlask queue ``q`` is the durable priority queue ``phlask.q`` behind the default exchange;
  everything is published with publisher confirms;
* a delay (``not_before``, retry backoff) is a hop through ``phlask.q:delay:<ms>``, whose
  messages all live ``<ms>`` and then dead-letter back to ``phlask.q``;
* a runner of one queue subscribes: a standing consumer whose prefetch is its free slots
  pushes tasks to it (no round trip per claim); a runner of several queues claims with
  ``basic.get`` per free slot, or, when idle, a consumer with prefetch 1 that is cancelled
  once a message arrives. Either way a runner holds no message it has no slot for;
* a settle that moves a task publishes a copy, waits for its confirm, then acks;
* a long task outlives the server's consumer timeout because every ``renew`` moves its
  message into this runner's hold queue ``phlask.q:hold:<runner>`` and takes it back (a
  fresh delivery); if the runner dies the copies expire back into ``phlask.q``;
* dead tasks are the messages of ``phlask.q:dead``.

Options ride in the URL query next to pika's own (``heartbeat``, ...): ``prefix`` (default
``phlask.``), ``connect_timeout`` (seconds, default 15) and ``queues`` (comma-separated
queues that counts and dead-queue operations look at besides ``default`` and those used).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..errors import BrokerError, BrokerUnavailable, ConfigError, DuplicateTask, Unsupported
# The wire layout (spec/backends/rabbitmq.md), re-exported: tests and tools import these from here.
from .amqp_layout import (_DEATH, _DROP, _PREFIX_RE, _QUEUE_RE, CONTENT_TYPE, DEFAULT_PREFIX, DELAY_EXPIRES_EXTRA_MS,
                          HOLD_EXPIRES_EXTRA_MS, MAX_DELAY_MS, MAX_PRIORITY, RESULT_HEADER_MAX, Header, _Confirms,
                          _int, _result_header, _safe, _split_url, _str, dead_queue_args, delay_bucket,
                          delay_queue_args, hold_queue_args, work_queue_args)
from .base import Broker, Claim, LeaseLost, Message, Settle, TaskInfo

log = logging.getLogger("phlask.brokers.rabbitmq")

#: A copy keeps a message's own headers up to this size: with x-phlask-result (at most
#: RESULT_HEADER_MAX) and the rest of phlask's, the header frame stays under RabbitMQ's
#: default frame_max of 128 KiB.
FOREIGN_HEADERS_MAX = 65_536

_AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)


@dataclass(eq=False)
class _Delivery:
    queue: str  # the phlask queue
    tag: int
    props: pika.BasicProperties
    body: bytes
    consumer: str | None = None  # the standing consumer's tag when pushed to it (subscribe), not taken by get
    headers: dict[str, Any] = field(init=False)
    task_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.headers = self.props.headers or {}
        # A foreign or broken producer may leave message_id out; the claim still needs a
        # stable id so that the runner can settle it dead.
        self.task_id = _str(self.props.message_id) or f"no-message-id-{hashlib.sha256(self.body).hexdigest()[:16]}"

    @property
    def priority(self) -> int:
        return self.props.priority or 0


@dataclass(eq=False)
class _Lease:
    """A Claim's receipt: the delivery that holds the task, on which runner channel."""

    owner: RabbitBroker
    epoch: int  # the runner channel's incarnation: a new channel means the message was requeued
    delivery: _Delivery
    until: float
    source: str = "work"  # or "hold": the delivery is a copy taken from the hold queue
    done: bool = False


class RabbitBroker(Broker):
    """The broker at ``amqp://user:pass@host:port/vhost`` (``amqps://`` for TLS).

    Connects at once: raises ConfigError for a bad URL and BrokerUnavailable when the server
    cannot be reached within ``connect_timeout`` seconds (it retries with backoff, logging
    each try). Later calls reconnect the same way. The claims of a channel that closed are
    lost: settling one raises LeaseLost, and the server redelivers its message.
    """

    waits_in_claim = True  # claim consumes until a message arrives or the timeout ends

    schemes = ("amqp", "amqps")
    supports_inspect = False
    supports_unique_ids = False

    def __init__(self, url: str, *, signing_key: tuple[str, str | bytes] | None = None,
                 prefix: str | None = None, connect_timeout: float | None = None,
                 queues: Sequence[str] = (), browse_limit: int = 10_000):
        super().__init__(url, signing_key=signing_key)
        self._safe_url = _safe(url)
        self._pika_url, opts = _split_url(url)
        self.prefix = prefix if prefix is not None else opts.get("prefix", DEFAULT_PREFIX)
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigError(f"broker URL {self._safe_url!r}: prefix {self.prefix!r} may hold only letters, "
                              "digits and . _ : - (at most 100)")
        try:
            self.connect_timeout = float(connect_timeout if connect_timeout is not None
                                         else opts.get("connect_timeout", 15))
        except ValueError:
            raise ConfigError(f"broker URL {self._safe_url!r}: connect_timeout is a number of seconds") from None
        extra = [q for q in opts.get("queues", "").split(",") if q] + list(queues)
        for q in extra:
            if not _QUEUE_RE.match(q):
                raise ConfigError(f"broker URL {self._safe_url!r}: {q!r} is not a queue name")
        self.browse_limit = browse_limit
        self._known = dict.fromkeys(["default", *extra])  # queues counts and dead operations look at
        self._conn: BlockingConnection | None = None
        self._run: BlockingChannel | None = None  # publishes (confirms), claims and settles
        self._ops: BlockingChannel | None = None  # operators' dead-queue work, transactional
        self._probe: BlockingChannel | None = None  # passive declares (a 404 closes it)
        self._confirms: _Confirms | None = None
        self._epoch = 0
        self._held: set[_Lease] = set()  # claims handed out on the current runner channel
        self._declared: set[str] = set()  # on this connection
        self._holds: dict[str, tuple[str, int]] = {}  # queue -> (hold queue, its x-expires), this channel
        self._delays: dict[str, set[str]] = collections.defaultdict(set)
        self._succeeded: collections.Counter[str] = collections.Counter()
        self._runner = secrets.token_hex(6)
        self._hold_seq = 0
        # subscribe(): one standing consumer on the runner channel, its prefetch, what it pushed
        self._feed: str | None = None  # the phlask queue subscribed to
        self._feed_tag: str | None = None
        self._feed_prefetch = 0
        self._fed: list[_Delivery] = []
        self._qos = 0  # the per-consumer prefetch last set on the runner channel
        self._batch = False  # in settle_and_claim: acks are flushed once, at the end
        self.declared_names: set[str] = set()  # every queue this object declared
        self._connection()

    # --- names -----------------------------------------------------------------------

    def work(self, queue: str) -> str:
        return f"{self.prefix}{queue}"

    def dead_name(self, queue: str) -> str:
        return f"{self.prefix}{queue}:dead"

    def delay_name(self, queue: str, ttl_ms: int) -> str:
        return f"{self.prefix}{queue}:delay:{ttl_ms}"

    def hold_name(self, queue: str) -> str:
        return f"{self.prefix}{queue}:hold:{self._runner}-{self._epoch}"

    # --- connection and channels -----------------------------------------------------

    def _connection(self) -> BlockingConnection:
        if self._conn is not None and self._conn.is_open:
            return self._conn
        if self._conn is not None:
            self._lose_connection("connection closed")
        deadline = time.monotonic() + self.connect_timeout
        attempt, pause = 0, 0.2
        while True:
            attempt += 1
            params = pika.URLParameters(self._pika_url)
            left = max(0.1, deadline - time.monotonic())
            params.socket_timeout, params.stack_timeout = min(left, 10.0), min(left, 15.0)
            params.connection_attempts, params.retry_delay = 1, 0
            try:
                self._conn = pika.BlockingConnection(params)
            except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError,
                    pika.exceptions.ProbableAccessDeniedError) as exc:
                raise BrokerUnavailable(self._safe_url, f"the server refused the login or vhost ({exc!r})") from None
            except _AMQP_ERRORS as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnavailable(self._safe_url, f"no connection after {attempt} attempt(s) in "
                                                            f"{self.connect_timeout:g}s ({exc!r})") from None
                log.warning("cannot reach RabbitMQ at %s (attempt %d: %r); retrying in %.1fs",
                            self._safe_url, attempt, exc, min(pause, left))
                time.sleep(min(pause, left))
                pause = min(pause * 2, 5.0)
                continue
            if attempt > 1 or self._epoch:
                log.info("connected to RabbitMQ at %s (attempt %d)", self._safe_url, attempt)
            return self._conn

    def _lose_connection(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        self._run = self._ops = self._probe = self._confirms = None
        self._declared.clear()
        self._lose_claims(why)

    def _lose_claims(self, why: str) -> None:
        if self._held:
            log.warning("%d claim(s) lost (%s); RabbitMQ redelivers their tasks", len(self._held), why)
        for held in self._held:
            held.done = True
        self._held.clear()
        self._holds.clear()
        self._fed.clear()  # unacked with the channel: the server requeues them
        self._feed_tag, self._feed_prefetch = None, 0
        self._epoch += 1

    def _channel(self, kind: str) -> BlockingChannel:
        ch = getattr(self, kind)
        if ch is not None and ch.is_open:
            return ch
        if kind == "_run" and ch is not None:
            self._lose_claims("the runner channel closed")
        ch = self._connection().channel()
        if kind == "_run":
            ch.basic_qos(prefetch_count=1)  # per consumer: an idle claim takes one message per queue
            self._qos = 1
            self._confirms = _Confirms(ch)
            self._epoch += 1
        elif kind == "_ops":
            ch.tx_select()
        setattr(self, kind, ch)
        return ch

    @contextlib.contextmanager
    def _amqp(self, what: str, lost: bool = False) -> Iterator[None]:
        """Turn pika errors into BrokerError (LeaseLost when ``lost``), dropping what broke."""
        try:
            yield
        except _AMQP_ERRORS as exc:
            if self._conn is None or not self._conn.is_open or not isinstance(exc, pika.exceptions.AMQPChannelError):
                self._lose_connection(f"{what}: {exc!r}")
            for kind in ("_run", "_ops", "_probe"):
                ch = getattr(self, kind)
                if ch is not None and not ch.is_open:
                    setattr(self, kind, None)
                    if kind == "_run":
                        self._lose_claims(f"{what}: {_reason(exc)}")
            if lost:
                raise LeaseLost(f"{what}: the channel to RabbitMQ broke ({_reason(exc)}); the server "
                                "redelivers the task") from None
            raise BrokerError(f"RabbitMQ at {self._safe_url}: {what} failed: {_reason(exc)}") from None

    def _declare(self, ch: BlockingChannel, name: str, args: dict[str, Any], cache: bool = True) -> None:
        if cache and name in self._declared:
            return
        try:
            ch.queue_declare(name, durable=True, arguments=args)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 406:
                raise BrokerError(f"queue {name!r} exists with other arguments ({exc.reply_text}); every producer "
                                  "and runner must declare it as spec/backends/rabbitmq.md says") from exc
            raise
        self._declared.add(name)
        self.declared_names.add(name)

    def _declare_delay(self, ch: BlockingChannel, queue: str, ttl_ms: int) -> str:
        # Declared before every publish: that renews the queue's x-expires (publishing does not).
        self._declare(ch, self.work(queue), work_queue_args())
        name = self.delay_name(queue, ttl_ms)
        self._declare(ch, name, delay_queue_args(self.work(queue), ttl_ms), cache=False)
        self._delays[queue].add(name)
        return name

    def _count(self, name: str) -> int | None:
        """Ready messages in queue ``name``, or None when there is no such queue."""
        try:
            return self._channel("_probe").queue_declare(name, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._probe = None
            if exc.reply_code == 404:
                return None
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._lose_connection("closed")

    # --- producer side -----------------------------------------------------------------

    def enqueue(self, messages: Sequence[Message]) -> list[str]:
        """Publish every message (spec, section 6), waiting for the confirms of the whole batch.

        Raises DuplicateTask for an id given twice in the batch, before publishing anything;
        RabbitMQ keeps no index, so an id used by an earlier batch is not detected. After a
        broken connection the unconfirmed messages are published again once (a message may
        then be stored twice)."""
        seen: set[str] = set()
        for m in messages:
            if m.id in seen:
                raise DuplicateTask(m.id)
            seen.add(m.id)
        now = time.time_ns() // 1_000_000
        plan = []
        for m in messages:
            self._known.setdefault(m.queue)
            headers: dict[str, Any] = {}
            if m.signature is not None:
                headers[Header.SIGNATURE.value] = m.signature
            if m.key_id is not None:
                headers[Header.KEY_ID.value] = m.key_id
            due = round(m.not_before * 1000) if m.not_before is not None else 0
            if due > now:
                headers[Header.NOT_BEFORE.value] = due
            props = pika.BasicProperties(content_type=CONTENT_TYPE, delivery_mode=2, message_id=m.id,
                                         priority=m.priority, timestamp=now // 1000, headers=headers or None)
            plan.append((m.queue, delay_bucket(due - now) if due > now else 0, props, m.body))
        done = [False] * len(plan)
        for attempt in (1, 2):
            try:
                with self._amqp("publish"):
                    if plan:
                        self._publish(plan, done)
                break
            except BrokerError:
                if attempt == 2 or self._conn is not None:
                    raise
                log.warning("publishing to %s: the connection broke; publishing the %d unconfirmed message(s) "
                            "again", self._safe_url, done.count(False))
        return [m.id for m in messages]

    def _publish(self, plan: list, done: list[bool]) -> None:
        ch = self._channel("_run")
        routes: dict[tuple[str, int], str] = {}
        for queue, ttl, _, _ in plan:
            if (queue, ttl) not in routes:
                self._declare(ch, self.work(queue), work_queue_args())
                routes[queue, ttl] = self._declare_delay(ch, queue, ttl) if ttl else self.work(queue)
        confirms = self._confirms
        assert confirms is not None
        confirms.done = done
        for i, (queue, ttl, props, body) in enumerate(plan):
            if not done[i]:
                confirms.publish(routes[queue, ttl], props, body, i)
        confirms.wait()

    # --- runner side -------------------------------------------------------------------

    def claim(self, queues: Sequence[str], limit: int, lease: float, timeout: float = 0.0) -> list[Claim]:
        """See :meth:`Broker.claim`. Takes ready messages with ``basic.get``; when there are
        none and ``timeout`` > 0, consumes (prefetch 1 per queue) until one arrives. Claims
        whose lease ran out unrenewed are given back first. After :meth:`subscribe`, a claim
        of the subscribed queue hands out what the standing consumer received instead."""
        if not queues:
            return []
        queues = list(dict.fromkeys(queues))
        fed = queues == [self._feed]
        if limit <= 0 and not fed:
            return []
        for q in queues:
            self._known.setdefault(q)
        for attempt in (1, 2):
            try:
                with self._amqp("claim"):
                    got = self._claim_fed(max(limit, 0), timeout) if fed else self._claim(queues, limit, timeout)
                break
            except BrokerError:
                if attempt == 2:
                    raise
                # The channel or connection broke and its deliveries are back in their
                # queues: open new ones now rather than fail the runner's loop.
        until = time.time() + lease
        claims = []
        for d in got:
            held = _Lease(self, self._epoch, d, until)
            self._held.add(held)
            claims.append(Claim(id=d.task_id, queue=d.queue, body=d.body,
                                attempt=(_int(d.headers.get(Header.ATTEMPTS)) or 0) + 1,
                                signature=_str(d.headers.get(Header.SIGNATURE)),
                                key_id=_str(d.headers.get(Header.KEY_ID)), receipt=held))
        return claims

    def _expire(self, ch: BlockingChannel) -> None:
        now = time.time()
        for held in [h for h in self._held if h.until < now]:
            log.info("task %s: lease expired without renewal; returning it to %s",
                     held.delivery.task_id, self.work(held.delivery.queue))
            self._give_back(ch, held)  # the channel handles this before what the claim does next
            self._end(held)

    def _claim(self, queues: list[str], limit: int, timeout: float) -> list[_Delivery]:
        ch = self._channel("_run")
        self._expire(ch)
        for q in queues:
            self._declare(ch, self.work(q), work_queue_args())
        # With several queues, hold the head of each and take the best (priority, then the
        # enqueue second, then the order given); leftover heads go back to their places.
        out: list[_Delivery] = []
        heads = {q: d for q in queues if (d := self._get(ch, q))}
        while heads and len(out) < limit:
            q = min(heads, key=lambda k: (-heads[k].priority, heads[k].props.timestamp or 0, queues.index(k)))
            out.append(heads.pop(q))
            if len(out) + len(heads) < limit and (d := self._get(ch, q)):
                heads[q] = d
        for d in heads.values():
            ch.basic_reject(d.tag, requeue=True)
        return out if out or timeout <= 0 else self._wait(ch, queues, limit, timeout)

    def _get(self, ch: BlockingChannel, queue: str) -> _Delivery | None:
        for _ in range(100):  # bounded: a backlog of early messages is worked off over several claims
            method, props, body = ch.basic_get(self.work(queue), auto_ack=False)
            if method is None:
                return None
            d = _Delivery(queue, method.delivery_tag, props, body)
            if not self._early(ch, d):
                return d
        return None

    def _early(self, ch: BlockingChannel, d: _Delivery) -> bool:
        """Send a message that arrived before its not-before time on for the rest (a hop)."""
        due = _int(d.headers.get(Header.NOT_BEFORE))
        left = due - time.time_ns() // 1_000_000 if due is not None else 0
        if left <= 0:
            return False
        self._copy(ch, d, self._declare_delay(ch, d.queue, delay_bucket(left)), keep=(Header.ATTEMPTS,
                                                                                     Header.NOT_BEFORE))
        self._confirm_then_ack(ch, d.tag)
        return True

    def _wait(self, ch: BlockingChannel, queues: list[str], limit: int, timeout: float) -> list[_Delivery]:
        arrived: list[_Delivery] = []
        tags: dict[str, str] = {}
        self._set_qos(ch, 1)

        def on_message(_ch: Any, method: Any, props: Any, body: bytes) -> None:
            arrived.append(_Delivery(tags[method.consumer_tag], method.delivery_tag, props, body))

        for q in queues:
            tags[ch.basic_consume(self.work(q), on_message, auto_ack=False)] = q
        out: list[_Delivery] = []
        deadline = time.monotonic() + timeout
        try:
            while not out and (left := deadline - time.monotonic()) > 0:
                self._connection().process_data_events(time_limit=left)
                out += [d for d in arrived if not self._early(ch, d)]
                arrived.clear()
        finally:
            for tag in tags:
                ch.basic_cancel(tag)  # rejects deliveries pika had not yet handed to on_message
        out += [d for d in arrived if not self._early(ch, d)]
        out.sort(key=lambda d: -d.priority)
        for d in out[limit:]:
            ch.basic_reject(d.tag, requeue=True)
        return out[:limit]

    # --- subscribe: a standing consumer ----------------------------------------------------

    def subscribe(self, queues: Sequence[str]) -> bool:
        """For one queue, claims take what a standing consumer on the runner channel received
        (spec, 8.1): no round trip per claim, and a task published or freed by an ack reaches
        the runner at once. Its per-consumer prefetch is kept at the runner's running claims
        from it plus the ``limit`` of the latest claim, so the runner holds no more messages
        than it has slots. Several queues keep ``basic.get``: only that takes the best head
        across queues."""
        queues = list(dict.fromkeys(queues))
        if len(queues) != 1:
            return False
        self._feed = queues[0]
        self._known.setdefault(self._feed)
        return True

    def unsubscribe(self) -> None:
        if self._feed is None:
            return
        self._feed = None
        ch = self._run
        if ch is None or not ch.is_open:
            return
        with contextlib.suppress(BrokerError), self._amqp("unsubscribe"):
            self._feed_stop(ch)
            fed, self._fed = self._fed, []
            for d in fed:
                ch.basic_reject(d.tag, requeue=True)

    def wakeup_fd(self) -> int | None:
        if self._feed_tag is None or self._conn is None or not self._conn.is_open:
            return None
        try:  # pika keeps its socket private; stable across pika 1.x
            return self._conn._impl._transport._sock.fileno()
        except (AttributeError, OSError):
            return None

    def pushed(self) -> int:
        conn = self._conn
        # Deliveries pika read but has not handed to the consumer yet count too: they
        # will not make the socket readable again.
        return len(self._fed) + bool(conn is not None and getattr(conn, "_channels_pending_dispatch", None))

    def _on_fed(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        assert self._feed is not None
        self._fed.append(_Delivery(self._feed, method.delivery_tag, props, body, consumer=method.consumer_tag))

    def _set_qos(self, ch: BlockingChannel, prefetch: int) -> None:
        """The per-consumer prefetch of consumers created from now on."""
        if self._qos != prefetch:
            ch.basic_qos(prefetch_count=prefetch)
            self._qos = prefetch

    def _feed_stop(self, ch: BlockingChannel) -> None:
        """Cancel the standing consumer; what it pushed and pika handed over stays ours."""
        if self._feed_tag is not None:
            self._connection().process_data_events(time_limit=0)
            ch.basic_cancel(self._feed_tag)  # pika requeues deliveries it had not handed over
            self._feed_tag, self._feed_prefetch = None, 0

    def _feed_fit(self, ch: BlockingChannel, taken: list[_Delivery], free: int) -> None:
        """Make the standing consumer able to push exactly ``free`` more tasks (the slots
        left after ``taken``), less those pushed but not yet claimed. The server counts a
        consumer's unacked deliveries against the prefetch it was created with, which cannot
        change: a different room means a new consumer."""
        room = free - len(self._fed)
        tag = self._feed_tag
        if tag is not None:
            mine = sum(1 for h in self._held if h.source == "work" and h.delivery.consumer == tag)
            mine += sum(1 for d in taken if d.consumer == tag) + sum(1 for d in self._fed if d.consumer == tag)
            if self._feed_prefetch - mine == room:
                return
            self._feed_stop(ch)
            room = free - len(self._fed)
        if room > 0 and self._feed is not None:
            self._set_qos(ch, room)
            self._feed_tag = ch.basic_consume(self.work(self._feed), self._on_fed, auto_ack=False)
            self._feed_prefetch = room

    def _claim_fed(self, limit: int, timeout: float) -> list[_Delivery]:
        ch = self._channel("_run")
        self._expire(ch)
        assert self._feed is not None
        self._declare(ch, self.work(self._feed), work_queue_args())
        conn = self._connection()
        conn.process_data_events(time_limit=0)
        out = self._take_fed(ch, limit)
        self._feed_fit(ch, out, limit - len(out))
        if out or limit <= 0 or timeout <= 0:
            return out
        deadline = time.monotonic() + timeout
        while not out and (left := deadline - time.monotonic()) > 0:
            conn.process_data_events(time_limit=left)
            out = self._take_fed(ch, limit)
        if not out:
            # Nothing pushed during the wait. Make "nothing" certain, as drain mode needs: a
            # basic.get answers for the queue, and a round trip after it brings in anything
            # the server pushed before that answer (one channel's frames keep their order).
            got = self._get(ch, self._feed)
            if got is not None:
                out = [got]
            else:
                ch.basic_qos(prefetch_count=self._qos)
                conn.process_data_events(time_limit=0)
                out = self._take_fed(ch, limit)
        return out

    def _take_fed(self, ch: BlockingChannel, limit: int) -> list[_Delivery]:
        batch, self._fed = self._fed, []
        ready = [d for d in batch if not self._early(ch, d)]  # a hop may let more arrive: kept apart
        ready.sort(key=lambda d: -d.priority)  # stable: in delivery order within a priority
        self._fed = ready[limit:] + self._fed
        return ready[:limit]

    def _give_back(self, ch: BlockingChannel, held: _Lease) -> None:
        d = held.delivery
        if held.source == "work":
            ch.basic_reject(d.tag, requeue=True)  # back to its place in the queue
        else:
            self._declare(ch, self.work(d.queue), work_queue_args())
            self._copy(ch, d, self.work(d.queue), keep=(Header.ATTEMPTS,))
            self._confirm_then_ack(ch, d.tag)

    def _end(self, held: _Lease) -> None:
        held.done = True
        self._held.discard(held)

    def _copy(self, ch: BlockingChannel, d: _Delivery, routing_key: str, keep: Sequence[str] = (),
              set_: dict[str, Any] | None = None, expiration: str | None = None) -> None:
        """Publish a copy of ``d``: same body and properties, foreign headers, phlask's
        headers named in ``keep``, and those of ``set_`` (None values skipped)."""
        headers = {k: v for k, v in d.headers.items() if k not in _DROP and not _DEATH.match(k)}
        if sum(map(len, pika.BasicProperties(headers=headers).encode())) > FOREIGN_HEADERS_MAX:
            # With phlask's headers added the copy would not fit one frame: the server would
            # close the connection and redeliver the task, for ever. Keep only the signature.
            log.warning("task %s: its copy leaves out the message's own headers (over %d bytes)", d.task_id,
                        FOREIGN_HEADERS_MAX)
            headers = {k: v for k, v in headers.items()
                       if k in (Header.SIGNATURE, Header.KEY_ID) and len(str(v)) <= 128}
        headers.update({str(k): d.headers[k] for k in keep if k in d.headers})
        headers.update({str(k): v for k, v in (set_ or {}).items() if v is not None})
        p = d.props
        props = pika.BasicProperties(content_type=p.content_type, delivery_mode=2, message_id=p.message_id,
                                     priority=p.priority, timestamp=p.timestamp, headers=headers or None,
                                     expiration=expiration)
        if ch is self._run and self._confirms is not None:
            self._confirms.publish(routing_key, props, d.body)
        else:  # the operators' transactional channel
            ch.basic_publish("", routing_key, d.body, props, mandatory=True)

    def _confirm_then_ack(self, ch: BlockingChannel, *tags: int) -> None:
        """Ack deliveries once the server confirmed their copies: a crash in between leaves a
        task twice (at least once), never lost."""
        assert self._confirms is not None
        try:
            self._confirms.wait()
        except BrokerError:
            # An unroutable copy: a queue was deleted (an idle hold queue expires after an
            # hour); declare afresh next time.
            self._declared.clear()
            self._holds.clear()
            raise
        for tag in tags:
            ch.basic_ack(tag)

    def renew(self, claims: Sequence[Claim], lease: float) -> list[Claim]:
        """Extend the leases; move each message to this runner's hold queue and take it back,
        a fresh delivery that restarts the server's consumer timeout (spec, 8.4). Returns the
        claims whose channel is gone."""
        live = [c for c in claims if self._live(c)]
        ttl = max(1, round(2 * lease * 1000))
        tokens: dict[str, _Lease] = {}
        with contextlib.suppress(BrokerError):  # the channel broke: every claim of it is lost
            with self._amqp("renew"):
                ch = self._channel("_run") if live else None
                if self._feed_tag is not None and any(c.receipt.delivery.consumer == self._feed_tag for c in live):
                    # Acking their deliveries would let the standing consumer push as many
                    # more: stop it; the next claim starts one for the slots then free.
                    self._feed_stop(ch)
                for c in live:
                    token = secrets.token_hex(8)
                    tokens[token] = c.receipt
                    self._copy(ch, c.receipt.delivery, self._hold(ch, c.queue, ttl), keep=(Header.ATTEMPTS,),
                               set_={Header.LEASE: token}, expiration=str(ttl))
                if live:
                    self._confirm_then_ack(ch, *(h.delivery.tag for h in tokens.values()))
                    self._take_copies(ch, tokens, time.time() + lease)

        return [c for c in claims if not self._live(c)]

    def _hold(self, ch: BlockingChannel, queue: str, ttl: int) -> str:
        name, expires = self._holds.get(queue, ("", 0))
        if expires < ttl + HOLD_EXPIRES_EXTRA_MS // 2:  # none yet, or made for a shorter lease
            expires = ttl + HOLD_EXPIRES_EXTRA_MS
            self._hold_seq += 1
            name = f"{self.hold_name(queue)}-{self._hold_seq}"
            self._declare(ch, name, hold_queue_args(self.work(queue), expires))
            self._holds[queue] = (name, expires)
        return name

    def _take_copies(self, ch: BlockingChannel, tokens: dict[str, _Lease], until: float) -> None:
        strays = []
        for name in dict.fromkeys(self._holds[h.delivery.queue][0] for h in tokens.values()):
            while tokens:
                method, props, body = ch.basic_get(name, auto_ack=False)
                if method is None:
                    break
                d = _Delivery("", method.delivery_tag, props, body)
                held = tokens.pop(_str(d.headers.get(Header.LEASE)) or "", None)
                if held is None:
                    strays.append(d)
                    continue
                d.queue = held.delivery.queue
                held.delivery, held.source, held.until = d, "hold", until
        for d in strays:  # not ours: left to expire back to their work queue
            ch.basic_reject(d.tag, requeue=True)
        for held in tokens.values():
            log.warning("task %s: its copy did not come back from the hold queue; the task returns to %s when "
                        "the copy expires", held.delivery.task_id, self.work(held.delivery.queue))
            self._end(held)

    def _live(self, claim: Claim) -> bool:
        held = claim.receipt
        return (isinstance(held, _Lease) and held.owner is self and not held.done and held.epoch == self._epoch
                and self._run is not None and self._run.is_open)

    @contextlib.contextmanager
    def _settling(self, claim: Claim) -> Iterator[tuple[BlockingChannel, _Delivery]]:
        if not self._live(claim):
            if isinstance(claim.receipt, _Lease) and claim.receipt.owner is self:
                self._end(claim.receipt)
            raise LeaseLost(f"task {claim.id!r}: this runner no longer holds its message (lease expired, "
                            "channel or connection lost, or already settled); its outcome was not recorded")
        with self._amqp(f"settling task {claim.id!r}", lost=True):
            yield self._channel("_run"), claim.receipt.delivery
        self._end(claim.receipt)

    def succeed(self, claim: Claim, result: dict[str, Any]) -> None:
        with self._settling(claim) as (ch, d):
            ch._impl.basic_ack(d.tag)  # BlockingChannel.basic_ack would flush the socket each time
            if not self._batch:
                ch._flush_output()  # the ack is on its way when succeed returns
        self._succeeded[claim.queue] += 1

    def settle_and_claim(self, settles: Sequence[Settle], queues: Sequence[str], limit: int, lease: float,
                         timeout: float = 0.0) -> tuple[list[Exception | None], list[Claim]]:
        """As the protocol's default, with the acks of a turn's succeeded tasks written
        together: the claim that follows (or one flush) sends them."""
        self._batch = True
        try:
            errors, _ = super().settle_and_claim(settles, queues, 0, lease)
        finally:
            self._batch = False
        if limit > 0:
            return errors, self.claim(queues, limit, lease, timeout)
        if settles and self._run is not None and self._run.is_open:
            with self._amqp("settling"):
                self._run._flush_output()
        return errors, []

    def retry(self, claim: Claim, result: dict[str, Any], delay: float) -> None:
        ms = max(0, round(delay * 1000))
        with self._settling(claim) as (ch, d):
            self._declare(ch, self.work(d.queue), work_queue_args())
            target = self._declare_delay(ch, d.queue, delay_bucket(ms)) if ms else self.work(d.queue)
            due = time.time_ns() // 1_000_000 + ms if ms else None
            self._copy(ch, d, target, set_={Header.ATTEMPTS: claim.attempt, Header.NOT_BEFORE: due})
            self._confirm_then_ack(ch, d.tag)

    def dead(self, claim: Claim, reason: str, result: dict[str, Any]) -> None:
        with self._settling(claim) as (ch, d):
            self._declare(ch, self.dead_name(d.queue), dead_queue_args())
            self._copy(ch, d, self.dead_name(d.queue), set_={
                Header.ATTEMPTS: claim.attempt, Header.DEAD_REASON: str(reason),
                Header.DEAD_AT: time.time_ns() // 1_000_000, Header.RESULT: _result_header(result)})
            self._confirm_then_ack(ch, d.tag)

    def release(self, claim: Claim) -> None:
        with self._settling(claim) as (ch, _):
            self._give_back(ch, claim.receipt)
            ch.basic_qos(prefetch_count=self._qos or 1)  # a round trip: the requeue is done when release returns

    # --- operators ---------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Per known queue: ``queued`` (ready messages, plus those in the delay queues this
        object used), ``running`` (claims this object holds), ``dead``, and ``succeeded``
        (settled by this object) when not zero. Over AMQP, RabbitMQ neither counts unacked
        messages nor remembers acked ones (spec, section 10)."""
        running = collections.Counter(h.delivery.queue for h in self._held)
        out: dict[str, dict[str, int]] = {}
        with self._amqp("counts"):
            for q in dict.fromkeys([*self._known, *running, *self._succeeded]):
                ready = self._count(self.work(q))
                if ready is None and not running[q] and not self._succeeded[q]:
                    continue
                delayed = 0
                for name in list(self._delays[q]):
                    n = self._count(name)
                    if n is None:
                        self._delays[q].discard(name)
                    delayed += n or 0
                delayed += sum(1 for d in self._fed if d.queue == q)  # pushed to us, not yet claimed
                out[q] = {"queued": (ready or 0) + delayed, "running": running[q],
                          "dead": self._count(self.dead_name(q)) or 0}
                if self._succeeded[q]:
                    out[q]["succeeded"] = self._succeeded[q]
        return out

    def inspect(self, task_id: str) -> TaskInfo:
        raise Unsupported("RabbitMQ cannot look a task up by id (it keeps no index of messages and forgets each "
                          "one once acknowledged): run the runner with --results URL and give phlask inspect the "
                          "same --results")

    def _dead(self, queue: str | None) -> Iterator[tuple[BlockingChannel, list[_Delivery], set[int]]]:
        """For each queue (one, or all known): its dead messages in order (at most
        browse_limit), held unacked on the transactional operator channel. The caller acks
        those it takes and adds their tags to the set; the rest go back to their places."""
        if queue is not None:
            self._known.setdefault(queue)
        for q in [queue] if queue is not None else list(self._known):
            ch = self._channel("_ops")
            found: list[_Delivery] = []
            if self._count(self.dead_name(q)) is not None:
                for _ in range(self.browse_limit):
                    method, props, body = ch.basic_get(self.dead_name(q), auto_ack=False)
                    if method is None:
                        break
                    found.append(_Delivery(q, method.delivery_tag, props, body))
            taken: set[int] = set()
            yield ch, found, taken
            for d in found:
                if d.tag not in taken:
                    ch.basic_reject(d.tag, requeue=True)
            ch.tx_commit()

    def dead_list(self, queue: str | None = None, limit: int = 100) -> list[TaskInfo]:
        """Dead tasks, most recent first, read without removing them."""
        items: list[tuple[int, int, TaskInfo]] = []
        with self._amqp("dead list"):
            for _, found, _ in self._dead(queue):
                items += [(_int(d.headers.get(Header.DEAD_AT)) or 0, pos, _info(d)) for pos, d in enumerate(found)]
        items.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return [info for _, _, info in items[:limit]]

    def dead_retry(self, task_ids: Sequence[str] | None = None) -> int:
        """Publish the chosen dead tasks (all when ``task_ids`` is None) to their work queues
        without phlask's headers, so their attempts start afresh, in one transaction per queue."""
        wanted = None if task_ids is None else set(task_ids)
        moved = 0
        with self._amqp("dead retry"):
            for ch, found, taken in self._dead(None):
                for d in found:
                    if wanted is None or d.task_id in wanted:
                        self._declare(ch, self.work(d.queue), work_queue_args())
                        self._copy(ch, d, self.work(d.queue))
                        ch.basic_ack(d.tag)
                        taken.add(d.tag)
                moved += len(taken)
        return moved

    def dead_purge(self, queue: str | None = None) -> int:
        purged = 0
        with self._amqp("dead purge"):
            for q in [queue] if queue is not None else list(self._known):
                if self._count(self.dead_name(q)) is not None:
                    purged += self._channel("_ops").queue_purge(self.dead_name(q)).method.message_count
        return purged


def _info(d: _Delivery) -> TaskInfo:
    h = d.headers
    result = None
    with contextlib.suppress(TypeError, ValueError):
        result = json.loads(_str(h.get(Header.RESULT)) or "null")
    dead_at = _int(h.get(Header.DEAD_AT))
    return TaskInfo(id=d.task_id, queue=d.queue, state="dead", attempts=_int(h.get(Header.ATTEMPTS)) or 0,
                    body=d.body, priority=d.priority, enqueued_at=d.props.timestamp,
                    updated_at=dead_at / 1000 if dead_at else None, reason=_str(h.get(Header.DEAD_REASON)),
                    result=result if isinstance(result, dict) else None,
                    signature=_str(h.get(Header.SIGNATURE)), key_id=_str(h.get(Header.KEY_ID)))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return f"{exc.reply_code} {exc.reply_text}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)


__all__ = ["RabbitBroker", "Header", "delay_bucket", "work_queue_args", "dead_queue_args", "delay_queue_args",
           "hold_queue_args", "MAX_PRIORITY", "MAX_DELAY_MS", "CONTENT_TYPE", "DEFAULT_PREFIX"]
