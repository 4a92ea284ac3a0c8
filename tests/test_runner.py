"""The runner loop end to end: real processes, the real SQLite file, the real CLI.

Given / When / Then; timing only in generous bounds (numbers belong in bench/).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phlask import Task, connect
from phlask.runner import Runner, backoff_delay
from phlask.envelope import decode
from phlask.signing import sign

TASKS = Path(__file__).parent / "tasks" / "runner"
PHLASK = [sys.executable, "-m", "phlask.cli"]


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/queue.db"


@pytest.fixture
def record(tmp_path):
    p = tmp_path / "record.txt"
    p.touch()
    return p


def run(url, **kw):
    kw.setdefault("roots", [str(TASKS)])
    kw.setdefault("wait", 10)
    broker = connect(url)
    try:
        return Runner(tasks=broker, **kw).run()
    finally:
        broker.close()


def cli(*args, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(PHLASK + list(args), capture_output=True, text=True, env=e, timeout=kw.pop("timeout", 300),
                          **kw)


def store_raw(url, task_id, body: bytes, queue="default", signature=None, key_id=None):
    """What a buggy or hostile producer does: a row straight into the table."""
    path = url[len("sqlite:///"):]
    connect(url).close()  # schema
    db = sqlite3.connect(path)
    db.execute("INSERT INTO phlask_tasks (id, queue, state, priority, run_at, body, signature, key_id) "
               "VALUES (?, ?, 'queued', 0, 0, ?, ?, ?)", (task_id, queue, body, signature, key_id))
    db.commit()
    db.close()


def nonzero(counts):
    return {q: {s: n for s, n in by.items() if n} for q, by in counts.items() if any(by.values())}


def info(url, task_id):
    with connect(url) as b:
        return b.inspect(task_id)


# --- basics ----------------------------------------------------------------------------------


def test_drain_runs_every_task_and_exits(url, record):
    # Given 20 shell tasks
    with connect(url) as b:
        b.push_many([Task(lang="shell", file="record.sh", env={"RECORD": str(record)}) for _ in range(20)])
    # When a drain-mode runner runs
    stats = run(url, max_processes=4)
    # Then all ran once and the runner exited by itself
    assert stats.succeeded == 20
    assert len(record.read_text().splitlines()) == 20
    with connect(url) as b:
        assert nonzero(b.counts())["default"] == {"succeeded": 20}


def test_result_records_exit_output_and_task_result(url):
    with connect(url) as b:
        tid = b.push(Task(lang="python", file="echo_all.py", args=["a b", "$(x)"], input={"k": "ü"},
                          env={"GREETING": "hi"}))
    run(url)
    i = info(url, tid)
    assert i.state == "succeeded" and i.attempts == 1
    r = i.result
    assert r["exit_code"] == 0 and r["signal"] is None and r["timed_out"] is False
    got = r["result"]
    assert got["args"] == ["a b", "$(x)"]
    assert json.loads(got["stdin"]) == {"k": "ü"}
    assert got["env"]["GREETING"] == "hi"
    assert got["env"]["PHLASK_TASK_ID"] == tid and got["env"]["PHLASK_ATTEMPT"] == "1"
    assert got["env"]["PHLASK_QUEUE"] == "default"
    decode(i.body)  # the body is stored byte-exact and still valid


def test_runner_environment_is_invisible_to_tasks(url, monkeypatch):
    # Given a runner whose own environment holds a secret
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    with connect(url) as b:
        tid = b.push(Task(lang="python", file="echo_all.py"))
    run(url)
    env = info(url, tid).result["result"]["env"]
    assert "AWS_SECRET_ACCESS_KEY" not in env
    env = {k: v for k, v in env.items() if "PYENV" not in k}  # set by pyenv's python3 shim, not by phlask
    assert set(env) <= {"PATH", "HOME", "LANG", "TZ", "PHLASK_TASK_ID", "PHLASK_ATTEMPT", "PHLASK_QUEUE",
                        "PHLASK_DEADLINE", "PHLASK_RESULT_FILE", "PWD", "SHLVL", "_", "LC_CTYPE"}


def test_max_processes_is_never_exceeded(url, record):
    # Given 200 tasks that mark their start and end
    with connect(url) as b:
        b.push_many([Task(lang="shell", file="overlap.sh", env={"RECORD": str(record)}) for _ in range(200)])
    # When a runner with max_processes 4 drains them
    stats = run(url, max_processes=4)
    assert stats.succeeded == 200
    # Then, measured from inside the tasks, at most 4 ran at once (and more than 1 did)
    events = sorted((int(t), kind) for kind, t, _ in (line.split() for line in record.read_text().splitlines()))
    level = peak = 0
    for _, kind in events:
        level += 1 if kind == "S" else -1
        peak = max(peak, level)
    assert 1 < peak <= 4


def test_retries_with_backoff_then_dead_failed(url):
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="fail.sh", args=["3"], max_attempts=3,
                          backoff={"initial": 0.1, "factor": 2, "jitter": False}))
    stats = run(url)
    i = info(url, tid)
    assert (i.state, i.reason, i.attempts) == ("dead", "failed", 3)
    assert i.result["exit_code"] == 3 and "exited with status 3" in i.result["error"]
    assert "attempt 3 failing" in i.result["stderr_tail"]
    assert stats.retried == 2 and stats.dead == 1


def test_backoff_formula():
    env = decode(Task(lang="shell", file="x", backoff={"initial": 1, "factor": 3, "max": 5, "jitter": False}).encode())
    assert [backoff_delay(env, n) for n in (1, 2, 3)] == [1, 3, 5]
    jittered = decode(Task(lang="shell", file="x", backoff={"initial": 10}).encode())
    assert all(5 <= backoff_delay(jittered, 1) < 10 for _ in range(50))


def test_timeout_kills_and_ends_dead_timed_out(url, record):
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="slow.sh", args=["30"], timeout=0.5, env={"RECORD": str(record)}))
    t0 = time.monotonic()
    run(url, kill_grace=0.5)
    i = info(url, tid)
    assert (i.state, i.reason) == ("dead", "timed_out")
    assert i.result["timed_out"] is True and i.result["signal"] in ("SIGTERM", "SIGKILL")
    assert time.monotonic() - t0 < 20


# --- bad input: dead with the right reason, good tasks still run -------------------------------


def test_bad_envelopes_go_dead_with_reasons_and_good_ones_run(url, tmp_path, record):
    outside = tmp_path / "outside.sh"
    outside.write_text("echo escaped\n")
    with connect(url) as b:
        good = b.push(Task(lang="shell", file="record.sh", env={"RECORD": str(record)}))
        unknown = b.push(Task(lang="cobol", file="record.sh"))
        traversal = b.push(Task(lang="shell", file="../../../../../../etc/passwd"))
        absolute_out = b.push(Task(lang="shell", file=str(outside)))
        missing = b.push(Task(lang="shell", file="no-such-task.sh"))
        inline = b.push(Task(lang="shell", code="echo hi"))
        bad_env = b.push(Task(lang="shell", file="record.sh", env={"LD_PRELOAD": "/tmp/evil.so"}))
        expired = b.push(Task(lang="shell", file="record.sh", expires_at="2020-01-01T00:00:00Z"))
    store_raw(url, "not-json", b"{this is not json")
    store_raw(url, "bad-type", json.dumps({"phlask": 1, "id": "bad-type", "lang": "shell", "file": "x.sh",
                                           "created_at": "2026-11-28T00:00:00Z", "timeout": "soon"}).encode())
    store_raw(url, "too-big", b'{"phlask":1,"pad":"' + b"x" * (1 << 20) + b'"}')
    store_raw(url, "bad-utf8", b'{"phlask":1,"id":"\xff\xfe"}')
    stats = run(url)
    expect = {good: ("succeeded", None), unknown: ("dead", "unknown_lang"), traversal: ("dead", "forbidden_path"),
              absolute_out: ("dead", "forbidden_path"), missing: ("dead", "missing_file"),
              inline: ("dead", "inline_refused"), bad_env: ("dead", "forbidden_env"), expired: ("dead", "expired"),
              "not-json": ("dead", "invalid"), "bad-type": ("dead", "invalid"), "too-big": ("dead", "too_large"),
              "bad-utf8": ("dead", "invalid")}
    got = {tid: (info(url, tid).state, info(url, tid).reason) for tid in expect}
    assert got == expect
    assert "$.timeout" in info(url, "bad-type").result["error"]
    assert "cobol" in info(url, unknown).result["error"]
    assert stats.succeeded == 1 and stats.dead == len(expect) - 1
    assert record.read_text().count("\n") == 1


def test_symlink_escaping_the_root_is_forbidden(url, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.sh").write_text("echo secret\n")
    (root / "innocent.sh").symlink_to(tmp_path / "secret.sh")
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="innocent.sh"))
    run(url, roots=[str(root)])
    assert (info(url, tid).state, info(url, tid).reason) == ("dead", "forbidden_path")


def test_inline_code_runs_when_allowed(url):
    with connect(url) as b:
        tid = b.push(Task(lang="python", code="import os, json\nopen(os.environ['PHLASK_RESULT_FILE'], 'w')"
                                              ".write(json.dumps(6 * 7))"))
    run(url, allow_inline=True)
    assert info(url, tid).result["result"] == 42


def test_signatures_verified_when_a_keyring_is_configured(url, record):
    with connect(url, signing_key=("k1", "secret-1")) as signed:
        ok = signed.push(Task(lang="shell", file="record.sh", env={"RECORD": str(record)}))
    with connect(url, signing_key=("k2", "other")) as other:
        unknown_key = other.push(Task(lang="shell", file="record.sh", env={"RECORD": str(record)}))
    with connect(url) as plain:
        unsigned = plain.push(Task(lang="shell", file="record.sh", env={"RECORD": str(record)}))
    body = Task(lang="shell", file="record.sh", id="tampered", env={"RECORD": str(record)}).encode()
    sig = sign(body, b"secret-1")
    store_raw(url, "tampered", body.replace(b'"record.sh"', b'"recorc.sh"'), signature=sig, key_id="k1")
    run(url, keys={"k1": "secret-1"})
    assert info(url, ok).state == "succeeded"
    for tid in (unknown_key, unsigned, "tampered"):
        assert (info(url, tid).state, info(url, tid).reason) == ("dead", "bad_signature"), tid


# --- several runners, crashes, shutdown ---------------------------------------------------------


def test_two_runners_share_one_file_with_nothing_lost_or_run_twice(url, record):
    n = 1000
    with connect(url) as b:
        b.push_many([Task(lang="shell", file="record.sh", id=f"t{i}", env={"RECORD": str(record)}) for i in range(n)])
    args = ["run", "--broker", url, "--root", str(TASKS), "--max-processes", "4", "--wait", "10", "--config", "/dev/null"]
    procs = [subprocess.Popen(PHLASK + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    ids = [line.split()[0] for line in record.read_text().splitlines()]
    assert len(ids) == n and set(ids) == {f"t{i}" for i in range(n)}
    with connect(url) as b:
        assert nonzero(b.counts())["default"] == {"succeeded": n}


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_runner_killed_with_sigkill_mid_task_is_completed_by_another(url, record):
    # Given a runner A running a 4 s task under a 2 s lease, for long enough that its
    # orphan sweeps have run (they once killed the watchdog itself)
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="slow.sh", args=["4"], env={"RECORD": str(record)}))
    args = ["run", "--broker", url, "--root", str(TASKS), "--lease", "2", "--wait", "50", "--config", "/dev/null"]
    a = subprocess.Popen(PHLASK + args + ["--daemon"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: "start" in record.read_text())
    time.sleep(2.2)
    # When A is killed with SIGKILL mid-task
    a.send_signal(signal.SIGKILL)
    a.wait()
    # Then a second runner, once the lease has expired, runs the task to success
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and info(url, tid).state != "succeeded":
        b = cli(*args)
        assert b.returncode == 0, b.stderr
        time.sleep(0.5)
    i = info(url, tid)
    assert i.state == "succeeded" and i.attempts == 1
    # and A's orphaned process died with A instead of running on unsupervised
    first_pid = int(next(x for x in record.read_text().splitlines() if x.startswith("start")).split()[3])
    assert not Path(f"/proc/{first_pid}").exists()
    assert record.read_text().count("done") == 1
    starts = [line for line in record.read_text().splitlines() if line.startswith("start")]
    assert len(starts) == 2 and all(s.split()[2] == "1" for s in starts)  # same attempt number, run again


def test_sigterm_returns_running_tasks_without_counting_an_attempt(url, record):
    with connect(url) as b:
        ids = b.push_many([Task(lang="shell", file="slow.sh", args=["60"], env={"RECORD": str(record)})
                           for _ in range(3)])
    args = ["run", "--broker", url, "--root", str(TASKS), "--shutdown-grace", "1", "--kill-grace", "1",
            "--daemon", "--wait", "50", "--config", "/dev/null"]
    p = subprocess.Popen(PHLASK + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert _wait_for(lambda: record.read_text().count("start") == 3)
    pids = [int(line.split()[3]) for line in record.read_text().splitlines()]
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    assert time.monotonic() - t0 < 30
    for tid in ids:
        i = info(url, tid)
        assert (i.state, i.attempts) == ("queued", 0), (tid, i.state, i.attempts)
    for pid in pids:  # the tasks' processes are gone
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_sigterm_lets_short_tasks_finish(url, record):
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="slow.sh", args=["1"], env={"RECORD": str(record)}))
    args = ["run", "--broker", url, "--root", str(TASKS), "--shutdown-grace", "20", "--daemon", "--wait", "50",
            "--config", "/dev/null"]
    p = subprocess.Popen(PHLASK + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: "start" in record.read_text())
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    assert info(url, tid).state == "succeeded"


def test_daemon_mode_keeps_listening(url, record):
    args = ["run", "--broker", url, "--root", str(TASKS), "--daemon", "--wait", "20", "--config", "/dev/null"]
    p = subprocess.Popen(PHLASK + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        assert p.poll() is None  # nothing to do, still running
        with connect(url) as b:
            b.push(Task(lang="shell", file="record.sh", env={"RECORD": str(record)}))
        assert _wait_for(lambda: record.read_text().strip() != "")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    assert p.returncode == 0


def test_delayed_tasks_wait_and_priority_orders(url, record):
    with connect(url) as b:
        later = b.push(Task(lang="shell", file="record.sh", delay=3600, env={"RECORD": str(record)}))
        b.push(Task(lang="shell", file="record.sh", id="low", env={"RECORD": str(record)}))
        b.push(Task(lang="shell", file="record.sh", id="high", priority=9, env={"RECORD": str(record)}))
    run(url, max_processes=1)
    assert [line.split()[0] for line in record.read_text().splitlines()] == ["high", "low"]
    assert info(url, later).state == "queued"


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_enqueue_status_inspect_dead(url, tmp_path):
    env = {"PHLASK_BROKER": url}
    r = cli("enqueue", "--lang", "shell", "--file", "fail.sh", "--id", "cli-1", "--", "7", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "cli-1"
    r = cli("enqueue", "--lang", "shell", "--file", "fail.sh", "--priority", "12", env=env)
    assert r.returncode == 1 and "$.priority" in r.stderr
    assert cli("run", "--root", str(TASKS), "--wait", "10", "--config", "/dev/null", env=env).returncode == 0
    st = json.loads(cli("status", "--json", env=env).stdout)
    assert nonzero(st) == {"default": {"dead": 1}}
    out = cli("inspect", "cli-1", env=env).stdout
    assert "dead (failed)" in out and "exit 7" in out
    assert "cli-1" in cli("dead", "list", env=env).stdout
    assert "1 task(s) queued again" in cli("dead", "retry", "--all", env=env).stdout
    assert nonzero(json.loads(cli("status", "--json", env=env).stdout)) == {"default": {"queued": 1}}
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(Task(lang="shell", file="fail.sh", id=f"b{i}").encode().decode() for i in range(3)))
    assert cli("enqueue", "--json", str(batch), env=env).stdout.split() == ["b0", "b1", "b2"]


def test_cli_run_json_logs_have_task_fields(url):
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="fail.sh", args=["0"]))
    r = cli("run", "--broker", url, "--root", str(TASKS), "--log-format", "json", "--config", "/dev/null")
    lines = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    task_lines = [x for x in lines if x.get("task_id") == tid]
    assert task_lines and {"lang", "attempt", "exit", "duration", "state"} <= set(task_lines[0])
    assert task_lines[0]["exit"] == 0 and task_lines[0]["state"] == "succeeded"


def test_cli_unknown_broker_scheme_is_a_clear_error():
    r = cli("status", "--broker", "redis://localhost")
    assert r.returncode == 2 and "unknown scheme 'redis'" in r.stderr and "sqlite:///" in r.stderr


def test_resource_limits_apply_to_tasks(url):
    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="limits.sh"))
    run(url, limits={"open_files": 64, "cpu_seconds": 30})
    assert "nofile 64 cpu 30" in info(url, tid).result["stdout_tail"]


def test_processes_escaping_the_group_are_killed_by_the_cli_runner(url, record):
    # Given a task that leaves a grandchild running in a session of its own
    with connect(url) as b:
        b.push(Task(lang="python", file="escape.py", env={"RECORD": str(record)}))
    args = ["run", "--broker", url, "--root", str(TASKS), "--daemon", "--wait", "50", "--config", "/dev/null"]
    p = subprocess.Popen(PHLASK + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: record.read_text().strip() != "")
        escapee = int(record.read_text())
        # Then the runner (a subreaper) finds and kills it within a few sweeps
        assert _wait_for(lambda: not Path(f"/proc/{escapee}").exists(), timeout=30)
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert b"escaped their task's process group" in err


def test_a_blocked_broker_call_does_not_stop_supervision(url, tmp_path):
    # Given a task with a 1 s timeout and a broker whose next turn blocks for 8 s once the
    # task runs (an outage being retried inside the broker)
    class Stalling:
        def __init__(self, inner):
            self.inner, self.turns = inner, 0

        def settle_and_claim(self, *a, **kw):
            self.turns += 1
            if self.turns == 2:
                time.sleep(8)
            return self.inner.settle_and_claim(*a, **kw)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    with connect(url) as b:
        tid = b.push(Task(lang="shell", file="slow.sh", args=["60"], env={"RECORD": str(tmp_path / "r")}, timeout=1))
        broker = Stalling(b)
        # When a runner drains the queue
        t0 = time.monotonic()
        stats = Runner(tasks=broker, roots=[str(TASKS)], wait=10, kill_grace=0.5).run()  # type: ignore[arg-type]
        took = time.monotonic() - t0
        result = b.inspect(tid).result
    # Then the timeout was enforced while the broker call blocked: the task was killed after
    # about 1.5 s, not when the call returned 8 s later
    assert stats.dead == 1 and took >= 8
    assert result["timed_out"] is True and result["duration"] < 5, result


def test_a_tail_cut_inside_a_character_is_stored_without_a_replacement_character(url):
    # Given a task whose stdout is longer than the tail and whose tail starts inside 'é'
    # ("x" + 40,000 x 'é' + "z": 80,002 bytes; the last 65,536 start at an even offset,
    # the second byte of an 'é')
    with connect(url) as b:
        tid = b.push(Task(lang="python", code="import sys; sys.stdout.write('x' + 'é' * 40000 + 'z')"))
    run(url, allow_inline=True)
    r = info(url, tid).result
    assert r["stdout_bytes"] == 80002
    # Then the stored tail starts at the next whole character, as supervise.decode_tail does
    assert r["stdout_tail"] == "é" * 32767 + "z"
