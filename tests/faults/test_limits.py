"""Size limits: an envelope over limits.envelope_bytes, a task that writes 2 GiB to stdout,
and a result file over limits.result_file_bytes. Each is bounded and reported with a clear
reason; the runner's own memory stays flat (spec/README.md sections 5.1, 5.2; wire.json).

Both forms write the full 2 GiB (and 200 MiB): through a pipe that takes seconds here.
"""

from __future__ import annotations

import json
import time

import pytest

from phlask import Task
from phlask.errors import EnvelopeError
from phlask.wire import ENVELOPE_MAX_BYTES, OUTPUT_TAIL_BYTES, RESULT_FILE_MAX_BYTES

from . import figures
from .harness import Raw, Runners, outcomes, result_record, settled, store_raw_many, vm_hwm_kib, wait_for

GIB = 1 << 30
#: The runner may grow by this much while a task floods it with output (it keeps 2 x 64 KiB
#: tails and reads 64 KiB at a time; the rest is Python's own churn).
RUNNER_GROWTH_KIB = 64 * 1024


def test_oversize_envelope_big_stdout_and_big_result_are_bounded(backend, tmp_path, queue_prefix):
    # Given a running runner, idle, whose memory we know
    stdout_sizes = {"out-200m": 200 * (1 << 20), "out-2g": 2 * GIB}
    with backend.make(tmp_path, queue_prefix) as broker:
        results = None if broker.supports_inspect else str(tmp_path / "results.db")
        runners = Runners(broker.url, tmp_path, max_processes=4, lease=10, results=results)
        try:
            r = runners.start()
            time.sleep(2)
            idle_kib = vm_hwm_kib(r.pid)
            # When a producer tries an envelope over the size limit, it is refused before storing
            with pytest.raises(EnvelopeError) as refused:
                broker.push(Task(lang="shell", file="ok.sh", id="push-too-big", input="x" * ENVELOPE_MAX_BYTES))
            assert refused.value.reason == "too_large"
            # and one written straight into the store, like the tasks below, reaches the runner
            pad = json.dumps({"phlask": 1, "id": "raw-too-big", "lang": "shell", "file": "ok.sh",
                              "created_at": "2026-11-28T02:44:03Z", "meta": {"pad": ""}})
            over = pad.replace('"pad": ""', '"pad": "' + "x" * (ENVELOPE_MAX_BYTES + 1 - len(pad)) + '"').encode()
            assert len(over) == ENVELOPE_MAX_BYTES + 1
            store_raw_many(backend, broker, [Raw("raw-too-big", over)])
            broker.push_many([Task(lang="shell", file="big_stdout.sh", id=i, args=[str(n)], timeout=600)
                              for i, n in stdout_sizes.items()] +
                             [Task(lang="shell", file="big_result.sh", id="result-at-limit",
                                   args=[str(RESULT_FILE_MAX_BYTES - 2)]),
                              Task(lang="shell", file="big_result.sh", id="result-over",
                                   args=[str(RESULT_FILE_MAX_BYTES)])])
            ids = ["raw-too-big", *stdout_sizes, "result-at-limit", "result-over"]
            t0 = time.monotonic()
            assert wait_for(lambda: settled(outcomes(broker, ids, results)) or runners.crashed(),
                            timeout=600, interval=0.5), runners.logs()
            took = time.monotonic() - t0
            peak_kib = vm_hwm_kib(r.pid)
            got = outcomes(broker, ids, results)
            records = {i: result_record(broker, i, results) if i != "raw-too-big" else broker.dead_list()[0].result
                       for i in ids}
            [(_, code)] = runners.stop()
        finally:
            runners.close()
        assert code == 0, runners.logs()
        # Then the envelope is dead too_large, saying how big it was and what the limit is
        assert got["raw-too-big"] == [("dead", "too_large")]
        assert f"envelope is {ENVELOPE_MAX_BYTES + 1} bytes; the limit is {ENVELOPE_MAX_BYTES} bytes" \
            in records["raw-too-big"]["error"]
        # and the floods succeeded, counted to the byte, with only the last 64 KiB kept
        for i, n in stdout_sizes.items():
            rec, trailer = records[i], f"\nend of a {n}-byte stdout\n"
            assert got[i] == [("succeeded", None)], (i, rec)
            assert rec["stdout_bytes"] == n + len(trailer) and rec["stderr_bytes"] == 0
            assert len(rec["stdout_tail"].encode()) == OUTPUT_TAIL_BYTES and rec["stdout_tail"].endswith(trailer)
        # while the runner's memory stayed flat
        assert peak_kib - idle_kib < RUNNER_GROWTH_KIB, (idle_kib, peak_kib)
        # and a result file at the limit is kept, one over it is dropped with the reason why
        assert got["result-at-limit"] == [("succeeded", None)]
        assert records["result-at-limit"]["result"] == "x" * (RESULT_FILE_MAX_BYTES - 2)
        assert records["result-at-limit"]["error"] is None
        over_rec = records["result-over"]
        assert got["result-over"] == [("succeeded", None)] and "result" not in over_rec
        assert over_rec["error"] == (f"result file is {RESULT_FILE_MAX_BYTES + 2} bytes, over the limit of "
                                     f"{RESULT_FILE_MAX_BYTES} bytes"), over_rec["error"]
        figures.note(backend.NAME, f"limits: 200 MiB + 2 GiB of stdout and two 1 MiB result files in {took:.1f}s; "
                                   f"runner peak RSS {idle_kib // 1024} MiB idle -> {peak_kib // 1024} MiB")

