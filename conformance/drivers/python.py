"""Conformance driver for the Python producer (runner/phlask): one JSON request on stdin,
one JSON response on stdout. The protocol is in conformance/README.md, "Drivers".

Run with the venv's interpreter, which has phlask installed.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import phlask
from phlask.envelope import decode, schema_errors
from phlask.errors import EnvelopeError, PhlaskError
from phlask.producer import Task, parse_ts
from phlask.signing import sign


def _text(data) -> bytes:
    """The JSON text of a vector's data, as a decoder would receive it."""
    try:
        return json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only the escaped form is representable
        return json.dumps(data).encode("utf-8")


def _verdict(errors) -> dict:
    return {"valid": not errors, "paths": [e.path for e in errors],
            "message": "; ".join(str(e) for e in errors) or None}


def validate(files: list[str]) -> dict:
    results = []
    for file in files:
        for group in json.loads(Path(file).read_text(encoding="utf-8")):
            for case in group["tests"]:
                checks = {"schema_errors": _verdict(schema_errors(case["data"], group["schema"]))}
                try:
                    decode(_text(case["data"]))
                    checks["decode"] = _verdict([])
                except EnvelopeError as exc:
                    checks["decode"] = _verdict(exc.errors)
                results.append({"file": file, "description": case["description"], "checks": checks})
    return {"results": results}


def _task(inputs: dict) -> Task:
    return Task(**inputs)


def _now(text: str | None) -> datetime:
    return parse_ts(text) if text else datetime.now(timezone.utc)


def build(files: list[str]) -> dict:
    results = []
    for file in files:
        for vec in json.loads(Path(file).read_text(encoding="utf-8")):
            out = {"file": file, "description": vec["description"]}
            try:
                out["body"] = _task(vec["input"]).encode(_now(vec["now"])).decode("utf-8")
            except EnvelopeError as exc:
                out["error"] = {"paths": [e.path for e in exc.errors], "message": str(exc)}
            except (TypeError, ValueError) as exc:  # the builder refused an argument outright
                out["error"] = {"paths": [], "message": f"{type(exc).__name__}: {exc}"}
            results.append(out)
    return {"results": results}


def enqueue(url: str, tasks: list[dict], signing_key) -> dict:
    try:
        broker = phlask.connect(url, signing_key=tuple(signing_key) if signing_key else None)
        try:
            return {"ids": broker.push_many([_task(t) for t in tasks])}
        finally:
            broker.close()
    except PhlaskError as exc:
        return {"error": {"type": type(exc).__name__, "code": exc.code, "message": str(exc)}}


def sign_op(envelope_input: dict, now: str | None, key) -> dict:
    body = _task(envelope_input).encode(_now(now))
    key_id, secret = key
    return {"body": body.decode("utf-8"), "signature": sign(body, secret.encode("utf-8")), "key_id": key_id}


def main() -> int:
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "validate":
        resp = validate(req["files"])
    elif op == "build":
        resp = build(req["files"])
    elif op == "enqueue":
        resp = enqueue(req["url"], req["tasks"], req.get("signing_key"))
    elif op == "sign":
        resp = sign_op(req["envelope_input"], req.get("now"), req["key"])
    else:
        print(f"python driver: unknown op {op!r}", file=sys.stderr)
        return 2
    json.dump(resp, sys.stdout)  # ASCII: messages may quote lone surrogates from the vectors
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
