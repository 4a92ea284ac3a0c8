"""Build task envelopes in Python: the Python producer API.

>>> from phlask import Task, connect
>>> q = connect("sqlite:///var/queue.db")
>>> q.push(Task(lang="php", file="/srv/jobs/report.php", args=["2026-11"]))  # doctest: +SKIP
'01936a3c-...'

Every envelope a producer builds carries every default explicitly (the build vectors in
conformance/vectors/build/ pin this), is validated before it leaves, and may be signed.
"""

from __future__ import annotations

import math
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from . import __version__
from .envelope import Envelope, decode
from .errors import EnvelopeError, FieldError
from .wire import DEFAULTS, PROTOCOL_VERSION, format_unix


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

_last_ms = 0
_seq = 0


def uuid7() -> str:
    """A UUIDv7 string (RFC 9562): 48-bit Unix milliseconds, then random bits.

    Ids made in the same millisecond by this process still sort in creation order: a
    12-bit counter seeded at random fills rand_a.
    """
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _seq = ms, secrets.randbits(11)
    else:
        _seq += 1
        if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
            _last_ms += 1
            _seq = 0
        ms = _last_ms
    value = (ms << 80) | (0x7 << 76) | (_seq << 64) | (0b10 << 62) | secrets.randbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_ts(dt: datetime) -> str:
    """RFC 3339 in UTC with exactly three fraction digits and ``Z``, as every SDK writes it."""
    if dt.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (use datetime.now(timezone.utc))")
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (already validated by the schema) to an aware datetime."""
    text = text.upper()
    if "." in text:  # fromisoformat in 3.11 takes at most 6 fraction digits
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[:min(digits, 6)] + rest[digits:]
        text = f"{head}.{rest}" if digits else head + rest[digits:]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ts(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return format_ts(value)


@dataclass
class Task:
    """A task to enqueue. Field names are the envelope's (spec/README.md).

    ``delay`` (seconds) sets ``not_before`` relative to the build time. ``input`` is any
    JSON value; leave it unset for an empty stdin. Timestamps may be aware datetimes or
    RFC 3339 strings.
    """

    lang: str
    file: str | None = None
    code: str | None = None
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    input: Any = UNSET
    timeout: float | None = None
    max_attempts: int = DEFAULTS["max_attempts"]
    backoff: Mapping[str, Any] = field(default_factory=dict)
    priority: int = DEFAULTS["priority"]
    queue: str = DEFAULTS["queue"]
    delay: float | None = None
    not_before: datetime | str | None = None
    expires_at: datetime | str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None

    def envelope(self, now: datetime | None = None) -> dict[str, Any]:
        """The envelope as a dict with every default filled in (not yet validated)."""
        spec = {k: v for k, v in self.__dict__.items() if v is not None and v is not UNSET}
        if self.input is not UNSET:
            spec["input"] = self.input
        return build_envelope(spec, now or datetime.now(timezone.utc), validate=False, producer=True)

    def encode(self, now: datetime | None = None) -> bytes:
        """The validated envelope's JSON bytes. Raises EnvelopeError naming each bad field."""
        return encode_envelope(self.envelope(now))


_FIELD_ORDER = ("phlask", "id", "queue", "lang", "file", "code", "args", "env", "input", "timeout",
                "max_attempts", "backoff", "priority", "not_before", "expires_at", "created_at",
                "meta", "producer")
_BUILDER_KEYS = set(_FIELD_ORDER) - {"phlask", "created_at", "producer"} | {"delay"}


def build_envelope(spec: Mapping[str, Any], now: datetime | str, *, validate: bool = True,
                   producer: bool = False) -> dict[str, Any]:
    """Build an envelope from builder inputs (spec field names, plus ``delay`` in seconds).

    ``now`` fixes the clock (the build vectors pass it as a string). Returns the envelope
    dict with every default explicit. Raises :class:`EnvelopeError` on unknown inputs and,
    when ``validate`` is true, on any schema violation.
    """
    unknown = [k for k in spec if k not in _BUILDER_KEYS]
    if unknown:
        raise EnvelopeError([FieldError(f"$.{k}", f"unknown field `{k}`") for k in unknown])
    now_dt = parse_ts(now) if isinstance(now, str) else now
    env: dict[str, Any] = {"phlask": PROTOCOL_VERSION, "id": spec.get("id") or uuid7(),
                           "queue": spec.get("queue", DEFAULTS["queue"]), "lang": spec.get("lang")}
    for k in ("file", "code"):
        if spec.get(k) is not None:
            env[k] = spec[k]
    env["args"] = list(spec.get("args", ()))
    env["env"] = dict(spec.get("env", {}))
    if "input" in spec:
        env["input"] = spec["input"]
    if spec.get("timeout") is not None:
        env["timeout"] = spec["timeout"]
    env["max_attempts"] = spec.get("max_attempts", DEFAULTS["max_attempts"])
    backoff = spec.get("backoff", {})
    env["backoff"] = {**DEFAULTS["backoff"], **backoff} if isinstance(backoff, Mapping) else backoff
    env["priority"] = spec.get("priority", DEFAULTS["priority"])
    if spec.get("delay") is not None:
        delay = spec["delay"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise EnvelopeError([FieldError("$.delay", f"must be a number of seconds >= 0, got {delay!r}")])
        if spec.get("not_before") is not None:
            raise EnvelopeError([FieldError("$.delay", "give `delay` or `not_before`, not both")])
        env["not_before"] = format_ts(now_dt + timedelta(milliseconds=math.floor(delay * 1000 + 0.5)))
    elif spec.get("not_before") is not None:
        env["not_before"] = _ts(spec["not_before"])
    if spec.get("expires_at") is not None:
        env["expires_at"] = _ts(spec["expires_at"])
    env["created_at"] = now if isinstance(now, str) else format_ts(now_dt)
    env["meta"] = dict(spec.get("meta", {}))
    if producer:
        env["producer"] = {"sdk": "phlask-python", "version": __version__, "host": socket.gethostname()}
    if validate:
        encode_envelope(env)
    return env


_encoder = msgspec.json.Encoder()


def encode_envelope(env: Mapping[str, Any]) -> bytes:
    """Encode an envelope dict to JSON bytes and validate them. Raises EnvelopeError."""
    try:
        body = _encoder.encode(env)
    except (TypeError, OverflowError) as exc:
        raise EnvelopeError([FieldError("$", f"not JSON-encodable: {exc}")]) from None
    decode(body)
    return body


__all__ = ["Task", "UNSET", "build_envelope", "encode_envelope", "uuid7", "format_ts", "parse_ts", "Envelope"]
