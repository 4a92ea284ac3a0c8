"""End to end: every producer enqueues real tasks, a real runner drains them, and each
task's proof says what it received.

Per producer and backend, on its own queue: one signed task per task language, all with
the same awkward arguments, an ``env`` entry and an ``input`` object; one task in a
language the runner lacks; and a tampered copy of a signed envelope (one byte changed
after signing), stored through the Python broker API. Tasks append a JSON line to the
file their ``CONFORMANCE_PROOF`` names (conformance/tasks/README.md), so a count of lines
is a count of runs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phlask.brokers import connect
from phlask.brokers.base import Message
from phlask.errors import TaskNotFound
from phlask.signing import verify as verify_signature

from .backends import Backend
from .drivers import ROOT, DriverError, Producer
from .vectors import json_equal

TASKS = ROOT / "conformance" / "tasks"
PHLASK = Path(sys.executable).parent / "phlask"

#: task language -> its proof script under conformance/tasks/
LANGS = {"php": "proof.php", "node": "proof.mjs", "ruby": "proof.rb", "shell": "proof.sh", "python": "proof.py"}
#: every end-to-end case, in matrix order
CASES = (*LANGS, "tampered", "unknown_lang")
#: the interpreter each task language needs on the runner host
INTERPRETERS = {"php": "php", "node": "node", "ruby": "ruby", "shell": "sh", "python": "python3"}

KEY = ("conformance.k1", "conformance secret: é ☃")
UNKNOWN_LANG = "cobol"
TAMPER_MARK = "tamper-me"
LEAK_SENTINEL = "the runner's own environment must not reach tasks"
TEXT = "Zoë \"quoted\" 'single' $(echo no) `echo no` ☃ 😀"
INPUT = {"user": 42, "text": "Zoë \"q\" $(echo no) ☃ 😀", "list": [1, 2.5, True, None, "x"],
         "nested": {"empty": {}, "none": []}, "negative": -7}
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def task_args(workdir: Path) -> list[str]:
    """Arguments that break anything passing them through a shell or a lossy encoding.
    Were ``$(...)`` ever run by a shell, it would create ``workdir/pwned``."""
    return ["plain", "two  spaces and trailing ", "it's \"quoted\"",
            f"$(touch {workdir / 'pwned'}) `touch {workdir / 'pwned'}` $HOME ${{PATH}}",
            "Zoë ☃ 日本語 😀", "", "tab\there\nnew line", "back\\slash *.txt ; | & > < #", "--flag=1"]


@dataclass
class Planned:
    """One task of one producer on one backend."""

    case: str
    inputs: dict[str, Any]
    proof: Path
    id: str | None = None


@dataclass
class Lane:
    """One producer on one backend: its queue, its tasks and how enqueueing went."""

    producer: Producer
    backend: Backend
    queue: str
    tasks: dict[str, Planned] = field(default_factory=dict)
    enqueue_error: str | None = None
    enqueue_notes: list[str] = field(default_factory=list)  # problems with the returned ids
    tamper_error: str | None = None


def plan(producer: Producer, backend: Backend, queue: str, workdir: Path) -> Lane:
    lane = Lane(producer, backend, queue)
    proofs = workdir / "proofs"
    args = task_args(workdir)
    for case in CASES:
        proof = proofs / f"{backend.name}-{producer.name}-{case}.jsonl"
        lang, file = {"tampered": ("shell", LANGS["shell"]), "unknown_lang": (UNKNOWN_LANG, LANGS["shell"])}.get(
            case, (case, LANGS.get(case)))
        lane.tasks[case] = Planned(case, {
            "queue": queue, "lang": lang, "file": file,
            "args": args + [TAMPER_MARK] if case == "tampered" else args,
            "env": {"CONFORMANCE_PROOF": str(proof), "CONFORMANCE_TEXT": TEXT},
            "input": INPUT, "timeout": 60, "meta": {"conformance": f"{producer.name}/{case}"},
        }, proof)
    return lane


def enqueue(lane: Lane) -> None:
    """The producer enqueues its signed tasks in one batch and signs the tampered one; the
    harness changes one byte of that body and stores it through the Python broker API."""
    batch = [t for t in lane.tasks.values() if t.case != "tampered"]
    try:
        resp = lane.producer.call({"op": "enqueue", "url": lane.backend.url, "signing_key": list(KEY),
                                   "tasks": [t.inputs for t in batch]})
    except DriverError as exc:
        lane.enqueue_error = str(exc)
    else:
        if "error" in resp:
            err = resp["error"]
            lane.enqueue_error = f"{err.get('type')} ({err.get('code')}): {err.get('message')}"
        elif len(resp.get("ids", [])) != len(batch):
            lane.enqueue_error = f"asked for {len(batch)} tasks, got ids {resp.get('ids')!r}"
        else:
            for task, task_id in zip(batch, resp["ids"]):
                task.id = task_id
                if not isinstance(task_id, str) or not UUID7.match(task_id):
                    lane.enqueue_notes.append(f"id {task_id!r} is not a lowercase UUIDv7")
            if len(set(resp["ids"])) != len(batch):
                lane.enqueue_notes.append(f"ids repeat: {resp['ids']}")
    _store_tampered(lane)


def _store_tampered(lane: Lane) -> None:
    task = lane.tasks["tampered"]
    try:
        signed = lane.producer.call({"op": "sign", "envelope_input": task.inputs, "key": list(KEY)})
        body = signed["body"].encode("utf-8")
        if signed["key_id"] != KEY[0] or not verify_signature(body, signed["signature"], KEY[1].encode("utf-8")):
            lane.tamper_error = (f"the driver's signature {signed['signature']} (key id {signed['key_id']!r}) "
                                 "does not verify on the untouched body, so a bad_signature would prove nothing")
            return
        at = body.index(TAMPER_MARK.encode())
        tampered = body[:at] + b"T" + body[at + 1:]  # one byte: t -> T, the JSON stays valid
        task.id = json.loads(body)["id"]
        msg = Message(id=task.id, queue=lane.queue, body=tampered, signature=signed["signature"],
                      key_id=signed["key_id"])
        broker = connect(lane.backend.url)
        try:
            broker.enqueue([msg])
        finally:
            broker.close()
    except DriverError as exc:
        lane.tamper_error = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported in the matrix
        lane.tamper_error = f"storing the tampered copy failed: {type(exc).__name__}: {exc}"


def run_runner(backend: Backend, queues: list[str], workdir: Path, timeout: float = 240) -> tuple[int | None, str]:
    """One ``phlask run`` that drains every queue of this backend. Returns (exit status or
    None on timeout, log path)."""
    log = workdir / f"runner-{backend.name}.log"
    argv = [str(PHLASK), "run", "--broker", backend.url, "--root", str(TASKS), "--key", "=".join(KEY),
            "--wait", "20", "--config", "/dev/null", "--max-processes", "16",
            "--log-dir", str(workdir / f"logs-{backend.name}"), *backend.runner_options()]
    for q in queues:
        argv += ["--queue", q]
    env = {**os.environ, "CONFORMANCE_RUNNER_ONLY": LEAK_SENTINEL}
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout), str(log)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the runner's own group: it and its tasks
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return None, str(log)


def _proof_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _unhex(value: str | None) -> str | None:
    return None if value is None else bytes.fromhex(value).decode("utf-8", "replace")


def _normalise(proof: dict[str, Any]) -> dict[str, Any]:
    """proof.sh writes hex (POSIX sh has no JSON encoder); give it the common shape."""
    if "argv_hex" in proof:
        proof = {**proof, "argv": [_unhex(a) for a in proof["argv_hex"]], "text": _unhex(proof["text_hex"]),
                 "leak": _unhex(proof["leak_hex"]), "stdin": _unhex(proof["stdin_hex"])}
    return proof


def _state(info: Any) -> str:
    text = info.state + (f" ({info.reason})" if info.reason else "")
    result = info.result or {}
    if result.get("error"):
        text += f": {result['error']}"
    tail = (result.get("stderr_tail") or "").strip()
    if tail:
        text += f"; stderr: {tail[-400:]}"
    return text


def verify(lane: Lane, reader: Any) -> list[dict[str, Any]]:
    """One matrix cell per case of this lane."""
    cells = []
    for case, task in lane.tasks.items():
        cell = {"producer": lane.producer.name, "backend": lane.backend.name, "case": case,
                "task_id": task.id, "status": "fail", "reason": None}
        cell["reason"] = _verify_task(lane, task, reader)
        if cell["reason"] is None:
            cell["status"] = "pass"
        cells.append(cell)
    return cells


def _verify_task(lane: Lane, task: Planned, reader: Any) -> str | None:
    """None when the task did exactly what it should; otherwise what went wrong."""
    if task.case == "tampered" and lane.tamper_error:
        return lane.tamper_error
    if task.case != "tampered" and lane.enqueue_error:
        return f"enqueue failed: {lane.enqueue_error}"
    try:
        info = reader.inspect(task.id)
    except TaskNotFound:
        return f"task {task.id} is unknown to the backend after the runner drained its queues"
    runs = _proof_lines(task.proof)
    if task.case in LANGS:
        if info.state != "succeeded":
            return f"state {_state(info)}, want succeeded"
        return _check_proof(lane, task, runs)
    want = "bad_signature" if task.case == "tampered" else "unknown_lang"
    if (info.state, info.reason) != ("dead", want):
        return f"state {_state(info)}, want dead ({want})"
    if runs:
        return f"dead as expected, but the task ran {len(runs)} time(s)"
    return None


def _check_proof(lane: Lane, task: Planned, runs: list[dict[str, Any]]) -> str | None:
    if len(runs) != 1:
        return f"succeeded, but the task ran {len(runs)} times (want exactly once)"
    proof = _normalise(runs[0])
    want = {"lang": task.inputs["lang"], "argv": task.inputs["args"], "text": TEXT, "leak": None,
            "task_id": task.id, "attempt": "1", "queue": lane.queue}
    problems = [f"{k}: got {json.dumps(proof.get(k), ensure_ascii=False)}, want {json.dumps(v, ensure_ascii=False)}"
                for k, v in want.items() if proof.get(k) != v]
    try:
        stdin = json.loads(proof.get("stdin") or "")
    except ValueError:
        problems.append(f"stdin is not JSON: {proof.get('stdin')!r}")
    else:
        if not json_equal(stdin, INPUT):
            problems.append(f"stdin: got {json.dumps(stdin, ensure_ascii=False)}, want {json.dumps(INPUT, ensure_ascii=False)}")
    return "; ".join(problems) or None
