"""The wire constants are defined once, in spec/; every Python copy is checked against them."""

from __future__ import annotations

import json
from pathlib import Path

from phlask import _contract
from phlask.wire import DEFAULTS, LIMITS, DeadReason, State

SPEC = Path(__file__).resolve().parent.parent / "spec"


def test_state_and_reason_enums_match_wire_json():
    wire = json.loads((SPEC / "wire.json").read_text())
    assert [s.value for s in State] == list(wire["states"])
    assert [r.value for r in DeadReason] == list(wire["dead_reasons"])


def test_numbers_stated_twice_agree():
    schema = json.loads((SPEC / "task.schema.json").read_text())
    props = schema["properties"]
    assert props["code"]["maxLength"] == LIMITS["code_chars"]
    assert props["meta"]["maxProperties"] == LIMITS["meta_entries"]
    assert props["timeout"]["maximum"] == LIMITS["max_timeout_seconds"]
    assert props["queue"]["default"] == DEFAULTS["queue"]
    assert props["max_attempts"]["default"] == DEFAULTS["max_attempts"]
    assert props["priority"]["default"] == DEFAULTS["priority"]
    assert {k: v["default"] for k, v in props["backoff"]["properties"].items()} == DEFAULTS["backoff"]


def test_result_schema_reasons_and_states_are_wire_values():
    result = json.loads((SPEC / "result.schema.json").read_text())
    assert set(result["properties"]["state"]["enum"]) <= {s.value for s in State}


def test_every_schema_property_documents_itself():
    for name in ("task.schema.json", "result.schema.json"):
        schema = json.loads((SPEC / name).read_text())

        def walk(props, where):
            for key, sub in props.items():
                assert "description" in sub, f"{name}: {where}{key} has no description"
                assert "examples" in sub, f"{name}: {where}{key} has no examples"
                walk(sub.get("properties", {}), f"{where}{key}.")
        walk(schema["properties"], "")


def test_installed_package_reads_the_same_contract():
    # In a source checkout the package reads spec/ itself; a wheel carries a copy (pyproject force-include).
    assert _contract.task_schema() == json.loads((SPEC / "task.schema.json").read_text())


def test_format_unix_matches_format_ts_to_the_millisecond():
    # The runner formats instants with format_unix (no datetime per call); it must agree
    # with format_ts, which rounds as datetime.fromtimestamp does.
    import random
    from datetime import datetime, timezone

    from phlask.producer import format_ts, format_unix
    rng = random.Random(7)
    samples = [0.0, 0.0005, 0.9995, 1494918909.9229994, 1_700_000_000.0, 1e-7, 2**31 - 0.0004]
    samples += [rng.uniform(0, 4e9) for _ in range(20_000)] + [round(rng.uniform(0, 4e9), 3) for _ in range(5_000)]
    for ts in samples:
        assert format_unix(ts) == format_ts(datetime.fromtimestamp(ts, timezone.utc)), ts
