"""Fixtures that run the broker contract suite against every backend.

Backends are discovered from the modules ``tests/brokers/backend_<name>.py`` in this
folder; adding one is adding a module. Each module provides:

``NAME: str``
    The test id, e.g. ``"sqlite"``: tests show as ``test_x[sqlite]``.
``available() -> str | None``
    None when the backend can be used here; otherwise why not, e.g. ``"no MongoDB at
    localhost:27017 (start it with scripts/services up mongodb)"``. Called once per
    session. The fixture skips the backend's tests with that reason, except when the
    environment has ``CI=true``, where a missing backend fails them.
``make(tmp_path: Path, queue_prefix: str) -> ContextManager[Broker]``
    A context manager (``@contextlib.contextmanager`` generator) yielding a FRESH,
    isolated broker: no task of another test is visible to it. Tests use plain queue
    names (``"default"``, ``"a"``, ``"b"``); a shared-server backend isolates them per test
    with ``queue_prefix`` (unique per test, ``[a-z0-9-]``, e.g. a database named after it,
    or a queue-name prefix carried in the URL) and removes everything on exit. The
    broker's ``.url`` MUST open the same isolated store from another process, so runner
    subprocesses can be started against it (fixture ``broker_url``).
``store_raw(broker: Broker, task_id: str, queue: str, body: bytes) -> None``
    Store a queued task whose body bypasses validation, as a hostile or buggy producer
    writing directly to the store would (priority 0, ready now, unsigned).

A backend whose ``supports_inspect`` is False must raise ``phlask.errors.Unsupported``
from ``inspect``; tests that need inspect carry ``@pytest.mark.needs_inspect`` and, for
such a backend, check that refusal and then skip with a reason saying so.
"""

from __future__ import annotations

import functools
import importlib
import os
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from phlask.errors import Unsupported

_HERE = Path(__file__).parent


def _discover() -> list[ModuleType]:
    modules = [importlib.import_module(f"{__package__}.{p.stem}") for p in sorted(_HERE.glob("backend_*.py"))]
    for m in modules:
        missing = [a for a in ("NAME", "available", "make", "store_raw") if not hasattr(m, a)]
        if missing:
            raise RuntimeError(f"{m.__file__} lacks {', '.join(missing)} (see tests/brokers/conftest.py)")
    return modules


BACKENDS = _discover()


@functools.cache
def _unavailable(module: ModuleType) -> str | None:
    return module.available()


def require(module: ModuleType) -> ModuleType:
    """Return ``module`` if its backend can run here; else skip the test, or fail it when
    CI=true (a missing service is a failure in CI, never a skip). Shared with tests/faults."""
    reason = _unavailable(module)
    if reason:
        message = f"{module.NAME} backend unavailable: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: every backend must run)", pytrace=False)
        pytest.skip(message)
    return module


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_unique_ids: the test expects DuplicateTask on a reused id; "
                            "skipped, explicitly, for backends with supports_unique_ids = False")
    config.addinivalue_line("markers", "needs_inspect: the test reads tasks with Broker.inspect; "
                                       "backends without inspect must refuse it with Unsupported")


@pytest.fixture(params=BACKENDS, ids=[m.NAME for m in BACKENDS])
def backend(request: pytest.FixtureRequest) -> ModuleType:
    """The backend module under test, usable here (else skipped, or failed when CI=true)."""
    return require(request.param)


@pytest.fixture
def queue_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}-"


@pytest.fixture
def broker(backend: ModuleType, tmp_path: Path, queue_prefix: str, request: pytest.FixtureRequest):
    """A fresh, isolated broker of each backend, closed after the test."""
    with backend.make(tmp_path, queue_prefix) as b:
        if request.node.get_closest_marker("needs_inspect") and not b.supports_inspect:
            with pytest.raises(Unsupported) as refused:
                b.inspect("any-id")
            assert str(refused.value).strip(), "Unsupported must say why inspect is unavailable"
            pytest.skip(f"{backend.NAME}: supports_inspect is False (checked: inspect raises "
                        f"Unsupported: {refused.value})")
        if request.node.get_closest_marker("needs_unique_ids") and b.supports_unique_ids:
            pass
        elif request.node.get_closest_marker("needs_unique_ids"):
            pytest.skip(f"{backend.NAME}: supports_unique_ids is False (the server keeps no index of "
                        "task ids; documented in its spec/backends document)")
        yield b


@pytest.fixture
def broker_url(broker) -> str:
    """A URL for runner subprocesses that opens the same isolated store as ``broker``."""
    return broker.url


@pytest.fixture
def store_raw(backend: ModuleType, broker):
    """``store_raw(task_id, queue, body)``: enqueue bytes as they are, bypassing validation."""
    return functools.partial(backend.store_raw, broker)
