"""What a runner must do with a stored record, worked out from spec/ alone.

This is the bad-input suite's expected answer. It reads spec/task.schema.json and
spec/wire.json and follows spec/README.md section 5.1 (checks after a claim, in order),
section 2 (encoding, fields, roots) and section 6 (signing), with the standard library and
jsonschema; it imports nothing of the runner, so a runner bug cannot hide in it.

Where the spec leaves room, the choice is the one the spec recommends: duplicate member
names and lone surrogates are refused as ``invalid`` (2.1: runners SHOULD), upper-case
signatures are accepted (6: MAY), and JSON nested deeper than :data:`MAX_DEPTH` is
``invalid`` (RFC 8259 section 9 lets a parser limit nesting; the suite never generates a
depth between :data:`SURELY_FINE` and :data:`MAX_DEPTH`, where runners may differ).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

SPEC = Path(__file__).resolve().parents[2] / "spec"
SCHEMA = json.loads((SPEC / "task.schema.json").read_text())
WIRE = json.loads((SPEC / "wire.json").read_text())
ENVELOPE_BYTES = WIRE["limits"]["envelope_bytes"]
DENIED_NAMES = frozenset(WIRE["env_denied"]["names"])
DENIED_PREFIXES = tuple(WIRE["env_denied"]["prefixes"])
#: Linux refuses (E2BIG) an exec whose single argv or environment string, with its NUL,
#: is longer than 32 pages: the process "cannot be started" (spec 5.2, spawn_failed).
MAX_ARG_STRLEN = 32 * 4096
SURELY_FINE = 200
MAX_DEPTH = 2000
SUCCEEDED = "succeeded"


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any):
    # ECMA-262: `$` is the end of the string only (spec 2.7); Python's also matches before a final \n.
    if validator.is_type(instance, "string"):
        py = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
        if not re.search(py, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
VALIDATOR = _Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


class Invalid(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Invalid("duplicate member name")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise Invalid(f"{name} is not JSON")


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt = []
        for v in level:
            if isinstance(v, dict):
                nxt += v.values()
            elif isinstance(v, list):
                nxt += v
        level = nxt
    return depth


def _strings(value: Any):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            yield from v.keys()
            stack += v.values()
        elif isinstance(v, list):
            stack += v


def parse(body: bytes) -> Any:
    """The JSON value of ``body``; raises Invalid for anything spec 2.1 refuses."""
    try:
        text = body.decode("utf-8")  # strict: no BOM skipping, no surrogates, no overlong forms
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Invalid(str(exc)) from None
    if _depth(value) >= MAX_DEPTH:
        raise Invalid("nested too deeply")
    if any(0xD800 <= ord(c) <= 0xDFFF for s in _strings(value) for c in s):
        raise Invalid("lone surrogate")
    return value


def resolve(file: str, roots: list[str]) -> str:
    """Spec 2.3: ``ok`` (a regular file inside a root), ``forbidden_path`` or ``missing_file``."""
    candidates = [file] if file.startswith("/") else [os.path.join(r, file) for r in roots]
    inside = False
    for c in candidates:
        real = os.path.realpath(c)
        if not any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots):
            continue
        inside = True
        try:
            if stat.S_ISREG(os.stat(real).st_mode):
                return "ok"
        except OSError:
            pass
    return "missing_file" if inside else "forbidden_path"


class Oracle:
    """The expected outcome of a record for one runner configuration.

    ``roots``: canonical task roots; ``keyring``: key id -> secret (empty: no signatures);
    ``langs``: adapters whose interpreter is installed; ``allow_inline``; ``now``: Unix time
    of the run (the suite only writes expiry times far from it); ``runs_ok``: canonical
    paths of the scripts that exit 0 under any arguments and environment.
    """

    def __init__(self, roots: list[str], keyring: Mapping[str, str], langs: set[str], runs_ok: set[str],
                 allow_inline: bool = False, now: float = 0.0):
        self.roots, self.keyring, self.langs, self.runs_ok = roots, dict(keyring), langs, runs_ok
        self.allow_inline, self.now = allow_inline, now

    def expect(self, body: bytes, signature: str | None = None, key_id: str | None = None) -> str:
        """``succeeded``, or the dead reason the runner must settle the task with."""
        if len(body) > ENVELOPE_BYTES:
            return "too_large"
        if self.keyring:
            secret = self.keyring.get(key_id or "")
            if not signature or not key_id or secret is None or not hmac.compare_digest(
                    hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(), signature.lower()):
                return "bad_signature"
        try:
            env = parse(body)
        except Invalid:
            return "invalid"
        if any(True for _ in VALIDATOR.iter_errors(env)):
            return "invalid"
        if "expires_at" in env and _instant(env["expires_at"]) < self.now:
            return "expired"
        if env["lang"] not in self.langs:
            return "unknown_lang"
        if any(n in DENIED_NAMES or n.startswith(DENIED_PREFIXES) for n in env.get("env", {})):
            return "forbidden_env"
        if "file" in env:
            where = resolve(env["file"], self.roots)
            if where != "ok":
                return where
            script = os.path.realpath(env["file"] if env["file"].startswith("/") else
                                      next(os.path.join(r, env["file"]) for r in self.roots
                                           if resolve(os.path.join(r, env["file"]), self.roots) == "ok"))
        elif not self.allow_inline:
            return "inline_refused"
        else:
            raise NotImplementedError("the suite runs without inline code")
        strings = [script, *env.get("args", []), *(f"{k}={v}" for k, v in env.get("env", {}).items())]
        if any(len(s.encode("utf-8")) + 1 > MAX_ARG_STRLEN for s in strings):
            return "spawn_failed"
        if script not in self.runs_ok:
            raise NotImplementedError(f"the suite only generates runnable tasks that exit 0, not {script}")
        return SUCCEEDED


def _instant(ts: str) -> float:
    """Unix seconds of a schema-valid timestamp, to the second (the suite's expiry times
    are years away from now)."""
    from datetime import datetime, timezone
    seconds = datetime.strptime(ts[:19].upper(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    offset = ts[19:].lstrip(".0123456789").upper()
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds
