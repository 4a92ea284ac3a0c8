"""Kill a runner's tasks when the runner dies without a chance to do it (SIGKILL, OOM).

Task processes live in process groups of their own, so they would outlive a runner killed
with SIGKILL and run on unsupervised, with no timeout, while another runner re-runs them.
The runner starts this small watchdog once; it sends "+PGID" when a task starts and
"-PGID" when it has been reaped, through a pipe. When the pipe reaches end of file (the
runner exited, however it exited), the watchdog SIGKILLs every group still registered.

This costs one short pipe write per task start and end, where setting PR_SET_PDEATHSIG
per task would cost an extra exec (setpriv) or a slow, thread-unsafe preexec_fn, and
would only reach the group leader, not its children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading


class Watchdog:
    """The runner's side: start the watchdog process, register and unregister groups."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "phlask.watchdog"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, env={"PATH": os.defpath})
        self._fd = self._proc.stdin.fileno()  # type: ignore[union-attr]
        self._lock = threading.Lock()

    def _send(self, line: str) -> None:
        try:
            with self._lock:
                os.write(self._fd, line.encode())
        except OSError:
            pass  # the watchdog is gone; tasks are still supervised normally

    def add(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """Normal shutdown: every task has been reaped, so the watchdog has nothing to kill."""
        try:
            self._proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def main() -> None:
    groups: set[int] = set()
    # A terminal's Ctrl-C, or a service manager's SIGTERM to the whole group, is for the
    # runner, which stops its tasks itself; this process leaves when the runner does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
    for pgid in groups:  # end of file: the runner is gone
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    main()
