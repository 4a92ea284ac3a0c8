"""The runner loop: claim -> decode/verify -> spawn -> reap -> settle.

One thread (the caller's) does everything: it claims, renews leases and settles through
the broker, and between broker calls it drives one :class:`phlask.supervise.Supervisor`
that watches every running process (one ``poll``, no thread per task). Should a broker
call block (an outage being retried), a standby thread takes over the supervisor until
the call returns, so timeouts are still enforced and output still drained. The loop knows
nothing of SQL, BSON or AMQP and the supervisor knows nothing of brokers.

>>> from phlask import connect
>>> from phlask.runner import Runner
>>> Runner(tasks=connect("sqlite:///var/lib/phlask/q.db"), wait=20, daemon=False, max_processes=10).run()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import resource
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _sched, supervise
from .adapters import AdapterTable
from .brokers.base import Broker, Claim, LeaseLost, Settle
from .config import Settings
from .envelope import Envelope, decode
from .errors import BrokerError, EnvelopeError, TaskRejected
from .producer import format_unix, parse_ts
from .signing import Keyring
from .watchdog import Watchdog
from .wire import ENVELOPE_MAX_BYTES, ENV_DENIED_NAMES, ENV_DENIED_PREFIXES, DeadReason, State

log = logging.getLogger("phlask.runner")


@dataclass
class Stats:
    """Running totals, shown by the CLI's progress line and returned by :meth:`Runner.run`."""

    started: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    lost: int = 0
    running: int = 0
    began: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.succeeded + self.dead

    def rate(self) -> float:
        elapsed = time.monotonic() - self.began
        return self.finished / elapsed if elapsed > 0 else 0.0


@dataclass
class _Running:
    claim: Claim
    envelope: Envelope
    spec: supervise.ProcessSpec
    workdir: str | None  # a private directory for inline code, removed after the attempt
    pid: int | None = None
    lease_lost: bool = False


class Runner:
    """Run tasks from ``tasks`` (a broker) until drained, or forever with ``daemon=True``.

    ``wait`` is milliseconds between polls when idle. Other keyword arguments are
    :class:`phlask.config.Settings` fields (``queues``, ``roots``, ``allow_inline``,
    ``keys``, ``default_timeout``, ``lease``, ...).
    """

    def __init__(self, tasks: Broker, *, settings: Settings | None = None, results: Any = None,
                 on_progress: Callable[[Stats], None] | None = None, **options: Any):
        self.broker = tasks
        if settings is None:
            settings = Settings(**options).check()
        elif options:
            raise TypeError("give either settings= or keyword options, not both")
        self.s = settings
        self.results = results
        self.on_progress = on_progress
        self.adapters = AdapterTable.from_config(settings.adapters)
        self.keyring = Keyring(settings.keys)
        self.limits = supervise.Limits(**settings.limits) if settings.limits else None
        self.stats = Stats()
        self._running: dict[int, _Running] = {}
        self._sup: supervise.Supervisor | None = None
        self._sup_lock = threading.Lock()
        self._stepped = time.monotonic()  # when the loop last drove the supervisor
        self._finished: list[tuple[int, supervise.Outcome]] = []  # collected by the standby thread
        self._ended = threading.Event()
        self._pending: list[Settle] = []  # settled with the broker at the next turn of the loop
        self._stopping = False
        self._retry_due = 0.0  # drain mode waits for the retries it scheduled itself
        self._stop_deadline = 0.0
        self._hard_stop = False
        self._host = socket.gethostname()
        self._roots = [Path(r) for r in settings.roots]
        self._scratch = ""
        self._cwd = str(self._roots[0])
        self._seq = 0
        self._resolved: dict[str, tuple[float, str]] = {}
        # Resource limits go through util-linux's prlimit, which sets them and execs the task:
        # setrlimit in a preexec_fn would force fork() and is unsafe in a threaded runner.
        self._prefix: list[str] = []
        prlimit = shutil.which("prlimit") if self.limits else None
        if self.limits and prlimit:
            opts = {resource.RLIMIT_CPU: "cpu", resource.RLIMIT_DATA: "data",
                    resource.RLIMIT_NOFILE: "nofile", resource.RLIMIT_NPROC: "nproc"}
            self._prefix = [prlimit] + [f"--{opts[res]}={soft}:{hard}"
                                        for res, (soft, hard) in self.limits.rlimits()] + ["--"]
            self.limits = None
        self._watchdog: Watchdog | None = None
        self._next_sweep = 0.0
        self._subscribed = False

    # --- public ------------------------------------------------------------------------

    def run(self) -> Stats:
        """Run until drained (or stopped, in daemon mode). Returns the totals."""
        restore = self._install_signals()
        # One scratch directory per run (result files, inline code) and one supervisor:
        # nothing is created per task that need not be.
        self._scratch = tempfile.mkdtemp(prefix="phlask-runner-")
        try:
            self._cwd = os.getcwd()  # file tasks start here (and fastest: supervise.Supervisor)
        except OSError:  # the runner's own directory was removed
            self._cwd = str(self._roots[0])
        self._sup = supervise.Supervisor()
        self._ended.clear()
        if self.s.kill_with_runner:
            self._watchdog = Watchdog(slots=2 * self.s.max_processes + 16)
        if self.s.contain_escapes and not supervise.become_subreaper():
            log.warning("could not become a child subreaper; processes that escape their task's "
                        "process group will not be cleaned up")
        standby = threading.Thread(target=self._standby, name="phlask-standby", daemon=True)
        standby.start()
        # Where the server can push tasks (RabbitMQ), it does, and the loop polls its socket.
        self._subscribed = self.broker.subscribe(self.s.queues)
        try:
            # The loop must get its CPU back promptly when it wakes, not wait behind the
            # tasks it just started (phlask._sched); tasks keep the default slice.
            with _sched.short_slices() if self.s.short_slices else contextlib.nullcontext():
                self._loop()
        finally:
            self._unsubscribe()
            self._ended.set()
            self._sup.wake()
            standby.join(timeout=5)
            with self._sup_lock:
                self._sup.close()  # nothing is left running after the loop; this is a safety net
            shutil.rmtree(self._scratch, ignore_errors=True)
            if self._watchdog:
                self._watchdog.close()
            for signum, handler in restore.items():
                signal.signal(signum, handler)
        return self.stats

    def stop(self, hard: bool = False) -> None:
        """Stop claiming; running tasks get ``shutdown_grace`` seconds (none when ``hard``),
        then they are killed and returned to the queue without counting an attempt."""
        if self._stopping and not hard:
            hard = True
        if not self._stopping:
            log.info("stopping: no new tasks; waiting up to %ss for %d running", self.s.shutdown_grace,
                     len(self._running))
        self._stopping = True
        self._stop_deadline = time.monotonic() + (0 if hard else self.s.shutdown_grace)
        if hard and not self._hard_stop:
            self._hard_stop = True
            log.warning("stopping now: killing %d running task(s); they return to the queue", len(self._running))
        # May run in another thread or a signal handler: the loop does the killing.
        if self._sup is not None:
            self._sup.wake()

    # --- loop --------------------------------------------------------------------------

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        restore = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            restore[signum] = signal.getsignal(signum)
            signal.signal(signum, lambda n, f: self.stop())
        return restore

    def _loop(self) -> None:
        wait = self.s.wait / 1000.0
        renew_every = self.s.lease / 3.0
        next_renew = time.monotonic() + renew_every
        next_progress = 0.0
        backoff = 0.0
        while True:
            self._collect()
            now = time.monotonic()
            if self._stopping:
                self._unsubscribe()
                if not self._running and not self._pending:
                    break
                if now >= self._stop_deadline:
                    for r in list(self._running.values()):
                        self._kill(r, hard=self._hard_stop)
            try:
                if self._running and now >= next_renew:
                    self._renew()
                    next_renew = now + renew_every
                claimed = 0
                waited = False  # the broker itself waited for work (AMQP), so no idle sleep after
                # Whether "nothing claimed" means nothing is ready: a subscribed claim that did
                # not wait only hands out what had arrived, so drain mode waits once more.
                empty = False
                free = 0 if self._stopping else self.s.max_processes - len(self._running)
                if free > 0 or self._pending:
                    # One turn: settle what finished, claim for the free slots.
                    settles, self._pending = self._pending, []
                    try:
                        # Block for new work only when idle and nothing is to be reported:
                        # a settle's result must not wait for the next task to arrive.
                        timeout = 0.0 if self._running or settles else wait
                        errors, claims = self.broker.settle_and_claim(settles, self.s.queues, free,
                                                                      self.s.lease, timeout=timeout)
                        # After reporting, go straight back for work (blocking, if idle).
                        waited = bool(settles) or (timeout > 0 and self.broker.waits_in_claim)
                    except BaseException:
                        self._pending[:0] = settles  # keep the outcomes; settle them when the broker is back
                        raise
                    self._settled(settles, errors)
                    empty = free > 0 and (timeout > 0 or not self._subscribed)
                    for c in claims:
                        self._start(c)
                    claimed = len(claims)
                backoff = 0.0
            except Exception as exc:  # the runner outlives any broker trouble
                backoff = min(30.0, max(0.5, backoff * 2))
                if isinstance(exc, BrokerError):
                    log.warning("broker error (%s); retrying in %.1fs", exc, backoff)
                else:
                    log.exception("unexpected error talking to the broker; retrying in %.1fs", backoff)
                self._sleep(backoff)
                continue
            if self.s.contain_escapes and now >= self._next_sweep:
                self._sweep()
            if self.on_progress and now >= next_progress:
                self.stats.running = len(self._running)
                self.on_progress(self.stats)
                next_progress = now + 0.5
            if claimed:
                continue
            if (not self.s.daemon and not self._running and not self._pending
                    and (self._stopping or (now >= self._retry_due and empty))):
                break  # drained: nothing ready, nothing running, no retry of ours pending
            if not waited:
                watch = None
                if self._subscribed and not self._stopping and len(self._running) < self.s.max_processes:
                    if self.broker.pushed():
                        continue  # a pushed task waits for a free slot: claim it now
                    watch = self.broker.wakeup_fd()  # wake when the server pushes one
                self._sleep(wait if not self._running else min(wait, renew_every), watch)

    def _unsubscribe(self) -> None:
        if self._subscribed:
            self._subscribed = False
            try:
                self.broker.unsubscribe()
            except Exception as exc:  # the connection is gone: the server takes the pushes back
                log.debug("unsubscribe: %s", exc)

    def _sleep(self, seconds: float, watch: int | None = None) -> None:
        """Supervise until a task finishes (or ``watch`` becomes readable), at most
        ``seconds`` (no busy spin, prompt reaping)."""
        self._step(max(seconds, 0.001), watch)

    def _collect(self) -> None:
        self._step(0)

    def _step(self, timeout: float, watch: int | None = None) -> None:
        """Drive the supervisor (``timeout`` 0: one round without blocking) and settle every
        task that finished, here or while the standby thread was driving."""
        assert self._sup is not None
        with self._sup_lock:
            done = self._sup.wait(timeout, watch)
            self._stepped = time.monotonic()
            if self._finished:
                done, self._finished = self._finished + done, []
        watchdog = self._watchdog
        for key, outcome in done:
            r = self._running.pop(key, None)
            if r is None:
                continue
            if watchdog and r.pid:
                watchdog.remove(r.pid)  # reaped: the pid may belong to someone else from now on
            r.pid = None
            self._settle_outcome(r, outcome)

    def _standby(self) -> None:
        """Drive the supervisor while the loop is stuck in a broker call for long."""
        sup = self._sup
        assert sup is not None
        while not self._ended.wait(0.25):
            while not self._ended.is_set() and self._running and time.monotonic() - self._stepped >= 0.5:
                if not self._sup_lock.acquire(blocking=False):
                    break  # the loop is supervising (a long wait) right now
                try:
                    self._finished += sup.wait(0.05)
                    idle = not len(sup)
                finally:
                    self._sup_lock.release()
                if idle:
                    break
                time.sleep(0.005)  # let the loop have the supervisor back the moment it wants it

    # --- start -------------------------------------------------------------------------

    def _start(self, claim: Claim) -> None:
        try:
            r = self._prepare(claim)
        except TaskRejected as exc:
            self._reject(claim, exc.reason, exc.message)
            return
        except Exception as exc:  # a bug or an OS surprise must not strand the claim
            log.exception("task %s: could not be prepared", claim.id)
            self._reject(claim, DeadReason.SPAWN_FAILED, f"the runner could not prepare the task: {exc}")
            return
        self._running[id(r)] = r
        self.stats.started += 1
        assert self._sup is not None
        watchdog = self._watchdog

        def on_start(pid: int) -> None:
            r.pid = pid
            if watchdog:
                watchdog.add(pid)
        try:
            with self._sup_lock:
                self._sup.start(r.spec, id(r), on_start)
        except Exception as exc:  # never lose a task to a supervisor bug
            log.exception("supervisor failed for task %s", r.claim.id)
            self._running.pop(id(r), None)
            now = time.time()
            self._settle_outcome(r, supervise.Outcome(started_at=now, finished_at=now,
                                                      spawn_error=f"supervisor error: {exc}"))
            return

    def _prepare(self, claim: Claim) -> _Running:
        """Every check the spec orders before a process starts. Raises TaskRejected."""
        if len(claim.body) > ENVELOPE_MAX_BYTES:
            decode(claim.body)  # raises EnvelopeError(too_large) with the sizes
        if self.keyring:  # before parsing: never parse unauthenticated bytes
            self.keyring.check(claim.body, claim.key_id, claim.signature)
        env = decode(claim.body)  # EnvelopeError is a TaskRejected (invalid / too_large)
        if env.expires_at and parse_ts(env.expires_at).timestamp() < time.time():
            raise TaskRejected(DeadReason.EXPIRED, f"task expired at {env.expires_at} before it could start")
        adapter = self.adapters.resolve(env.lang)
        for name in env.env:
            if name in ENV_DENIED_NAMES or name.startswith(ENV_DENIED_PREFIXES):
                raise TaskRejected(DeadReason.FORBIDDEN_ENV,
                                   f"$.env.{name}: the runner refuses to set {name} for tasks "
                                   "(it could change how the interpreter loads code)")
        self._seq += 1
        workdir = None
        result_file = os.path.join(self._scratch, f"{self._seq}.result.json")
        try:
            if env.file:
                script = self._resolve_file(env.file)
                cwd = self._cwd
            else:
                if not self.s.allow_inline:
                    raise TaskRejected(DeadReason.INLINE_REFUSED,
                                       "task carries inline code and this runner does not allow it "
                                       "(start the runner with --allow-inline to accept inline code)")
                workdir = tempfile.mkdtemp(prefix=f"{self._seq}.", dir=self._scratch)
                script = os.path.join(workdir, "task" + (adapter.ext or ""))
                with open(script, "w", encoding="utf-8", errors="surrogatepass") as f:
                    f.write(env.code or "")
                cwd = workdir
            timeout = float(env.timeout) if env.timeout else self.s.default_timeout
            deadline = time.time() + timeout
            child_env = dict(self.s.base_env)
            child_env.update(env.env)
            child_env.update({
                "PHLASK_TASK_ID": env.id,
                "PHLASK_ATTEMPT": str(claim.attempt),
                "PHLASK_QUEUE": env.queue,
                "PHLASK_DEADLINE": format_unix(deadline),
                "PHLASK_RESULT_FILE": result_file,
            })
            log_path = None
            if self.s.log_dir:
                os.makedirs(self.s.log_dir, exist_ok=True)
                log_path = os.path.join(self.s.log_dir, f"{env.id}.{claim.attempt}.log")
            spec = supervise.ProcessSpec(
                argv=self._prefix + adapter.argv_for(script, list(env.args)),
                env=child_env,
                cwd=cwd,
                stdin=bytes(env.input) if env.has_input else None,
                timeout=timeout,
                kill_grace=self.s.kill_grace,
                result_file=result_file,
                log_path=log_path,
                limits=self.limits,
            )
        except BaseException:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        return _Running(claim=claim, envelope=env, spec=spec, workdir=workdir)

    def _resolve_file(self, file: str) -> str:
        """The real path of ``file``: absolute as given, or relative tried against each root in
        order. Outside every root is ``forbidden_path`` (checked first, so a task cannot probe
        for files outside the roots); inside but absent is ``missing_file``."""
        hit = self._resolved.get(file)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        real = self._resolve_uncached(file)
        if len(self._resolved) > 10_000:
            self._resolved.clear()
        # Remember for a second: a burst of tasks for one script resolves it once.
        self._resolved[file] = (time.monotonic() + 1.0, real)
        return real

    def _resolve_uncached(self, file: str) -> str:
        p = Path(file)
        candidates = [p] if p.is_absolute() else [root / p for root in self._roots]
        escaped = None
        for c in candidates:
            real = Path(os.path.realpath(c))
            if not any(real == root or real.is_relative_to(root) for root in self._roots):
                escaped = escaped or real
                continue
            try:
                if real.is_file():
                    return str(real)
            except OSError:  # ENAMETOOLONG and the like: no such file can exist
                pass
        if escaped is not None:
            raise TaskRejected(DeadReason.FORBIDDEN_PATH,
                               f"$.file: {file!r} resolves to {str(escaped)!r}, outside the allowed task roots "
                               f"({', '.join(map(str, self._roots))}); add a root with --root")
        raise TaskRejected(DeadReason.MISSING_FILE,
                           f"$.file: {file!r} does not exist under the task roots ({', '.join(map(str, self._roots))})")

    def _sweep(self) -> None:
        """Kill what tasks left behind outside their process groups (setsid escapees):
        as a subreaper the runner inherits them when their parents exit."""
        self._next_sweep = time.monotonic() + 1.0
        with self._sup_lock:
            live = self._sup.pids() if self._sup else []
        if self._watchdog:
            live.append(self._watchdog.pid)  # our own child, not an escapee: never sweep it
        try:
            killed = supervise.kill_orphans(live, min_age=1.0)
        except OSError as exc:
            log.warning("orphan sweep failed: %s", exc)
            return
        if killed:
            log.warning("killed %d process(es) that escaped their task's process group: %s", len(killed), killed)

    def _kill(self, r: _Running, hard: bool) -> None:
        if self._sup is not None:
            with self._sup_lock:
                self._sup.cancel(id(r), hard=hard)

    # --- settle ------------------------------------------------------------------------

    def _result(self, claim: Claim, state: str, *, reason: str | None = None, error: str | None = None,
                outcome: supervise.Outcome | None = None) -> dict[str, Any]:
        """The spec/result.schema.json record of one attempt (no outcome: rejected before
        a process started, so no exit, no output, no duration)."""
        if outcome is None:
            now = time.time()
            outcome = supervise.Outcome(started_at=now, finished_at=now)
        return {"id": claim.id, "attempt": claim.attempt, "state": state, "reason": reason, "error": error,
                **outcome.result_fields(), "runner": {"host": self._host, "pid": os.getpid()}}

    def _reject(self, claim: Claim, reason: str, message: str) -> None:
        result = self._result(claim, State.DEAD, reason=str(reason), error=message)
        self._settle(claim, "dead", result, reason=str(reason))
        self._log_task(claim, None, result)

    def _settle_outcome(self, r: _Running, o: supervise.Outcome) -> None:
        claim, env = r.claim, r.envelope
        # No result and no result error: the task wrote no file (or an empty one, left for
        # the run's scratch directory to take away), so there is nothing to remove.
        if r.spec.result_file and (o.result is not None or o.result_error is not None):
            try:
                os.unlink(r.spec.result_file)
            except FileNotFoundError:
                pass
        if r.workdir:
            shutil.rmtree(r.workdir, ignore_errors=True)
        if r.lease_lost:
            self.stats.lost += 1
            log.warning("task %s: lease was lost while it ran; another runner owns it now, result dropped", claim.id)
            return
        if o.cancelled and self._stopping:
            self._settle(claim, "release", None)
            return
        error = None
        if o.spawn_error:
            result = self._result(claim, State.DEAD, reason=DeadReason.SPAWN_FAILED, error=o.spawn_error, outcome=o)
            self._settle(claim, "dead", result, reason=DeadReason.SPAWN_FAILED)
        elif o.ok:
            result = self._result(claim, State.SUCCEEDED, outcome=o, error=o.result_error)
            self._settle(claim, "succeed", result)
        else:
            if o.timed_out:
                error = f"timed out after {r.spec.timeout:g}s"
            elif o.signal:
                error = f"killed by {o.signal}"
            else:
                error = f"exited with status {o.exit_code}"
            if o.result_error:
                error += f"; {o.result_error}"
            if claim.attempt < env.attempts_allowed:
                delay = backoff_delay(env, claim.attempt)
                result = self._result(claim, State.QUEUED, error=error + f"; retry in {delay:.1f}s", outcome=o)
                self._settle(claim, "retry", result, delay=delay)
            else:
                reason = DeadReason.TIMED_OUT if o.timed_out else DeadReason.FAILED
                result = self._result(claim, State.DEAD, reason=reason, error=error, outcome=o)
                self._settle(claim, "dead", result, reason=reason)
        self._log_task(claim, env, result)

    def _settle(self, claim: Claim, how: str, result: dict[str, Any] | None, *, reason: str | None = None,
                delay: float = 0.0) -> None:
        """Queue a settle for the next turn of the loop (:meth:`Broker.settle_and_claim`)."""
        self._pending.append(Settle(claim, how, result, None if reason is None else str(reason), delay))

    def _settled(self, settles: list[Settle], errors: list[Exception | None]) -> None:
        for s, exc in zip(settles, errors):
            claim = s.claim
            if isinstance(exc, LeaseLost):
                self.stats.lost += 1
                log.warning("task %s: lease lost before it could be settled; it will run again elsewhere", claim.id)
                continue
            if exc is not None:  # keep the outcome and settle it when the broker is back
                log.warning("task %s: could not settle (%s); will retry", claim.id, exc)
                self._pending.append(s)
                continue
            if s.how == "succeed":
                self.stats.succeeded += 1
            elif s.how == "retry":
                self.stats.retried += 1
                self._retry_due = max(self._retry_due, time.monotonic() + s.delay)
            elif s.how == "dead":
                self.stats.dead += 1
            else:
                self.stats.released += 1
                log.info("task %s returned to the queue (shutdown)", claim.id)
            if self.results is not None and s.result is not None:
                try:
                    self.results.record(claim, s.result)
                except Exception as exc2:  # results are a report, never a reason to stop
                    log.warning("task %s: could not record result (%s)", claim.id, exc2)

    def _renew(self) -> None:
        by_claim = {id(r.claim): r for r in self._running.values()}
        lost = self.broker.renew([r.claim for r in self._running.values()], self.s.lease)
        for c in lost:
            r = by_claim.get(id(c))
            if r is not None and not r.lease_lost:
                r.lease_lost = True
                log.warning("task %s: lease lost (claimed elsewhere); stopping it here", c.id)
                self._kill(r, hard=False)

    def _log_task(self, claim: Claim, env: Envelope | None, result: dict[str, Any]) -> None:
        state, reason = result["state"], result.get("reason")
        level = logging.INFO if state == State.SUCCEEDED else logging.WARNING
        if not log.isEnabledFor(level):
            return
        extra = {"task_id": claim.id, "lang": env.lang if env else None, "attempt": claim.attempt,
                 "exit": result["exit_code"], "signal": result["signal"], "duration": result["duration"],
                 "state": state, "reason": reason, "queue": claim.queue}
        what = state if not reason else f"{state} ({reason})"
        how = (f"exit {result['exit_code']}" if result["exit_code"] is not None
               else (result["signal"] or "not started"))
        msg = f"task {claim.id} [{extra['lang'] or '?'}] attempt {claim.attempt}: {what}, {how}, {result['duration']:.3f}s"
        if result.get("error") and state != State.SUCCEEDED:
            msg += f": {result['error']}"
        log.log(level, msg, extra={"task": extra})


def backoff_delay(env: Envelope, attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: min(max, initial * factor^(attempt-1)), times a
    uniform factor in [0.5, 1) when jitter is on (spec/README.md, Retries)."""
    b = env.backoff
    try:
        delay = min(b.max, b.initial * (b.factor ** (attempt - 1)))
    except OverflowError:
        delay = b.max
    if b.jitter:
        delay *= 0.5 + (rng or random).random() * 0.5
    return delay


