"""Wire values as typed enums. Their values come from spec/wire.json; a test fails if they drift."""

from __future__ import annotations

from enum import StrEnum

from . import _contract

_W = _contract.wire()


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


class DeadReason(StrEnum):
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNKNOWN_LANG = "unknown_lang"
    FORBIDDEN_PATH = "forbidden_path"
    MISSING_FILE = "missing_file"
    FORBIDDEN_ENV = "forbidden_env"
    INLINE_REFUSED = "inline_refused"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    SPAWN_FAILED = "spawn_failed"


PROTOCOL_VERSION: int = _W["protocol_version"]
LIMITS: dict[str, int] = _W["limits"]
DEFAULTS: dict = _W["defaults"]
ENVELOPE_MAX_BYTES: int = LIMITS["envelope_bytes"]
RESULT_FILE_MAX_BYTES: int = LIMITS["result_file_bytes"]
OUTPUT_TAIL_BYTES: int = LIMITS["output_tail_bytes"]
TASK_ENV_NAMES: tuple[str, ...] = tuple(_W["task_env"])
ENV_DENIED_PREFIXES: tuple[str, ...] = tuple(_W["env_denied"]["prefixes"])
ENV_DENIED_NAMES: frozenset[str] = frozenset(_W["env_denied"]["names"])
SIGNATURE_ALGORITHM: str = _W["signature"]["algorithm"]
KEY_ID_PATTERN: str = _W["signature"]["key_id_pattern"]
