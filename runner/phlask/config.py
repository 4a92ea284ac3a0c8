"""Runner settings: defaults, then ``phlask.toml``, then the command line.

``phlask.toml`` (found in the working directory, or named with ``--config``) holds the
same settings as the CLI flags, under ``[runner]``, plus ``[adapters.NAME]`` entries and
``[limits]``::

    [runner]
    broker = "sqlite:///var/lib/phlask/queue.db"
    queues = ["default", "reports"]
    max_processes = 8
    wait = 500            # ms between polls when idle
    roots = ["/srv/jobs"]
    allow_inline = false
    log_dir = "/var/log/phlask/tasks"
    default_timeout = 3600
    kill_grace = 10
    shutdown_grace = 30
    lease = 30
    short_slices = true   # the loop thread asks for 100 us time slices (Linux 6.12+)
    keys = { k1 = "secret-one" }
    base_env = { PATH = "/usr/local/bin:/usr/bin:/bin", LANG = "C.UTF-8" }

    [limits]              # per task, optional
    memory_bytes = 1073741824
    processes = 256

    [adapters.perl]
    argv = ["perl", "{file}", "{args}"]
    ext = ".pl"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .wire import DEFAULTS

DEFAULT_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
}


@dataclass
class Settings:
    """Everything a runner needs to know besides its broker connection."""

    broker: str | None = None
    results: str | None = None
    queues: list[str] = field(default_factory=lambda: [DEFAULTS["queue"]])
    max_processes: int = 10
    wait: float = 500.0  # ms
    daemon: bool = False
    roots: list[str] = field(default_factory=lambda: [os.getcwd()])
    allow_inline: bool = False
    log_dir: str | None = None
    log_format: str = "human"
    default_timeout: float = float(DEFAULTS["timeout_seconds"])
    kill_grace: float = float(DEFAULTS["kill_grace_seconds"])
    shutdown_grace: float = 30.0
    kill_with_runner: bool = True
    contain_escapes: bool = False  # subreaper + sweep; `phlask run` turns it on (it owns its process)
    # The loop thread asks Linux for 100 us time slices (phlask._sched); turn off under a
    # seccomp filter that kills a process calling sched_setattr.
    short_slices: bool = True
    lease: float = float(DEFAULTS["lease_seconds"])
    keys: dict[str, str] = field(default_factory=dict)
    base_env: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BASE_ENV))
    limits: dict[str, int] = field(default_factory=dict)
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> Settings:
        if self.max_processes < 1:
            raise ConfigError(f"max_processes must be at least 1, got {self.max_processes}")
        if self.wait < 0:
            raise ConfigError(f"wait must be >= 0 ms, got {self.wait}")
        if self.lease < 2:
            raise ConfigError(f"lease must be at least 2 seconds, got {self.lease}")
        if self.log_format not in ("human", "json"):
            raise ConfigError(f"log_format must be 'human' or 'json', got {self.log_format!r}")
        roots = []
        for r in self.roots:
            p = Path(r).expanduser()
            if not p.is_dir():
                raise ConfigError(f"task root {r!r} is not a directory; pass existing directories with --root")
            roots.append(str(p.resolve()))
        self.roots = roots
        unknown_limits = set(self.limits) - {"cpu_seconds", "memory_bytes", "open_files", "processes"}
        if unknown_limits:
            raise ConfigError(f"[limits]: unknown {sorted(unknown_limits)}; known: cpu_seconds, memory_bytes, "
                              "open_files, processes")
        return self


def load_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Read ``phlask.toml``: the named file (which must exist), else ./phlask.toml if present."""
    if path is None:
        path = Path("phlask.toml")
        if not path.is_file():
            return {}
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from None
    unknown = set(data) - {"runner", "adapters", "limits"}
    if unknown:
        raise ConfigError(f"config file {str(path)!r}: unknown sections {sorted(unknown)}; "
                          "known: [runner], [adapters.NAME], [limits]")
    return data


def settings_from(file_data: dict[str, Any], overrides: dict[str, Any]) -> Settings:
    """Merge defaults < file < overrides (None values in overrides are ignored)."""
    known = {f.name for f in fields(Settings)}
    merged: dict[str, Any] = {}
    runner = dict(file_data.get("runner", {}))
    bad = set(runner) - known
    if bad:
        raise ConfigError(f"[runner]: unknown settings {sorted(bad)}; known: {sorted(known)}")
    merged.update(runner)
    if "adapters" in file_data:
        merged["adapters"] = file_data["adapters"]
    if "limits" in file_data:
        merged["limits"] = file_data["limits"]
    for k, v in overrides.items():
        if v is None or v == [] or v == {}:
            continue
        if k == "keys":
            merged["keys"] = {**merged.get("keys", {}), **v}
        else:
            merged[k] = v
    try:
        return Settings(**merged).check()
    except TypeError as exc:
        raise ConfigError(f"bad setting: {exc}") from None
