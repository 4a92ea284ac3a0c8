"""The producer drivers: how to start each one, and the one call they all answer.

The table is data: adding a producer is one entry here plus its driver file in
``conformance/drivers/``. A driver reads one JSON request on stdin and writes one JSON
response on stdout (conformance/README.md, "Drivers").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "conformance" / "drivers"


class DriverError(Exception):
    """A driver crashed, timed out or answered something that is not JSON."""


@dataclass
class Producer:
    """One producer SDK and how to run its driver."""

    name: str  # python, php, node, go
    sdk: str  # what it writes as producer.sdk
    argv: list[str]  # the driver command; for go, filled in once the binary is built
    needs: list[str] = field(default_factory=list)  # commands that must be on PATH
    files: list[Path] = field(default_factory=list)  # files that must exist (dependencies)

    def missing(self) -> list[str]:
        """What this host lacks to run the driver (empty when it can run)."""
        out = [f"`{cmd}` not on PATH" for cmd in self.needs if shutil.which(cmd) is None]
        out += [f"{p.relative_to(ROOT)} missing (run scripts/setup)" for p in self.files if not p.exists()]
        return out

    def call(self, request: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
        """Send one request and return the parsed response. Raises DriverError."""
        try:
            proc = subprocess.run(self.argv, input=json.dumps(request).encode(), capture_output=True,
                                  timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            raise DriverError(f"{self.name} driver: no answer to {request['op']!r} within {timeout:g} s") from None
        except OSError as exc:
            raise DriverError(f"{self.name} driver: cannot start {self.argv[0]}: {exc}") from None
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            raise DriverError(f"{self.name} driver: {request['op']!r} exited with status {proc.returncode}: "
                              f"{stderr[-2000:] or '(no stderr)'}")
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            raise DriverError(f"{self.name} driver: {request['op']!r} answered non-JSON ({exc}): "
                              f"{proc.stdout[:300]!r} {stderr[-500:]}") from None


def producers(var: Path) -> dict[str, Producer]:
    """Every producer, in matrix order. ``var`` is where the Go driver binary goes."""
    return {
        "python": Producer("python", "phlask-python", [sys.executable, str(DRIVERS / "python.py")]),
        "php": Producer("php", "phlask-php", ["php", str(DRIVERS / "php.php")], needs=["php"]),
        "node": Producer("node", "phlask-node", ["node", str(DRIVERS / "node.mjs")], needs=["node"],
                         files=[ROOT / "sdks" / "node" / "node_modules"]),
        "go": Producer("go", "phlask-go", [str(var / "bin" / "phlask-conformance-go")], needs=["go"]),
    }


def build_go(producer: Producer) -> None:
    """Build the Go driver (conformance/drivers/go, a module that replaces the SDK with
    sdks/go) into the binary its argv names. Go's build cache makes repeats quick; the
    modules come from the cache ``scripts/setup`` fills (``go mod download`` in sdks/go)."""
    out = Path(producer.argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["go", "build", "-mod=readonly", "-o", str(out), "."], cwd=DRIVERS / "go",
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise DriverError(f"go driver: `go build` failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
