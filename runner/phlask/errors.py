"""One exception hierarchy. Every error carries a stable ``code`` and a message a user can act on."""

from __future__ import annotations

from dataclasses import dataclass


class PhlaskError(Exception):
    """Base of every phlask error. ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldError:
    """One problem in an envelope: a JSON path (``$.backoff.factor``) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class TaskRejected(PhlaskError):
    """A task that must not run. ``reason`` is a dead reason from spec/wire.json."""

    code = "task_rejected"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class EnvelopeError(TaskRejected):
    """The envelope is not valid JSON, too large, or does not match the schema."""

    code = "invalid_envelope"

    def __init__(self, errors: list[FieldError], reason: str = "invalid"):
        self.errors = errors
        super().__init__(reason, "; ".join(str(e) for e in errors) or "invalid envelope")


class SignatureError(TaskRejected):
    code = "bad_signature"

    def __init__(self, message: str):
        super().__init__("bad_signature", message)


class ConfigError(PhlaskError):
    """A runner or CLI setting is wrong; the message says which and how to fix it."""

    code = "config"


class BrokerError(PhlaskError):
    """A backend failed or cannot be reached."""

    code = "broker"


class BrokerUnavailable(BrokerError):
    """The broker at ``url`` could not be reached within the allowed wait."""

    code = "broker_unavailable"

    def __init__(self, url: str, detail: str):
        super().__init__(f"cannot reach broker {url}: {detail}")
        self.url = url


class DuplicateTask(BrokerError):
    code = "duplicate_id"

    def __init__(self, task_id: str):
        super().__init__(f"a task with id {task_id!r} already exists; ids must be unique")
        self.task_id = task_id


class TaskNotFound(BrokerError):
    code = "not_found"

    def __init__(self, task_id: str):
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class Unsupported(BrokerError):
    """The backend cannot do this operation (for example, look up a task by id on AMQP)."""

    code = "unsupported"
