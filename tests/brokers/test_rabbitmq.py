"""What only the RabbitMQ backend promises (spec/backends/rabbitmq.md): the wire layout other
languages follow, delays without head-of-line blocking, no greedy prefetch, long tasks past
the server's consumer timeout, and faults (lost connections, a restarted or absent server,
SIGKILLed runners, poison messages). Every test runs against the real server of
``bash scripts/services start rabbitmq``; timing bounds are generous (numbers: bench/).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest

from phlask import Task
from phlask.brokers import connect
from phlask.brokers import rabbitmq as rmq
from phlask.brokers.base import LeaseLost, Message
from phlask.brokers.rabbitmq import Header, RabbitBroker, delay_bucket
from phlask.errors import BrokerUnavailable, ConfigError, DuplicateTask, Unsupported
from phlask.runner import Runner
from phlask.signing import sign
from phlask.wire import DeadReason

from . import backend_rabbitmq as backend

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "spec" / "backends" / "rabbitmq.md"
TASKS = ROOT / "tests" / "tasks"
LONG = 60.0


@pytest.fixture(scope="module", autouse=True)
def server() -> None:
    reason = backend.available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"rabbitmq unavailable: {reason} (CI=true: every backend must run)", pytrace=False)
        pytest.skip(f"rabbitmq unavailable: {reason}")


@pytest.fixture
def prefix() -> str:
    return f"phlask.test.r{uuid.uuid4().hex[:12]}-"


@pytest.fixture
def opened(prefix):
    """``open_broker(url=None, **kw)``: brokers on this test's prefix; every queue of that
    prefix any of them declared, and the usual ones, are deleted afterwards (never a queue
    outside the prefix: the server may be shared)."""
    brokers: list[RabbitBroker] = []
    extra: set[str] = set()

    def open_broker(url: str | None = None, **kw) -> RabbitBroker:
        b = RabbitBroker(url or backend.url_with(prefix=prefix, connect_timeout=5), **kw)
        brokers.append(b)
        return b

    open_broker.extra = extra  # type: ignore[attr-defined]
    yield open_broker
    names = set(extra)
    for b in brokers:
        names |= b.declared_names
        names |= {b.work(q) for q in ("default", "a", "b")} | {b.dead_name(q) for q in ("default", "a", "b")}
        b.close()
    backend.delete_queues({n for n in names if n.startswith(prefix)})


@pytest.fixture
def broker(opened) -> RabbitBroker:
    return opened()


def task(**fields) -> Task:
    return Task(lang="shell", file="x.sh", **fields)


def nonzero(counts):
    return {q: {s: n for s, n in by.items() if n} for q, by in counts.items() if any(by.values())}


@contextlib.contextmanager
def channel():
    conn = pika.BlockingConnection(backend._params())
    try:
        yield conn.channel()
    finally:
        conn.close()


def peek(name: str) -> tuple[pika.BasicProperties, bytes] | None:
    """The first message of a queue, put back afterwards."""
    with channel() as ch:
        method, props, body = ch.basic_get(name, auto_ack=False)
        if method is None:
            return None
        ch.basic_reject(method.delivery_tag, requeue=True)
        return props, body


def ready(name: str) -> int | None:
    with channel() as ch:
        try:
            return ch.queue_declare(name, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return None


# --- the wire layout (what SDKs in other languages follow) --------------------------------


def spec_block() -> dict:
    blocks = re.findall(r"^```json\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    found = [json.loads(b) for b in blocks if '"phlask:rabbitmq"' in b]
    assert len(found) == 1, f"{DOC} must hold exactly one ```json block with \"phlask:rabbitmq\""
    return found[0]


def test_the_spec_block_matches_the_implementation(opened):
    spec = spec_block()
    b = opened(backend.URL)  # the default prefix; declares nothing
    # Names
    assert spec["exchange"] == "" and b.prefix == rmq.DEFAULT_PREFIX == "phlask."
    assert b.work("reports.x") == spec["names"]["work"].format(queue="reports.x")
    assert b.dead_name("q") == spec["names"]["dead"].format(queue="q")
    assert b.delay_name("q", 1200) == spec["names"]["delay"].format(queue="q", ttl=1200)
    assert b.hold_name("q").startswith(spec["names"]["hold"].format(queue="q", runner=""))
    # Arguments
    args = spec["arguments"]
    assert rmq.work_queue_args() == args["work"]
    assert rmq.dead_queue_args() == args["dead"]
    want_delay = {**args["delay"], "x-message-ttl": 1200, "x-dead-letter-routing-key": "phlask.q",
                  "x-expires": 1200 + int(args["delay"]["x-expires"].split("+")[1])}
    assert rmq.delay_queue_args("phlask.q", 1200) == want_delay
    hold = rmq.hold_queue_args("phlask.q", 5000)
    assert hold == {**args["hold"], "x-dead-letter-routing-key": "phlask.q", "x-expires": 5000}
    assert rmq.HOLD_EXPIRES_EXTRA_MS == int(args["hold"]["x-expires"].split("+")[1])
    # Properties, headers, limits
    assert (rmq.CONTENT_TYPE, 2) == (spec["content_type"], spec["delivery_mode"])
    assert {h.name.lower(): h.value for h in Header} == spec["headers"]
    assert rmq.MAX_DELAY_MS == spec["max_delay_ms"]
    assert rmq.RESULT_HEADER_MAX == spec["result_header_max_bytes"]
    assert [[d, delay_bucket(d)] for d, _ in spec["delay_examples"]] == spec["delay_examples"]


def test_buckets_are_never_longer_than_the_delay_and_leave_at_most_a_tenth():
    for d in [*range(1, 2000), 12345, 99999, 100001, 3_599_999, 86_399_999]:
        b = delay_bucket(d)
        assert 0 < b <= d and d - b < max(1, d / 10 + 1), d


def test_a_pushed_task_is_a_persistent_confirmed_message_as_the_spec_says(opened, prefix):
    # Given a producer with a signing key
    producer = opened(signing_key=("k.1", "secret"))
    body = task(id="wire-1", priority=7, queue="a").encode()
    # When it pushes a task
    producer.push(body)
    # Then the work queue holds the exact bytes with the properties and headers of the spec
    props, got = peek(f"{prefix}a")
    assert got == body
    assert (props.delivery_mode, props.message_id, props.content_type, props.priority) == \
           (2, "wire-1", "application/json", 7)
    assert abs(props.timestamp - time.time()) < 60
    assert props.headers == {"x-phlask-signature": sign(body, b"secret"), "x-phlask-key-id": "k.1"}
    assert props.expiration is None
    # And the queue has exactly the spec's arguments (a different declaration is refused)
    with channel() as ch:
        ch.queue_declare(f"{prefix}a", durable=True, arguments=rmq.work_queue_args())
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            ch.queue_declare(f"{prefix}a", durable=True, arguments={"x-max-priority": 9})
        assert refused.value.reply_code == 406


def test_a_delayed_task_waits_in_its_bucket_with_its_due_time(broker, prefix):
    # Given a task due in 30 s
    body = task(id="later", delay=30).encode()
    due = round(Message.from_body(body).not_before * 1000)
    # When it is pushed
    broker.push(body)
    # Then it is not in the work queue but in the bucket of what was left of 30 s
    assert ready(f"{prefix}default") == 0
    buckets = [n for n in broker.declared_names if ":delay:" in n]
    assert len(buckets) == 1
    ttl = int(buckets[0].rsplit(":", 1)[1])
    assert 29_000 <= ttl <= 30_000 and ttl == delay_bucket(ttl)
    props, _ = peek(buckets[0])
    assert props.headers["x-phlask-not-before"] == due
    with channel() as ch:  # declared with exactly the spec's arguments
        ch.queue_declare(buckets[0], durable=True, arguments=rmq.delay_queue_args(f"{prefix}default", ttl))
    assert broker.claim(["default"], 10, LONG) == []
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}


def test_a_producer_in_another_language_following_the_spec_is_understood(opened, prefix):
    # Given a message published the way the spec tells a Node or PHP producer, due in 0.8 s
    runner = opened()
    body = task(id="foreign-1", priority=3).encode()
    due = int(time.time() * 1000) + 800
    ttl = delay_bucket(due - int(time.time() * 1000))
    work, delay = f"{prefix}default", f"{prefix}default:delay:{ttl}"
    opened.extra.update({work, delay})
    with channel() as ch:
        ch.confirm_delivery()
        ch.queue_declare(work, durable=True, arguments={"x-queue-type": "classic", "x-max-priority": 10})
        ch.queue_declare(delay, durable=True, arguments={
            "x-queue-type": "classic", "x-message-ttl": ttl, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": work, "x-expires": ttl + 600000})
        ch.basic_publish("", delay, body, pika.BasicProperties(
            delivery_mode=2, message_id="foreign-1", content_type="application/json", priority=3,
            timestamp=int(time.time()), headers={"x-phlask-signature": "ab" * 32, "x-phlask-key-id": "k",
                                                 "x-phlask-not-before": due}), mandatory=True)
    # When a runner claims before and after the due time
    early = runner.claim(["default"], 10, LONG)
    time.sleep(1.3)
    (c,) = runner.claim(["default"], 10, LONG)
    # Then it runs only after it, with the signature beside the exact bytes
    assert early == []
    assert (c.id, c.attempt, c.body, c.signature, c.key_id) == ("foreign-1", 1, body, "ab" * 32, "k")


# --- delays and retries ------------------------------------------------------------------


def test_a_short_delay_is_not_held_up_by_a_longer_one_published_before_it(broker):
    # Given a task due in 20 s, then one due in 0.5 s
    broker.push(task(id="slow", delay=20))
    broker.push(task(id="quick", delay=0.5))
    # When 1.5 s have passed
    time.sleep(1.5)
    # Then the quick one is ready and the slow one still waits
    assert [c.id for c in broker.claim(["default"], 10, LONG)] == ["quick"]
    assert nonzero(broker.counts()) == {"default": {"queued": 1, "running": 1}}


def test_a_message_that_reaches_the_work_queue_early_takes_another_hop(broker, prefix):
    # Given a message in the work queue whose due time is 1.2 s away (a first hop's remainder)
    due = int(time.time() * 1000) + 1200
    backend.publish_raw(broker, "default", task(id="hop").encode(), pika.BasicProperties(
        message_id="hop", delivery_mode=2, headers={"x-phlask-not-before": due}))
    # When a runner claims at once, and again after the due time
    first = broker.claim(["default"], 10, LONG)
    moved_to = [n for n in broker.declared_names if ":delay:" in n]
    time.sleep(1.6)
    second = broker.claim(["default"], 10, LONG)
    # Then it was sent through a delay queue and is claimed only when due
    assert first == [] and len(moved_to) == 1
    assert [c.id for c in second] == ["hop"] and time.time() * 1000 >= due


def test_retry_carries_the_attempt_count_signature_and_priority(opened, prefix):
    # Given a signed task of priority 6 claimed once
    b = opened(signing_key=("k.1", "s3cret"))
    body = task(id="again", priority=6, max_attempts=3).encode()
    b.push(body)
    (c,) = b.claim(["default"], 1, LONG)
    # When its attempt is retried after 0.3 s
    b.retry(c, {"exit_code": 1}, 0.3)
    time.sleep(0.8)
    (c2,) = b.claim(["default"], 1, LONG)
    # Then the next claim is attempt 2 of the same bytes, signature and priority
    assert (c2.id, c2.attempt, c2.body, c2.signature, c2.key_id) == ("again", 2, body, sign(body, b"s3cret"), "k.1")
    b.retry(c2, {"exit_code": 1}, 0)
    props, _ = peek(f"{prefix}default")
    assert props.priority == 6 and props.headers["x-phlask-attempts"] == 2
    assert "x-death" not in props.headers and "x-phlask-not-before" not in props.headers


def test_dead_tasks_carry_reason_attempts_and_result_and_listing_keeps_them(broker, prefix):
    # Given a task that died on its first attempt with a long output
    broker.push(task(id="gone", priority=2))
    (c,) = broker.claim(["default"], 1, LONG)
    result = {"id": "gone", "attempt": 1, "state": "dead", "reason": "failed", "error": "exited with status 3",
              "stderr_tail": "x" * 70_000, "result": {"big": "y" * 10_000}}
    broker.dead(c, DeadReason.FAILED, result)
    # When the dead queue is listed twice
    first, second = broker.dead_list(), broker.dead_list()
    # Then nothing was consumed, and the message holds the spec's dead headers
    assert [i.id for i in first] == [i.id for i in second] == ["gone"]
    assert ready(f"{prefix}default:dead") == 1
    info = first[0]
    assert (info.state, info.reason, info.attempts, info.priority) == ("dead", "failed", 1, 2)
    assert info.result["error"] == "exited with status 3" and len(info.result["stderr_tail"]) == 2048
    assert "result" not in info.result
    props, _ = peek(f"{prefix}default:dead")
    assert props.headers["x-phlask-dead-reason"] == "failed"
    assert abs(props.headers["x-phlask-dead-at"] / 1000 - time.time()) < 60
    assert len(props.headers["x-phlask-result"].encode()) <= rmq.RESULT_HEADER_MAX


def test_a_crash_redelivery_keeps_the_attempt_number(opened):
    # Given a task on its second attempt, held by a runner that then dies without settling
    first = opened()
    first.push(task(id="crashy", max_attempts=3))
    (c,) = first.claim(["default"], 1, LONG)
    first.retry(c, {"exit_code": 1}, 0)
    (c,) = first.claim(["default"], 1, LONG)
    assert c.attempt == 2
    first.close()
    # When another runner claims
    (again,) = opened().claim(["default"], 1, LONG, timeout=5)
    # Then it runs the same attempt again
    assert (again.id, again.attempt) == ("crashy", 2)


# --- no greedy prefetch --------------------------------------------------------------------


def test_a_runner_holds_only_the_messages_it_claimed(opened):
    # Given runner A busy with one long task and four more queued
    a, b, producer = opened(), opened(), opened()
    producer.push_many([task(id=f"t{i}") for i in range(5)])
    (held,) = a.claim(["default"], 1, LONG)
    # When runner B claims
    others = b.claim(["default"], 10, LONG)
    # Then B gets all four: A keeps nothing in reserve behind its long task
    assert held.id == "t0" and [c.id for c in others] == ["t1", "t2", "t3", "t4"]


def test_an_idle_claim_is_woken_by_a_publish_and_takes_only_its_limit(opened):
    # Given runner A waiting for one task, with nothing queued
    a, b, producer = opened(), opened(), opened()
    got: list = []
    waiter = threading.Thread(target=lambda: got.append((a.claim(["default"], 1, LONG, timeout=10), time.monotonic())))
    waiter.start()
    time.sleep(0.5)
    # When three tasks are published at once
    sent = time.monotonic()
    producer.push_many([task(id=f"w{i}") for i in range(3)])
    waiter.join(15)
    # Then A wakes at once with exactly one, and the other two are there for B
    (claims, woke), = got
    assert len(claims) == 1 and woke - sent < 5
    assert len(b.claim(["default"], 10, LONG)) == 2


def test_an_idle_claim_returns_nothing_when_its_wait_is_over(broker):
    t0 = time.monotonic()
    assert broker.claim(["default", "a"], 5, LONG, timeout=0.5) == []
    assert 0.4 <= time.monotonic() - t0 < 5


# --- subscribed: the server pushes to a runner of one queue ---------------------------------


def settle_down(broker: RabbitBroker, seconds: float = 0.5) -> None:
    """Let the server push whatever it will push to ``broker`` (read it in)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        broker._connection().process_data_events(time_limit=0.05)


def test_only_one_queue_can_be_subscribed(broker):
    assert broker.subscribe(["a", "b"]) is False and broker.wakeup_fd() is None
    assert broker.subscribe(["default"]) is True


def test_a_subscribed_runner_holds_only_its_claims_plus_its_free_slots(opened):
    # Given runner A subscribed with one free slot, and five tasks
    a, b = opened(), opened()
    a.subscribe(["default"])
    a.push_many([task(id=f"t{i}") for i in range(5)])
    (held,) = a.claim(["default"], 1, LONG, timeout=5)
    # When the server has had time to push more, and runner B claims
    settle_down(a)
    others = b.claim(["default"], 10, LONG)
    # Then A got the first and holds nothing more: B gets the other four
    assert held.id == "t0" and [c.id for c in others] == ["t1", "t2", "t3", "t4"]
    assert a.pushed() == 0


def test_a_settle_frees_a_slot_and_the_server_pushes_the_next_task_at_once(opened):
    # Given a subscribed runner with one slot, running one task, and one more published
    a, producer = opened(), opened()
    a.subscribe(["default"])
    producer.push(task(id="first"))
    (first,) = a.claim(["default"], 1, LONG, timeout=5)
    producer.push(task(id="second"))
    settle_down(a, 0.3)
    assert a.pushed() == 0  # its slot is busy: nothing is pushed to it
    # When the first settles
    a.succeed(first, {"exit_code": 0})
    # Then the server pushes the second: the socket wakes the runner, and a claim that
    # does not wait finds it
    fd = a.wakeup_fd()
    assert fd is not None and select.select([fd], [], [], 5)[0] == [fd]
    assert [c.id for c in a.claim(["default"], 1, LONG)] == ["second"]


def test_renewing_does_not_let_the_server_push_more_than_the_free_slots(opened):
    # Given runner A subscribed, running two of five tasks and no free slot
    a, b = opened(), opened()
    a.subscribe(["default"])
    a.push_many([task(id=f"t{i}") for i in range(5)])
    running = a.claim(["default"], 2, LONG, timeout=5)
    while len(running) < 2:
        running += a.claim(["default"], 2 - len(running), LONG, timeout=5)
    # When it renews them (their deliveries are acked and taken back from the hold queue)
    assert a.renew(running, LONG) == []
    settle_down(a)
    # Then A still holds only those two: B gets the other three
    assert a.pushed() == 0
    assert sorted(c.id for c in b.claim(["default"], 10, LONG)) == ["t2", "t3", "t4"]


def test_unsubscribing_gives_back_what_was_pushed_but_not_claimed(opened):
    a, b = opened(), opened()
    a.subscribe(["default"])
    a.push_many([task(id=f"t{i}") for i in range(3)])
    got = a.claim(["default"], 3, LONG, timeout=5)
    settle_down(a)
    got += a.claim(["default"], 3 - len(got), LONG)
    assert len(got) == 3 and a.pushed() == 0
    a.push_many([task(id=f"u{i}") for i in range(2)])
    for c in got:
        a.succeed(c, {"exit_code": 0})
    settle_down(a)
    assert a.pushed() == 2
    a.unsubscribe()
    assert sorted(c.id for c in b.claim(["default"], 10, LONG)) == ["u0", "u1"]


def test_a_subscribed_claim_that_waits_answers_for_the_whole_queue(broker):
    # An idle subscribed claim that finds nothing must mean nothing is ready (drain mode
    # exits on it), and one that finds something takes it
    broker.subscribe(["default"])
    assert broker.claim(["default"], 4, LONG, timeout=0.2) == []
    broker.push_many([task(id=f"t{i}") for i in range(3)])
    assert len(broker.claim(["default"], 4, LONG, timeout=0.2)) >= 1


def test_a_draining_runner_of_one_queue_runs_every_task(opened):
    # Given 100 tasks on one queue (the runner subscribes), and a short idle wait
    broker = opened()
    broker.push_many([Task(lang="shell", file="echo.sh", args=[str(i)]) for i in range(100)])
    # When a runner with one slot drains it (after each task, the next is pushed only once
    # the server has the ack: the claim right after the settle finds nothing yet)
    stats = Runner(tasks=broker, roots=[str(TASKS)], wait=5, max_processes=1).run()
    # Then every task ran once: a claim that found nothing pushed yet did not end the drain
    assert (stats.succeeded, stats.dead) == (100, 0)
    assert nonzero(broker.counts()) == {"default": {"succeeded": 100}}


# --- long tasks and the consumer timeout ----------------------------------------------------


def rabbitmqctl(*args: str) -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "services"), "rabbitmqctl", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def consumer_timeout_5s():
    """The server closes a channel whose delivery stays unacked for 5 s (checked every
    second); the settings are restored afterwards. They apply to channels opened later."""
    saved = {k: rabbitmqctl("eval", f"application:get_env(rabbit, {k}).") for k in
             ("consumer_timeout", "channel_tick_interval")}
    rabbitmqctl("eval", "application:set_env(rabbit, consumer_timeout, 5000), "
                        "application:set_env(rabbit, channel_tick_interval, 1000).")
    try:
        yield 5.0
    finally:
        for k, v in saved.items():
            m = re.search(r"\{ok,(\d+)\}", v)
            rabbitmqctl("eval", f"application:set_env(rabbit, {k}, {m.group(1)})." if m
                        else f"application:unset_env(rabbit, {k}).")


def test_a_task_outlives_the_consumer_timeout_while_it_is_renewed(opened, consumer_timeout_5s):
    # Given runner A holding a task under a 3 s lease and renewing it every second (a third
    # of the lease), and runner C holding another task without renewing it
    a, b, c, producer = opened(), opened(), opened(), opened()
    producer.push_many([task(id="long", priority=1), task(id="unrenewed")])
    (long_claim,) = a.claim(["default"], 1, 3.0)
    (unrenewed,) = c.claim(["default"], 1, LONG)
    # When both run for three times the server's consumer timeout, runner B claiming meanwhile
    lost, taken = [], []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3 * consumer_timeout_5s:
        time.sleep(1.0)
        lost += a.renew([long_claim], 3.0)
        c.counts()  # C's loop goes on (its connection answers the server), it just never renews
        for t in b.claim(["default"], 10, LONG):
            taken.append(t)
            b.succeed(t, {"exit_code": 0})
    # Then A never lost its lease and nobody else got its task; it settles normally
    assert lost == [] and "long" not in [t.id for t in taken]
    a.succeed(long_claim, {"exit_code": 0})
    # And the server closed C's channel: C cannot settle its task, which B got instead
    with pytest.raises(LeaseLost):
        c.succeed(unrenewed, {"exit_code": 0})
    assert [t.id for t in taken] == ["unrenewed"]


def test_the_runner_runs_a_task_twice_as_long_as_the_consumer_timeout_exactly_once(opened, consumer_timeout_5s):
    # Given a runner with a 3 s lease (renewed every second) running a task that sleeps for
    # twice the server's consumer timeout
    broker, other = opened(), opened()
    broker.push(Task(lang="shell", file="sleep.sh", args=[str(2 * consumer_timeout_5s)], id="sleeper", timeout=60))
    runner = Runner(tasks=broker, roots=[str(TASKS)], wait=300, lease=3, max_processes=2)
    thread = threading.Thread(target=runner.run)
    thread.start()
    deadline = time.monotonic() + 10
    while runner.stats.started == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # When a second runner keeps asking for work meanwhile
    stolen = []
    while thread.is_alive():
        stolen += other.claim(["default"], 1, LONG, timeout=0.5)
    # Then the task ran once and succeeded, and the second runner never got it
    stats = runner.stats
    assert (stats.started, stats.succeeded, stats.lost, stolen) == (1, 1, 0, [])


# --- faults ---------------------------------------------------------------------------------


CLAIMER = r"""
import json, sys, time
from phlask.brokers.rabbitmq import RabbitBroker
url, lease, renew = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "renew"
b = RabbitBroker(url)
claims = b.claim(["default"], 1, lease, timeout=10)
if renew:
    assert b.renew(claims, lease) == []
print(json.dumps({"ids": [c.id for c in claims], "names": sorted(b.declared_names)}), flush=True)
time.sleep(300)
"""


def claim_in_subprocess(url: str, lease: float, renew: bool) -> tuple[subprocess.Popen, dict]:
    p = subprocess.Popen([sys.executable, "-c", CLAIMER, url, str(lease), "renew" if renew else "-"],
                         stdout=subprocess.PIPE, text=True)
    ready_, _, _ = select.select([p.stdout], [], [], 30)
    assert ready_, "the claiming subprocess said nothing within 30 s"
    return p, json.loads(p.stdout.readline())


def test_a_sigkilled_runners_task_goes_to_another_runner(opened, prefix):
    # Given a runner process that claimed a task and is running it
    parent = opened()
    parent.push(task(id="orphan"))
    p, said = claim_in_subprocess(backend.url_with(prefix=prefix), LONG, renew=False)
    assert said["ids"] == ["orphan"]
    assert parent.claim(["default"], 1, LONG) == []
    # When that runner is killed with SIGKILL
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    # Then another runner gets the task, with the same attempt number
    (c,) = parent.claim(["default"], 1, LONG, timeout=10)
    assert (c.id, c.attempt) == ("orphan", 1)


def test_a_sigkilled_runners_renewed_task_comes_back_when_its_lease_runs_out(opened, prefix):
    # Given a runner process that claimed a task under a 1 s lease and renewed it (so its
    # message sits in the runner's hold queue)
    parent = opened()
    parent.push(task(id="held-long"))
    p, said = claim_in_subprocess(backend.url_with(prefix=prefix), 1.0, renew=True)
    opened.extra.update(said["names"])
    assert said["ids"] == ["held-long"] and any(":hold:" in n for n in said["names"])
    # When it is killed with SIGKILL
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    killed = time.monotonic()
    # Then nobody gets the task until the copy's lease (2 x 1 s) has run out, then another runner does
    assert parent.claim(["default"], 1, LONG) == []
    (c,) = parent.claim(["default"], 1, LONG, timeout=15)
    assert (c.id, c.attempt) == ("held-long", 1) and time.monotonic() - killed < 15


class Proxy:
    """A TCP proxy in front of the server that a test can cut or take down, as a network would."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._serve()

    def _serve(self) -> None:
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for pair in self.pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        self.pairs.clear()

    def down(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        self.listener.close()
        self.cut()

    def up(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._serve()


@pytest.fixture
def proxy():
    parts = urlsplit(backend.URL)
    p = Proxy((parts.hostname, parts.port or 5672))
    yield p
    p.down()


def proxied(prefix: str, port: int, **options) -> str:
    parts = urlsplit(backend.URL)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
    url = urlunsplit(parts._replace(netloc=netloc))
    query = "&".join(f"{k}={v}" for k, v in {"prefix": prefix, **options}.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def test_a_lost_connection_loses_the_claims_and_the_server_redelivers_them(opened, prefix, proxy, caplog):
    # Given a runner connected through a network that then fails, holding two claims
    caplog.set_level(logging.INFO, logger="phlask.brokers.rabbitmq")
    runner = opened(proxied(prefix, proxy.port, connect_timeout=5))
    runner.push_many([task(id="c1"), task(id="c2"), task(id="c3")])
    c1, c2 = runner.claim(["default"], 2, LONG)
    proxy.cut()
    # When the runner settles one and renews the other
    with pytest.raises(LeaseLost):
        runner.succeed(c1, {"exit_code": 0})
    lost = runner.renew([c2], LONG)
    # Then both are lost, and after it reconnects on its next claim every task is there again
    assert lost == [c2]
    again = runner.claim(["default"], 10, LONG)
    assert sorted(c.id for c in again) == ["c1", "c2", "c3"]
    assert any("connected to RabbitMQ" in r.getMessage() for r in caplog.records)
    with pytest.raises(LeaseLost):
        runner.succeed(c2, {"exit_code": 0})


def test_a_producer_whose_connection_broke_reconnects_and_publishes(opened, prefix, proxy):
    # Given a producer whose connection the network has cut while it was idle
    producer = opened(proxied(prefix, proxy.port, connect_timeout=5))
    producer.push(task(id="before"))
    proxy.cut()
    # When it pushes again
    producer.push_many([task(id="after-1"), task(id="after-2")])
    # Then the tasks are there (it reconnected and published them once the old link failed)
    assert sorted(c.id for c in opened().claim(["default"], 10, LONG)) == ["after-1", "after-2", "before"]


def test_reconnecting_retries_with_backoff_logs_each_try_and_gives_up_after_the_timeout(opened, prefix, proxy,
                                                                                       caplog):
    # Given a runner whose server goes away
    caplog.set_level(logging.WARNING, logger="phlask.brokers.rabbitmq")
    runner = opened(proxied(prefix, proxy.port, connect_timeout=2))
    runner.push(task(id="waiting"))
    proxy.down()
    # When it claims while the server is unreachable
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable) as err:
        runner.claim(["default"], 1, LONG)
    # Then it tried several times within its connect timeout, logging each try
    assert 1.5 <= time.monotonic() - t0 < 10
    tries = [r for r in caplog.records if r.name == "phlask.brokers.rabbitmq" and "retrying" in r.getMessage()]
    assert len(tries) >= 2 and "guest:***@" in str(err.value) and ":guest@" not in str(err.value)
    # And once the server is back, the next claim reconnects and gets the task
    proxy.up()
    assert [c.id for c in runner.claim(["default"], 1, LONG)] == ["waiting"]


def test_a_server_down_at_start_up_is_broker_unavailable_after_a_bounded_wait():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable) as err:
        connect(f"amqp://guest:secret@127.0.0.1:{port}/%2F?connect_timeout=2")
    assert 1.5 <= time.monotonic() - t0 < 10
    assert f"127.0.0.1:{port}" in str(err.value) and "secret" not in str(err.value)
    assert err.value.url.startswith("amqp://guest:***@")


def test_a_server_restart_mid_run_loses_nothing(opened):
    # Given five queued tasks, two of them being run
    runner = opened()
    runner.push_many([task(id=f"r{i}") for i in range(5)])
    running = runner.claim(["default"], 2, LONG)
    # When the server restarts
    subprocess.run(["bash", str(ROOT / "scripts" / "services"), "restart", "rabbitmq"], check=True,
                   capture_output=True, timeout=300)
    # Then the running claims are lost, and all five tasks are claimed again after reconnecting
    with pytest.raises(LeaseLost):
        runner.succeed(running[0], {"exit_code": 0})
    assert runner.renew(running[1:], LONG) == running[1:]
    again = runner.claim(["default"], 10, LONG)
    assert sorted(c.id for c in again) == [f"r{i}" for i in range(5)]


def test_a_poison_message_goes_dead_once_through_the_runner(opened, prefix):
    # Given a good task, one that fails twice, and bytes that are neither JSON nor labelled
    # as such, without a message id
    broker = opened()
    broker.push(Task(lang="shell", file="echo.sh", args=["hi"], id="good"))
    broker.push(Task(lang="shell", file="exit_code.sh", args=["3"], id="bad", max_attempts=2,
                     backoff={"initial": 0.2, "jitter": False}))
    backend.publish_raw(broker, "default", b"\xff\xfe not json", pika.BasicProperties(content_type="text/plain"))
    # When a runner drains the queue
    stats = Runner(tasks=broker, roots=[str(TASKS)], wait=300, max_processes=4).run()
    # Then the good task succeeded, and the others are dead once each with their reasons
    assert (stats.succeeded, stats.dead, stats.retried) == (1, 2, 1)
    dead = {i.reason: i for i in broker.dead_list()}
    assert set(dead) == {"invalid", "failed"}
    assert dead["invalid"].id.startswith("no-message-id-") and dead["invalid"].body == b"\xff\xfe not json"
    assert (dead["failed"].id, dead["failed"].attempts) == ("bad", 2)
    assert nonzero(broker.counts()) == {"default": {"succeeded": 1, "dead": 2}}


# --- operators, URL --------------------------------------------------------------------------


def test_a_large_batch_is_confirmed_and_counted(broker):
    ids = broker.push_many([task() for _ in range(2000)])
    assert len(set(ids)) == 2000
    assert nonzero(broker.counts()) == {"default": {"queued": 2000}}


def test_a_repeated_id_in_one_batch_is_refused_before_anything_is_published(broker):
    with pytest.raises(DuplicateTask):
        broker.push_many([task(id="x1"), task(id="x2"), task(id="x1")])
    assert nonzero(broker.counts()) == {}


def test_status_and_dead_see_the_queues_named_in_the_url(opened, prefix):
    # Given a dead task in queue a, seen by a fresh process that never used queue a
    worker = opened()
    worker.push(task(id="da", queue="a"))
    (c,) = worker.claim(["a"], 1, LONG)
    worker.dead(c, DeadReason.FAILED, {"exit_code": 1})
    blind, told = opened(), opened(backend.url_with(prefix=prefix, queues="a,b"))
    # Then only the one told about a through the URL counts and lists it
    assert "a" not in blind.counts() and blind.dead_list() == []
    assert nonzero(told.counts()) == {"a": {"dead": 1}}
    assert [i.id for i in told.dead_list()] == ["da"]
    assert told.dead_retry(None) == 1 and nonzero(told.counts()) == {"a": {"queued": 1}}


def test_inspect_is_unsupported_and_says_what_to_do_instead(broker):
    with pytest.raises(Unsupported, match="--results"):
        broker.inspect("anything")
    assert broker.supports_inspect is False


@pytest.mark.parametrize("url", [
    "amqp:///no-host",
    "amqp://guest:guest@127.0.0.1:5672/%2F?prefix=bad%20prefix",
    "amqp://guest:guest@127.0.0.1:5672/%2F?queues=Not-A-Queue",
    "amqp://guest:guest@127.0.0.1:5672/%2F?connect_timeout=soon",
])
def test_bad_urls_are_config_errors(url):
    with pytest.raises(ConfigError):
        RabbitBroker(url)


def test_url_options_are_ours_and_the_rest_go_to_pika(opened, prefix):
    b = opened(backend.url_with(prefix=prefix, connect_timeout=3, heartbeat=20, queues="a"))
    assert (b.prefix, b.connect_timeout, list(b._known)) == (prefix, 3.0, ["default", "a"])
    assert b._conn._impl.params.heartbeat == 20
