"""Run tasks as supervised OS processes. Knows nothing of brokers or envelopes.

A :class:`Supervisor` starts each ``argv`` in its own session and process group with
exactly the environment it is given, feeds it stdin, drains stdout and stderr into
bounded tails, enforces a timeout (SIGTERM to the group, SIGKILL after a grace), honours
a cancel the same way, kills whatever is left of the group when the leader exits, reaps
the child, and reads the optional JSON result file. It never raises for anything a task
does: failures to start are reported in :attr:`Outcome.spawn_error`. :func:`run` is the
one-process form.

A supervisor is driven from one thread (one ``poll`` over every task's pipes and pidfd;
no thread per task, no signal handlers, no module state): the runner's loop calls
:meth:`Supervisor.wait` between its broker calls. Separate supervisors (and :func:`run`
calls) in separate threads do not interfere.

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
import functools
import math
import resource
import select
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _spawn
from .wire import DEFAULTS, OUTPUT_TAIL_BYTES, RESULT_FILE_MAX_BYTES, format_unix

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


#: Unix seconds as an RFC 3339 UTC instant with milliseconds (the wire's form).
rfc3339 = format_unix


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


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class _Child:
    """One supervised process: its pipes, clock and what is known of it so far."""

    __slots__ = ("key", "spec", "out", "log", "pid", "popen", "pidfd", "fds", "tails", "pending",
                 "t0", "term_deadline", "kill_deadline", "drain_deadline", "exited", "open_pipes",
                 "cancel_requested", "on_start", "child_fds")

    def __init__(self, key: Any, spec: ProcessSpec, out: Outcome, log: _Log, t0: float):
        self.key, self.spec, self.out, self.log, self.t0 = key, spec, out, log, t0
        self.pid = 0
        self.popen: subprocess.Popen | None = None
        self.pidfd: int | None = None
        self.fds: dict[str, int] = {}  # our ends: "stdin" / "stdout" / "stderr" -> fd while open
        self.child_fds: list[int] = []  # the child's ends, closed once it has started
        self.tails = (_Tail(spec.tail_bytes), _Tail(spec.tail_bytes))
        self.pending = memoryview(spec.stdin or b"")
        self.term_deadline = t0 + spec.timeout
        self.kill_deadline: float | None = None  # set once SIGTERM is sent
        self.drain_deadline: float | None = None  # set once the leader has exited
        self.exited = False
        self.open_pipes = 2
        self.cancel_requested = False
        self.on_start: Callable[[int], None] | None = None


class Supervisor:
    """Supervise many processes from one thread: one ``poll`` over every task's pipes and
    pidfd, no thread per task.

    :meth:`start` spawns a process for a :class:`ProcessSpec` under a caller's key;
    :meth:`wait` feeds, drains, enforces timeouts (SIGTERM to the group, SIGKILL after the
    grace), kills what is left of a group when its leader exits, reaps, and returns the
    ``(key, Outcome)`` of every process that finished; :meth:`cancel` stops one like a
    timeout (or at once with ``hard``). Only :meth:`wake` may be called from another thread
    (or a signal handler): it makes a blocked :meth:`wait` return early.

    Processes start with libc's ``posix_spawn`` (one vfork-style clone, no Python between
    fork and exec; :mod:`phlask._spawn`) when nothing needs the slower ``subprocess.Popen``:
    an interpreter given as a path and no resource limits to set in the child. Otherwise
    ``Popen`` is used, with the same result. (Spawning from a helper thread, so that the
    caller does not wait while the kernel brings the child to its ``exec``, was measured
    and cost more in thread hand-offs than it saved.) Descriptors are never leaked: the
    spawn path requires every descriptor of this process above 2 to be close-on-exec,
    which :func:`seal_descriptors` ensures.
    """

    def __init__(self) -> None:
        self._poll = select.poll()
        self._by_fd: dict[int, tuple[_Child, str]] = {}
        self._procs: dict[Any, _Child] = {}
        self._done: list[tuple[Any, Outcome]] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | _CLOEXEC)
        self._poll.register(self._wake_r, select.POLLIN)
        self._woken = False
        self._watch: int | None = None
        seal_descriptors()

    def __len__(self) -> int:
        return len(self._procs)

    def pids(self) -> list[int]:
        """The pids of the processes still supervised (spawned and not yet reaped)."""
        return [p.pid for p in self._procs.values()]

    # --- start ---------------------------------------------------------------------------

    def start(self, spec: ProcessSpec, key: Any, on_start: Callable[[int], None] | None = None) -> int | None:
        """Start ``spec`` under ``key`` and return its pid. A process that cannot be started
        is not an exception: None is returned and its outcome (``spawn_error``) comes with
        the next :meth:`wait`. If ``on_start(pid)`` raises, the process group is killed and
        reaped and the exception propagates."""
        out = Outcome()
        log = _Log(spec.log_path)
        out.started_at = time.time()
        t0 = time.monotonic()
        p = _Child(key, spec, out, log, t0)
        p.on_start = on_start
        try:
            if not spec.argv:
                raise ValueError("argv is empty")
            limits = spec.limits.rlimits() if spec.limits else []
            if limits or "/" not in spec.argv[0] or not _spawn.available:
                self._popen(p, limits)
            else:
                self._spawn(p)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            self._failed(p, exc)
            return None
        self._started(p)
        return p.pid

    def _spawn(self, p: _Child) -> None:
        """Start ``p`` with :func:`phlask._spawn.spawn`, with fresh pipes. Raises ValueError
        for an argument or variable with a NUL byte, OSError when it cannot start."""
        spec = p.spec
        argv = [os.fsencode(a) for a in spec.argv]
        envp = [_env_item(k, v) for k, v in spec.env.items()]
        if b"\0" in b"".join(argv) or b"\0" in b"".join(envp) or "=" in "".join(spec.env):
            raise ValueError("embedded null byte, or '=' in an environment variable name")
        cwd = os.fsencode(spec.cwd) if spec.cwd else None
        r_out, w_out = os.pipe2(_CLOEXEC)
        p.child_fds.append(w_out)
        p.fds["stdout"] = r_out
        r_err, w_err = os.pipe2(_CLOEXEC)
        p.child_fds.append(w_err)
        p.fds["stderr"] = r_err
        r_in = None
        if len(p.pending):
            r_in, w_in = os.pipe2(_CLOEXEC)
            p.child_fds.append(r_in)
            os.set_blocking(w_in, False)  # the child may never read it
            p.fds["stdin"] = w_in
        try:
            p.pid = _spawn.spawn(argv[0], argv, envp, stdin=r_in, stdout=w_out, stderr=w_err, cwd=cwd)
        finally:
            _close_all(p.child_fds)  # the child has its own copies now

    def _failed(self, p: _Child, exc: BaseException) -> None:
        spec, out = p.spec, p.out
        if (isinstance(exc, OSError) and exc.filename is None and spec.cwd and p.popen is None
                and not os.path.isdir(spec.cwd)):
            exc = OSError(exc.errno, exc.strerror, spec.cwd)  # say which path failed
        _close_all(p.child_fds)
        _close_all(list(p.fds.values()) if p.popen is None else [])
        p.fds.clear()
        out.spawn_error = _spawn_error(exc, spec)
        out.finished_at = time.time()
        out.duration = time.monotonic() - p.t0
        p.log.marker(f"phlask: could not start argv={spec.argv!r}: {out.spawn_error}")
        p.log.close("spawn failed")
        out.log_error = p.log.error
        self._done.append((p.key, out))

    def _started(self, p: _Child) -> None:
        p.out.pid = p.pid
        if p.log.file is not None:
            p.log.marker(f"phlask: start pid={p.pid} argv={p.spec.argv!r}")
        try:
            p.pidfd = os.pidfd_open(p.pid)
        except (AttributeError, OSError):
            p.pidfd = None
        for name, fd in p.fds.items():
            self._by_fd[fd] = (p, name)
            self._poll.register(fd, select.POLLOUT if name == "stdin" else select.POLLIN)
        if p.pidfd is not None:
            self._by_fd[p.pidfd] = (p, "exit")
            self._poll.register(p.pidfd, select.POLLIN)
        self._procs[p.key] = p
        if p.on_start is not None:
            try:
                p.on_start(p.pid)
            except BaseException:
                self._abort(p)
                raise

    def _popen(self, p: _Child, limits: list[tuple[int, tuple[int, int]]]) -> None:
        preexec = None
        if limits:
            # preexec_fn forces fork() instead of vfork(), so it is used only when needed.
            def preexec() -> None:
                for res, value in limits:
                    resource.setrlimit(res, value)
        spec = p.spec
        proc = subprocess.Popen(
            spec.argv, stdin=subprocess.PIPE if len(p.pending) else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=spec.env, cwd=spec.cwd,
            close_fds=True, start_new_session=True, preexec_fn=preexec, bufsize=0,
        )
        p.popen, p.pid = proc, proc.pid
        p.fds = {"stdout": proc.stdout.fileno(), "stderr": proc.stderr.fileno()}  # type: ignore[union-attr]
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            p.fds["stdin"] = proc.stdin.fileno()

    # --- control -------------------------------------------------------------------------

    def cancel(self, key: Any, hard: bool = False) -> None:
        """Stop the process of ``key`` like a timeout (SIGTERM, SIGKILL after its grace),
        marked cancelled; with ``hard``, SIGKILL its group at once. A process that has
        already exited on its own keeps its own outcome."""
        p = self._procs.get(key)
        if p is None or p.exited or p.drain_deadline is not None:
            return
        p.cancel_requested = True
        if hard and p.kill_deadline != float("inf") and not _leader_exited(p.pid):
            p.out.cancelled, p.out.timed_out = True, False
            p.kill_deadline = float("inf")
            _killpg(p.pid, signal.SIGKILL)

    def wake(self) -> None:
        """Make a :meth:`wait` in progress return soon. Safe from any thread or a signal handler."""
        try:
            os.write(self._wake_w, b"w")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def close(self) -> None:
        """Kill and reap every process still supervised, and release the descriptors."""
        for p in list(self._procs.values()):
            self._abort(p)
        self._poll.unregister(self._wake_r)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # --- the loop ------------------------------------------------------------------------

    def wait(self, timeout: float | None = None, watch: int | None = None) -> list[tuple[Any, Outcome]]:
        """Supervise until at least one process finished, :meth:`wake` was called, the
        descriptor ``watch`` (if given; it is not read) became readable, or ``timeout``
        seconds passed (None: no limit; 0: one non-blocking round). Returns the
        ``(key, Outcome)`` of every process that finished, possibly none."""
        if watch is not None:
            self._poll.register(watch, select.POLLIN)
            self._watch = watch
            try:
                return self.wait(timeout)
            finally:
                self._watch = None
                self._poll.unregister(watch)
        end = None if timeout is None else time.monotonic() + timeout
        self._woken = False
        polled = False
        while True:
            now = time.monotonic()
            for p in list(self._procs.values()):
                self._advance(p, now)
            if self._done or self._woken or (polled and timeout == 0):
                break
            wait = float("inf") if end is None else end - now
            if wait <= 0:
                if timeout != 0:
                    break
                wait = 0.0
            for p in self._procs.values():
                wait = min(wait, self._next_event(p, now))
            events = self._poll.poll(None if wait == float("inf") else max(0, math.ceil(wait * 1000)))
            for fd, mask in events:
                self._event(fd, mask)
            polled = True
        done, self._done = self._done, []
        return done

    @staticmethod
    def _next_event(p: _Child, now: float) -> float:
        wait = float("inf")
        if not p.exited and p.kill_deadline is None:
            wait = p.term_deadline - now
        if p.kill_deadline is not None:
            wait = min(wait, p.kill_deadline - now)
        if p.drain_deadline is not None:
            wait = min(wait, p.drain_deadline - now)
        if p.pidfd is None and not p.exited:
            wait = min(wait, _EXIT_POLL)
        return max(wait, 0.0)

    def _event(self, fd: int, mask: int) -> None:
        if fd == self._watch:
            self._woken = True  # left unread: its owner reads it
            return
        if fd == self._wake_r:
            try:
                while os.read(fd, 512):
                    pass
            except BlockingIOError:
                pass
            self._woken = True
            return
        hit = self._by_fd.get(fd)
        if hit is None:
            return
        p, name = hit
        if name == "stdin":
            try:
                n = os.write(fd, p.pending[:_WRITE_SIZE])
            except BlockingIOError:
                return
            except OSError:  # EPIPE: the child closed its stdin; that is its right
                n = len(p.pending)
            p.pending = p.pending[n:]
            if not p.pending:
                self._close_stdin(p)
        elif name == "exit":
            self._forget(fd)
            p.exited = True
        else:
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return
            if chunk:
                p.tails[0 if name == "stdout" else 1].add(chunk)
                p.log.output(name, chunk)
            else:
                self._forget(fd)
                p.open_pipes -= 1

    def _advance(self, p: _Child, now: float) -> None:
        """Apply the clock to one process: stop it at its deadline, kill what is left of its
        group once its leader exited, finish it when its pipes are drained."""
        if not p.exited and p.pidfd is None:
            p.exited = _leader_exited(p.pid)
        if not p.exited and p.kill_deadline is None:
            stop = now >= p.term_deadline or p.cancel_requested
            # Do not call a task that has already finished timed out; its exit event
            # is simply not processed yet.
            if stop and _leader_exited(p.pid):
                p.exited = True
            elif stop:
                p.out.cancelled, p.out.timed_out = now < p.term_deadline, now >= p.term_deadline
                p.kill_deadline = now + p.spec.kill_grace
                _killpg(p.pid, signal.SIGTERM)
        if p.kill_deadline is not None and now >= p.kill_deadline:
            _killpg(p.pid, signal.SIGKILL)
            p.kill_deadline = float("inf")  # sent; now wait for the leader to die
            if p.exited:
                p.drain_deadline = min(p.drain_deadline or now, now + DRAIN_AFTER_EXIT)
        if p.exited and p.drain_deadline is None:
            # The leader is a zombie, so its pid (the group id) cannot be reused yet.
            # Background children must not outlive the task. During a stop's grace
            # period the group keeps its grace; the kill comes at kill_deadline.
            self._close_stdin(p)
            if p.kill_deadline is None or p.kill_deadline == float("inf"):
                _killpg(p.pid, signal.SIGKILL)
                p.drain_deadline = now + DRAIN_AFTER_EXIT
            else:
                # Wait for the group to finish its cleanup or for the grace to end.
                p.drain_deadline = p.kill_deadline + DRAIN_AFTER_EXIT
        if p.drain_deadline is not None and (p.open_pipes == 0 or now >= p.drain_deadline):
            self._finish(p)

    def _forget(self, fd: int) -> None:
        self._poll.unregister(fd)
        del self._by_fd[fd]

    def _close_stdin(self, p: _Child) -> None:
        fd = p.fds.pop("stdin", None)
        if fd is not None:
            self._forget(fd)
            if p.popen is not None:
                p.popen.stdin.close()  # type: ignore[union-attr]
            else:
                os.close(fd)

    def _release(self, p: _Child) -> int:
        """Unregister and close everything of ``p``; SIGKILL what is left of its group; reap
        the leader. Returns its wait status as Popen.returncode does."""
        for name in list(p.fds):
            fd = p.fds.pop(name)
            if fd in self._by_fd:
                self._forget(fd)
            if p.popen is None:
                os.close(fd)
        if p.pidfd is not None:
            if p.pidfd in self._by_fd:
                self._forget(p.pidfd)
            os.close(p.pidfd)
            p.pidfd = None
        # Whatever is left of the group (members that closed their pipes) dies with the leader.
        _killpg(p.pid, signal.SIGKILL)
        del self._procs[p.key]
        if p.popen is not None:
            rc = p.popen.wait()
            for f in (p.popen.stdin, p.popen.stdout, p.popen.stderr):
                if f is not None and not f.closed:
                    f.close()
            return rc
        while True:
            try:
                _, status = os.waitpid(p.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:  # reaped behind our back; nothing more to learn
                return -signal.SIGKILL
            return os.waitstatus_to_exitcode(status)

    def _finish(self, p: _Child) -> None:
        rc = self._release(p)
        out = p.out
        if rc < 0:
            out.signal = signal_name(-rc)
        else:
            out.exit_code = rc
        (so, se) = p.tails
        out.stdout_tail, out.stdout_bytes = so.value(), so.total
        out.stderr_tail, out.stderr_bytes = se.value(), se.total
        out.finished_at = time.time()
        out.duration = time.monotonic() - p.t0
        if p.spec.result_file is not None:
            out.result, out.result_error = read_result(p.spec.result_file, p.spec.result_max_bytes)
        if p.log.file is not None:
            p.log.close(out.error or "exit status 0")
        out.log_error = p.log.error
        self._done.append((p.key, out))

    def _abort(self, p: _Child) -> None:
        self._release(p)
        p.log.close("aborted by the runner")


@functools.lru_cache(maxsize=4096)
def _env_item(name: str, value: str) -> bytes:
    # The base environment is the same for every task: encode each variable once.
    return os.fsencode(name) + b"=" + os.fsencode(value)


def _close_all(fds: list[int]) -> None:
    while fds:
        try:
            os.close(fds.pop())
        except OSError:
            pass


def seal_descriptors() -> None:
    """Mark every descriptor of this process above 2 close-on-exec, so that no task can
    inherit one (Python's own descriptors already are; this catches any a parent process
    or a C library left inheritable). Best effort."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                pass


def run(spec: ProcessSpec, cancel: threading.Event | None = None,
        on_start: Callable[[int], None] | None = None) -> Outcome:
    """Run ``spec`` to completion and return what happened. Blocks the calling thread.

    ``cancel``, when set, stops the process like a timeout (SIGTERM to the group, SIGKILL
    after ``spec.kill_grace``) and marks the outcome cancelled. ``on_start(pid)`` is called
    once the process exists; if it raises, the process group is killed and reaped and the
    exception propagates. Nothing the task does makes ``run`` raise.
    """
    sup = Supervisor()
    try:
        sup.start(spec, None, on_start)
        while True:
            if cancel is not None and cancel.is_set():
                sup.cancel(None)
            done = sup.wait(None if cancel is None else _CANCEL_POLL)
            if done:
                return done[0][1]
    finally:
        sup.close()


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
