"""Run one task as a supervised OS process. Knows nothing of brokers or envelopes.

:func:`run` starts ``argv`` in its own session and process group with exactly the
environment it is given, feeds it stdin, drains stdout and stderr into bounded tails,
enforces a timeout (SIGTERM to the group, SIGKILL after a grace), honours a cancel
event the same way, kills whatever is left of the group when the leader exits, reaps
the child, and reads the optional JSON result file. It never raises for anything the
task does: failures to start are reported in :attr:`Outcome.spawn_error`.

Everything happens in the calling thread (one ``selectors`` loop, no helper threads, no
signal handlers, no module state), so a runner can call it from many worker threads.

Log format (``ProcessSpec.log_path``): the file is opened once in append mode. A run
writes ``==> phlask: start pid=N argv=[...] <==``, then the output exactly as received,
with a ``==> stdout <==`` / ``==> stderr <==`` marker line each time the stream changes
(a newline is inserted before a marker if the output did not end with one), and finally
``==> phlask: end <summary> <==``.

Orphans: a task can escape its process group (``setsid``). A runner that calls
:func:`become_subreaper` at start-up inherits such processes when their parents die, and
can clean them up with :func:`kill_orphans`.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import selectors
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .wire import DEFAULTS, OUTPUT_TAIL_BYTES, RESULT_FILE_MAX_BYTES

_READ_SIZE = 65536  # a Linux pipe holds 64 KiB by default; one read empties it
_WRITE_SIZE = 65536
_CANCEL_POLL = 0.1  # threading.Event has no file descriptor, so cancel is polled
_EXIT_POLL = 0.05  # only without pidfd (pre-5.3 kernels)
#: After the leader exits, how long to keep reading pipes that escaped descendants hold open.
DRAIN_AFTER_EXIT = 1.0


@dataclass
class Limits:
    """Optional per-task resource limits, applied with setrlimit in the child. None = unlimited.

    ``memory_bytes`` is RLIMIT_DATA (heap and private writable mappings), not RLIMIT_AS:
    V8 and other JITs reserve gigabytes of address space they never use. ``processes``
    is RLIMIT_NPROC, which Linux counts per user, not per task, and does not enforce for
    root: it only bounds a task that runs under its own uid.
    """

    cpu_seconds: int | None = None
    memory_bytes: int | None = None
    open_files: int | None = None
    processes: int | None = None

    def rlimits(self) -> list[tuple[int, tuple[int, int]]]:
        """Return the (resource, (soft, hard)) pairs to set.

        A limit above the runner's own hard limit is lowered to it: an unprivileged
        process cannot raise a hard limit, and failing the spawn would help nobody.
        """
        wanted = [
            # The soft CPU limit sends SIGXCPU (catchable), the hard one SIGKILL a second later.
            (resource.RLIMIT_CPU, self.cpu_seconds, 1),
            (resource.RLIMIT_DATA, self.memory_bytes, 0),
            (resource.RLIMIT_NOFILE, self.open_files, 0),
            (resource.RLIMIT_NPROC, self.processes, 0),
        ]
        out = []
        for res, value, extra in wanted:
            if value is None:
                continue
            ceiling = resource.getrlimit(res)[1]
            hard = value + extra
            if ceiling != resource.RLIM_INFINITY:
                value, hard = min(value, ceiling), min(hard, ceiling)
            out.append((res, (value, hard)))
        return out


@dataclass
class ProcessSpec:
    """What to run and how. See the module docstring for the log format."""

    argv: list[str]  # absolute interpreter path first; never run through a shell
    env: dict[str, str]  # the complete environment of the child; nothing else leaks
    cwd: str
    stdin: bytes | None = None  # written then closed; None or b"" = stdin at EOF at once
    timeout: float = DEFAULTS["timeout_seconds"]
    kill_grace: float = DEFAULTS["kill_grace_seconds"]  # SIGTERM at timeout, SIGKILL after this
    result_file: str | None = None  # JSON the task may write; read after exit
    log_path: str | None = None  # full stdout+stderr appended here, besides the tails
    limits: Limits | None = None
    tail_bytes: int = OUTPUT_TAIL_BYTES
    result_max_bytes: int = RESULT_FILE_MAX_BYTES


@dataclass
class Outcome:
    """What happened to one process. Times are Unix seconds; ``duration`` is monotonic."""

    exit_code: int | None = None
    signal: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    duration: float = 0.0
    stdout_tail: bytes = b""
    stderr_tail: bytes = b""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    result: Any | None = None
    result_error: str | None = None
    spawn_error: str | None = None
    pid: int | None = None
    log_error: str | None = None  # the log could not be opened or written; the tails are intact

    @property
    def ok(self) -> bool:
        """True when the process exited with status 0 on its own."""
        ok = self.exit_code == 0 and self.spawn_error is None
        return ok and not self.timed_out and not self.cancelled

    @property
    def error(self) -> str | None:
        """A one-line explanation of why the attempt failed, or None when :attr:`ok`."""
        if self.spawn_error is not None:
            return self.spawn_error
        if self.timed_out:
            how = f"killed by {self.signal}" if self.signal else f"exit status {self.exit_code}"
            return f"timed out after {self.duration:.3f} s ({how})"
        if self.cancelled:
            return "cancelled by the runner (shutdown)"
        if self.signal is not None:
            return f"killed by {self.signal}"
        if self.exit_code != 0:
            return f"exited with status {self.exit_code}"
        return None

    def result_fields(self) -> dict[str, Any]:
        """Return the process part of a spec/result.schema.json record.

        Keys: exit_code, signal, timed_out, started_at, finished_at (RFC 3339 UTC),
        duration, stdout_tail, stderr_tail (UTF-8 with replacement), stdout_bytes,
        stderr_bytes, and result when the task wrote one. The runner adds id, attempt,
        state, reason, error and runner.
        """
        out: dict[str, Any] = {
            "exit_code": self.exit_code, "signal": self.signal, "timed_out": self.timed_out,
            "started_at": rfc3339(self.started_at), "finished_at": rfc3339(self.finished_at),
            "duration": round(max(self.duration, 0.0), 6),
            "stdout_tail": decode_tail(self.stdout_tail, self.stdout_bytes > len(self.stdout_tail)),
            "stderr_tail": decode_tail(self.stderr_tail, self.stderr_bytes > len(self.stderr_tail)),
            "stdout_bytes": self.stdout_bytes, "stderr_bytes": self.stderr_bytes,
        }
        if self.result is not None:
            out["result"] = self.result
        return out


def rfc3339(ts: float) -> str:
    """Format Unix seconds as an RFC 3339 UTC instant with milliseconds."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode_tail(tail: bytes, cut: bool = True) -> str:
    """Decode an output tail as UTF-8 with replacement.

    A tail ``cut`` from a longer stream may start inside a multi-byte character; those
    leading continuation bytes are dropped rather than shown as a replacement character.
    """
    skip = 0
    while cut and skip < min(3, len(tail) - 1) and 0x80 <= tail[skip] <= 0xBF:
        skip += 1
    return tail[skip:].decode("utf-8", "replace")


def signal_name(signum: int) -> str:
    """Return ``SIGKILL`` for 9, ``SIGRTMIN+3`` for real-time signals, ``SIG<n>`` otherwise."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        if signal.SIGRTMIN < signum < signal.SIGRTMAX:
            return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
        return f"SIG{signum}"


class _Tail:
    """The last ``limit`` bytes of a stream, and its total size."""

    __slots__ = ("buf", "limit", "total")

    def __init__(self, limit: int):
        self.buf = bytearray()
        self.limit = limit
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buf += chunk
        # Trim only when twice the limit: amortised O(1) per byte instead of a memmove per read.
        if len(self.buf) > 2 * self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def value(self) -> bytes:
        return bytes(self.buf[len(self.buf) - self.limit:]) if self.limit else b""


class _Log:
    """Append-only framed log of both streams. Failures are recorded, never raised."""

    def __init__(self, path: str | None):
        self.file = None
        self.error: str | None = None
        self.stream: str | None = None
        self.at_line_start = True
        if path is not None:
            try:
                self.file = open(path, "ab")
            except OSError as exc:
                self.error = f"cannot open log file {path}: {exc.strerror}"

    def _write(self, data: bytes) -> None:
        if self.file is None or not data:
            return
        try:
            self.file.write(data)
        except OSError as exc:
            self.error = f"cannot write log file {self.file.name}: {exc.strerror}"
            self._close()
        else:
            self.at_line_start = data.endswith(b"\n")

    def marker(self, text: str) -> None:
        self._write((b"" if self.at_line_start else b"\n") + f"==> {text} <==\n".encode())

    def output(self, stream: str, chunk: bytes) -> None:
        if stream != self.stream:
            self.stream = stream
            self.marker(stream)
        self._write(chunk)

    def _close(self) -> None:
        file, self.file = self.file, None
        try:
            file.close()
        except OSError:  # a failed flush was already reported, or is lost with the disk
            pass

    def close(self, summary: str) -> None:
        if self.file is not None:
            self.marker(f"phlask: end {summary}")
            self._close()


def _spawn_error(exc: BaseException, spec: ProcessSpec) -> str:
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        if exc.filename == spec.cwd and exc.filename != spec.argv[0]:
            return f"cannot change to working directory {spec.cwd}: {reason}"
        if exc.errno == errno.ENOEXEC:
            return f"cannot execute {spec.argv[0]}: not a binary and has no #! line ({reason})"
        return f"cannot start {spec.argv[0]}: {reason}"
    if isinstance(exc, subprocess.SubprocessError):
        return f"cannot apply resource limits before starting {spec.argv[0]}: {exc}"
    return f"cannot start {spec.argv[0] if spec.argv else '(empty argv)'}: {exc}"


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; return False when it has no members left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a member changed uid (setuid binary): nothing more a runner can do to it
    return True


def _leader_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (so its pid, the group id, stays ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def run(spec: ProcessSpec, cancel: threading.Event | None = None,
        on_start: Callable[[int], None] | None = None) -> Outcome:
    """Run ``spec`` to completion and return what happened. Blocks the calling thread.

    ``cancel``, when set, stops the process like a timeout (SIGTERM to the group, SIGKILL
    after ``spec.kill_grace``) and marks the outcome cancelled. ``on_start(pid)`` is called
    once the process exists; if it raises, the process group is killed and reaped and the
    exception propagates. Nothing the task does makes ``run`` raise.
    """
    out = Outcome()
    log = _Log(spec.log_path)
    limits = spec.limits.rlimits() if spec.limits else []
    preexec = None
    if limits:
        # preexec_fn forces fork() instead of vfork(), so it is used only when needed.
        def preexec() -> None:
            for res, value in limits:
                resource.setrlimit(res, value)

    stdin_data = spec.stdin or b""
    out.started_at = time.time()
    t0 = time.monotonic()
    try:
        if not spec.argv:
            raise ValueError("argv is empty")
        proc = subprocess.Popen(
            spec.argv, stdin=subprocess.PIPE if stdin_data else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=spec.env, cwd=spec.cwd,
            close_fds=True, start_new_session=True, preexec_fn=preexec, bufsize=0,
        )
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        out.spawn_error = _spawn_error(exc, spec)
        out.finished_at = time.time()
        out.duration = time.monotonic() - t0
        log.marker(f"phlask: could not start argv={spec.argv!r}: {out.spawn_error}")
        log.close("spawn failed")
        out.log_error = log.error
        return out

    pid = out.pid = proc.pid
    log.marker(f"phlask: start pid={pid} argv={spec.argv!r}")
    try:
        if on_start is not None:
            on_start(pid)
        _supervise(proc, spec, stdin_data, cancel, out, log, t0)
    except BaseException:
        _killpg(pid, signal.SIGKILL)
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                f.close()
        log.close("aborted by the runner")
        raise

    out.finished_at = time.time()
    out.duration = time.monotonic() - t0
    if spec.result_file is not None:
        out.result, out.result_error = read_result(spec.result_file, spec.result_max_bytes)
    log.close(out.error or "exit status 0")
    out.log_error = log.error
    return out


def _supervise(proc: subprocess.Popen, spec: ProcessSpec, stdin_data: bytes,
               cancel: threading.Event | None, out: Outcome, log: _Log, t0: float) -> None:
    """The select loop of :func:`run`: feed, drain, watch the clock, kill, reap."""
    pid = proc.pid
    sel = selectors.PollSelector()  # poll: no extra fd and no setup syscalls, unlike epoll
    tails = {"stdout": _Tail(spec.tail_bytes), "stderr": _Tail(spec.tail_bytes)}
    for name in ("stdout", "stderr"):
        sel.register(getattr(proc, name).fileno(), selectors.EVENT_READ, name)
    pending = memoryview(stdin_data)
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)  # the child may never read it
        sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE, "stdin")
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ, "exit")

    term_deadline = t0 + spec.timeout
    kill_deadline: float | None = None  # set once SIGTERM is sent
    drain_deadline: float | None = None  # set once the leader has exited
    exited = False
    open_pipes = 2

    def close_stdin() -> None:
        if proc.stdin is not None and not proc.stdin.closed:
            sel.unregister(proc.stdin.fileno())
            proc.stdin.close()

    def terminate(cancelled: bool) -> None:
        nonlocal kill_deadline
        out.cancelled, out.timed_out = cancelled, not cancelled
        kill_deadline = time.monotonic() + spec.kill_grace
        _killpg(pid, signal.SIGTERM)

    try:
        while True:
            now = time.monotonic()
            if not exited and kill_deadline is None:
                stop = now >= term_deadline or (cancel is not None and cancel.is_set())
                # Do not call a task that has already finished timed out; its exit event
                # is simply not processed yet.
                if stop and _leader_exited(pid):
                    exited = True
                elif stop:
                    terminate(cancelled=now < term_deadline)
            if kill_deadline is not None and now >= kill_deadline:
                _killpg(pid, signal.SIGKILL)
                kill_deadline = float("inf")  # sent; now wait for the leader to die
                if exited:
                    drain_deadline = min(drain_deadline or now, now + DRAIN_AFTER_EXIT)
            if drain_deadline is not None and (open_pipes == 0 or now >= drain_deadline):
                break

            wait = (term_deadline if kill_deadline is None else kill_deadline) - now
            if drain_deadline is not None:
                wait = min(wait, drain_deadline - now)
            if cancel is not None and kill_deadline is None:
                wait = min(wait, _CANCEL_POLL)
            if pidfd is None and not exited:
                wait = min(wait, _EXIT_POLL)
            for key, _ in sel.select(None if wait == float("inf") else max(wait, 0.0)):
                name = key.data
                if name == "stdin":
                    try:
                        n = os.write(key.fd, pending[:_WRITE_SIZE])
                    except BlockingIOError:
                        continue
                    except OSError:  # EPIPE: the child closed its stdin; that is its right
                        pending = pending[len(pending):]
                        n = 0
                    pending = pending[n:]
                    if not pending:
                        close_stdin()
                elif name == "exit":
                    sel.unregister(key.fd)
                    exited = True
                else:
                    try:
                        chunk = os.read(key.fd, _READ_SIZE)
                    except BlockingIOError:
                        continue
                    if chunk:
                        tails[name].add(chunk)
                        log.output(name, chunk)
                    else:
                        sel.unregister(key.fd)
                        open_pipes -= 1
            if pidfd is None and not exited:
                exited = _leader_exited(pid)
            if exited and drain_deadline is None:
                # The leader is a zombie, so its pid (the group id) cannot be reused yet.
                # Background children must not outlive the task. During a stop's grace
                # period the group keeps its grace; the kill comes at kill_deadline.
                close_stdin()
                if kill_deadline is None or kill_deadline == float("inf"):
                    _killpg(pid, signal.SIGKILL)
                    drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT
                else:
                    # Wait for the group to finish its cleanup or for the grace to end.
                    drain_deadline = kill_deadline + DRAIN_AFTER_EXIT
                    if open_pipes == 0:
                        drain_deadline = time.monotonic()
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)

    # Whatever is left of the group (members that closed their pipes) dies with the leader.
    _killpg(pid, signal.SIGKILL)
    rc = proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            f.close()
    if rc < 0:
        out.signal = signal_name(-rc)
    else:
        out.exit_code = rc
    out.stdout_tail, out.stdout_bytes = tails["stdout"].value(), tails["stdout"].total
    out.stderr_tail, out.stderr_bytes = tails["stderr"].value(), tails["stderr"].total


def read_result(path: str, limit: int = RESULT_FILE_MAX_BYTES) -> tuple[Any | None, str | None]:
    """Read the task's JSON result file. Return (value, None) or (None, why it is unusable).

    A missing or empty file is no result and no error. The file must be a regular file
    (a symlink or FIFO planted by the task could make the runner disclose or block on
    another file), at most ``limit`` bytes, and strict JSON (no NaN or Infinity).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, f"result file {path} is a symlink; write a regular file instead"
        return None, f"cannot open result file {path}: {exc.strerror}"
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"result file {path} is not a regular file"
        if st.st_nlink > 1:
            return None, f"result file {path} has {st.st_nlink} hard links; write a new file instead"
        data = f.read(limit + 1)
    if len(data) > limit:
        size = max(st.st_size, len(data))
        return None, f"result file is {size} bytes, over the limit of {limit} bytes"
    if not data.strip():
        return None, None

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(data, parse_constant=reject_constant), None
    except ValueError as exc:
        return None, f"result file is not valid JSON: {exc}"


# --- orphans -------------------------------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux prctl).

    A task that escapes its process group with ``setsid`` and outlives its parent is then
    reparented to the runner instead of init, so :func:`kill_orphans` can find it. Call
    once at runner start-up; it affects the whole process. Returns False where the
    platform does not support it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class _Proc(NamedTuple):
    pid: int
    state: str
    pgrp: int
    age: float


def _children_of(parent: int) -> list[_Proc]:
    """Scan /proc for the direct children of ``parent``."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # exited meanwhile
        # comm (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = raw[raw.rindex(b")") + 2:].split()
        if int(fields[1]) == parent:
            age = uptime - int(fields[19]) / hz
            found.append(_Proc(int(entry.name), fields[0].decode(), int(fields[2]), age))
    return found


def kill_orphans(exclude_pids: Iterable[int], min_age: float = 1.0) -> list[int]:
    """SIGKILL and reap this process's children that are not live tasks. Best effort.

    Meant for a runner that called :func:`become_subreaper`: every child it did not
    start itself is a descendant some task left behind. ``exclude_pids`` must hold the
    pid of every task :func:`run` is still supervising (from ``on_start`` until ``run``
    returns), so that a task leader is never reaped behind ``run``'s back. Children
    younger than ``min_age`` seconds are left for the next call, which covers a task
    spawned but not yet reported by ``on_start``. Returns the pids signalled or reaped.
    """
    exclude = set(exclude_pids)
    victims = [p for p in _children_of(os.getpid()) if p.pid not in exclude and p.age >= min_age]
    # No pid-reuse race: a child's pid stays ours, even after it dies, until we reap it.
    for p in victims:
        if p.state != "Z":
            # Kill its whole group when it leads one (a setsid escapee and its children).
            if p.pgrp == p.pid and p.pgrp != os.getpgrp():
                _killpg(p.pid, signal.SIGKILL)
            else:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    deadline = time.monotonic() + 1.0
    waiting = {p.pid for p in victims}
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)
    return [p.pid for p in victims]
