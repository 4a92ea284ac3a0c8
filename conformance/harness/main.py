"""``conformance/run``: the whole matrix in one command.

Steps, parallel where they are independent: check what this host has (interpreters,
servers); build the Go driver; per producer, the validation and build vectors; per
backend, every producer enqueues its lane at once, one ``phlask run`` drains all the
lanes, the harness checks every task, then removes the run's database and queues.

Without ``CI=true`` a missing server or interpreter skips what needs it (and says so);
with ``CI=true`` it is a failure. Exit status 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone

from . import e2e, report as rep, vectors
from .backends import BACKENDS, Backend, make_backends, server_urls
from .drivers import ROOT, DriverError, Producer, build_go, producers

VAR = ROOT / "var" / "conformance"


class Run:
    """One run's shared state; methods run on worker threads and record into the report."""

    def __init__(self, args: argparse.Namespace):
        self.ci = os.environ.get("CI", "").lower() in ("true", "1", "yes")
        self.run_id = secrets.token_hex(4)
        self.workdir = VAR / f"run-{self.run_id}"
        (self.workdir / "proofs").mkdir(parents=True)
        self.all_producers = producers(VAR)
        self.producers = {n: p for n, p in self.all_producers.items() if not args.producer or n in args.producer}
        self.backend_names = [b for b in BACKENDS if not args.backend or b in args.backend]
        self.report = rep.Report(self.run_id, datetime.now(timezone.utc).isoformat(timespec="seconds"), self.ci,
                                 list(self.producers), self.backend_names)
        self.lock = threading.Lock()
        self.ready: dict[str, Future] = {}  # producer -> done when its driver can run
        self.missing_langs: dict[str, str] = {}  # task language -> why it cannot run here

    def note_missing(self, what: str, in_cells: bool = False) -> None:
        """A missing server or interpreter: a failure in CI, a skip elsewhere. ``in_cells``:
        the matrix cells it affects say so already."""
        with self.lock:
            if self.ci and not in_cells:
                self.report.problems.append(f"{what} (CI=true: missing is a failure)")
            elif not self.ci:
                self.report.notes.append(f"skipped: {what}")

    def timed(self, name: str, start: float) -> None:
        with self.lock:
            self.report.timings[name] = time.monotonic() - start

    # --- producers -----------------------------------------------------------------

    def prepare(self, pool: ThreadPoolExecutor) -> None:
        for name, producer in self.producers.items():
            missing = producer.missing()
            done: Future = Future()
            self.ready[name] = done
            if missing:
                self.note_missing(f"{name} producer: {'; '.join(missing)}")
                done.set_result(False)
            elif name == "go":
                pool.submit(self._build_go, producer, done)
            else:
                done.set_result(True)
        for lang, cmd in e2e.INTERPRETERS.items():
            if shutil.which(cmd) is None:
                self.missing_langs[lang] = f"`{cmd}` not on PATH: the runner cannot run {lang} tasks"
                self.note_missing(self.missing_langs[lang])

    def _build_go(self, producer: Producer, done: Future) -> None:
        start = time.monotonic()
        try:
            build_go(producer)
            done.set_result(True)
        except DriverError as exc:
            with self.lock:
                self.report.problems.append(str(exc))
            done.set_result(False)
        self.timed("go driver build", start)

    def usable(self, name: str) -> bool:
        """Whether the producer's driver can run (waits for the Go build)."""
        return self.ready[name].result()

    def vectors_of(self, name: str) -> None:
        start = time.monotonic()
        producer = self.producers[name]
        kinds: dict[str, vectors.Tally | None] = {"validation": None, "build": None}
        if self.usable(name):
            kinds = {"validation": vectors.check_validation(producer), "build": vectors.check_build(producer)}
        with self.lock:
            self.report.vectors[name] = kinds
        self.timed(f"vectors {name}", start)

    # --- backends ------------------------------------------------------------------

    def backend(self, backend: Backend | str, name: str) -> None:
        start = time.monotonic()
        problem = backend if isinstance(backend, str) else backend.probe()
        if problem:
            self.note_missing(problem, in_cells=True)
            self._cells_for_all(name, "fail" if self.ci else "skip",
                                problem + (" (CI=true: missing is a failure)" if self.ci else ""))
            return
        assert isinstance(backend, Backend)
        lanes = []
        for pname, producer in self.producers.items():
            lane = e2e.plan(producer, backend, f"conf-{self.run_id}-{pname}", self.workdir)
            backend.queues.append(lane.queue)
            lanes.append(lane)
        with ThreadPoolExecutor(len(lanes)) as ex:
            usable = list(ex.map(self._enqueue, lanes))
        lanes = [lane for lane, ok in zip(lanes, usable) if ok]
        self.timed(f"{name} enqueue", start)
        try:
            if lanes:
                self._run_and_verify(backend, lanes)
        finally:
            problem = backend.cleanup()
            if problem:
                with self.lock:
                    self.report.notes.append(problem)
        self.timed(f"{name} total", start)

    def _enqueue(self, lane: e2e.Lane) -> bool:
        if not self.usable(lane.producer.name):
            self._cells_for_all(lane.backend.name, "fail" if self.ci else "skip",
                                f"the {lane.producer.name} driver cannot run here", producer=lane.producer.name)
            return False
        e2e.enqueue(lane)
        return True

    def _run_and_verify(self, backend: Backend, lanes: list[e2e.Lane]) -> None:
        start = time.monotonic()
        status, log = e2e.run_runner(backend, [lane.queue for lane in lanes], self.workdir)
        self.timed(f"{backend.name} runner", start)
        if status != 0:
            with self.lock:
                self.report.problems.append(
                    f"{backend.name}: `phlask run` " + ("did not drain within its time limit" if status is None
                                                        else f"exited with status {status}") + f"; log: {log}")
        reader = backend.reader()
        try:
            cells = []
            for lane in lanes:
                enq_reason = lane.enqueue_error or ("; ".join(lane.enqueue_notes) or None)
                cells.append({"producer": lane.producer.name, "backend": backend.name, "case": "enqueue",
                              "task_id": None, "status": "fail" if enq_reason else "pass", "reason": enq_reason})
                for cell in e2e.verify(lane, reader):
                    if cell["case"] in self.missing_langs:
                        cell.update(status="fail" if self.ci else "skip", reason=self.missing_langs[cell["case"]])
                    cells.append(cell)
        finally:
            reader.close()
        with self.lock:
            self.report.cells += cells

    def _cells_for_all(self, backend: str, status: str, reason: str, producer: str | None = None) -> None:
        with self.lock:
            for p in self.producers:
                if producer in (None, p):
                    self.report.cells += [{"producer": p, "backend": backend, "case": c, "task_id": None,
                                           "status": status, "reason": reason} for c in rep.COLUMNS]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="conformance/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--producer", action="append", choices=["python", "php", "node", "go"],
                        help="only this producer (repeatable; default: all)")
    parser.add_argument("--backend", action="append", choices=list(BACKENDS),
                        help="only this backend (repeatable; default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (proofs, logs) even when green")
    args = parser.parse_args(argv)

    start = time.monotonic()
    run = Run(args)
    print(f"conformance/run: run {run.run_id}, producers {', '.join(run.producers)}, "
          f"backends {', '.join(run.backend_names)}{' (CI)' if run.ci else ''}", flush=True)
    backends = make_backends(run.run_id, run.workdir, server_urls())
    with ThreadPoolExecutor(16) as pool:
        run.prepare(pool)
        jobs = [pool.submit(run.vectors_of, name) for name in run.producers]
        jobs += [pool.submit(run.backend, backends[name], name) for name in run.backend_names]
        for job in jobs:
            job.result()
    if (run.workdir / "pwned").exists():
        run.report.problems.append("an argument's $(...) or backticks were run by a shell: "
                                   f"{run.workdir / 'pwned'} exists")
    run.report.timings["total"] = time.monotonic() - start

    paths = rep.write(run.report, VAR)
    print(rep.text(run.report))
    print(f"written: {paths[0].relative_to(ROOT)}, {paths[1].relative_to(ROOT)}")
    if run.report.ok and not args.keep:
        shutil.rmtree(run.workdir, ignore_errors=True)
    else:
        print(f"kept for inspection: {run.workdir.relative_to(ROOT)} (proofs, runner logs, SQLite files)")
    return 0 if run.report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
