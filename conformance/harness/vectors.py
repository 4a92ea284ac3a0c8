"""Validation and build vectors: ask a producer's driver, compare with the files.

The rules are conformance/README.md's: every validator a driver reports must give the
case's ``valid`` verdict and, for an invalid case with a ``path``, report an error whose
path starts with it; a built envelope minus ``producer`` must equal ``expected`` as a JSON
value; an ``error`` vector must be refused with an error at its path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .drivers import ROOT, DriverError, Producer

VECTORS = ROOT / "conformance" / "vectors"


def validation_files() -> list[Path]:
    return sorted((VECTORS / "validation").glob("*.json"))


def build_files() -> list[Path]:
    return sorted((VECTORS / "build").glob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: numbers by value (60 == 60.0), booleans never equal numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _has_path(paths: list[str], prefix: str) -> bool:
    return any(p.startswith(prefix) for p in paths)


@dataclass
class Tally:
    """One producer's result on one kind of vector."""

    total: int = 0
    passed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    #: error vectors the SDK's API cannot even express (counted as passed: refused by its types)
    not_expressible: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None  # the driver itself failed

    def fail(self, file: Path, description: str, reason: str) -> None:
        self.failures.append({"case": f"{file.stem}: {description}", "reason": reason})

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures and self.passed == self.total

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "passed": self.passed, "not_expressible": self.not_expressible,
                "failures": self.failures, "error": self.error}


def _answers(resp: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(Path(r["file"]).name, r["description"]): r for r in resp.get("results", [])}


def check_validation(producer: Producer) -> Tally:
    """Every validation vector through every validator the producer's driver reports."""
    files = validation_files()
    tally = Tally()
    cases = [(f, case) for f in files for group in _load(f) for case in group["tests"]]
    tally.total = len(cases)
    try:
        answers = _answers(producer.call({"op": "validate", "files": [str(f) for f in files]}))
    except DriverError as exc:
        tally.error = str(exc)
        return tally
    for file, case in cases:
        got = answers.get((file.name, case["description"]))
        if got is None or not got.get("checks"):
            tally.fail(file, case["description"], "the driver gave no verdict")
            continue
        problems = []
        for name, verdict in got["checks"].items():
            if verdict["valid"] != case["valid"]:
                said = "valid" if verdict["valid"] else f"invalid ({verdict.get('message')})"
                problems.append(f"{name} says {said}, the vector says {'valid' if case['valid'] else 'invalid'}")
            elif not case["valid"] and "path" in case and not _has_path(verdict["paths"], case["path"]):
                problems.append(f"{name}: no error at {case['path']}, got {verdict['paths']}")
        if problems:
            tally.fail(file, case["description"], "; ".join(problems))
        else:
            tally.passed += 1
    return tally


def check_build(producer: Producer) -> Tally:
    """Every build vector: the driver's envelope minus ``producer`` equals ``expected``."""
    files = build_files()
    tally = Tally()
    vectors = [(f, v) for f in files for v in _load(f)]
    tally.total = len(vectors)
    try:
        answers = _answers(producer.call({"op": "build", "files": [str(f) for f in files]}))
    except DriverError as exc:
        tally.error = str(exc)
        return tally
    for file, vec in vectors:
        desc = vec["description"]
        got = answers.get((file.name, desc))
        if got is None:
            tally.fail(file, desc, "the driver gave no answer")
            continue
        if "error" in vec:
            if "unsupported" in got:
                tally.passed += 1
                tally.not_expressible.append({"case": f"{file.stem}: {desc}", "reason": got["unsupported"]})
            elif "error" in got:
                if _has_path(got["error"]["paths"], vec["error"]):
                    tally.passed += 1
                else:
                    tally.fail(file, desc, f"refused, but with no error at {vec['error']}: {got['error']['message']}")
            else:
                tally.fail(file, desc, f"built {got.get('body')}, want an error at {vec['error']}")
            continue
        if "body" not in got:
            tally.fail(file, desc, f"refused: {got.get('error', {}).get('message') or got.get('unsupported')}")
            continue
        reason = _compare_envelope(got["body"], vec["expected"], producer.sdk)
        if reason:
            tally.fail(file, desc, reason)
        else:
            tally.passed += 1
    return tally


def _compare_envelope(body: str, expected: dict[str, Any], sdk: str) -> str | None:
    """Why ``body`` is not the expected envelope (None when it is)."""
    try:
        got = json.loads(body)
    except ValueError as exc:
        return f"the built envelope is not JSON ({exc}): {body[:200]}"
    if not isinstance(got, dict):
        return f"the built envelope is not an object: {body[:200]}"
    producer = got.pop("producer", None)
    if not isinstance(producer, dict) or producer.get("sdk") != sdk:
        return f"producer is {producer!r}, want an object with sdk {sdk!r}"
    if json_equal(got, expected):
        return None
    diff = [f"{k}: got {json.dumps(got.get(k, '<absent>'), ensure_ascii=False)}, "
            f"want {json.dumps(expected.get(k, '<absent>'), ensure_ascii=False)}"
            for k in sorted(set(got) | set(expected)) if not json_equal(got.get(k, ...), expected.get(k, ...))]
    return "; ".join(diff)
