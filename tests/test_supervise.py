"""phlask.supervise: real processes, real scripts from tests/tasks/.

Timing: every bound here is generous; the tests assert behaviour, not speed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from phlask import supervise
from phlask.supervise import Limits, Outcome, ProcessSpec, run

TASKS = Path(__file__).resolve().parent / "tasks"
SH = shutil.which("sh")
PY = sys.executable
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

_patterns_spec = importlib.util.spec_from_file_location("patterns", TASKS / "patterns.py")
patterns = importlib.util.module_from_spec(_patterns_spec)
_patterns_spec.loader.exec_module(patterns)


def shell(script: str, *args: str, tmp: Path | None = None, **kw) -> ProcessSpec:
    """A ProcessSpec that runs tests/tasks/<script> with sh."""
    return ProcessSpec(argv=[SH, str(TASKS / script), *args], env=dict(BASE_ENV),
                       cwd=str(tmp or TASKS), **{"timeout": 30.0, **kw})


def python(script: str, *args: str, tmp: Path | None = None, **kw) -> ProcessSpec:
    """A ProcessSpec that runs tests/tasks/<script> with this Python."""
    return ProcessSpec(argv=[PY, str(TASKS / script), *args], env=dict(BASE_ENV),
                       cwd=str(tmp or TASKS), **{"timeout": 30.0, **kw})


def proc_stat(pid: int) -> tuple[int, str] | None:
    """(ppid, state) of a process, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return int(fields[1]), fields[0].decode()


def alive(pid: int) -> bool:
    """A zombie is dead: it only waits for its parent (maybe init) to reap it."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def wait_dead(pids: list[int], within: float = 10.0) -> list[int]:
    """Return the pids still alive after waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def my_zombies() -> list[int]:
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st[0] == me and st[1] == "Z":
                out.append(int(entry))
    return out


@pytest.fixture(autouse=True, params=["libc", "popen"])
def spawn_path(request, monkeypatch):
    """Every test runs on both ways a process starts: libc's posix_spawn (the runner's way)
    and subprocess.Popen (for resource limits, or where libc lacks posix_spawn's chdir)."""
    if request.param == "popen":
        monkeypatch.setattr(supervise._spawn, "available", False)
    return request.param


def test_the_spawn_path_is_the_one_asked_for(spawn_path, monkeypatch):
    calls = []
    real = supervise._spawn.spawn
    monkeypatch.setattr(supervise._spawn, "spawn", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    out = run(shell("exit_code.sh", "0"))
    assert out.exit_code == 0 and out.spawn_error is None
    assert calls == ([] if spawn_path == "popen" else [os.fsencode(SH)])


TRICKY_ARGS = [
    "with space",
    "it's \"quoted\"",
    "$(touch /tmp/phlask-pwned)",
    "; rm -rf /tmp/phlask-nothing",
    "`id`",
    "line one\nline two",
    "naïve ☃ 日本語",
    "",
    "*",
    "--help",
    "-",
    "$HOME",
]


# --- exit status --------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 255])
def test_exit_code_is_reported(code):
    # Given a task that exits with a status; When it runs
    out = run(shell("exit_code.sh", str(code)))
    # Then the status is reported, and only status 0 is ok
    assert out.exit_code == code
    assert out.signal is None
    assert out.ok is (code == 0)
    assert out.error is None if code == 0 else out.error == f"exited with status {code}"
    assert out.pid and out.spawn_error is None


@pytest.mark.parametrize("sig", ["SEGV", "KILL"])
def test_death_by_signal_is_reported_by_name(sig):
    out = run(shell("signal_self.sh", sig))
    assert out.exit_code is None
    assert out.signal == f"SIG{sig}"
    assert not out.ok and not out.timed_out
    assert out.error == f"killed by SIG{sig}"


# --- arguments, environment, stdin ------------------------------------------------------


def test_arguments_arrive_verbatim_without_a_shell(tmp_path):
    out = run(python("echo.py", *TRICKY_ARGS, tmp=tmp_path))
    assert out.ok, out.stderr_tail
    assert json.loads(out.stdout_tail)["args"] == TRICKY_ARGS
    assert not Path("/tmp/phlask-pwned").exists()


def test_arguments_arrive_verbatim_in_a_shell_script(tmp_path):
    out = run(shell("echo.sh", *TRICKY_ARGS, tmp=tmp_path))
    assert out.ok, out.stderr_tail
    *args, rest = out.stdout_tail.split(b"\0")
    assert [a.decode() for a in args] == TRICKY_ARGS
    assert rest == b""


def test_the_environment_is_exactly_the_one_given(monkeypatch, tmp_path):
    # Given a secret in the runner's environment
    monkeypatch.setenv("PHLASK_TEST_SECRET", "hunter2")
    env = {**BASE_ENV, "PHLASK_TASK_ID": "t-1", "REPORT_MONTH": "2026-11"}
    # When a task prints its environment
    out = run(ProcessSpec(argv=[PY, str(TASKS / "echo.py")], env=env, cwd=str(tmp_path), stdin=None, timeout=30))
    seen = json.loads(out.stdout_tail)
    # Then it sees exactly what it was given, and runs in the given directory
    assert seen["env"] == env
    assert "hunter2" not in out.stdout_tail.decode()
    assert seen["cwd"] == str(tmp_path)


def test_an_empty_environment_is_allowed():
    out = run(ProcessSpec(argv=[SH, str(TASKS / "exit_code.sh"), "0"], env={}, cwd=str(TASKS), stdin=None, timeout=30))
    assert out.ok


def test_without_input_stdin_is_at_eof_at_once():
    out = run(shell("read_stdin_forever.sh", stdin=None, timeout=20))
    assert out.ok and not out.timed_out
    assert out.stdout_tail == b"stdin closed\n"


def test_one_megabyte_of_input_arrives_intact():
    data = os.urandom(1 << 20)
    out = run(python("stdin_digest.py", stdin=data))
    assert out.ok, out.stderr_tail
    assert json.loads(out.stdout_tail) == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_input_the_task_never_reads_does_not_deadlock():
    # Far more than a pipe buffer: writing it blocking would hang until the timeout.
    out = run(shell("ignore_stdin.sh", stdin=b"x" * (4 << 20), timeout=20))
    assert out.ok and not out.timed_out


# --- output -------------------------------------------------------------------------------


def test_twenty_megabytes_on_both_streams_keep_exact_tails():
    size = 20 << 20
    out = run(python("big_output.py", str(size), timeout=120))
    assert out.ok, out.stderr_tail[-500:]
    assert out.stdout_bytes == size and out.stderr_bytes == size
    assert out.stdout_tail == patterns.stream_bytes(b"out", size)[-65536:]
    assert out.stderr_tail == patterns.stream_bytes(b"err", size)[-65536:]


def test_short_output_is_kept_whole():
    out = run(shell("both_streams.sh"))
    assert out.stdout_tail == b"out one\nout two\n"
    assert out.stderr_tail == b"err one\nerr two"
    assert (out.stdout_bytes, out.stderr_bytes) == (16, 15)


def test_tail_size_is_configurable():
    out = run(shell("both_streams.sh", tail_bytes=4))
    assert out.stdout_tail == b"two\n" and out.stdout_bytes == 16


def test_log_file_gets_all_output_with_stream_markers(tmp_path):
    log = tmp_path / "task.log"
    log.write_bytes(b"earlier run\n")
    out = run(shell("both_streams.sh", log_path=str(log)))
    assert out.ok and out.log_error is None
    text = log.read_text()
    assert text.startswith("earlier run\n==> phlask: start pid=%d argv=" % out.pid)
    body = text.split("<==\n", 1)[1]
    # A marker precedes each stream's output (how the two interleave depends on the
    # scheduler); a marker always starts its own line, even after "err two" without one.
    assert body.startswith(("==> stdout <==\nout one\n", "==> stderr <==\nerr one\n"))
    assert "==> stderr <==\nerr one\n" in body and "out one\n" in body
    assert "err two\n==> " in body
    assert body.endswith("\n==> phlask: end exit status 0 <==\n")
    lines = [ln for ln in body.splitlines() if not ln.startswith("==> ")]
    assert sorted(lines) == ["err one", "err two", "out one", "out two"]


def test_an_unwritable_log_is_reported_and_the_task_still_runs(tmp_path):
    out = run(shell("both_streams.sh", log_path=str(tmp_path / "no" / "such" / "dir.log")))
    assert out.ok
    assert out.stdout_tail == b"out one\nout two\n"
    assert "cannot open log file" in out.log_error


def test_tail_decoding_drops_a_cut_character():
    assert supervise.decode_tail("☃x".encode()[1:]) == "x"
    assert supervise.decode_tail(b"\xff ok") == "\ufffd ok"


# --- timeout, cancel, process groups ----------------------------------------------------


def test_a_task_ignoring_sigterm_is_killed_after_the_grace():
    # Given a task that ignores SIGTERM, a 1 s timeout and a 0.5 s grace
    out = run(shell("ignore_term.sh", timeout=1.0, kill_grace=0.5))
    # Then it was killed by SIGKILL, no sooner than timeout + grace
    assert out.timed_out and not out.cancelled
    assert out.signal == "SIGKILL" and out.exit_code is None
    assert 1.5 <= out.duration < 20
    assert out.stdout_tail == b"ready\n"
    assert out.error.startswith("timed out after")


def test_a_task_handling_sigterm_exits_on_its_own_terms():
    out = run(shell("graceful_term.sh", timeout=1.0, kill_grace=20))
    assert out.timed_out
    assert out.exit_code == 3
    assert b"cleaning up" in out.stdout_tail
    assert out.duration < 15  # did not wait for the whole grace


def test_grandchildren_die_at_timeout(tmp_path):
    pidfile = tmp_path / "pids"
    out = run(shell("spawn_tree.sh", str(pidfile), "wait", timeout=2.0, kill_grace=0.5))
    assert out.timed_out
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 4
    assert wait_dead(pids) == []


def test_background_children_die_when_the_leader_exits(tmp_path):
    pidfile = tmp_path / "pids"
    out = run(shell("spawn_tree.sh", str(pidfile), "exit", timeout=60))
    # The leader exited 0 although its children still held stdout open: run did not wait for them.
    assert out.ok and not out.timed_out
    assert out.stdout_tail == b"started\n"
    assert out.duration < 20
    assert wait_dead([int(p) for p in pidfile.read_text().split()]) == []


def test_an_escaped_descendant_holding_the_pipes_does_not_hang_run():
    # Given a task leaving a process in its own session with our stdout/stderr open
    out = run(python("escape_setsid.py", "1000", timeout=60))
    escapee = int(out.stdout_tail.split()[0])
    try:
        # Then run returns shortly after the leader exits, not when the escapee does
        assert out.ok
        assert out.duration < 20
    finally:
        os.kill(escapee, signal.SIGKILL)


def test_cancel_stops_the_task_like_a_timeout(tmp_path):
    # Given a task that ignores SIGTERM, and a cancel set once it is ready
    cancel = threading.Event()
    started = threading.Event()
    ready = tmp_path / "ready"

    def cancel_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.set()

    canceller = threading.Thread(target=cancel_when_ready)
    canceller.start()
    out = run(shell("ignore_term.sh", str(ready), timeout=60, kill_grace=0.5), cancel=cancel,
              on_start=lambda pid: started.set())
    canceller.join()
    # Then it was stopped with SIGTERM, then SIGKILL after the grace, and marked cancelled
    assert started.is_set()
    assert out.cancelled and not out.timed_out
    assert out.signal == "SIGKILL"
    assert out.duration < 30
    assert out.error == "cancelled by the runner (shutdown)"


def test_a_cancel_set_before_start_stops_the_task_at_once():
    cancel = threading.Event()
    cancel.set()
    out = run(shell("sleep.sh", "1000", timeout=60, kill_grace=5), cancel=cancel)
    assert out.cancelled and out.signal == "SIGTERM"
    assert out.duration < 30


def test_on_start_gets_the_pid_and_its_failure_kills_the_task():
    seen = []
    out = run(shell("exit_code.sh", "0"), on_start=seen.append)
    assert seen == [out.pid]

    def boom(pid: int) -> None:
        seen.append(pid)
        raise RuntimeError("runner bug")

    with pytest.raises(RuntimeError, match="runner bug"):
        run(shell("sleep.sh", "1000"), on_start=boom)
    assert wait_dead([seen[-1]]) == []


def test_many_runs_leave_no_zombies(tmp_path):
    for i in range(20):
        run(shell("exit_code.sh", str(i % 3)))
    run(shell("spawn_tree.sh", str(tmp_path / "pids"), "exit"))
    run(shell("ignore_term.sh", timeout=0.3, kill_grace=0.2))
    assert my_zombies() == []


def test_concurrent_runs_from_many_threads_keep_their_own_output():
    results: dict[int, Outcome] = {}

    def work(i: int) -> None:
        results[i] = run(python("echo.py", f"task-{i}", stdin=f"input-{i}".encode()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, out in results.items():
        seen = json.loads(out.stdout_tail)
        assert (seen["args"], seen["stdin"]) == ([f"task-{i}"], f"input-{i}")
    assert len(results) == 12
    assert my_zombies() == []


# --- spawn failures -------------------------------------------------------------------------


def test_a_missing_interpreter_is_a_spawn_error_not_an_exception():
    out = run(ProcessSpec(argv=["/nonexistent/bin/php", "x.php"], env={}, cwd=str(TASKS), stdin=None, timeout=5))
    assert out.spawn_error == "cannot start /nonexistent/bin/php: No such file or directory"
    assert out.exit_code is None and out.pid is None and not out.ok
    assert out.error == out.spawn_error
    assert out.finished_at >= out.started_at


def test_a_non_executable_interpreter_is_a_spawn_error(tmp_path):
    fake = tmp_path / "php"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o644)
    out = run(ProcessSpec(argv=[str(fake)], env={}, cwd=str(tmp_path), stdin=None, timeout=5))
    assert out.spawn_error == f"cannot start {fake}: Permission denied"


def test_a_missing_working_directory_is_a_spawn_error(tmp_path):
    out = run(ProcessSpec(argv=[SH, "-c", "true"], env={}, cwd=str(tmp_path / "gone"), stdin=None, timeout=5))
    assert out.spawn_error.startswith(f"cannot change to working directory {tmp_path / 'gone'}")


def test_a_nul_byte_in_an_argument_is_a_spawn_error():
    out = run(shell("echo.sh", "a\0b"))
    assert out.spawn_error and "null" in out.spawn_error


# --- result file --------------------------------------------------------------------------


def result_run(tmp_path: Path, mode: str) -> Outcome:
    result = tmp_path / "result.json"
    spec = shell("write_result.sh", mode, tmp=tmp_path, result_file=str(result))
    spec.env["PHLASK_RESULT_FILE"] = str(result)
    return run(spec)


def test_a_json_result_is_read(tmp_path):
    out = result_run(tmp_path, "ok")
    assert out.result == {"rows": 1200, "name": "naïve"} and out.result_error is None
    assert out.result_fields()["result"] == {"rows": 1200, "name": "naïve"}


@pytest.mark.parametrize("mode", ["none", "empty", "null"])
def test_no_result(tmp_path, mode):
    out = result_run(tmp_path, mode)
    assert out.ok and out.result is None and out.result_error is None
    assert "result" not in out.result_fields()


def test_a_result_of_exactly_the_limit_is_read(tmp_path):
    out = result_run(tmp_path, "exact")
    assert out.result_error is None and len(out.result) == (1 << 20) - 2


def test_a_result_over_the_limit_is_refused(tmp_path):
    out = result_run(tmp_path, "big")
    assert out.result is None
    assert out.result_error == "result file is 1048577 bytes, over the limit of 1048576 bytes"


@pytest.mark.parametrize("mode, message", [
    ("bad", "result file is not valid JSON: Expecting ',' delimiter"),
    ("nan", "result file is not valid JSON: NaN is not valid JSON"),
])
def test_invalid_json_is_reported(tmp_path, mode, message):
    out = result_run(tmp_path, mode)
    assert out.result is None and out.result_error.startswith(message)
    assert out.ok  # the process itself succeeded; the runner decides what a bad result means


@pytest.mark.parametrize("mode, message", [
    ("symlink", "is a symlink"),
    ("fifo", "is not a regular file"),
])
def test_a_result_that_is_not_a_regular_file_is_not_followed(tmp_path, mode, message):
    out = result_run(tmp_path, mode)
    assert out.result is None and message in out.result_error


# --- limits -------------------------------------------------------------------------------


def test_resource_limits_apply_to_the_child():
    limits = Limits(cpu_seconds=30, memory_bytes=1 << 30, open_files=64, processes=500)
    out = run(python("limits.py", limits=limits))
    assert out.ok, out.stderr_tail
    seen = json.loads(out.stdout_tail)
    assert seen["cpu"] == [30, 31]
    assert seen["data"] == [1 << 30, 1 << 30]
    assert seen["nofile"] == [64, 64]
    assert seen["nproc"] == [500, 500]


def test_without_limits_the_child_inherits_the_runners():
    out = run(python("limits.py"))
    import resource
    assert json.loads(out.stdout_tail)["nofile"] == list(resource.getrlimit(resource.RLIMIT_NOFILE))


def test_a_cpu_limit_stops_a_busy_task():
    out = run(shell("busy.sh", limits=Limits(cpu_seconds=1), timeout=60))
    assert out.signal in ("SIGXCPU", "SIGKILL") and not out.timed_out


# --- result record shape ------------------------------------------------------------------


def test_result_fields_fit_the_result_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from phlask import _contract

    out = run(shell("both_streams.sh"))
    record = {"id": "t-1", "attempt": 1, "state": "succeeded", "reason": None, "error": out.error,
              "runner": {"host": "worker-1", "pid": os.getpid()}, **out.result_fields()}
    jsonschema.Draft202012Validator(
        _contract.result_schema(), format_checker=jsonschema.FormatChecker()
    ).validate(record)
    assert record["stdout_tail"] == "out one\nout two\n"
    assert record["started_at"].endswith("Z") and record["duration"] >= 0


# --- orphans --------------------------------------------------------------------------------


def test_a_subreaper_runner_sweeps_orphans_that_escaped_with_setsid():
    proc = subprocess.run([PY, str(TASKS / "subreaper_runner.py")], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    seen = json.loads(proc.stdout)
    assert seen["subreaper"] is True
    # The escapee was reparented to the runner, then killed and reaped by the sweep.
    assert seen["parent_before"] == seen["me"]
    assert seen["swept"] == [seen["escapee"]]
    assert not seen["alive_after"] and not seen["exists_after"]
    assert seen["second_sweep"] == []


def test_kill_orphans_spares_excluded_and_young_children():
    # Other children of this test process (a fixture's server, say) are always excluded.
    others = [p.pid for p in supervise._children_of(os.getpid())]
    child = subprocess.Popen([SH, str(TASKS / "sleep.sh"), "1000"], start_new_session=True)
    try:
        assert supervise.kill_orphans(exclude_pids=[*others, child.pid], min_age=0) == []
        assert supervise.kill_orphans(exclude_pids=others, min_age=3600) == []
        assert alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_limit_above_the_runners_hard_limit_is_lowered_to_it():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    assert Limits(open_files=hard + 1000).rlimits() == [(resource.RLIMIT_NOFILE, (hard, hard))]


# --- without pidfd (kernels before 5.3) ---------------------------------------------------


def test_without_pidfd_exit_is_polled(monkeypatch, tmp_path):
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(supervise.os, "pidfd_open", no_pidfd)
    assert run(shell("exit_code.sh", "7")).exit_code == 7
    out = run(shell("spawn_tree.sh", str(tmp_path / "pids"), "exit", timeout=60))
    assert out.ok and out.duration < 20
    assert wait_dead([int(p) for p in (tmp_path / "pids").read_text().split()]) == []
    out = run(shell("ignore_term.sh", timeout=1.0, kill_grace=0.3))
    assert out.timed_out and out.signal == "SIGKILL"


def test_wait_returns_when_the_watched_descriptor_becomes_readable_and_leaves_it_unread():
    # Given a supervisor with nothing to do, watching a pipe that becomes readable in 0.2 s
    sup = supervise.Supervisor()
    r, w = os.pipe()
    timer = threading.Timer(0.2, os.write, (w, b"x"))
    timer.start()
    try:
        t0 = time.monotonic()
        # When it waits up to 10 s
        done = sup.wait(10, watch=r)
        # Then it returns at once, and the byte is still there for the descriptor's owner
        assert done == [] and time.monotonic() - t0 < 5
        assert os.read(r, 1) == b"x"
        # and a wait without the watch no longer sees it
        t0 = time.monotonic()
        assert sup.wait(0.2) == [] and time.monotonic() - t0 >= 0.15
    finally:
        timer.cancel()
        sup.close()
        os.close(r)
        os.close(w)
