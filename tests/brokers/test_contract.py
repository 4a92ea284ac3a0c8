"""The broker contract: what every backend must do (runner/phlask/brokers/base.py).

Each test runs once per backend (fixture ``broker`` in conftest.py). Timing is generous:
leases of 1 s, waits of 1.5 s; nothing asserts how fast a backend is.
"""

from __future__ import annotations

import time

import pytest

from phlask import Task
from phlask.brokers import Broker, Claim, LeaseLost, Message
from phlask.errors import DuplicateTask, TaskNotFound, Unsupported
from phlask.wire import DeadReason, State

LONG = 60.0  # a lease that never expires during a test
SHORT = 1.0  # a lease a test lets expire
PAST_SHORT = 1.5  # sleep long enough for a SHORT lease (or a 1 s delay) to pass

needs_inspect = pytest.mark.needs_inspect


def task(**fields) -> Task:
    return Task(lang="shell", file="x.sh", **fields)


def nonzero(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Counts without zero entries, so backends may list absent states or not."""
    out = {q: {s: n for s, n in states.items() if n} for q, states in counts.items()}
    return {q: states for q, states in out.items() if states}


def claim_all(broker: Broker, queues=("default",), lease: float = LONG) -> list[Claim]:
    return broker.claim(list(queues), 100, lease)


# --- enqueue -----------------------------------------------------------------------------


def test_push_returns_the_id_and_counts_show_it_queued(broker):
    # Given an empty broker
    # When one task is pushed
    task_id = broker.push(task(id="t-1"))
    # Then its id comes back and it counts as queued in its queue
    assert task_id == "t-1"
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}


def test_push_generates_an_id_when_the_task_has_none(broker):
    task_id = broker.push(task())
    assert isinstance(task_id, str) and task_id
    assert [c.id for c in claim_all(broker)] == [task_id]


def test_push_many_returns_ids_in_order(broker):
    # When several tasks, in two queues, are pushed at once
    ids = broker.push_many([task(id=f"m-{i}", queue="a" if i % 2 else "b") for i in range(5)])
    # Then every id comes back, in order, and all are queued
    assert ids == [f"m-{i}" for i in range(5)]
    assert nonzero(broker.counts()) == {"a": {"queued": 2}, "b": {"queued": 3}}


def test_push_many_of_nothing_is_nothing(broker):
    assert broker.push_many([]) == []
    assert nonzero(broker.counts()) == {}


@pytest.mark.needs_unique_ids
def test_duplicate_id_raises_duplicate_task_and_keeps_the_first(broker):
    # Given a queued task
    broker.push(task(id="dup", args=["first"]))
    # When another task with the same id is pushed
    with pytest.raises(DuplicateTask) as err:
        broker.push(task(id="dup", args=["second"]))
    # Then DuplicateTask names the id and the first task is the one that runs
    assert err.value.task_id == "dup"
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}
    (c,) = claim_all(broker)
    assert b'"first"' in c.body


@pytest.mark.needs_unique_ids
def test_duplicate_id_within_push_many_raises_duplicate_task(broker):
    broker.push(task(id="taken"))
    with pytest.raises(DuplicateTask) as err:
        broker.push_many([task(id="fresh-1"), task(id="taken"), task(id="fresh-2")])
    assert err.value.task_id == "taken"
    # How much of the batch before the duplicate is stored is backend-specific; the task
    # after it is not, and the original is untouched.
    assert "fresh-2" not in [c.id for c in claim_all(broker)]


@pytest.mark.needs_unique_ids
def test_duplicate_id_is_refused_in_any_state(broker):
    broker.push(task(id="done"))
    (c,) = claim_all(broker)
    broker.succeed(c, {"exit_code": 0})
    with pytest.raises(DuplicateTask):
        broker.push(task(id="done"))


# --- claim -------------------------------------------------------------------------------


def test_claim_takes_at_most_limit(broker):
    # Given five queued tasks
    broker.push_many([task() for _ in range(5)])
    # When claiming two, then the rest
    first = broker.claim(["default"], 2, LONG)
    rest = broker.claim(["default"], 10, LONG)
    # Then two, then the other three, come back, each task once
    assert len(first) == 2 and len(rest) == 3
    assert len({c.id for c in first + rest}) == 5
    assert nonzero(broker.counts()) == {"default": {"running": 5}}


def test_claim_with_no_queues_or_zero_limit_takes_nothing(broker):
    broker.push(task())
    assert broker.claim([], 10, LONG) == []
    assert broker.claim(["default"], 0, LONG) == []
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}


def test_claim_takes_only_from_the_given_queues(broker):
    # Given tasks in queues a, b and c
    broker.push_many([task(id="in-a", queue="a"), task(id="in-b", queue="b"), task(id="in-c", queue="c")])
    # When claiming from a and c
    claims = broker.claim(["a", "c"], 10, LONG)
    # Then b's task stays queued, and each claim names its queue
    assert sorted((c.id, c.queue) for c in claims) == [("in-a", "a"), ("in-c", "c")]
    assert broker.claim(["nope"], 10, LONG) == []
    assert nonzero(broker.counts())["b"] == {"queued": 1}


def test_claim_orders_by_priority_then_fifo(broker):
    # Given tasks of mixed priority pushed one after another
    for i, prio in enumerate([0, 5, 0, 9, 5, 0]):
        broker.push(task(id=f"p{prio}-{i}", priority=prio))
    # When claiming them one at a time
    order = [broker.claim(["default"], 1, LONG)[0].id for _ in range(6)]
    # Then higher priority comes first, and within a priority the earlier push
    assert order == ["p9-3", "p5-1", "p5-4", "p0-0", "p0-2", "p0-5"]


def test_claim_orders_across_queues_by_priority(broker):
    broker.push_many([task(id="a-low", queue="a", priority=1), task(id="b-high", queue="b", priority=8)])
    assert [c.id for c in broker.claim(["a", "b"], 1, LONG)] == ["b-high"]


def test_claim_gives_attempt_one_and_the_envelope(broker):
    t = task(id="first-try", args=["x"])
    broker.push(t)
    (c,) = claim_all(broker)
    assert (c.id, c.queue, c.attempt) == ("first-try", "default", 1)
    assert c.body.startswith(b"{") and b'"first-try"' in c.body
    assert c.signature is None and c.key_id is None


def test_not_before_delays_readiness(broker):
    # Given a task not to run before one second from now
    broker.push(task(id="later", delay=1.0))
    # When claiming at once, then after the delay
    early = claim_all(broker)
    time.sleep(PAST_SHORT)
    late = claim_all(broker)
    # Then it is queued but not ready at first, and ready afterwards
    assert early == []
    assert [c.id for c in late] == ["later"]


def test_a_claimed_task_is_not_claimed_again_while_leased(broker):
    broker.push(task(id="held"))
    (c,) = claim_all(broker)
    # Another runner (or the same one) finds nothing while the lease holds
    assert claim_all(broker) == []
    assert nonzero(broker.counts()) == {"default": {"running": 1}}
    broker.succeed(c, {"exit_code": 0})


def test_an_expired_lease_is_reclaimed_with_the_same_attempt(broker):
    # Given a task claimed under a short lease that is never renewed (its runner died)
    broker.push(task(id="orphan"))
    (first,) = broker.claim(["default"], 1, SHORT)
    # When the lease has expired and another runner claims
    time.sleep(PAST_SHORT)
    (second,) = broker.claim(["default"], 1, LONG)
    # Then it gets the same task with the same attempt number
    assert (second.id, second.attempt) == ("orphan", first.attempt) == ("orphan", 1)
    assert second.receipt != first.receipt


# --- lease -------------------------------------------------------------------------------


def test_renew_keeps_a_lease_alive_past_its_original_expiry(broker):
    # Given a task claimed under a 1 s lease
    broker.push(task(id="long-job"))
    (c,) = broker.claim(["default"], 1, SHORT)
    # When it is renewed before expiry for longer, and the original expiry passes
    time.sleep(0.4)
    assert broker.renew([c], 4.0) == []
    time.sleep(PAST_SHORT - 0.4)
    # Then nobody else can claim it, and its runner settles it normally
    assert claim_all(broker) == []
    broker.succeed(c, {"exit_code": 0})
    assert nonzero(broker.counts()) == {"default": {"succeeded": 1}}


def test_renew_reports_lost_leases(broker):
    # Given two claims, one of which expired and was claimed by another runner
    broker.push_many([task(id="kept", priority=1), task(id="lost")])
    kept, lost = broker.claim(["default"], 2, SHORT)
    assert (kept.id, lost.id) == ("kept", "lost")
    assert broker.renew([kept], LONG) == []
    time.sleep(PAST_SHORT)
    (thief,) = broker.claim(["default"], 1, LONG)
    assert thief.id == "lost"
    # When the first runner renews both
    gone = broker.renew([kept, lost], LONG)
    # Then only the reclaimed one is reported lost
    assert [c.id for c in gone] == ["lost"]
    assert broker.renew([], LONG) == []


# --- settle ------------------------------------------------------------------------------


def test_succeed_counts_succeeded_and_the_task_is_not_claimed_again(broker):
    broker.push(task(id="ok"))
    (c,) = claim_all(broker)
    broker.succeed(c, {"exit_code": 0})
    assert nonzero(broker.counts()) == {"default": {"succeeded": 1}}
    assert claim_all(broker) == []


def test_retry_queues_the_task_again_with_the_next_attempt(broker):
    # Given a claimed task
    broker.push(task(id="flaky", max_attempts=3))
    (c,) = claim_all(broker)
    # When its attempt is retried without delay
    broker.retry(c, {"exit_code": 1}, 0)
    # Then it is queued again, and the next claim runs attempt 2
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}
    (again,) = claim_all(broker)
    assert (again.id, again.attempt) == ("flaky", 2)


def test_retry_with_delay_is_not_ready_before_the_delay(broker):
    broker.push(task(id="backoff", max_attempts=2))
    (c,) = claim_all(broker)
    broker.retry(c, {"exit_code": 1}, 1.0)
    assert claim_all(broker) == []
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}
    time.sleep(PAST_SHORT)
    assert [(x.id, x.attempt) for x in claim_all(broker)] == [("backoff", 2)]


def test_dead_moves_the_task_to_the_dead_list_with_its_reason(broker):
    # Given a claimed task
    broker.push(task(id="doomed", queue="a"))
    (c,) = claim_all(broker, ["a"])
    # When it is settled dead
    broker.dead(c, DeadReason.FAILED, {"exit_code": 3})
    # Then it counts as dead, is not claimed again, and is listed with reason and attempts
    assert nonzero(broker.counts()) == {"a": {"dead": 1}}
    assert claim_all(broker, ["a"]) == []
    (info,) = broker.dead_list()
    assert (info.id, info.queue, info.state, info.reason, info.attempts) == ("doomed", "a", "dead", "failed", 1)
    assert broker.dead_list("a")[0].id == "doomed"
    assert broker.dead_list("b") == []


def test_release_queues_the_task_again_without_counting_an_attempt(broker):
    broker.push(task(id="interrupted"))
    (c,) = claim_all(broker)
    broker.release(c)
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}
    (again,) = claim_all(broker)
    assert (again.id, again.attempt) == ("interrupted", 1)


def test_release_keeps_the_task_ahead_of_later_ones(broker):
    broker.push(task(id="older"))
    (c,) = claim_all(broker)
    broker.push(task(id="newer"))
    broker.release(c)
    assert [x.id for x in broker.claim(["default"], 1, LONG)] == ["older"]


SETTLES = {
    "succeed": lambda b, c: b.succeed(c, {"exit_code": 0}),
    "retry": lambda b, c: b.retry(c, {"exit_code": 1}, 0),
    "dead": lambda b, c: b.dead(c, DeadReason.FAILED, {"exit_code": 1}),
    "release": lambda b, c: b.release(c),
}


@pytest.mark.parametrize("settle", SETTLES, ids=list(SETTLES))
def test_settling_a_stale_claim_raises_lease_lost_and_changes_nothing(broker, settle):
    # Given a claim whose lease expired and whose task another runner claimed
    broker.push(task(id="contested"))
    (stale,) = broker.claim(["default"], 1, SHORT)
    time.sleep(PAST_SHORT)
    (current,) = broker.claim(["default"], 1, LONG)
    # When the first runner settles its stale claim
    with pytest.raises(LeaseLost):
        SETTLES[settle](broker, stale)
    # Then the task is still running under the new claim, which settles normally
    assert nonzero(broker.counts()) == {"default": {"running": 1}}
    assert broker.renew([current], LONG) == []
    broker.succeed(current, {"exit_code": 0})
    assert nonzero(broker.counts()) == {"default": {"succeeded": 1}}


@pytest.mark.parametrize("settle", SETTLES, ids=list(SETTLES))
def test_settling_twice_raises_lease_lost(broker, settle):
    broker.push(task(id="once"))
    (c,) = claim_all(broker)
    broker.succeed(c, {"exit_code": 0})
    with pytest.raises(LeaseLost):
        SETTLES[settle](broker, c)
    assert nonzero(broker.counts()) == {"default": {"succeeded": 1}}


# --- dead tasks --------------------------------------------------------------------------


def _kill(broker: Broker, *ids: str, queue: str = "default") -> None:
    broker.push_many([task(id=i, queue=queue) for i in ids])
    for c in claim_all(broker, [queue]):
        broker.dead(c, DeadReason.FAILED, {"exit_code": 1})


def test_dead_list_is_most_recent_first_and_limited(broker):
    for i in range(3):
        _kill(broker, f"d{i}")
        time.sleep(0.01)
    assert [i.id for i in broker.dead_list()] == ["d2", "d1", "d0"]
    assert [i.id for i in broker.dead_list(limit=2)] == ["d2", "d1"]


def test_dead_retry_of_chosen_ids_queues_them_with_a_fresh_attempt_count(broker):
    # Given three dead tasks
    _kill(broker, "d1", "d2", "d3")
    # When an operator retries two of them (and one unknown id)
    moved = broker.dead_retry(["d1", "d3", "no-such-task"])
    # Then those two are queued again and run as attempt 1; the third stays dead
    assert moved == 2
    assert nonzero(broker.counts()) == {"default": {"queued": 2, "dead": 1}}
    assert sorted((c.id, c.attempt) for c in claim_all(broker)) == [("d1", 1), ("d3", 1)]
    assert [i.id for i in broker.dead_list()] == ["d2"]


def test_dead_retry_of_none_queues_every_dead_task(broker):
    _kill(broker, "x1", queue="a")
    _kill(broker, "x2", queue="b")
    assert broker.dead_retry(None) == 2
    assert nonzero(broker.counts()) == {"a": {"queued": 1}, "b": {"queued": 1}}
    assert broker.dead_list() == []
    assert broker.dead_retry(None) == 0


def test_dead_retry_leaves_tasks_that_are_not_dead(broker):
    broker.push(task(id="alive"))
    assert broker.dead_retry(["alive"]) == 0
    assert nonzero(broker.counts()) == {"default": {"queued": 1}}


def test_dead_purge_deletes_dead_tasks_of_one_queue_or_all(broker):
    _kill(broker, "a1", "a2", queue="a")
    _kill(broker, "b1", queue="b")
    broker.push(task(id="a-queued", queue="a"))
    assert broker.dead_purge("a") == 2
    assert nonzero(broker.counts()) == {"a": {"queued": 1}, "b": {"dead": 1}}
    assert broker.dead_purge() == 1
    assert broker.dead_list() == []
    assert nonzero(broker.counts()) == {"a": {"queued": 1}}


# --- inspect and counts ------------------------------------------------------------------


def test_inspect_of_an_unknown_id_raises_task_not_found_or_unsupported(broker):
    # Every backend, with or without inspect, answers explicitly
    if broker.supports_inspect:
        with pytest.raises(TaskNotFound):
            broker.inspect("no-such-task")
    else:
        with pytest.raises(Unsupported, match=r"\w"):
            broker.inspect("no-such-task")


@needs_inspect
def test_inspect_returns_the_exact_body_the_last_result_and_the_reason(broker):
    # Given a task that failed once and then died
    t = task(id="looked-at", queue="a", priority=4, max_attempts=2)
    body = t.encode()
    broker.push(body)
    queued = broker.inspect("looked-at")
    assert (queued.state, queued.attempts, queued.body, queued.priority) == ("queued", 0, body, 4)
    assert queued.result is None and queued.reason is None
    (c,) = claim_all(broker, ["a"])
    assert broker.inspect("looked-at").state == "running"
    broker.retry(c, {"exit_code": 1, "stderr_tail": "first"}, 0)
    (c,) = claim_all(broker, ["a"])
    broker.dead(c, DeadReason.TIMED_OUT, {"exit_code": None, "stderr_tail": "ünïcode ✓"})
    # When it is inspected
    info = broker.inspect("looked-at")
    # Then it shows the exact envelope bytes, the last attempt's result and the dead reason
    assert (info.id, info.queue, info.state, info.attempts) == ("looked-at", "a", "dead", 2)
    assert info.body == body
    assert info.reason == "timed_out"
    assert info.result == {"exit_code": None, "stderr_tail": "ünïcode ✓"}


@needs_inspect
def test_inspect_after_succeed_and_dead_retry(broker):
    broker.push(task(id="s"))
    (c,) = claim_all(broker)
    broker.succeed(c, {"exit_code": 0})
    assert (broker.inspect("s").state, broker.inspect("s").attempts) == (State.SUCCEEDED, 1)
    _kill(broker, "d")
    broker.dead_retry(["d"])
    info = broker.inspect("d")
    assert (info.state, info.attempts, info.reason) == ("queued", 0, None)


def test_counts_are_per_queue_and_state(broker):
    # Given tasks in every state across two queues
    broker.push_many([task(id=f"a{i}", queue="a") for i in range(4)] + [task(id="b0", queue="b")])
    ok, retried, dead, _running = broker.claim(["a"], 4, LONG)
    broker.succeed(ok, {"exit_code": 0})
    broker.retry(retried, {"exit_code": 1}, 0)
    broker.dead(dead, DeadReason.FAILED, {"exit_code": 1})
    # Then counts report each queue and state
    assert nonzero(broker.counts()) == {
        "a": {"queued": 1, "running": 1, "succeeded": 1, "dead": 1},
        "b": {"queued": 1},
    }
    assert set().union(*(s.keys() for s in broker.counts().values())) <= set(State)


# --- bodies ------------------------------------------------------------------------------


def test_a_body_that_is_not_an_envelope_is_still_claimable_and_can_be_settled_dead(broker, store_raw):
    # Given a body a hostile producer stored directly, bypassing validation
    garbage = b'{"phlask": 1, "lang": 42, \xff\xfe not json'
    store_raw("raw-1", "default", garbage)
    # When a runner claims
    (c,) = claim_all(broker)
    # Then it gets the bytes as stored, with the backend's id and queue, and can settle it dead
    assert (c.id, c.queue, c.body, c.attempt) == ("raw-1", "default", garbage, 1)
    broker.dead(c, DeadReason.INVALID, {"error": "invalid envelope"})
    (info,) = broker.dead_list()
    assert (info.id, info.reason) == ("raw-1", "invalid")


def test_signature_and_key_id_travel_unchanged_to_the_claim(broker):
    # Given a task enqueued with a signature beside it
    body = task(id="signed").encode()
    signature = "0f" * 32
    broker.enqueue([Message.from_body(body, signature=signature, key_id="k-2026.1")])
    broker.push(task(id="unsigned"))
    # Then the claim carries them as given; an unsigned task carries none
    claims = {c.id: c for c in claim_all(broker)}
    assert (claims["signed"].body, claims["signed"].signature, claims["signed"].key_id) == (body, signature, "k-2026.1")
    assert (claims["unsigned"].signature, claims["unsigned"].key_id) == (None, None)


def test_bodies_with_non_ascii_bytes_travel_byte_exact(broker):
    # Given an envelope with non-ASCII text written as raw UTF-8 and odd spacing
    text = task(id="utf8", args=["héllo", "日本語", "🎉"], meta={"note": "naïve"}).encode().decode()
    body = text.replace('"args":', ' "args" :\n\t').encode()
    assert b"\xf0\x9f\x8e\x89" in body
    broker.push(body)
    # Then the claim holds exactly those bytes
    (c,) = claim_all(broker)
    assert c.body == body
