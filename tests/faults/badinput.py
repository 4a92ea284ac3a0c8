"""Hypothesis strategies for hostile records: what a buggy or hostile producer writes
straight into a backend's storage. Each case knows only its kind and its bytes; what the
runner must do with it comes from oracle.py.

The task root the cases point at (:func:`make_root`) holds scripts that exit 0, symlinks
that stay inside and that escape, a directory, a loop, and a sibling directory whose name
merely starts with the root's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from .oracle import DENIED_NAMES, DENIED_PREFIXES, ENVELOPE_BYTES, MAX_DEPTH, SURELY_FINE

CREATED = "2026-11-28T02:44:03.123Z"
KEY_ID, SECRET = "k1", "secret-1"
#: Default adapters run other interpreters; a runnable case must run the shell script it names.
TAKEN_LANGS = {"php", "node", "ruby", "shell", "python", "ghost"}
#: An adapter that is configured but whose interpreter is not installed (unknown_lang).
GHOST = {"ghost": {"argv": ["/nonexistent/ghost-interpreter", "{file}", "{args}"], "ext": ".gh"}}


@dataclasses.dataclass
class Case:
    kind: str
    body: bytes
    signature: str | None = None
    key_id: str | None = None
    reuse_id: bool = False  # stored under the record id of the case before it

    def short(self) -> str:
        text = self.body[:160].decode("utf-8", "backslashreplace")
        return f"{self.kind} ({len(self.body)} bytes, sig {self.key_id}/{(self.signature or '')[:8]}): {text}"


def make_root(tmp: Path, ran: Path) -> tuple[Path, set[str]]:
    """The task root of the bad-input runner; returns it and the scripts that exit 0."""
    root = tmp / "root"
    (root / "sub").mkdir(parents=True)
    (root / "adir").mkdir()
    outside = tmp / "outside"
    outside.mkdir()
    sibling = tmp / "root2"
    sibling.mkdir()
    # ok.sh ignores its arguments and environment: its proof file is written into it.
    script = f'#!/bin/sh\necho "ran $PHLASK_TASK_ID" >> {_sh_quote(str(ran))}\n'
    for d in (root, root / "sub", outside, sibling):
        (d / "ok.sh").write_text(script)
    (root / "link_in.sh").symlink_to("ok.sh")
    (root / "link_out.sh").symlink_to("/etc/hostname")
    (root / "dir_out").symlink_to(outside)
    (root / "loop").symlink_to("loop")
    real = root.resolve()
    return real, {str(real / "ok.sh"), str(real / "sub" / "ok.sh")}


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


# --- pieces ------------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
env_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z").filter(
    lambda n: n not in DENIED_NAMES and not n.startswith(DENIED_PREFIXES))
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False,
                                                                                 allow_infinity=False) | text
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
                           max_leaves=8)


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


#: Fields and the JSON type the schema wants there (spec/task.schema.json).
FIELD_TYPES = {
    "phlask": "number", "id": "string", "queue": "string", "lang": "string", "file": "string",
    "args": "array", "args.0": "string", "env": "object", "env.NAME": "string", "timeout": "number",
    "max_attempts": "number", "backoff": "object", "backoff.initial": "number", "backoff.factor": "number",
    "backoff.max": "number", "backoff.jitter": "boolean", "priority": "number", "not_before": "string",
    "expires_at": "string", "created_at": "string", "meta": "object", "meta.key": "string",
    "producer": "object", "producer.sdk": "string", "producer.version": "string", "producer.host": "string",
}


@st.composite
def valid_extras(draw) -> dict[str, Any]:
    """Optional fields, each valid, that keep a task runnable and quick to settle."""
    out: dict[str, Any] = {}
    pick = draw(st.sets(st.sampled_from(["args", "env", "meta", "input", "timeout", "max_attempts", "backoff",
                                         "priority", "expires_at", "not_before", "producer", "queue"]), max_size=6))
    choices = {
        "args": st.lists(text, max_size=4),
        "env": st.dictionaries(env_names, text, max_size=3),
        "meta": st.dictionaries(text, text, max_size=3),
        "input": json_values,
        "timeout": st.floats(10, 604800) | st.integers(10, 604800),
        "max_attempts": st.integers(1, 100) | st.sampled_from([2.0, 1e0]),
        "backoff": st.fixed_dictionaries({}, optional={"initial": st.floats(0, 604800), "factor": st.floats(1, 100),
                                                       "max": st.floats(0, 604800), "jitter": st.booleans()}),
        "priority": st.integers(0, 9) | st.just(5.0),
        "expires_at": st.sampled_from(["2099-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+23:59"]),
        "not_before": st.sampled_from(["2001-01-01T00:00:00Z", "2020-02-29T12:00:00.5-05:00"]),
        "producer": st.fixed_dictionaries({}, optional={"sdk": text, "version": text, "host": text}),
        "queue": st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z"),
    }
    for name in sorted(pick):
        out[name] = draw(choices[name])
    return out


def envelope(tid: str, **fields: Any) -> dict[str, Any]:
    return {"phlask": 1, "id": tid, "lang": "shell", "file": "ok.sh", "created_at": CREATED, **fields}


@st.composite
def encode(draw, obj: Any) -> bytes:
    """JSON text of ``obj`` in one of the ways producers write it (all valid)."""
    ascii_only = draw(st.booleans())
    sep = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    indent = draw(st.sampled_from([None, None, 2]))
    body = json.dumps(obj, ensure_ascii=ascii_only, separators=sep, indent=indent).encode()
    return draw(st.sampled_from([b"", b" ", b"\n"])) + body + draw(st.sampled_from([b"", b"\n", b" \r\n\t"]))


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    if not rest:
        obj[head] = value
    elif head == "args":
        obj["args"] = [value]
    else:
        inner = dict(obj.get(head) or {}) if isinstance(obj.get(head), dict) else {}
        inner[{"NAME": "NAME", "key": "key"}.get(rest, rest)] = value
        obj[head] = inner
    return obj


# --- kinds of case -------------------------------------------------------------------------------


@st.composite
def good(draw, tid: str) -> Case:
    return Case("good", draw(encode(envelope(tid, **draw(valid_extras())))))


@st.composite
def random_bytes(draw, tid: str) -> Case:
    return Case("random_bytes", draw(st.binary(max_size=300)))


@st.composite
def truncated(draw, tid: str) -> Case:
    body = json.dumps(envelope(tid, **draw(valid_extras()))).encode()
    return Case("truncated", body[:draw(st.integers(0, len(body) - 2))])


@st.composite
def nested(draw, tid: str) -> Case:
    field = draw(st.sampled_from(["input", "input", "meta", "args", "env", "backoff", "producer", "id", "lang"]))
    depth = draw(st.integers(1, SURELY_FINE) | st.integers(MAX_DEPTH, 60_000))
    if draw(st.booleans()):
        inner = "[" * depth + "]" * depth
    else:
        inner = '{"a":' * depth + "1" + "}" * depth
    marker = "\u2603NESTED\u2603"
    text_ = json.dumps(envelope(tid, **{field: marker}), ensure_ascii=False)
    return Case(f"nested:{field}", text_.replace(json.dumps(marker, ensure_ascii=False), inner).encode())


@st.composite
def huge(draw, tid: str) -> Case:
    field = draw(st.sampled_from(["args.0", "env.BIG", "meta.big", "input", "id", "lang", "file", "queue", "code",
                                  "created_at", "producer.host"]))
    size = draw(st.sampled_from([300, 5_000, 70_000, 131_000, 140_000, 300_000, 600_000, 1_100_000]))
    char = draw(st.sampled_from(["x", "é", "😀"]))
    value = char * (size // len(char.encode()))
    obj = envelope(tid)
    if field == "code":
        del obj["file"]
        obj["code"] = value
    elif field == "input":
        obj["input"] = value
    else:
        _set(obj, field, value)
    return Case(f"huge:{field}", draw(encode(obj)))


@st.composite
def wrong_type(draw, tid: str) -> Case:
    field = draw(st.sampled_from(sorted(FIELD_TYPES)))
    value = draw(json_values.filter(lambda v: _type(v) != FIELD_TYPES[field]))
    return Case(f"wrong_type:{field}", draw(encode(_set(envelope(tid, **draw(valid_extras())), field, value))))


@st.composite
def unknown_lang(draw, tid: str) -> Case:
    lang = draw(st.just("ghost") | st.from_regex(r"\A[a-z][a-z0-9_-]{0,31}\Z").filter(lambda x: x not in TAKEN_LANGS))
    return Case("unknown_lang", draw(encode(envelope(tid, lang=lang))))


PATH_PARTS = ["..", ".", "ok.sh", "ok.sh", "sub", "link_in.sh", "link_out.sh", "dir_out", "adir", "loop", "nope.sh",
              "../root2", "x" * 300, "", "ok.sh/", "/etc/passwd", "root"]


@st.composite
def path(draw, tid: str, root: str) -> Case:
    parts = draw(st.lists(st.sampled_from(PATH_PARTS), min_size=1, max_size=6))
    file = "/".join(parts)
    prefix = draw(st.sampled_from(["", "", "", root + "/", "/", "/etc/", "/proc/self/root" + root + "/"]))
    file = (prefix + file)[:4096] or "."
    return Case("path", draw(encode(envelope(tid, file=file))))


@st.composite
def nul(draw, tid: str) -> Case:
    if draw(st.booleans()):  # a raw NUL byte inside a string: not JSON
        body = json.dumps(envelope(tid, meta={"k": "a\u2603b"}), ensure_ascii=False).encode()
        return Case("nul:raw", body.replace("\u2603".encode(), b"\x00"))
    field = draw(st.sampled_from(["id", "lang", "file", "args.0", "env.NAME", "meta.key", "queue", "created_at",
                                  "producer.host", "input", "env.name"]))
    where = draw(st.integers(0, 5))
    value = "okay.sh"[:where] + "\x00" + "okay.sh"[where:]
    obj = envelope(tid)
    if field == "env.name":
        obj["env"] = {value: "v"}
    elif field == "input":
        obj["input"] = value
    else:
        _set(obj, field, value)
    return Case(f"nul:{field}", draw(encode(obj)))


BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\x80",
            b"\xf4\x90\x80\x80", b"\\ud800", b"\\udfff", b"\\ud83d", b"\\udc00\\ud800"]


@st.composite
def bad_utf8(draw, tid: str) -> Case:
    field = draw(st.sampled_from(["meta.key", "args.0", "env.NAME", "input", "producer.host", "id"]))
    marker = "MARK-ER"
    obj = envelope(tid)
    if field == "input":
        obj["input"] = marker
    else:
        _set(obj, field, marker)
    body = json.dumps(obj).encode()
    if draw(st.booleans()):  # a byte order mark, which spec 2.1 forbids, in front instead
        return Case("bad_utf8:bom", draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe"])) + body)
    return Case(f"bad_utf8:{field}", body.replace(marker.encode(), draw(st.sampled_from(BAD_UTF8))))


@st.composite
def duplicate_member(draw, tid: str) -> Case:
    obj = envelope(tid, **draw(valid_extras()))
    where = draw(st.sampled_from(["", "", "backoff", "env", "meta", "producer"]))
    container = obj if not where else obj.setdefault(where, {"initial": 1} if where == "backoff" else
                                                     {"x": "1"} if where != "producer" else {"sdk": "a"})
    if not container:
        container["x" if where != "backoff" else "initial"] = "1" if where != "backoff" else 1
    key = draw(st.sampled_from(sorted(container)))
    other = container[key] if draw(st.booleans()) else draw(st.sampled_from(["other", 7, "ok.sh", "7"]))

    def dump(o: Any, dup_in: Any) -> str:
        if isinstance(o, dict):
            pairs = [f"{json.dumps(k)}:{dump(v, dup_in)}" for k, v in o.items()]
            if o is dup_in:
                pairs.insert(draw(st.integers(0, len(pairs))), f"{json.dumps(key)}:{json.dumps(other)}")
            return "{" + ",".join(pairs) + "}"
        return json.dumps(o)

    return Case(f"duplicate_member:{where or '$'}.{key}", dump(obj, container).encode())


@st.composite
def refused(draw, tid: str) -> Case:
    what = draw(st.sampled_from(["env", "expired", "inline"]))
    if what == "env":
        name = draw(st.sampled_from(sorted(DENIED_NAMES)) | st.sampled_from(DENIED_PREFIXES).map(lambda p: p + "X"))
        obj = envelope(tid, env={"A": "1", name: "/tmp/x"})
    elif what == "expired":
        obj = envelope(tid, expires_at=draw(st.sampled_from(["2020-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59",
                                                             "1999-12-31T23:59:59.999999999-00:00"])))
    else:
        obj = envelope(tid, code="echo hi")
        del obj["file"]
    return Case(f"refused:{what}", draw(encode(obj)))


@st.composite
def oversize(draw, tid: str) -> Case:
    over = draw(st.sampled_from([-1, 0, 1, 2, 4096]))  # bytes over the limit
    obj = envelope(tid, meta={"pad": ""})
    base = len(json.dumps(obj).encode())
    obj["meta"]["pad"] = "x" * (ENVELOPE_BYTES + over - base)
    return Case(f"oversize:{over:+d}", json.dumps(obj).encode())


KINDS = {"random_bytes": random_bytes, "truncated": truncated, "nested": nested, "huge": huge,
         "wrong_type": wrong_type, "unknown_lang": unknown_lang, "path": path, "nul": nul, "bad_utf8": bad_utf8,
         "duplicate_member": duplicate_member, "refused": refused, "oversize": oversize, "good": good}
#: How often each kind is drawn (the big ones are rare: a 1 MiB case costs a lot to store).
WEIGHTS = {"random_bytes": 2, "truncated": 2, "nested": 2, "huge": 1, "wrong_type": 4, "unknown_lang": 1,
           "path": 4, "nul": 2, "bad_utf8": 2, "duplicate_member": 2, "refused": 2, "oversize": 1, "good": 3}
SIG_MODES = ["valid"] * 10 + ["missing", "no_key_id", "unknown_key", "wrong", "garbage", "upper"]


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@st.composite
def case(draw, tid: str, root: str, keyring: bool, index: int = 0) -> Case:
    # Kind, signature and id reuse by weight, from a Random seeded per case: hypothesis's
    # own choices lean hard towards the first option and towards 0.
    rnd = random.Random(f"{draw(st.integers(0, 2**32))}/{index}")
    kind = rnd.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
    c = draw(KINDS[kind](tid, root) if kind == "path" else KINDS[kind](tid))
    if keyring:
        mode = rnd.choice(SIG_MODES)
        c.key_id = {"no_key_id": None, "unknown_key": "k9"}.get(mode, KEY_ID)
        c.signature = {"missing": None, "wrong": sign(c.body + b" "), "garbage": "zz" * 32,
                       "upper": sign(c.body).upper()}.get(mode, sign(c.body))
        c.kind += f" [sig {mode}]"
    c.reuse_id = rnd.random() < 1 / 16
    return c


@st.composite
def batch(draw, prefix: str, root: str, size: tuple[int, int]) -> tuple[bool, list[Case]]:
    """(keyring on, cases): a batch of hostile records, their envelope ids ``prefix-N``."""
    keyring = draw(st.booleans())
    n = draw(st.integers(*size))
    return keyring, [draw(case(f"{prefix}-{i}", root, keyring, i)) for i in range(n)]


def record_ids(prefix: str, cases: list[Case]) -> list[str]:
    """The record id each case is stored under (a reused id repeats the one before)."""
    out: list[str] = []
    for i, c in enumerate(cases):
        out.append(out[-1] if c.reuse_id and out else f"{prefix}-{i}")
    return out


