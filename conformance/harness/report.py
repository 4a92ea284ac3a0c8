"""The matrix: printed for people, written as JSON and Markdown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .e2e import CASES
from .vectors import Tally

COLUMNS = ("enqueue", *CASES)


@dataclass
class Report:
    run_id: str
    started_at: str
    ci: bool
    producers: list[str]
    backends: list[str]
    vectors: dict[str, dict[str, Tally | None]] = field(default_factory=dict)  # producer -> kind -> tally
    cells: list[dict[str, Any]] = field(default_factory=list)  # producer, backend, case, status, reason
    problems: list[str] = field(default_factory=list)  # failures outside any cell
    notes: list[str] = field(default_factory=list)  # skips and other facts worth reading
    timings: dict[str, float] = field(default_factory=dict)  # seconds

    @property
    def ok(self) -> bool:
        tallies_ok = all(t is None or t.ok for kinds in self.vectors.values() for t in kinds.values())
        return tallies_ok and not self.problems and all(c["status"] != "fail" for c in self.cells)

    def cell(self, producer: str, backend: str, case: str) -> dict[str, Any] | None:
        return next((c for c in self.cells
                     if (c["producer"], c["backend"], c["case"]) == (producer, backend, case)), None)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for c in self.cells:
            out[c["status"]] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "started_at": self.started_at, "ci": self.ci, "ok": self.ok,
            "producers": self.producers, "backends": self.backends, "cases": list(COLUMNS),
            "counts": self.counts(),
            "vectors": {p: {k: (t.to_json() if t else None) for k, t in kinds.items()}
                        for p, kinds in self.vectors.items()},
            "cells": self.cells, "problems": self.problems, "notes": self.notes,
            "timings_seconds": {k: round(v, 2) for k, v in self.timings.items()},
        }


def _tally_text(t: Tally | None) -> str:
    if t is None:
        return "skipped"
    if t.error:
        return "driver failed"
    text = f"{t.passed}/{t.total}"
    if t.not_expressible:
        text += f" ({len(t.not_expressible)} not expressible)"
    return text


def _failures(report: Report) -> list[str]:
    out = []
    for p, kinds in report.vectors.items():
        for kind, t in kinds.items():
            if t is None:
                continue
            if t.error:
                out.append(f"{p} {kind} vectors: {t.error}")
            out += [f"{p} {kind} vector `{f['case']}`: {f['reason']}" for f in t.failures]
    grouped: dict[tuple[str, str, str], list[str]] = {}  # one line for a reason shared by a lane
    for c in report.cells:
        if c["status"] == "fail":
            grouped.setdefault((c["backend"], c["producer"], c["reason"]), []).append(c["case"])
    for (backend, producer, reason), cases in grouped.items():
        which = "every case" if len(cases) == len(COLUMNS) else ", ".join(cases)
        out.append(f"{backend} / {producer} / {which}: {reason}")
    return out + report.problems


def _notes(report: Report) -> list[str]:
    out = list(report.notes)
    for p, kinds in report.vectors.items():
        for kind, t in kinds.items():
            out += [f"{p} {kind} vector `{n['case']}` cannot be expressed in its API ({n['reason']}): "
                    "counted as refused" for n in (t.not_expressible if t else [])]
    return out


def _timing_text(report: Report) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items() if k != "total")


def text(report: Report) -> str:
    lines = [f"conformance matrix (run {report.run_id}): {len(report.producers)} producers x "
             f"{len(report.backends)} backends x 5 task languages, plus tampered and unknown-lang", ""]
    head = ["backend", "producer", *COLUMNS]
    rows = [[b, p, *[(report.cell(p, b, c) or {"status": "-"})["status"] for c in COLUMNS]]
            for b in report.backends for p in report.producers]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    lines += ["", "vectors   validation        build"]
    for p in report.producers:
        kinds = report.vectors.get(p, {})
        lines.append(f"{p:<9} {_tally_text(kinds.get('validation')):<17} {_tally_text(kinds.get('build'))}")
    counts = report.counts()
    lines += ["", f"end to end: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"]
    failures = _failures(report)
    if failures:
        lines += ["", "failures:"] + [f"  - {f}" for f in failures]
    if _notes(report):
        lines += ["", "notes:"] + [f"  - {n}" for n in _notes(report)]
    lines += ["", f"time: {report.timings.get('total', 0):.1f} s ({_timing_text(report)})",
              f"result: {'PASS' if report.ok else 'FAIL'}"]
    return "\n".join(lines)


def _md(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown(report: Report) -> str:
    mark = {"pass": "pass", "fail": "**FAIL**", "skip": "skip", "-": "-"}
    out = [f"# Conformance matrix, run {report.run_id}", "",
           f"Started {report.started_at}; {report.timings.get('total', 0):.1f} s; "
           f"result **{'PASS' if report.ok else 'FAIL'}**{' (CI)' if report.ci else ''}.", "",
           "## End to end", "",
           "| backend | producer | " + " | ".join(COLUMNS) + " |",
           "|---|---|" + "---|" * len(COLUMNS)]
    for b in report.backends:
        for p in report.producers:
            cells = [mark[(report.cell(p, b, c) or {"status": "-"})["status"]] for c in COLUMNS]
            out.append(f"| {b} | {p} | " + " | ".join(cells) + " |")
    out += ["", "## Vectors", "", "| producer | validation | build |", "|---|---|---|"]
    for p in report.producers:
        kinds = report.vectors.get(p, {})
        out.append(f"| {p} | {_tally_text(kinds.get('validation'))} | {_tally_text(kinds.get('build'))} |")
    failures = _failures(report)
    if failures:
        out += ["", "## Failures", ""] + [f"- {_md(f)}" for f in failures]
    if _notes(report):
        out += ["", "## Notes", ""] + [f"- {_md(n)}" for n in _notes(report)]
    out += ["", "## Time", "", f"{report.timings.get('total', 0):.1f} s in all: {_timing_text(report)}.", ""]
    return "\n".join(out)


def write(report: Report, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    js, md = directory / "matrix.json", directory / "matrix.md"
    js.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md.write_text(markdown(report), encoding="utf-8")
    return js, md
