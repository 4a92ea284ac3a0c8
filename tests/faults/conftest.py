"""Fixtures of the fault, load and bad-input suite (tests/faults/, README "Reliability").

The suite runs in two sizes. The short form (the default) is part of every ``pytest`` run
and takes a few minutes; the long form runs with ``PHLASK_LONG=1`` (2,000-task chaos rounds
with more kills, at least 1,000 generated bad inputs per backend) and ends with a table of
figures, which ``bench/reliability.py`` also prints as Markdown for the README.

Every test is parametrised over the backend modules of tests/brokers/ (``backend_*.py``):
the same discovery, URLs, isolation (``queue_prefix``) and raw storage as the contract
suite. A backend whose server is missing is skipped, or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from brokers.conftest import BACKENDS, require

from . import figures

LONG = os.environ.get("PHLASK_LONG", "") not in ("", "0")
#: One token per session: every queue, collection and file this session makes carries it.
SESSION = uuid.uuid4().hex[:6]
#: Random choices (kill moments, which runner) come from this seed; set PHLASK_SEED to replay.
SEED = int(os.environ.get("PHLASK_SEED") or random.SystemRandom().randrange(1 << 30))
_used: set[str] = set()  # backends this session's tests ran against


def pytest_report_header(config: pytest.Config) -> list[str]:
    form = "long (PHLASK_LONG=1)" if LONG else "short (set PHLASK_LONG=1 for the long form)"
    return [f"phlask faults: {form} form, PHLASK_SEED={SEED}"]


@pytest.fixture(params=BACKENDS, ids=[m.NAME for m in BACKENDS])
def backend(request: pytest.FixtureRequest) -> ModuleType:
    """The backend module under test (tests/brokers/backend_<name>.py), usable here: else
    skipped, or failed when CI=true."""
    module = require(request.param)
    _used.add(module.NAME)
    return module


@pytest.fixture
def queue_prefix() -> str:
    # [a-z0-9-] as tests/brokers/conftest.py asks; "f" + the session token marks ours.
    return f"f{SESSION}{uuid.uuid4().hex[:6]}-"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A random source seeded from PHLASK_SEED and the test id, so one test can be replayed."""
    return random.Random(f"{SEED}:{request.node.nodeid}")


@pytest.fixture
def tmp_root(tmp_path: Path) -> Path:
    """A directory every user can enter (pytest's tmp_path is private to root), for tasks
    that run under another uid."""
    path = tmp_path / "world"
    path.mkdir()
    for p in (tmp_path, path):
        p.chmod(0o755)
    return path


def pytest_sessionfinish(session: pytest.Session) -> None:
    figures.save(LONG, SEED)
    if "rabbitmq" in _used:
        from .harness import delete_session_queues
        delete_session_queues(SESSION)


def pytest_terminal_summary(terminalreporter) -> None:
    if not figures.FIGURES and not figures.NOTES:
        return
    form = "long" if LONG else "short"
    terminalreporter.section(f"phlask reliability figures ({form} form, PHLASK_SEED={SEED})")
    for line in figures.table().splitlines():
        terminalreporter.write_line(line)
    notes = figures.notes()
    if notes:
        terminalreporter.write_line("")
        for line in notes:
            terminalreporter.write_line(line)
