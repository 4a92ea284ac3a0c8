"""Kill a runner's tasks when the runner dies without a chance to do it (SIGKILL, OOM).

Task processes live in process groups of their own, so they would outlive a runner killed
with SIGKILL and run on unsupervised, with no timeout, while another runner re-runs them.
The runner starts this small watchdog process once and shares with it a table of
process-group ids (a memfd mapped by both). The runner writes a group id into a free slot
when a task starts and zeroes it when the task has been reaped: a plain memory store, no
system call and no wake-up of the watchdog. The watchdog sleeps on a pipe from the runner;
when the pipe reaches end of file (the runner exited, however it exited), it SIGKILLs every
group left in the table.

Should the table ever be full, a group is sent down the pipe instead ("+PGID" / "-PGID"
lines), as the first version of this module did for every task.

This costs two memory stores per task, where setting PR_SET_PDEATHSIG per task would cost
an extra exec (setpriv) or a slow, thread-unsafe preexec_fn, and would only reach the group
leader, not its children.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import subprocess
import sys
import threading

_SLOT = struct.Struct("=q")


class Watchdog:
    """The runner's side: start the watchdog process, register and unregister groups.

    ``slots`` is how many groups the shared table holds (at least the runner's
    ``max_processes``); more spill over to the pipe.
    """

    def __init__(self, slots: int = 64) -> None:
        self._slots = max(1, slots)
        self._memfd = os.memfd_create("phlask-watchdog", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self._memfd, self._slots * _SLOT.size)
            self._table = mmap.mmap(self._memfd, self._slots * _SLOT.size)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "phlask.watchdog", str(self._memfd), str(self._slots)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, pass_fds=(self._memfd,), env=_env())
        finally:
            os.close(self._memfd)  # the mapping and the child keep the memory alive
        self._fd = self._proc.stdin.fileno()  # type: ignore[union-attr]
        self._lock = threading.Lock()
        self._free = list(range(self._slots - 1, -1, -1))
        self._slot_of: dict[int, int] = {}

    @property
    def pid(self) -> int:
        """The watchdog process's pid (a child of the runner that is not a task)."""
        return self._proc.pid

    def _send(self, line: str) -> None:
        try:
            os.write(self._fd, line.encode())
        except OSError:
            pass  # the watchdog is gone; tasks are still supervised normally

    def add(self, pgid: int) -> None:
        with self._lock:
            if self._free:
                slot = self._slot_of[pgid] = self._free.pop()
                _SLOT.pack_into(self._table, slot * _SLOT.size, pgid)
                return
            self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        with self._lock:
            slot = self._slot_of.pop(pgid, None)
            if slot is None:
                self._send(f"-{pgid}\n")
                return
            _SLOT.pack_into(self._table, slot * _SLOT.size, 0)
            self._free.append(slot)

    def close(self) -> None:
        """Normal shutdown: every task has been reaped, so the watchdog has nothing to kill."""
        with self._lock:
            self._table[:] = bytes(len(self._table))
            self._slot_of.clear()
        try:
            self._proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._table.close()


def _env() -> dict[str, str]:
    # Only what finds this same phlask: the runner's PYTHONPATH, if it has one (a source
    # checkout), and nothing else of the runner's environment.
    env = {"PATH": os.defpath}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def main() -> None:
    fd, slots = int(sys.argv[1]), int(sys.argv[2])
    table = mmap.mmap(fd, slots * _SLOT.size)
    groups: set[int] = set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for raw in sys.stdin.buffer:  # only overflow lines, then end of file
        line = raw.strip()
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
    # End of file: the runner is gone.
    groups.update(pgid for (pgid,) in _SLOT.iter_unpack(table) if pgid > 0)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    main()
