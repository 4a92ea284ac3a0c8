"""The README's examples work as written: its first command (the demo), the Python API
block and the `phlask validate` transcript."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
EXAMPLES = ROOT / "examples" / "tasks"


def block(after_heading: str, lang: str) -> str:
    """The first ```lang block after the heading ``after_heading``."""
    start = README.index(after_heading)
    m = re.compile(rf"^```{lang}\n(.*?)^```", re.S | re.M).search(README, start)
    assert m, f"no ```{lang} block after {after_heading!r}"
    return m.group(1)


def test_readme_gives_the_two_commands():
    two = block("## Two commands", "sh")
    assert "bash scripts/demo" in two and "bash scripts/test" in two


def test_demo_runs_every_sample_task_to_success():
    # The README's first command, as a newcomer runs it (set-up is already done here, so
    # scripts/setup finds everything in place).
    out = subprocess.run(["bash", "scripts/demo"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    states = re.findall(r"^--- (demo-\w+)\nstate:\s+(\w+)", out.stdout, re.M)
    assert dict(states) == {f"demo-{n}": "succeeded" for n in ("php", "node", "ruby", "shell", "python", "flaky")}
    assert "attempt 2: ok" in out.stdout  # the flaky one failed once and was retried


def test_python_api_block_runs(tmp_path):
    # The block as printed, with its two host paths pointed at a scratch directory.
    src = block("From Python, echoing the original library", "python")
    jobs = tmp_path / "srv" / "jobs"
    (jobs / "jobs").mkdir(parents=True)
    shutil.copy(EXAMPLES / "report.php", jobs / "report.php")
    shutil.copy(EXAMPLES / "stats.py", jobs / "jobs" / "stats.py")
    db = tmp_path / "queue.db"
    src = src.replace("/var/lib/phlask/queue.db", str(db)).replace("/srv/jobs", str(jobs))
    src += ("\nfrom phlask.wire import State\n"
            "counts = connect('sqlite:///" + str(db) + "').counts()['default']\n"
            "print(counts[State.SUCCEEDED], counts[State.DEAD])\n")
    out = subprocess.run([sys.executable, "-c", src], cwd=jobs, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["11", "0"]  # the PHP report and ten stats tasks


def test_validate_transcript_is_what_phlask_prints():
    text = block("## Bad input", "sh")
    command, *expected = text.strip().splitlines()
    assert command.startswith("$ echo ") and command.endswith("| phlask validate -")
    payload = command[len("$ echo '"):command.rindex("' | phlask")]
    phlask = shutil.which("phlask", path=str(Path(sys.executable).parent)) or "phlask"
    out = subprocess.run([phlask, "validate", "-"], input=payload, capture_output=True, text=True)
    assert out.returncode != 0
    assert (out.stdout + out.stderr).strip().splitlines() == expected


