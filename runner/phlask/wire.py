"""Wire values as typed enums, and the wire's timestamp form. Their values come from
spec/wire.json; a test fails if they drift."""

from __future__ import annotations

import math
import time
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


_second: tuple[int, str] = (-1, "")


def format_unix(ts: float) -> str:
    """Unix seconds ``ts`` as the wire writes instants: RFC 3339 UTC with exactly three
    fraction digits and ``Z`` (as :func:`phlask.producer.format_ts` and every SDK), rounded
    as ``datetime.fromtimestamp`` rounds, without building a datetime: the runner formats
    three instants per task (deadline, start, end)."""
    global _second
    frac, whole = math.modf(ts)  # as datetime.fromtimestamp rounds, to the microsecond
    us = round(frac * 1e6)
    sec = int(whole)
    if us < 0:
        sec, us = sec - 1, us + 1_000_000
    sec, us = sec + us // 1_000_000, us % 1_000_000
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{cached[1]}.{us // 1000:03d}Z"
