"""Backends, chosen by URL scheme: ``sqlite:///path.db``, ``mongodb://host/db``, ``amqp://host/vhost``."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import ConfigError
from .base import Broker, Claim, LeaseLost, Message, Settle, TaskInfo

_BACKENDS = {
    "sqlite": "phlask.brokers.sqlite:SqliteBroker",
    "mongodb": "phlask.brokers.mongodb:MongoBroker",
    "amqp": "phlask.brokers.rabbitmq:RabbitBroker",
    "amqps": "phlask.brokers.rabbitmq:RabbitBroker",
}


def default_url() -> str:
    """``$PHLASK_BROKER``, else the embedded SQLite file under ``$XDG_DATA_HOME/phlask/queue.db``
    (``~/.local/share/phlask/queue.db``)."""
    if os.environ.get("PHLASK_BROKER"):
        return os.environ["PHLASK_BROKER"]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'phlask' / 'queue.db'}"


def connect(url: str | None = None, **options) -> Broker:
    """Open the broker at ``url`` (default: :func:`default_url`).

    ``options`` go to the backend (e.g. ``signing_key=("k1", "secret")`` for producers).
    Raises ConfigError for an unknown scheme and BrokerUnavailable when the server cannot be reached.
    """
    url = url or default_url()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "mongodb+srv":
        scheme = "mongodb"
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"broker URL {url!r}: unknown scheme {scheme!r}; use sqlite:///path/to/queue.db, "
            "mongodb://host:27017/dbname or amqp://user:pass@host:5672/vhost")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)(url, **options)


__all__ = ["Broker", "Claim", "LeaseLost", "Message", "Settle", "TaskInfo", "connect", "default_url"]
