"""Run the fault suite's long form (tests/faults/, PHLASK_LONG=1) and print its figures as
the Markdown table of the README's "Reliability" section.

    .venv/bin/python bench/reliability.py                 # run it (about 10 min: 587 s on 2 cores here), then the table
    .venv/bin/python bench/reliability.py --show FILE     # only print the table of a saved run
    .venv/bin/python bench/reliability.py -- -k sqlite    # arguments after -- go to pytest

It needs the servers of ``bash scripts/services start all``; their URLs come from
``scripts/services env`` unless MONGODB_URL and AMQP_URL are set. The figures are saved to
var/reliability/long.json (the suite writes var/reliability/short.json on every ordinary run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from faults.figures import notes, table  # noqa: E402


def services_env() -> dict[str, str]:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "services"), "env"], capture_output=True, text=True,
                         check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            k, _, v = line[len("export "):].partition("=")
            env[k] = v.strip().strip("'\"")
    return env


def show(path: Path) -> None:
    data = json.loads(path.read_text())
    print(f"Measured {data['date']} ({data['form']} form, PHLASK_SEED={data['seed']}):\n")
    print(table(data["figures"]))
    if data.get("notes"):
        print()
        print("\n".join(notes([tuple(n) for n in data["notes"]])))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", type=Path, metavar="FILE", help="print the table of a saved run and exit")
    ap.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")
    args = ap.parse_args()
    if args.show:
        show(args.show)
        return 0
    figures = ROOT / "var" / "reliability" / "long.json"
    env = dict(os.environ)
    if not (env.get("MONGODB_URL") and env.get("AMQP_URL")):
        env = {**services_env(), **env}
    env.update(PHLASK_LONG="1", PHLASK_FIGURES=str(figures))
    t0 = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra",
                         str(ROOT / "tests" / "faults"), *args.pytest_args], cwd=ROOT, env=env).returncode
    print(f"\nlong form: pytest exited {rc} after {time.monotonic() - t0:.0f}s\n")
    if figures.exists():
        show(figures)
    return rc


if __name__ == "__main__":
    sys.exit(main())
