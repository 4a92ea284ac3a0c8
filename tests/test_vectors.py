"""Run the shared conformance vectors (conformance/vectors/) against the Python runner.

Read in place, never copied: the same files drive every SDK's tests. See
conformance/README.md for the formats.

* validation/*.json: the canonical check (``phlask.envelope.schema_errors``) and the fast
  decoder (``phlask.envelope.decode``) must both give the vector's verdict and, for an
  invalid case, report an error whose path starts with the case's ``path``. An
  independent reference (plain jsonschema with ECMA-262 ``$``) checks the vectors.
* build/*.json: ``phlask.producer.build_envelope(input, now)`` minus ``producer`` must
  equal ``expected``, or raise EnvelopeError with an error at the ``error`` path.
* signing.json: ``phlask.signing.sign`` / ``verify``.
* conformance/check must pass.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "conformance" / "vectors"
sys.path.insert(0, str(ROOT / "conformance"))
from harness.vectors import json_equal  # noqa: E402  (one JSON equality for harness and suite)
CHECK = ROOT / "conformance" / "check"
SPEC = ROOT / "spec"


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _validation_cases():
    out = []
    for path in sorted((VECTORS / "validation").glob("*.json")):
        for group in _load(path):
            for case in group["tests"]:
                out.append(pytest.param(group["schema"], case, id=f"{path.stem}: {case['description']}"))
    return out


def _build_cases():
    out = []
    for path in sorted((VECTORS / "build").glob("*.json")):
        for vec in _load(path):
            out.append(pytest.param(vec, id=f"build/{path.stem}: {vec['description']}"))
    return out


def _signing_cases():
    return [pytest.param(v, id=f"signing: {v['description']}") for v in _load(VECTORS / "signing.json")]


VALIDATION = _validation_cases()
BUILD = _build_cases()
SIGNING = _signing_cases()


def _body(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def _paths(errors) -> list[str]:
    return [e.path for e in errors]


def _has_path(errors, prefix: str) -> bool:
    return any(p == prefix or p.startswith(prefix) for p in _paths(errors))


def test_vector_counts():
    assert len(VALIDATION) >= 120
    assert len(BUILD) >= 20
    assert sum(1 for p in BUILD if "error" in p.values[0]) >= 5
    assert len(SIGNING) >= 8


# --------------------------------------------------------------------------- reference


def _reference_validator():
    """Plain jsonschema, format asserted, ``pattern`` with ECMA-262 ``$`` (end of string only)."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def ecma_pattern(validator, pattern, instance, schema):
        if validator.is_type(instance, "string"):
            py = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
            if not re.search(py, instance):
                yield ValidationError(f"{instance!r} does not match {pattern!r}")

    cls = validators.extend(Draft202012Validator, {"pattern": ecma_pattern})
    return {
        name: cls(_load(SPEC / name), format_checker=Draft202012Validator.FORMAT_CHECKER)
        for name in {p.values[0] for p in VALIDATION}
    }


_REFERENCE = _reference_validator()


@pytest.mark.parametrize("schema, case", VALIDATION)
def test_reference_validator_agrees(schema, case):
    """The vectors themselves: an independent validator gives the same verdict."""
    errors = list(_REFERENCE[schema].iter_errors(case["data"]))
    assert (not errors) == case["valid"], [e.message for e in errors]


# --------------------------------------------------------------------------- runner


@pytest.mark.parametrize("schema, case", VALIDATION)
def test_schema_errors(schema, case):
    from phlask.envelope import schema_errors

    errors = schema_errors(case["data"], schema)
    if case["valid"]:
        assert errors == [], [str(e) for e in errors]
    else:
        assert errors, "schema_errors accepted an invalid envelope"
        if "path" in case:
            assert _has_path(errors, case["path"]), (case["path"], [str(e) for e in errors])


@pytest.mark.parametrize("schema, case", VALIDATION)
def test_decode(schema, case):
    from phlask.envelope import Envelope, decode
    from phlask.errors import EnvelopeError

    if schema != "task.schema.json":
        pytest.skip("decode() reads task envelopes only")
    body = _body(case["data"])
    if case["valid"]:
        assert isinstance(decode(body), Envelope)
    else:
        with pytest.raises(EnvelopeError) as info:
            decode(body)
        errors = info.value.errors
        assert errors, "EnvelopeError without errors"
        if "path" in case:
            assert _has_path(errors, case["path"]), (case["path"], [str(e) for e in errors])


@pytest.mark.parametrize("vec", BUILD)
def test_build(vec):
    from phlask.envelope import schema_errors
    from phlask.errors import EnvelopeError
    from phlask.producer import build_envelope

    inp = copy.deepcopy(vec["input"])
    if "error" in vec:
        with pytest.raises(EnvelopeError) as info:
            build_envelope(inp, vec["now"])
        assert _has_path(info.value.errors, vec["error"]), (vec["error"], [str(e) for e in info.value.errors])
        return
    expected = vec["expected"]
    assert schema_errors(expected) == [], "the vector's expected envelope is not schema-valid"
    got = build_envelope(inp, vec["now"])
    got = json.loads(json.dumps(got))  # must be plain JSON
    got.pop("producer", None)
    diff = {k: {"got": got.get(k, "<absent>"), "expected": expected.get(k, "<absent>")}
            for k in sorted(set(got) | set(expected)) if not json_equal(got.get(k, ...), expected.get(k, ...))}
    assert json_equal(got, expected), diff
    assert inp == vec["input"], "build_envelope modified its input"


@pytest.mark.parametrize("vec", SIGNING)
def test_signing(vec):
    from phlask.signing import sign, verify

    body, key = vec["body"].encode("utf-8"), vec["key"].encode("utf-8")
    if vec.get("valid", True):
        assert sign(body, key) == vec["signature"]
        assert verify(body, vec["signature"], key) is True
    else:
        assert sign(body, key) != vec["signature"]
        assert verify(body, vec["signature"], key) is False


# --------------------------------------------------------------------------- the checker


def test_check_is_executable_script():
    assert CHECK.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert os.access(CHECK, os.X_OK)


def test_conformance_check_passes():
    proc = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^conformance/check: \d+ files, \d+ cases, 0 problems$", proc.stdout, re.M), proc.stdout
