"""The figures the fault suite measures, per backend, and the table they make.

Tests add to :data:`FIGURES` with :func:`add` and :func:`note`; the suite's conftest prints
:func:`table` at the end of the run and :func:`save` writes everything as JSON to
``var/reliability/<form>.json`` (or ``$PHLASK_FIGURES``), which ``bench/reliability.py``
turns into the README's Markdown table.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Columns of the table, in order, with their headings.
COLUMNS = {
    "tasks": "tasks",
    "kills": "runner kills",
    "runner_restarts": "runner restarts",
    "broker_restarts": "broker restarts",
    "lost": "lost",
    "duplicated": "run twice+",
    "unexplained_duplicates": "dup. unexplained",
    "bad_inputs": "bad inputs",
    "good_mixed_in": "good mixed in",
    "wrong_outcome": "wrong outcome",
    "crashes": "runner crashes",
    "hostile": "hostile contained",
}

FIGURES: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
NOTES: list[tuple[str, str]] = []


def add(backend: str, **counts: int) -> None:
    """Add to the backend's figures (columns of :data:`COLUMNS`)."""
    unknown = set(counts) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown figure(s) {sorted(unknown)}; known: {list(COLUMNS)}")
    FIGURES[backend].update({k: int(v) for k, v in counts.items()})
    FIGURES[backend].update({k: 0 for k in counts if k not in FIGURES[backend]})


def note(backend: str, text: str) -> None:
    """A measured fact worth a line under the table (times, peaks, sizes)."""
    NOTES.append((backend, text))


def table(data: dict[str, dict[str, int]] | None = None) -> str:
    """The figures as a Markdown table: one row per backend and a total."""
    data = FIGURES if data is None else data
    names = sorted(data)
    head = "| backend | " + " | ".join(COLUMNS.values()) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [f"| {n} | " + " | ".join(str(data[n].get(k, 0)) for k in COLUMNS) + " |" for n in names]
    total = {k: sum(data[n].get(k, 0) for n in names) for k in COLUMNS}
    rows.append("| **all** | " + " | ".join(f"**{total[k]}**" for k in COLUMNS) + " |")
    return "\n".join([head, rule, *rows])


def notes(data: list | None = None) -> list[str]:
    return [f"- {b}: {t}" for b, t in (NOTES if data is None else data)]


def save(long: bool, seed: int) -> Path | None:
    if not FIGURES and not NOTES:
        return None
    form = "long" if long else "short"
    path = Path(os.environ.get("PHLASK_FIGURES") or ROOT / "var" / "reliability" / f"{form}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"form": "long" if long else "short", "seed": seed,
                                "date": time.strftime("%Y-%m-%d", time.gmtime()),
                                "figures": {b: dict(c) for b, c in FIGURES.items()},
                                "notes": NOTES}, indent=2) + "\n")
    return path
