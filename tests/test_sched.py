"""The runner's loop thread asks for short time slices; its tasks keep the kernel's default
(phlask._sched). Needs a kernel with custom slices (EEVDF, 6.12+) that reports them in
/proc/<pid>/task/<tid>/sched; elsewhere short_slices is a documented no-op and these skip."""

from __future__ import annotations

import os
import re
import subprocess
import threading

import pytest

from phlask import Task, _sched, connect
from phlask.runner import Runner

from test_runner import TASKS


def kernel_slice(pid: int | str = "self", tid: int | None = None) -> int | None:
    path = f"/proc/{pid}/task/{tid}/sched" if tid else f"/proc/{pid}/sched"
    try:
        text = open(path).read()
    except OSError:
        return None
    m = re.search(r"^se\.slice\s*:\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def supported() -> bool:
    with _sched.short_slices() as ok:
        return ok and kernel_slice(os.getpid(), threading.get_native_id()) == _sched.SLICE_NS


needs_slices = pytest.mark.skipif(not supported(), reason="kernel without custom slices (6.12+) or /proc sched")


@needs_slices
def test_short_slices_applies_to_the_block_and_is_restored():
    tid = threading.get_native_id()
    default = kernel_slice(os.getpid(), tid)
    with _sched.short_slices() as ok:
        assert ok
        assert kernel_slice(os.getpid(), tid) == _sched.SLICE_NS
        assert _sched.slice_ns() == _sched.SLICE_NS
    assert kernel_slice(os.getpid(), tid) == default != _sched.SLICE_NS


@needs_slices
def test_children_do_not_inherit_the_short_slice():
    with _sched.short_slices():
        out = subprocess.run(["sh", "-c", "grep '^se.slice' /proc/self/sched"], capture_output=True, text=True).stdout
    assert int(out.split(":")[1]) != _sched.SLICE_NS


@needs_slices
def test_other_threads_are_untouched():
    seen = []
    with _sched.short_slices():
        t = threading.Thread(target=lambda: seen.append(kernel_slice(os.getpid(), threading.get_native_id())))
        t.start()
        t.join()
    assert seen[0] != _sched.SLICE_NS


@needs_slices
def test_a_negative_nice_value_is_left_alone():
    # Reset-on-fork would give the tasks nice 0: a runner niced below 0 keeps everything as is.
    code = ("import os; from phlask import _sched\n"
            "with _sched.short_slices() as ok: print(ok)")
    out = subprocess.run(["nice", "-n", "-5", os.sys.executable, "-c", code], capture_output=True, text=True)
    if "cannot set niceness" in out.stderr or out.returncode:
        pytest.skip("cannot lower the nice value here")
    assert out.stdout.strip() == "False"


@needs_slices
def test_runner_loop_runs_with_short_slices_and_its_tasks_do_not(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    with connect(url) as b:
        tid = b.push(Task(lang="shell", code="grep '^se.slice' /proc/self/sched"))
    loop_slices = []
    caller = threading.get_native_id()
    with connect(url) as b:
        stats = Runner(tasks=b, roots=[str(TASKS)], allow_inline=True, wait=10,
                       on_progress=lambda s: loop_slices.append(kernel_slice(os.getpid(), caller))).run()
    assert stats.succeeded == 1
    assert loop_slices and set(loop_slices) == {_sched.SLICE_NS}
    with connect(url) as b:
        task_slice = int(b.inspect(tid).result["stdout_tail"].split(":")[1])
    assert task_slice != _sched.SLICE_NS
    assert kernel_slice(os.getpid(), caller) != _sched.SLICE_NS  # restored when run() returns


@needs_slices
def test_short_slices_can_be_turned_off(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    with connect(url) as b:
        b.push(Task(lang="shell", code="true"))
    seen = []
    caller = threading.get_native_id()
    with connect(url) as b:
        Runner(tasks=b, roots=[str(TASKS)], allow_inline=True, wait=10, short_slices=False,
               on_progress=lambda s: seen.append(kernel_slice(os.getpid(), caller))).run()
    assert seen and _sched.SLICE_NS not in seen
