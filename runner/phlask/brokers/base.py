"""The broker protocol: the one small contract every backend implements.

A broker stores task envelopes as opaque bytes (the exact JSON text the producer made,
with the signature beside it) plus the few fields it needs to schedule them. It never
interprets the envelope beyond that: decoding, verification and supervision happen in
the runner. Data flows one way: ``claim`` -> (decode, verify, spawn, reap) -> settle,
where settling is exactly one of ``succeed``, ``retry``, ``dead`` or ``release``. A runner
does one turn of its loop with ``settle_and_claim`` (the settles of the tasks that
finished, then a claim for the free slots), which a backend may do in one transaction.

Delivery is at least once. A claim holds a *lease*; the runner renews it while the task
runs. A runner that dies stops renewing, the lease expires and another runner claims the
task again, with the same attempt number (an attempt interrupted by a crash does not
count against ``max_attempts``). Settling with a stale claim (its lease was lost and the
task claimed elsewhere) raises :class:`LeaseLost` and changes nothing.

Each backend lives in its own module (sqlite.py, mongodb.py, rabbitmq.py) and passes the
shared contract suite in tests/brokers/.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..envelope import decode
from ..errors import BrokerError, DuplicateTask
from ..producer import Task, parse_ts
from ..signing import sign


@dataclass(slots=True)
class Settle:
    """One way to settle a claim, for :meth:`Broker.settle_and_claim`. ``how`` is
    ``succeed``, ``retry`` (after ``delay`` seconds), ``dead`` (with ``reason``) or
    ``release``; ``result`` is the attempt's record (None for ``release``)."""

    claim: Claim
    how: str
    result: dict[str, Any] | None = None
    reason: str | None = None
    delay: float = 0.0


class LeaseLost(BrokerError):
    """The claim's lease expired and the task was claimed again; this runner must not settle it."""

    code = "lease_lost"


@dataclass(frozen=True, slots=True)
class Message:
    """A task to enqueue: the envelope bytes, the signature beside them, and scheduling fields.

    Build one with :meth:`from_body`, which validates the envelope and reads the fields.
    """

    id: str
    queue: str
    body: bytes
    priority: int = 0
    not_before: float | None = None  # Unix seconds
    expires_at: float | None = None  # Unix seconds
    signature: str | None = None
    key_id: str | None = None

    @classmethod
    def from_body(cls, body: bytes, signature: str | None = None, key_id: str | None = None) -> Message:
        """Validate ``body`` (raises EnvelopeError) and read its scheduling fields."""
        env = decode(body)
        return cls(
            id=env.id,
            queue=env.queue,
            body=bytes(body),
            priority=int(env.priority),
            not_before=parse_ts(env.not_before).timestamp() if env.not_before else None,
            expires_at=parse_ts(env.expires_at).timestamp() if env.expires_at else None,
            signature=signature,
            key_id=key_id,
        )


@dataclass(slots=True)
class Claim:
    """A task this runner holds under a lease.

    ``id`` and ``queue`` come from the backend's own record, so a claim exists even for a
    body that is not a valid envelope (it is then settled dead with reason ``invalid``).
    ``attempt`` is the 1-based number of the attempt about to run. ``receipt`` is the
    backend's handle (lease token, delivery tag); only the backend reads it.
    """

    id: str
    queue: str
    body: bytes
    attempt: int
    signature: str | None = None
    key_id: str | None = None
    receipt: Any = None
    claimed_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class TaskInfo:
    """What a backend knows about one task (``phlask inspect``)."""

    id: str
    queue: str
    state: str
    attempts: int  # attempts settled so far
    body: bytes
    priority: int = 0
    run_at: float | None = None  # when it becomes (or became) ready, Unix seconds
    enqueued_at: float | None = None
    updated_at: float | None = None
    reason: str | None = None  # dead reason when state is dead
    result: dict[str, Any] | None = None  # the last attempt's result (spec/result.schema.json)
    signature: str | None = None
    key_id: str | None = None
    lease_until: float | None = None

    def to_json(self) -> dict[str, Any]:
        body = self.body.decode("utf-8", "replace")
        return {"id": self.id, "queue": self.queue, "state": self.state, "attempts": self.attempts,
                "priority": self.priority, "run_at": self.run_at, "enqueued_at": self.enqueued_at,
                "updated_at": self.updated_at, "reason": self.reason, "result": self.result,
                "key_id": self.key_id, "signed": bool(self.signature), "lease_until": self.lease_until,
                "envelope": body}


class Broker(abc.ABC):
    """Base of every backend. Subclasses implement the abstract methods; producers use
    :meth:`push` and :meth:`push_many`, which build, validate, sign and enqueue."""

    #: URL scheme(s) this backend serves, e.g. ("sqlite",)
    schemes: tuple[str, ...] = ()
    #: False where the backend cannot look a task up by id (AMQP without a result store)
    supports_inspect: bool = True
    #: False where the server keeps no index of ids, so a reused id is not refused (AMQP)
    supports_unique_ids: bool = True

    def __init__(self, url: str, *, signing_key: tuple[str, str | bytes] | None = None):
        self.url = url
        self._signing_key = None
        if signing_key:
            kid, secret = signing_key
            self._signing_key = (kid, secret.encode() if isinstance(secret, str) else secret)

    # --- producer side -------------------------------------------------------------

    def message(self, task: Task | bytes | str) -> Message:
        """Build, validate and (if this broker has a signing key) sign one task."""
        body = task.encode() if isinstance(task, Task) else (task.encode() if isinstance(task, str) else bytes(task))
        sig = kid = None
        if self._signing_key:
            kid, key = self._signing_key
            sig = sign(body, key)
        return Message.from_body(body, sig, kid)

    def push(self, task: Task | bytes | str) -> str:
        """Enqueue one task (a :class:`Task` or ready envelope JSON). Returns its id.

        Raises EnvelopeError (invalid), DuplicateTask (id taken), BrokerError (backend)."""
        return self.enqueue([self.message(task)])[0]

    def push_many(self, tasks: Iterable[Task | bytes | str]) -> list[str]:
        """Enqueue many tasks in one round trip where the backend allows. Returns their ids.

        Every task is validated, and ids checked for repeats within the batch, before any is
        enqueued."""
        messages = [self.message(t) for t in tasks]
        seen: set[str] = set()
        for m in messages:
            if m.id in seen:
                raise DuplicateTask(m.id)
            seen.add(m.id)
        return self.enqueue(messages)

    # --- the protocol ----------------------------------------------------------------

    @abc.abstractmethod
    def enqueue(self, messages: Sequence[Message]) -> list[str]:
        """Store messages as queued (ready at ``not_before``, or now). Returns their ids.

        Raises DuplicateTask when an id already exists (nothing of that batch from that id on
        is stored for backends with transactions; see each backend's doc)."""

    #: True for a backend whose ``claim`` blocks up to ``timeout`` until work arrives (the
    #: server pushes it), so that an idle runner need not also sleep between polls.
    waits_in_claim: bool = False

    @abc.abstractmethod
    def claim(self, queues: Sequence[str], limit: int, lease: float, timeout: float = 0.0) -> list[Claim]:
        """Atomically take up to ``limit`` ready tasks from ``queues`` under a lease of
        ``lease`` seconds: higher priority first, then earlier ready time, then enqueue order.

        Ready means queued with ``run_at <= now``, or running with an expired lease (its
        runner died). Backends that the server can wake (AMQP) may block up to ``timeout``
        seconds for the first task; polling backends return at once."""

    def subscribe(self, queues: Sequence[str]) -> bool:
        """Ask the server to push the tasks of ``queues`` ahead of claims (a runner does this
        once, at start). Where the backend can (RabbitMQ, for one queue), ``claim`` then hands
        out only what the server has already pushed (at most ``limit``; it blocks up to
        ``timeout`` only when nothing has arrived), the server never pushes more than the
        subscriber's running claims plus the ``limit`` of its latest claim, and
        :meth:`wakeup_fd` tells the runner when to claim again. Returns False, changing
        nothing, where claims stay polls."""
        return False

    def unsubscribe(self) -> None:
        """End :meth:`subscribe`: no more pushes; pushed tasks not yet claimed go back."""

    def wakeup_fd(self) -> int | None:
        """While subscribed: a descriptor that becomes readable when the server pushes
        something, for the runner to poll beside its tasks. None otherwise."""
        return None

    def pushed(self) -> int:
        """While subscribed: tasks already pushed and received, ready for :meth:`claim`
        (the runner claims them before it sleeps on :meth:`wakeup_fd`)."""
        return 0

    @abc.abstractmethod
    def renew(self, claims: Sequence[Claim], lease: float) -> list[Claim]:
        """Extend the leases of running claims to now + ``lease``. Returns the claims whose
        lease was lost (already reclaimed elsewhere); the runner should stop those tasks."""

    @abc.abstractmethod
    def succeed(self, claim: Claim, result: dict[str, Any]) -> None:
        """Settle as succeeded, recording ``result``. Raises LeaseLost on a stale claim."""

    @abc.abstractmethod
    def retry(self, claim: Claim, result: dict[str, Any], delay: float) -> None:
        """Count the attempt, record ``result`` and queue the task again, ready after ``delay`` s."""

    @abc.abstractmethod
    def dead(self, claim: Claim, reason: str, result: dict[str, Any]) -> None:
        """Count the attempt, record ``result`` and move the task to dead with ``reason``."""

    @abc.abstractmethod
    def release(self, claim: Claim) -> None:
        """Return the task to the queue, ready now, without counting an attempt (shutdown)."""

    def settle(self, s: Settle) -> None:
        """Apply one :class:`Settle` (dispatches to succeed, retry, dead or release)."""
        if s.how == "succeed":
            self.succeed(s.claim, s.result)  # type: ignore[arg-type]
        elif s.how == "retry":
            self.retry(s.claim, s.result, s.delay)  # type: ignore[arg-type]
        elif s.how == "dead":
            self.dead(s.claim, s.reason or "", s.result)  # type: ignore[arg-type]
        elif s.how == "release":
            self.release(s.claim)
        else:
            raise ValueError(f"unknown settle {s.how!r}")

    def settle_and_claim(self, settles: Sequence[Settle], queues: Sequence[str], limit: int, lease: float,
                         timeout: float = 0.0) -> tuple[list[Exception | None], list[Claim]]:
        """Settle each of ``settles`` in order, then claim up to ``limit`` tasks (none when
        ``limit`` is 0): what a runner does once per turn of its loop. Returns one entry per
        settle (None, or the exception that settle raised: LeaseLost, BrokerError) and the
        claims. Raises only when the claim does.

        This default makes the separate calls; a backend that can do the whole turn in one
        round trip or transaction (SQLite) overrides it, with the same result."""
        errors: list[Exception | None] = []
        for s in settles:
            try:
                self.settle(s)
            except Exception as exc:  # reported per settle; the runner decides
                errors.append(exc)
            else:
                errors.append(None)
        return errors, (self.claim(queues, limit, lease, timeout) if limit > 0 else [])

    @abc.abstractmethod
    def counts(self) -> dict[str, dict[str, int]]:
        """Number of tasks per queue and state: ``{"default": {"queued": 3, "running": 1, ...}}``."""

    @abc.abstractmethod
    def inspect(self, task_id: str) -> TaskInfo:
        """Everything known about one task. Raises TaskNotFound, or Unsupported."""

    @abc.abstractmethod
    def dead_list(self, queue: str | None = None, limit: int = 100) -> list[TaskInfo]:
        """Dead tasks, most recent first."""

    @abc.abstractmethod
    def dead_retry(self, task_ids: Sequence[str] | None = None) -> int:
        """Queue dead tasks again (all when ``task_ids`` is None), with a fresh attempt count.
        Returns how many were moved."""

    @abc.abstractmethod
    def dead_purge(self, queue: str | None = None) -> int:
        """Delete dead tasks. Returns how many were deleted."""

    def close(self) -> None:
        """Release connections. Idempotent."""

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
