"""Decode and validate task envelopes (spec/task.schema.json).

Two validators that must always agree (tests/test_vectors.py runs every conformance
vector through both):

* :func:`decode` is the runner's fast path: msgspec decodes the exact bytes into a
  typed :class:`Envelope` in one pass. Constraints are read from the schema file, so
  there is one source of truth.
* :func:`schema_errors` is the canonical check: jsonschema with ``format`` asserted
  and ECMA-262 ``pattern`` semantics. When the fast path refuses an envelope, this one
  explains *every* problem with its JSON path, in words a user can act on.
"""

from __future__ import annotations

import calendar
import difflib
import functools
import json
import re
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType
from jsonschema import Draft202012Validator, ValidationError, validators

from . import _contract
from .errors import EnvelopeError, FieldError
from .wire import ENVELOPE_MAX_BYTES, PROTOCOL_VERSION

_SCHEMA = _contract.task_schema()
_PROPS = _SCHEMA["properties"]
_TS = _SCHEMA["$defs"]["timestamp"]


def py_pattern(pattern: str) -> str:
    """Translate a schema pattern to Python: ECMA-262 ``$`` is end of string, Python's is not."""
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern


def _str(spec: dict[str, Any]) -> Any:
    return Annotated[
        str,
        msgspec.Meta(
            pattern=py_pattern(spec["pattern"]) if "pattern" in spec else None,
            min_length=spec.get("minLength"),
            max_length=spec.get("maxLength"),
        ),
    ]


def _num(spec: dict[str, Any]) -> Any:
    # JSON Schema integers include 2.0, so numbers decode as float and integrality is
    # checked afterwards; msgspec's int would refuse 2.0 where every schema validator accepts it.
    return Annotated[
        float,
        msgspec.Meta(
            ge=spec.get("minimum"),
            le=spec.get("maximum"),
            gt=spec.get("exclusiveMinimum"),
        ),
    ]


Timestamp = _str(_TS)
NoNul = _str(_PROPS["args"]["items"])
EnvName = _str(_PROPS["env"]["propertyNames"])
_BO = _PROPS["backoff"]["properties"]


class Backoff(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    initial: _num(_BO["initial"]) = _BO["initial"]["default"]  # type: ignore[valid-type]
    factor: _num(_BO["factor"]) = _BO["factor"]["default"]  # type: ignore[valid-type]
    max: _num(_BO["max"]) = _BO["max"]["default"]  # type: ignore[valid-type]
    jitter: bool = _BO["jitter"]["default"]


class Producer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sdk: str | UnsetType = UNSET
    version: str | UnsetType = UNSET
    host: str | UnsetType = UNSET


class Envelope(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A decoded, validated task envelope (protocol version 1).

    ``input`` is kept as the exact JSON text the producer wrote (``msgspec.Raw``), so the
    task receives it byte for byte; ``has_input`` says whether it was given at all.
    Optional fields that were omitted are ``msgspec.UNSET`` (falsy); an explicit ``null`` is
    invalid, as the schema says.
    """

    phlask: float
    id: _str(_PROPS["id"])  # type: ignore[valid-type]
    lang: _str(_PROPS["lang"])  # type: ignore[valid-type]
    created_at: Timestamp  # type: ignore[valid-type]
    queue: _str(_PROPS["queue"]) = _PROPS["queue"]["default"]  # type: ignore[valid-type]
    file: _str(_PROPS["file"]) | UnsetType = UNSET  # type: ignore[valid-type]
    code: _str(_PROPS["code"]) | UnsetType = UNSET  # type: ignore[valid-type]
    args: list[NoNul] = []  # type: ignore[valid-type]
    env: dict[EnvName, NoNul] = {}  # type: ignore[valid-type]
    input: msgspec.Raw = msgspec.Raw()
    timeout: _num(_PROPS["timeout"]) | UnsetType = UNSET  # type: ignore[valid-type]
    max_attempts: _num(_PROPS["max_attempts"]) = 1  # type: ignore[valid-type]
    backoff: Backoff = Backoff()
    priority: _num(_PROPS["priority"]) = 0  # type: ignore[valid-type]
    not_before: Timestamp | UnsetType = UNSET  # type: ignore[valid-type]
    expires_at: Timestamp | UnsetType = UNSET  # type: ignore[valid-type]
    meta: Annotated[dict[str, str], msgspec.Meta(max_length=_PROPS["meta"]["maxProperties"])] = {}
    producer: Producer | UnsetType = UNSET

    @property
    def has_input(self) -> bool:
        return len(self.input) > 0

    @property
    def attempts_allowed(self) -> int:
        return int(self.max_attempts)


_decoder = msgspec.json.Decoder(Envelope)
_ts_re = re.compile(py_pattern(_TS["pattern"]))


def _real_date(ts: str) -> bool:
    year, month, day = int(ts[0:4]), int(ts[5:7]), int(ts[8:10])
    return day <= calendar.monthrange(year, month)[1]


def _semantic_problems(env: Envelope, raw: dict[str, Any] | None = None) -> bool:
    """Rules msgspec's type system cannot express. True when something is wrong."""
    if env.phlask != PROTOCOL_VERSION:
        return True
    if (env.file is UNSET) == (env.code is UNSET):
        return True
    for n in (env.max_attempts, env.priority):
        if not float(n).is_integer():
            return True
    for ts in (env.created_at, env.not_before, env.expires_at):
        if ts and not _real_date(ts):
            return True
    return False


def decode(data: bytes | bytearray | memoryview | str) -> Envelope:
    """Decode and validate one envelope from its JSON text.

    Returns the :class:`Envelope`. Raises :class:`EnvelopeError` with every problem and its
    JSON path; ``reason`` is ``too_large`` for text over the size limit, else ``invalid``.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    size = len(data)
    if size > ENVELOPE_MAX_BYTES:
        raise EnvelopeError(
            [FieldError("$", f"envelope is {size} bytes; the limit is {ENVELOPE_MAX_BYTES} bytes (1 MiB). "
                             "Put large data somewhere the task can fetch it and pass a reference")],
            reason="too_large",
        )
    try:
        env = _decoder.decode(data)
    except RecursionError:  # msgspec's nesting guard, which also trips inside `input`
        raise EnvelopeError([FieldError("$", _NESTED)]) from None
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise EnvelopeError(_explain(data, exc)) from None
    if _semantic_problems(env):
        raise EnvelopeError(_explain(data, None))
    problems = _reread(data)
    if problems:
        raise EnvelopeError(problems)
    return env


_NESTED = "JSON nested too deeply: arrays and objects may nest at most about a thousand levels"


class _Repeated(dict):
    """An object in which some member names appeared more than once (``names``)."""

    names: list[str]


class _Repeat(Exception):
    """A member name given more than once in one object (raised by :func:`_unique`)."""


def _unique(items: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(items)
    if len(obj) != len(items):
        raise _Repeat
    return obj


_unique_names = json.JSONDecoder(object_pairs_hook=_unique)


def _reread(data: bytes | bytearray | memoryview) -> list[FieldError]:
    """What the fast path lets through (spec 2.1): text that is not UTF-8 inside ``input``,
    which msgspec keeps as raw bytes unchecked, and member names given more than once in an
    object, of which msgspec silently keeps the last. The text is read once more for them."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        return [FieldError("$", f"not valid UTF-8 at byte {e.start}: envelopes are UTF-8 JSON text")]
    # The common case, no name repeated anywhere, with one prebuilt decoder whose hook gives
    # up at the first repeat; only then is the text read again to name every repeat.
    if not text.startswith("\ufeff"):  # json.loads refuses a BOM; the reading below says so
        try:
            _unique_names.decode(text)
        except _Repeat:
            pass
        except RecursionError:
            return [FieldError("$", _NESTED)]
        else:
            return []
    seen_any = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal seen_any
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        seen_any = True
        seen: set[str] = set()
        repeated = _Repeated(obj)
        repeated.names = list(dict.fromkeys(k for k, _ in items if k in seen or seen.add(k)))
        return repeated

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except RecursionError:
        return [FieldError("$", _NESTED)]
    if not seen_any:
        return []
    errors, stack = [], [((), value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, _Repeated):
            errors += [FieldError(_path((*path, n)), f"member `{n}` is given more than once in one object; give "
                                                     "it once (JSON readers disagree on which value counts)")
                       for n in v.names]
        if isinstance(v, dict):
            stack += [((*path, k), x) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [((*path, i), x) for i, x in enumerate(v)]
    return sorted(errors, key=lambda e: e.path)


def _explain(data: bytes | bytearray | memoryview, exc: Exception | None) -> list[FieldError]:
    """The full error list for an envelope the fast path refused."""
    try:
        obj = json.loads(bytes(data))
    except UnicodeDecodeError as e:
        return [FieldError("$", f"not valid UTF-8 at byte {e.start}: envelopes are UTF-8 JSON text")]
    except json.JSONDecodeError as e:
        return [FieldError("$", f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")]
    except RecursionError:
        return [FieldError("$", _NESTED)]
    errors = schema_errors(obj)
    if not errors:  # the two validators disagree: report what the fast path said
        errors = [FieldError("$", str(exc) if exc else "envelope refused")]
    return errors


# --- canonical check ---------------------------------------------------------------------


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any):
    if validator.is_type(instance, "string") and not re.search(py_pattern(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@functools.cache
def _validator(schema_name: str = "task.schema.json") -> Any:
    return _Validator(_contract.load(schema_name), format_checker=Draft202012Validator.FORMAT_CHECKER)


_HINTS = {
    "id": "must be 1-128 characters of A-Z a-z 0-9 . _ : - (no spaces)",
    "queue": "must start with a-z or 0-9 and be at most 64 characters of a-z 0-9 . _ -",
    "lang": "must be an adapter name: a lowercase letter, then at most 31 of a-z 0-9 _ -",
    "timestamp": "must be an RFC 3339 date-time with an offset, such as 2026-11-28T09:00:00Z",
    "nul": "must not contain a NUL byte (processes cannot receive one)",
    "env_name": "is not a valid environment variable name (letters, digits and _, not starting with a digit)",
}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def _path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _friendly(err: ValidationError) -> list[FieldError]:
    path = _path(err.absolute_path)
    kw, inst, sch = err.validator, err.instance, err.schema
    field = next((p for p in reversed(err.absolute_path) if isinstance(p, str)), None)
    if kw == "required":
        missing = [k for k in err.validator_value if isinstance(inst, dict) and k not in inst]
        return [FieldError(f"{path}.{k}", f"required field `{k}` is missing") for k in missing]
    if kw == "additionalProperties" and isinstance(inst, dict):
        known = list(sch.get("properties", {}))
        out = []
        for k in inst:
            if k not in known:
                near = difflib.get_close_matches(k, known, n=1)
                hint = f"; did you mean `{near[0]}`?" if near else (
                    "; put extensions in `meta`" if path == "$" else "")
                out.append(FieldError(f"{path}.{k}", f"unknown field `{k}`{hint}"))
        return out or [FieldError(path, "must not have this value")]
    if kw == "oneOf" and path == "$":
        if not isinstance(inst, dict):
            return []  # the type error says it all
        if "file" in inst and "code" in inst:
            return [FieldError("$.code", "give exactly one of `file` or `code`, not both")]
        return [FieldError("$.file", "required: give exactly one of `file` (a script path) or `code` (inline source)")]
    if kw == "propertyNames":
        return [FieldError(path, f"{inst!r}: {_HINTS['env_name']}")]
    if kw == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        got = "an integer" if isinstance(inst, int) and not isinstance(inst, bool) else _JSON_TYPES.get(type(inst), "?")
        return [FieldError(path, f"must be {'an' if want[0] in 'aeiou' else 'a'} {want}, not {got}")]
    if kw == "pattern":
        if err.validator_value == _PROPS["env"]["propertyNames"]["pattern"]:
            return [FieldError(f"{path}.{inst}", f"{inst!r} {_HINTS['env_name']}")]
        if "\\x00" in err.validator_value:
            return [FieldError(path, _HINTS["nul"])]
        if sch.get("pattern") == _TS["pattern"] or field in ("created_at", "not_before", "expires_at"):
            return [FieldError(path, f"{inst!r} {_HINTS['timestamp']}")]
        if path.startswith("$.env.") or field is None:
            return [FieldError(path, f"{inst!r}: {_HINTS['env_name']}")]
        return [FieldError(path, f"{inst!r} {_HINTS.get(field, 'does not match ' + err.validator_value)}")]
    if kw == "format":
        return [FieldError(path, f"{inst!r} is not a real date-time (check the day of the month)")]
    if kw == "const":
        return [FieldError(path, f"must be {err.validator_value!r}: this runner speaks protocol version "
                                 f"{PROTOCOL_VERSION} only")]
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kw]
        return [FieldError(path, f"must be {op} {err.validator_value}, got {inst!r}")]
    if kw == "minLength":
        return [FieldError(path, "must not be empty")]
    if kw == "maxLength":
        return [FieldError(path, f"must be at most {err.validator_value} characters, got {len(inst)}")]
    if kw == "maxProperties":
        return [FieldError(path, f"must have at most {err.validator_value} entries, got {len(inst)}")]
    return [FieldError(path, err.message)]


def schema_errors(obj: Any, schema_name: str = "task.schema.json") -> list[FieldError]:
    """Validate a parsed JSON value against a contract schema; return every problem (empty if valid)."""
    out: list[FieldError] = []
    errors = sorted(_validator(schema_name).iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    badly_shaped = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    for err in errors:
        if err.validator == "format" and tuple(err.absolute_path) in badly_shaped:
            continue  # "tomorrow" needs one message, not two
        for fe in _friendly(err):
            if fe not in out:
                out.append(fe)
    return out
