"""The wheel carries the contract files, so an installed phlask works outside the repository."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_contract_and_validates_outside_the_repo(tmp_path):
    # Given a wheel built from the checkout
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("phlask-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("task.schema.json", "result.schema.json", "wire.json"):
        assert f"phlask/_spec/{f}" in names
    # When it is unpacked somewhere else and run from a directory with no spec/ around
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    good = json.dumps({"phlask": 1, "id": "t-1", "lang": "php", "file": "x.php", "created_at": "2026-11-28T00:00:00Z"})
    bad = good.replace('"php"', '"PHP"')
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}

    def validate(text):
        return subprocess.run([sys.executable, "-c", "import sys; from phlask.cli import main; sys.exit(main())",
                               "validate", "-"], input=text, capture_output=True, text=True, cwd=tmp_path, env=env)

    ok = validate(good)
    assert ok.returncode == 0 and ok.stdout.strip() == "valid", ok.stderr
    no = validate(bad)
    assert no.returncode == 1 and "$.lang" in no.stdout
    # Then the contract came from the wheel, not the source tree
    where = subprocess.run([sys.executable, "-c", "from phlask._contract import spec_dir; print(spec_dir())"],
                           capture_output=True, text=True, cwd=tmp_path, env=env).stdout.strip()
    assert where.startswith(str(site))
