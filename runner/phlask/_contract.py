"""Load the contract files (spec/) once.

The schema and wire constants are defined in spec/ and nowhere else. An installed
wheel carries them as ``phlask/_spec``; a source checkout reads ``spec/`` directly.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def spec_dir() -> Path:
    """Return the directory that holds task.schema.json and wire.json."""
    for candidate in (_HERE / "_spec", _HERE.parent.parent / "spec"):
        if (candidate / "task.schema.json").is_file():
            return candidate
    raise FileNotFoundError(
        "phlask contract files not found: expected phlask/_spec/ in the installed package "
        "or spec/ in the source tree; reinstall phlask"
    )


@functools.cache
def load(name: str) -> Any:
    """Return the parsed JSON of one contract file, e.g. ``load("wire.json")``."""
    with open(spec_dir() / name, "rb") as f:
        return json.load(f)


def task_schema() -> dict[str, Any]:
    return load("task.schema.json")


def result_schema() -> dict[str, Any]:
    return load("result.schema.json")


def wire() -> dict[str, Any]:
    return load("wire.json")
