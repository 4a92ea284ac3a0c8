#!/usr/bin/env python3
"""Generate the phlask conformance vectors (conformance/vectors/**/*.json).

The JSON files are what SDKs read and what is committed; this script is how they are
made, because some cases hold strings of 4096 or 262144 characters. Edit the cases
here, run `python3 conformance/vectors/generate.py`, then `conformance/check`, and
commit the script and the JSON together. Standard library only.

Every validation case starts from BASE (a minimal valid envelope) and changes one
thing, so each case tests exactly one rule.
"""

from __future__ import annotations

import hmac
import hashlib
import json
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA = "task.schema.json"

BASE = {
    "phlask": 1,
    "id": "t-1",
    "lang": "shell",
    "file": "jobs/hello.sh",
    "created_at": "2026-11-28T02:44:03Z",
}

DROP = object()  # marker: remove this field from BASE


def env_(**changes):
    """BASE with some fields replaced (or removed with DROP)."""
    out = dict(BASE)
    for k, v in changes.items():
        if v is DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def ok(description, **changes):
    return {"description": description, "data": env_(**changes), "valid": True}


def bad(description, path, **changes):
    return {"description": description, "data": env_(**changes), "valid": False, "path": path}


def raw(description, data, valid, path=None):
    case = {"description": description, "data": data, "valid": valid}
    if path is not None:
        case["path"] = path
    return case


def group(description, tests):
    return {"description": description, "schema": SCHEMA, "tests": tests}


# --------------------------------------------------------------------------- validation

def area_envelope():
    full = {
        "phlask": 1,
        "id": "01936a3c-8f1e-7b7a-9c1d-2f4e5a6b7c8d",
        "queue": "reports.nightly",
        "lang": "php",
        "file": "jobs/report.php",
        "args": ["2026-11", "--dry-run"],
        "env": {"REPORT_MONTH": "2026-11"},
        "input": {"user": 42},
        "timeout": 60,
        "max_attempts": 5,
        "backoff": {"initial": 5, "factor": 3, "max": 600, "jitter": False},
        "priority": 7,
        "not_before": "2026-11-28T09:00:00Z",
        "expires_at": "2026-11-29T00:00:00+01:00",
        "created_at": "2026-11-28T02:44:03.123Z",
        "meta": {"trace_id": "4bf92f3577b34da6", "tenant": "acme"},
        "producer": {"sdk": "phlask-php", "version": "0.1.0", "host": "web-3"},
    }
    return [
        group("envelope: minimal and complete", [
            ok("minimal envelope"),
            raw("every field set", full, True),
            ok("minimal envelope with code instead of file", file=DROP, code="echo hello"),
        ]),
        group("envelope: required fields", [
            bad("phlask missing", "$.phlask", phlask=DROP),
            bad("id missing", "$.id", id=DROP),
            bad("lang missing", "$.lang", lang=DROP),
            bad("created_at missing", "$.created_at", created_at=DROP),
            raw("empty object", {}, False, "$"),
        ]),
        group("envelope: not an object", [
            raw("envelope is an array", [BASE], False, "$"),
            raw("envelope is a string", json.dumps(BASE), False, "$"),
            raw("envelope is null", None, False, "$"),
            raw("envelope is a number", 1, False, "$"),
            raw("envelope is true", True, False, "$"),
        ]),
        group("envelope: phlask version", [
            ok("phlask 1.0 equals 1", phlask=1.0),
            bad("phlask 2", "$.phlask", phlask=2),
            bad("phlask 0", "$.phlask", phlask=0),
            bad("phlask string \"1\"", "$.phlask", phlask="1"),
            bad("phlask true", "$.phlask", phlask=True),
            bad("phlask null", "$.phlask", phlask=None),
            bad("phlask 1.5", "$.phlask", phlask=1.5),
        ]),
    ]


def area_id():
    return [
        group("id: valid forms", [
            ok("id one char", id="a"),
            ok("id 128 chars", id="a" * 128),
            ok("id every allowed character class", id="AZaz09._:-"),
            ok("id UUIDv7", id="01936a3c-8f1e-7b7a-9c1d-2f4e5a6b7c8d"),
            ok("id only digits", id="12345"),
            ok("id only punctuation", id=".:_-"),
            ok("id two dots", id=".."),
        ]),
        group("id: invalid forms", [
            bad("id empty", "$.id", id=""),
            bad("id 129 chars", "$.id", id="a" * 129),
            bad("id with space", "$.id", id="t 1"),
            bad("id with slash", "$.id", id="t/1"),
            bad("id trailing newline", "$.id", id="t-1\n"),
            bad("id 128 chars plus trailing newline", "$.id", id="a" * 128 + "\n"),
            bad("id leading newline", "$.id", id="\nt-1"),
            bad("id trailing space", "$.id", id="t-1 "),
            bad("id with NUL", "$.id", id="t\u00001"),
        ]),
        group("id: wrong types", [
            bad("id number", "$.id", id=1),
            bad("id null", "$.id", id=None),
            bad("id array", "$.id", id=["t-1"]),
        ]),
    ]


def area_queue():
    return [
        group("queue: valid forms", [
            ok("queue default", queue="default"),
            ok("queue with dot", queue="reports.nightly"),
            ok("queue one char", queue="a"),
            ok("queue starting with digit", queue="0q"),
            ok("queue 64 chars", queue="q" * 64),
            ok("queue with _ and -", queue="a_b-c"),
        ]),
        group("queue: invalid forms", [
            bad("queue empty", "$.queue", queue=""),
            bad("queue 65 chars", "$.queue", queue="q" * 65),
            bad("queue uppercase", "$.queue", queue="Default"),
            bad("queue leading dot", "$.queue", queue=".q"),
            bad("queue leading hyphen", "$.queue", queue="-q"),
            bad("queue leading underscore", "$.queue", queue="_q"),
            bad("queue with space", "$.queue", queue="my queue"),
            bad("queue with colon", "$.queue", queue="a:b"),
            bad("queue trailing newline", "$.queue", queue="default\n"),
            bad("queue 64 chars plus trailing newline", "$.queue", queue="q" * 64 + "\n"),
        ]),
        group("queue: wrong types", [
            bad("queue number", "$.queue", queue=1),
            bad("queue null", "$.queue", queue=None),
            bad("queue object", "$.queue", queue={"name": "default"}),
        ]),
    ]


def area_lang():
    return [
        group("lang: valid forms", [
            ok("lang php", lang="php"),
            ok("lang one letter", lang="x"),
            ok("lang 32 chars", lang="l" * 32),
            ok("lang with digit and hyphen", lang="node-22"),
            ok("lang with underscore", lang="my_lang"),
        ]),
        group("lang: invalid forms", [
            bad("lang empty", "$.lang", lang=""),
            bad("lang 33 chars", "$.lang", lang="l" * 33),
            bad("lang uppercase", "$.lang", lang="Shell"),
            bad("lang leading digit", "$.lang", lang="9lang"),
            bad("lang leading hyphen", "$.lang", lang="-x"),
            bad("lang leading underscore", "$.lang", lang="_x"),
            bad("lang with dot", "$.lang", lang="python3.12"),
            bad("lang trailing newline", "$.lang", lang="shell\n"),
            bad("lang trailing space", "$.lang", lang="shell "),
        ]),
        group("lang: wrong types", [
            bad("lang number", "$.lang", lang=5),
            bad("lang null", "$.lang", lang=None),
            bad("lang array", "$.lang", lang=["shell"]),
        ]),
    ]


def area_file_code():
    code_max = "#" * 262144
    code_over = "#" * 262145
    # 262144 code points, one of them outside the BMP: 262145 UTF-16 code units,
    # 262147 UTF-8 bytes. JSON Schema counts code points, so it is valid.
    code_astral = "\U0001F600" + "#" * 262143
    return [
        group("file-code: exactly one of file and code", [
            ok("file only"),
            ok("code only", file=DROP, code="echo hello"),
            bad("both file and code", "$.code", code="echo hello"),
            bad("neither file nor code", "$.file", file=DROP),
            bad("file and code null", "$.code", code=None),
        ]),
        group("file-code: file", [
            ok("file one char", file="x"),
            ok("file absolute path", file="/srv/jobs/resize.js"),
            ok("file 4096 chars", file="f" * 4096),
            ok("file with spaces", file="jobs/my job.sh"),
            ok("file with trailing newline", file="jobs/hello.sh\n"),
            ok("file non-ASCII", file="jobs/rapport-été.php"),
            bad("file empty", "$.file", file=""),
            bad("file 4097 chars", "$.file", file="f" * 4097),
            bad("file with NUL inside", "$.file", file="jobs/hello.sh\u0000.php"),
            bad("file NUL at end", "$.file", file="jobs/hello.sh\u0000"),
            bad("file only NUL", "$.file", file="\u0000"),
            bad("file number", "$.file", file=1),
            bad("file null", "$.file", file=None),
            bad("file array", "$.file", file=["jobs/hello.sh"]),
        ]),
        group("file-code: code", [
            ok("code one char", file=DROP, code="x"),
            ok("code multi-line", file=DROP, code="set -e\necho hello\nexit 0\n"),
            ok("code non-ASCII", file=DROP, code="echo 'héllo wörld ✓'"),
            ok("code with NUL (no pattern on code)", file=DROP, code="printf 'a\u0000b'"),
            ok("code 262144 chars", file=DROP, code=code_max),
            ok("code 262144 code points with one astral char", file=DROP, code=code_astral),
            bad("code 262145 chars", "$.code", file=DROP, code=code_over),
            bad("code empty", "$.code", file=DROP, code=""),
            bad("code number", "$.code", file=DROP, code=42),
            bad("code array of lines", "$.code", file=DROP, code=["echo", "hello"]),
        ]),
    ]


def area_args():
    return [
        group("args: valid forms", [
            ok("args empty", args=[]),
            ok("args two items", args=["2026-11", "--dry-run"]),
            ok("args empty string item", args=[""]),
            ok("args non-ASCII", args=["héllo", "日本語", "😀"]),
            ok("args with newline", args=["line1\nline2"]),
            ok("args shell metacharacters", args=["$(rm -rf /); `x` | > *"]),
            ok("args repeated items", args=["a", "a", "a"]),
        ]),
        group("args: invalid forms", [
            bad("args item with NUL", "$.args", args=["a\u0000b"]),
            bad("args second item NUL", "$.args", args=["ok", "\u0000"]),
            bad("args item number", "$.args", args=[1]),
            bad("args item null", "$.args", args=[None]),
            bad("args item true", "$.args", args=[True]),
            bad("args nested array", "$.args", args=[["a"]]),
            bad("args item object", "$.args", args=[{"a": "b"}]),
        ]),
        group("args: wrong types", [
            bad("args string", "$.args", args="--dry-run"),
            bad("args object", "$.args", args={"0": "a"}),
            bad("args null", "$.args", args=None),
        ]),
    ]


def area_env():
    return [
        group("env: valid forms", [
            ok("env empty", env={}),
            ok("env one variable", env={"REPORT_MONTH": "2026-11"}),
            ok("env name underscore only", env={"_": "x"}),
            ok("env lowercase name", env={"my_var9": "x"}),
            ok("env empty value", env={"EMPTY": ""}),
            ok("env non-ASCII value", env={"GREETING": "héllo wörld ✓"}),
            ok("env value with newline", env={"MULTI": "a\nb"}),
            ok("env value with =", env={"PAIR": "a=b"}),
            ok("env denied name is still schema-valid", env={"LD_PRELOAD": "/tmp/x.so"}),
        ]),
        group("env: invalid names", [
            bad("env name empty", "$.env", env={"": "x"}),
            bad("env name leading digit", "$.env", env={"1A": "x"}),
            bad("env name with hyphen", "$.env", env={"A-B": "x"}),
            bad("env name with space", "$.env", env={"A B": "x"}),
            bad("env name with =", "$.env", env={"A=B": "x"}),
            bad("env name with dot", "$.env", env={"a.b": "x"}),
            bad("env name trailing newline", "$.env", env={"A\n": "x"}),
            bad("env name with NUL", "$.env", env={"A\u0000": "x"}),
            bad("env name non-ASCII", "$.env", env={"ÄRGER": "x"}),
        ]),
        group("env: invalid values", [
            bad("env value with NUL", "$.env", env={"A": "x\u0000y"}),
            bad("env value number", "$.env", env={"A": 1}),
            bad("env value null", "$.env", env={"A": None}),
            bad("env value true", "$.env", env={"A": True}),
            bad("env value array", "$.env", env={"A": ["x"]}),
        ]),
        group("env: wrong types", [
            bad("env array of pairs", "$.env", env=[["A", "x"]]),
            bad("env string", "$.env", env="A=x"),
            bad("env null", "$.env", env=None),
        ]),
    ]


def area_input():
    return [
        group("input: any JSON value", [
            ok("input object", input={"user": 42}),
            ok("input empty object", input={}),
            ok("input array", input=[1, 2, 3]),
            ok("input string", input="text"),
            ok("input empty string", input=""),
            ok("input number", input=3.25),
            ok("input zero", input=0),
            ok("input null", input=None),
            ok("input true", input=True),
            ok("input false", input=False),
            ok("input deeply nested", input={"a": [{"b": [{"c": [[[{"d": None}]]]}]}]}),
            ok("input with keys named like envelope fields", input={"timout": 1, "phlask": 2, "id": ""}),
            ok("input non-ASCII", input={"näme": "Zoë 日本 😀"}),
            ok("input string with NUL", input="a\u0000b"),
            ok("input large integer", input=9007199254740993),
        ]),
    ]


def area_timeout():
    return [
        group("timeout: valid forms", [
            ok("timeout 60", timeout=60),
            ok("timeout 0.5", timeout=0.5),
            ok("timeout tiny positive", timeout=1e-9),
            ok("timeout 604800", timeout=604800),
            ok("timeout 604800.0", timeout=604800.0),
        ]),
        group("timeout: invalid forms", [
            bad("timeout 0", "$.timeout", timeout=0),
            bad("timeout negative", "$.timeout", timeout=-1),
            bad("timeout 604800.001", "$.timeout", timeout=604800.001),
            bad("timeout 604801", "$.timeout", timeout=604801),
        ]),
        group("timeout: wrong types", [
            bad("timeout string", "$.timeout", timeout="60"),
            bad("timeout true", "$.timeout", timeout=True),
            bad("timeout null", "$.timeout", timeout=None),
            bad("timeout object", "$.timeout", timeout={"seconds": 60}),
        ]),
    ]


def area_attempts_backoff():
    return [
        group("max_attempts", [
            ok("max_attempts 1", max_attempts=1),
            ok("max_attempts 100", max_attempts=100),
            ok("max_attempts 2.0 is an integer", max_attempts=2.0),
            bad("max_attempts 0", "$.max_attempts", max_attempts=0),
            bad("max_attempts 101", "$.max_attempts", max_attempts=101),
            bad("max_attempts -1", "$.max_attempts", max_attempts=-1),
            bad("max_attempts 2.5", "$.max_attempts", max_attempts=2.5),
            bad("max_attempts string", "$.max_attempts", max_attempts="2"),
            bad("max_attempts true", "$.max_attempts", max_attempts=True),
            bad("max_attempts null", "$.max_attempts", max_attempts=None),
        ]),
        group("backoff: valid forms", [
            ok("backoff empty object", backoff={}),
            ok("backoff all fields", backoff={"initial": 5, "factor": 3, "max": 600, "jitter": False}),
            ok("backoff initial only", backoff={"initial": 2}),
            ok("backoff initial 0", backoff={"initial": 0}),
            ok("backoff initial 0.25", backoff={"initial": 0.25}),
            ok("backoff initial 604800", backoff={"initial": 604800}),
            ok("backoff factor 1", backoff={"factor": 1}),
            ok("backoff factor 100", backoff={"factor": 100}),
            ok("backoff factor 1.5", backoff={"factor": 1.5}),
            ok("backoff max 0", backoff={"max": 0}),
            ok("backoff max 604800", backoff={"max": 604800}),
            ok("backoff jitter false", backoff={"jitter": False}),
            ok("backoff initial above max", backoff={"initial": 600, "max": 300}),
        ]),
        group("backoff: invalid forms", [
            bad("backoff initial negative", "$.backoff.initial", backoff={"initial": -1}),
            bad("backoff initial 604800.5", "$.backoff.initial", backoff={"initial": 604800.5}),
            bad("backoff initial string", "$.backoff.initial", backoff={"initial": "1"}),
            bad("backoff factor 0.5", "$.backoff.factor", backoff={"factor": 0.5}),
            bad("backoff factor 0", "$.backoff.factor", backoff={"factor": 0}),
            bad("backoff factor 100.5", "$.backoff.factor", backoff={"factor": 100.5}),
            bad("backoff max -0.1", "$.backoff.max", backoff={"max": -0.1}),
            bad("backoff max 604801", "$.backoff.max", backoff={"max": 604801}),
            bad("backoff max null", "$.backoff.max", backoff={"max": None}),
            bad("backoff jitter string", "$.backoff.jitter", backoff={"jitter": "true"}),
            bad("backoff jitter 1", "$.backoff.jitter", backoff={"jitter": 1}),
            bad("backoff jitter null", "$.backoff.jitter", backoff={"jitter": None}),
            bad("backoff unknown key", "$.backoff", backoff={"jiter": False}),
            bad("backoff null", "$.backoff", backoff=None),
            bad("backoff array", "$.backoff", backoff=[1, 2, 300]),
            bad("backoff number", "$.backoff", backoff=5),
        ]),
    ]


def area_priority():
    return [
        group("priority", [
            ok("priority 0", priority=0),
            ok("priority 9", priority=9),
            ok("priority 5", priority=5),
            ok("priority 5.0 is an integer", priority=5.0),
            bad("priority -1", "$.priority", priority=-1),
            bad("priority 10", "$.priority", priority=10),
            bad("priority 1.5", "$.priority", priority=1.5),
            bad("priority string", "$.priority", priority="5"),
            bad("priority true", "$.priority", priority=True),
            bad("priority null", "$.priority", priority=None),
            bad("priority array", "$.priority", priority=[5]),
        ]),
    ]


def area_timestamps():
    C = "$.created_at"
    return [
        group("timestamps: valid created_at", [
            ok("Z offset", created_at="2026-11-28T02:44:03Z"),
            ok("lowercase z", created_at="2026-11-28T02:44:03z"),
            ok("lowercase t", created_at="2026-11-28t02:44:03Z"),
            ok("positive offset", created_at="2026-11-28T03:44:03+01:00"),
            ok("negative offset", created_at="2026-11-27T21:14:03-05:30"),
            ok("offset +00:00", created_at="2026-11-28T02:44:03+00:00"),
            ok("offset -00:00", created_at="2026-11-28T02:44:03-00:00"),
            ok("offset +23:59", created_at="2026-11-29T02:43:03+23:59"),
            ok("milliseconds", created_at="2026-11-28T02:44:03.123Z"),
            ok("one fraction digit", created_at="2026-11-28T02:44:03.1Z"),
            ok("nine fraction digits", created_at="2026-11-28T02:44:03.123456789Z"),
            ok("leap day 2024", created_at="2024-02-29T12:00:00Z"),
            ok("leap day 2000", created_at="2000-02-29T12:00:00Z"),
            ok("year 0001", created_at="0001-01-01T00:00:00Z"),
            ok("year 9999 last instant", created_at="9999-12-31T23:59:59.999999999Z"),
            ok("year 0001 with positive offset", created_at="0001-01-01T00:00:00+01:00"),
            ok("year 9999 with negative offset", created_at="9999-12-31T23:59:59-01:00"),
            ok("31 December", created_at="2026-12-31T23:59:59Z"),
            ok("30 April", created_at="2026-04-30T00:00:00Z"),
        ]),
        group("timestamps: invalid calendar", [
            bad("29 February 2026", C, created_at="2026-02-29T00:00:00Z"),
            bad("29 February 1900", C, created_at="1900-02-29T00:00:00Z"),
            bad("30 February", C, created_at="2024-02-30T00:00:00Z"),
            bad("31 April", C, created_at="2026-04-31T00:00:00Z"),
            bad("31 June", C, created_at="2026-06-31T00:00:00Z"),
            bad("day 32", C, created_at="2026-01-32T00:00:00Z"),
            bad("day 00", C, created_at="2026-01-00T00:00:00Z"),
            bad("month 00", C, created_at="2026-00-10T00:00:00Z"),
            bad("month 13", C, created_at="2026-13-01T00:00:00Z"),
            bad("year 0000", C, created_at="0000-01-01T00:00:00Z"),
            bad("five-digit year", C, created_at="10000-01-01T00:00:00Z"),
            bad("two-digit year", C, created_at="26-11-28T02:44:03Z"),
        ]),
        group("timestamps: invalid time", [
            bad("leap second", C, created_at="2016-12-31T23:59:60Z"),
            bad("hour 24", C, created_at="2026-11-28T24:00:00Z"),
            bad("minute 60", C, created_at="2026-11-28T02:60:03Z"),
            bad("ten fraction digits", C, created_at="2026-11-28T02:44:03.1234567890Z"),
            bad("dot without fraction digits", C, created_at="2026-11-28T02:44:03.Z"),
            bad("comma as decimal separator", C, created_at="2026-11-28T02:44:03,123Z"),
            bad("missing seconds", C, created_at="2026-11-28T02:44Z"),
            bad("single-digit hour", C, created_at="2026-11-28T2:44:03Z"),
        ]),
        group("timestamps: invalid offset and layout", [
            bad("no offset", C, created_at="2026-11-28T02:44:03"),
            bad("offset without colon", C, created_at="2026-11-28T03:44:03+0100"),
            bad("offset hours only", C, created_at="2026-11-28T03:44:03+01"),
            bad("offset +24:00", C, created_at="2026-11-29T02:44:03+24:00"),
            bad("offset minutes 60", C, created_at="2026-11-28T03:44:03+01:60"),
            bad("UTC as a word", C, created_at="2026-11-28T02:44:03 UTC"),
            bad("space instead of T", C, created_at="2026-11-28 02:44:03Z"),
            bad("date only", C, created_at="2026-11-28"),
            bad("basic format without separators", C, created_at="20261128T024403Z"),
            bad("slashes in date", C, created_at="2026/11/28T02:44:03Z"),
            bad("trailing newline", C, created_at="2026-11-28T02:44:03Z\n"),
            bad("leading space", C, created_at=" 2026-11-28T02:44:03Z"),
            bad("trailing space", C, created_at="2026-11-28T02:44:03Z "),
            bad("empty string", C, created_at=""),
        ]),
        group("timestamps: Unicode digits", [
            bad("Arabic-Indic digits in year", C, created_at="٢٠٢٦-11-28T02:44:03Z"),
            bad("fullwidth digits in year", C, created_at="２０２６-11-28T02:44:03Z"),
            bad("Devanagari digit in seconds", C, created_at="2026-11-28T02:44:0३Z"),
            bad("fullwidth digits in fraction", C, created_at="2026-11-28T02:44:03.１２３Z"),
            bad("fullwidth Z", C, created_at="2026-11-28T02:44:03Ｚ"),
        ]),
        group("timestamps: wrong types", [
            bad("created_at number", C, created_at=1795833843),
            bad("created_at null", C, created_at=None),
            bad("created_at object", C, created_at={"seconds": 1795833843}),
        ]),
        group("timestamps: not_before and expires_at", [
            ok("not_before valid", not_before="2026-11-28T09:00:00Z"),
            ok("expires_at valid with offset", expires_at="2026-11-29T00:00:00+01:00"),
            ok("expires_at before created_at", expires_at="2020-01-01T00:00:00Z"),
            bad("not_before 29 February 2026", "$.not_before", not_before="2026-02-29T00:00:00Z"),
            bad("not_before no offset", "$.not_before", not_before="2026-11-28T09:00:00"),
            bad("not_before trailing newline", "$.not_before", not_before="2026-11-28T09:00:00Z\n"),
            bad("not_before epoch number", "$.not_before", not_before=1795856400),
            bad("not_before null", "$.not_before", not_before=None),
            bad("expires_at leap second", "$.expires_at", expires_at="2016-12-31T23:59:60Z"),
            bad("expires_at null", "$.expires_at", expires_at=None),
            bad("expires_at fullwidth digits", "$.expires_at", expires_at="2026-11-２９T00:00:00Z"),
        ]),
    ]


def area_meta_producer():
    meta64 = {f"k{i:02d}": str(i) for i in range(64)}
    meta65 = {f"k{i:02d}": str(i) for i in range(65)}
    return [
        group("meta: valid forms", [
            ok("meta empty", meta={}),
            ok("meta two entries", meta={"trace_id": "4bf92f3577b34da6", "tenant": "acme"}),
            ok("meta 64 entries", meta=meta64),
            ok("meta non-ASCII key and value", meta={"客户": "Zoë ✓"}),
            ok("meta empty key and value", meta={"": ""}),
            ok("meta key named like an envelope field", meta={"timeout": "60"}),
            ok("meta value with NUL", meta={"k": "a\u0000b"}),
        ]),
        group("meta: invalid forms", [
            bad("meta 65 entries", "$.meta", meta=meta65),
            bad("meta value number", "$.meta", meta={"n": 1}),
            bad("meta value null", "$.meta", meta={"n": None}),
            bad("meta value true", "$.meta", meta={"n": True}),
            bad("meta value object", "$.meta", meta={"n": {"a": "b"}}),
            bad("meta array", "$.meta", meta=["a"]),
            bad("meta string", "$.meta", meta="trace=1"),
            bad("meta null", "$.meta", meta=None),
        ]),
        group("producer", [
            ok("producer all fields", producer={"sdk": "phlask-go", "version": "0.1.0", "host": "web-3"}),
            ok("producer empty object", producer={}),
            ok("producer non-ASCII host", producer={"host": "serveur-été"}),
            bad("producer unknown key", "$.producer", producer={"sdk": "phlask-go", "hostname": "web-3"}),
            bad("producer sdk number", "$.producer.sdk", producer={"sdk": 1}),
            bad("producer version null", "$.producer.version", producer={"version": None}),
            bad("producer string", "$.producer", producer="phlask-go/0.1.0"),
            bad("producer null", "$.producer", producer=None),
        ]),
    ]


def area_unknown_properties():
    return [
        group("unknown properties at the top level", [
            bad("typo timout", "$.timout", timout=60),
            bad("typo priorty", "$.priorty", priorty=5),
            bad("wrong case Timeout", "$.Timeout", Timeout=60),
            bad("camelCase maxAttempts", "$.maxAttempts", maxAttempts=3),
            bad("unknown field null", "$.extra", extra=None),
            bad("empty property name", "$", **{"": 1}),
            bad("$schema key", "$.$schema", **{"$schema": "urn:phlask:schema:task:1"}),
            bad("signature inside envelope", "$.signature", signature="ab" * 32),
        ]),
        group("unknown properties where they are allowed", [
            ok("unknown keys inside input", input={"timout": 60, "anything": [1]}),
            ok("arbitrary keys inside meta", meta={"timout": "60", "x-anything": "y"}),
        ]),
    ]


def area_unicode():
    return [
        group("unicode: refused in identifiers", [
            bad("id with e-acute", "$.id", id="tâche-1"),
            bad("id fullwidth digit", "$.id", id="t-１"),
            bad("id Arabic-Indic digit", "$.id", id="t-١"),
            bad("id Kelvin sign", "$.id", id="\u212a-1"),
            bad("id zero-width space", "$.id", id="t-\u200b1"),
            bad("id U+2028 line separator at end", "$.id", id="t-1\u2028"),
            bad("id emoji", "$.id", id="t-😀"),
            bad("queue Cyrillic a homoglyph", "$.queue", queue="defаult"),
            bad("queue no-break space", "$.queue", queue="my\u00a0queue"),
            bad("lang Greek omicron homoglyph", "$.lang", lang="n\u03bfde"),
            bad("lang dotless i", "$.lang", lang="\u0131ruby"),
            bad("env name Cyrillic", "$.env", env={"ПУТЬ": "x"}),
            bad("env name fullwidth digit", "$.env", env={"VAR１": "x"}),
        ]),
        group("unicode: accepted in free text", [
            ok("args CJK and emoji", args=["漢字", "🎉"]),
            ok("args combining accent", args=["e\u0301"]),
            ok("args U+2028 and U+2029", args=["a\u2028b\u2029c"]),
            ok("args right-to-left text", args=["שלום", "مرحبا"]),
            ok("env value emoji", env={"MOOD": "😀"}),
            ok("env value BOM character", env={"X": "\ufeffvalue"}),
            ok("meta emoji key", meta={"🏷": "tag"}),
            ok("input astral string", input="𝄞 music"),
            ok("file CJK path", file="任务/你好.sh"),
            ok("code right-to-left text", file=DROP, code="echo 'مرحبا'"),
        ]),
    ]


AREAS = {
    "envelope": area_envelope,
    "id": area_id,
    "queue": area_queue,
    "lang": area_lang,
    "file-code": area_file_code,
    "args": area_args,
    "env": area_env,
    "input": area_input,
    "timeout": area_timeout,
    "attempts-backoff": area_attempts_backoff,
    "priority": area_priority,
    "timestamps": area_timestamps,
    "meta-producer": area_meta_producer,
    "unknown-properties": area_unknown_properties,
    "unicode": area_unicode,
}


# --------------------------------------------------------------------------- build

DEFAULTS = {
    "queue": "default",
    "args": [],
    "env": {},
    "max_attempts": 1,
    "backoff": {"initial": 1, "factor": 2, "max": 300, "jitter": True},
    "priority": 0,
    "meta": {},
}
ORDER = ["phlask", "id", "queue", "lang", "file", "code", "args", "env", "input", "timeout",
         "max_attempts", "backoff", "priority", "not_before", "expires_at", "created_at", "meta"]


def expected(now, inp, not_before=None):
    """The envelope a builder must produce, written out by hand-checked rules."""
    out = {"phlask": 1, "created_at": now}
    for k, v in DEFAULTS.items():
        out[k] = json.loads(json.dumps(v))
    for k, v in inp.items():
        if k == "delay":
            continue
        if k == "backoff":
            out["backoff"] = {**DEFAULTS["backoff"], **v}
        else:
            out[k] = v
    if not_before is not None:
        out["not_before"] = not_before
    return {k: out[k] for k in ORDER if k in out}


def build_ok(description, now, inp, not_before=None):
    return {"description": description, "now": now, "input": inp,
            "expected": expected(now, inp, not_before)}


def build_err(description, now, inp, path):
    return {"description": description, "now": now, "input": inp, "error": path}


NOW = "2026-11-28T02:44:03.123Z"


def build_vectors():
    f = {"lang": "shell", "file": "jobs/hello.sh"}
    return {
        "defaults": [
            build_ok("minimal file task gets every default", NOW, {"id": "b-1", **f}),
            build_ok("minimal code task gets every default", NOW,
                     {"id": "b-2", "lang": "python", "code": "print('hi')"}),
            build_ok("queue given", NOW, {"id": "b-3", **f, "queue": "reports.nightly"}),
            build_ok("args given", NOW, {"id": "b-4", **f, "args": ["2026-11", "--dry-run"]}),
            build_ok("env given", NOW, {"id": "b-5", **f, "env": {"REPORT_MONTH": "2026-11"}}),
            build_ok("timeout given", NOW, {"id": "b-6", **f, "timeout": 0.5}),
            build_ok("integer timeout 60", NOW, {"id": "b-7", **f, "timeout": 60}),
            build_ok("max_attempts given", NOW, {"id": "b-8", **f, "max_attempts": 5}),
            build_ok("priority given", NOW, {"id": "b-9", **f, "priority": 9}),
            build_ok("meta given", NOW, {"id": "b-10", **f, "meta": {"trace_id": "4bf92f3577b34da6"}}),
            build_ok("expires_at given is copied", NOW,
                     {"id": "b-11", **f, "expires_at": "2026-11-29T00:00:00.000Z"}),
            build_ok("not_before given is copied", NOW,
                     {"id": "b-12", **f, "not_before": "2026-11-28T09:00:00.000Z"}),
            build_ok("non-ASCII args env and meta", NOW,
                     {"id": "b-13", **f, "args": ["héllo", "😀"], "env": {"GREETING": "wörld"},
                      "meta": {"客户": "Zoë"}}),
            build_ok("every field given", NOW, {
                "id": "b-14", "queue": "images", "lang": "node", "file": "/srv/jobs/resize.js",
                "args": ["--width", "640"], "env": {"QUALITY": "85"}, "input": {"width": 640},
                "timeout": 120, "max_attempts": 3,
                "backoff": {"initial": 2, "factor": 3, "max": 60, "jitter": False},
                "priority": 7, "expires_at": "2026-11-29T00:00:00.000Z",
                "meta": {"tenant": "acme"}, "delay": 10,
            }, not_before="2026-11-28T02:44:13.123Z"),
        ],
        "input": [
            build_ok("input object is kept", NOW, {"id": "b-20", **f, "input": {"user": 42}}),
            build_ok("input null is kept", NOW, {"id": "b-21", **f, "input": None}),
            build_ok("input false is kept", NOW, {"id": "b-22", **f, "input": False}),
            build_ok("input zero is kept", NOW, {"id": "b-23", **f, "input": 0}),
            build_ok("input empty string is kept", NOW, {"id": "b-24", **f, "input": ""}),
            build_ok("input empty array is kept", NOW, {"id": "b-25", **f, "input": []}),
        ],
        "backoff": [
            build_ok("backoff initial only is completed", NOW,
                     {"id": "b-30", **f, "backoff": {"initial": 5}}),
            build_ok("backoff jitter false only is completed", NOW,
                     {"id": "b-31", **f, "backoff": {"jitter": False}}),
            build_ok("backoff factor and max are completed", NOW,
                     {"id": "b-32", **f, "backoff": {"factor": 1.5, "max": 30}}),
            build_ok("backoff empty object gets every default", NOW,
                     {"id": "b-33", **f, "backoff": {}}),
            build_ok("backoff complete is kept", NOW,
                     {"id": "b-34", **f, "backoff": {"initial": 0.25, "factor": 4, "max": 600, "jitter": False}}),
        ],
        "delay": [
            build_ok("delay 30 seconds", NOW, {"id": "b-40", **f, "delay": 30},
                     "2026-11-28T02:44:33.123Z"),
            build_ok("delay 0.5 seconds", NOW, {"id": "b-41", **f, "delay": 0.5},
                     "2026-11-28T02:44:03.623Z"),
            build_ok("delay 0 gives not_before equal to now", NOW, {"id": "b-42", **f, "delay": 0},
                     "2026-11-28T02:44:03.123Z"),
            build_ok("delay crossing midnight and month end", "2026-11-30T23:59:59.900Z",
                     {"id": "b-43", **f, "delay": 0.2}, "2026-12-01T00:00:00.100Z"),
            build_ok("delay crossing year end", "2026-12-31T23:59:30.000Z",
                     {"id": "b-44", **f, "delay": 45}, "2027-01-01T00:00:15.000Z"),
            build_ok("delay into leap day", "2028-02-28T23:59:59.999Z",
                     {"id": "b-45", **f, "delay": 0.001}, "2028-02-29T00:00:00.000Z"),
            build_ok("delay of one day", NOW, {"id": "b-46", **f, "delay": 86400},
                     "2026-11-29T02:44:03.123Z"),
            build_ok("delay 1.25 seconds", "2026-11-28T02:44:59.000Z",
                     {"id": "b-47", **f, "delay": 1.25}, "2026-11-28T02:45:00.250Z"),
            # 1.005 * 1000 is 1004.9999999999999 in binary floating point: round, do not truncate.
            build_ok("delay 1.005 seconds rounds to 1005 ms", NOW, {"id": "b-48", **f, "delay": 1.005},
                     "2026-11-28T02:44:04.128Z"),
        ],
        "errors": [
            build_err("priority 10 is refused", NOW, {"id": "b-50", **f, "priority": 10}, "$.priority"),
            build_err("max_attempts 0 is refused", NOW, {"id": "b-51", **f, "max_attempts": 0},
                      "$.max_attempts"),
            build_err("file and code together are refused", NOW,
                      {"id": "b-52", **f, "code": "echo hi"}, "$.code"),
            build_err("neither file nor code is refused", NOW, {"id": "b-53", "lang": "shell"}, "$.file"),
            build_err("bad queue name is refused", NOW, {"id": "b-54", **f, "queue": "My Queue"}, "$.queue"),
            build_err("bad env name is refused", NOW, {"id": "b-55", **f, "env": {"1BAD": "x"}}, "$.env"),
            build_err("timeout 0 is refused", NOW, {"id": "b-56", **f, "timeout": 0}, "$.timeout"),
            build_err("bad backoff factor is refused", NOW,
                      {"id": "b-57", **f, "backoff": {"factor": 0.5}}, "$.backoff.factor"),
            build_err("id with space is refused", NOW, {"id": "b 58", **f}, "$.id"),
            build_err("args item with NUL is refused", NOW, {"id": "b-59", **f, "args": ["a\u0000"]},
                      "$.args"),
            build_err("65 meta entries are refused", NOW,
                      {"id": "b-60", **f, "meta": {f"k{i}": "v" for i in range(65)}}, "$.meta"),
        ],
    }


# --------------------------------------------------------------------------- signing

def hex_hmac(key: str, body: str) -> str:
    return hmac.new(key.encode("utf-8"), body.encode("utf-8"), hashlib.sha256).hexdigest()


def signed(description, key, key_id, body):
    return {"description": description, "key": key, "key_id": key_id, "body": body,
            "signature": hex_hmac(key, body)}


def tampered(description, key, key_id, signed_body, body):
    assert signed_body != body
    b1, b2 = signed_body.encode("utf-8"), body.encode("utf-8")
    # one byte changed, added or removed
    if len(b1) == len(b2):
        assert sum(x != y for x, y in zip(b1, b2)) == 1, description
    else:
        assert abs(len(b1) - len(b2)) == 1, description
    return {"description": description, "key": key, "key_id": key_id, "body": body,
            "signature": hex_hmac(key, signed_body), "valid": False}


def signing_vectors():
    minimal = json.dumps(BASE, separators=(",", ":"))
    pretty = json.dumps(BASE, indent=2)
    ascii_escaped = json.dumps(env_(args=["héllo", "日本"]), separators=(",", ":"))
    utf8 = json.dumps(env_(args=["héllo", "日本"]), separators=(",", ":"), ensure_ascii=False)
    emoji = json.dumps(env_(meta={"mood": "😀"}, input={"name": "Zoë"}), ensure_ascii=False)
    with_priority = json.dumps(env_(priority=5), separators=(",", ":"))
    return [
        signed("ASCII key compact body", "s3cret", "k1", minimal),
        signed("same envelope pretty-printed signs differently", "s3cret", "k1", pretty),
        signed("non-ASCII body as \\u escapes", "s3cret", "k1", ascii_escaped),
        signed("non-ASCII body as raw UTF-8", "s3cret", "k1", utf8),
        signed("astral characters in body", "s3cret", "k.2026-11", emoji),
        signed("non-ASCII key", "clé-secrète-ü", "k_fr", minimal),
        signed("emoji key", "🔑🗝️", "emoji-key", minimal),
        signed("key longer than the hash block", "k" * 100 + "é", "long", minimal),
        signed("body with trailing newline", "s3cret", "k1", minimal + "\n"),
        tampered("tampered: one digit changed", "s3cret", "k1", with_priority,
                 with_priority.replace('"priority":5', '"priority":6')),
        tampered("tampered: trailing newline added", "s3cret", "k1", minimal, minimal + "\n"),
        tampered("tampered: trailing newline removed", "s3cret", "k1", minimal + "\n", minimal),
        tampered("tampered: space added", "s3cret", "k1", minimal, minimal.replace(":1,", ": 1,", 1)),
        tampered("tampered: one byte of a UTF-8 character", "clé-secrète-ü", "k_fr", utf8,
                 utf8.replace("é", "è")),
        tampered("tampered: id case changed", "s3cret", "k1", minimal, minimal.replace('"t-1"', '"T-1"')),
    ]


# --------------------------------------------------------------------------- output

_ESCAPE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Zs", "Mn", "Co", "Cs", "Cn"}
# Look-alikes of ASCII letters, escaped so a reader sees why the case is invalid.
_CONFUSABLES = {"\u212a", "\u0430", "\u03bf", "\u0131"}


def _escape_invisible(text: str) -> str:
    """Write invisible or confusable-looking characters as \\u escapes (only occur in strings)."""
    out = []
    for ch in text:
        if ch in _CONFUSABLES or (ch not in " \n" and unicodedata.category(ch) in _ESCAPE_CATEGORIES):
            cp = ord(ch)
            if cp > 0xFFFF:
                cp -= 0x10000
                out.append(f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}")
            else:
                out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return "".join(out)


def write(path: Path, value) -> None:
    text = _escape_invisible(json.dumps(value, ensure_ascii=False, indent=2)) + "\n"
    assert json.loads(text) == value or _nan_free_equal(json.loads(text), value), path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _nan_free_equal(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def main() -> None:
    descriptions: set[str] = set()
    for area, fn in AREAS.items():
        groups = fn()
        for g in groups:
            for t in g["tests"]:
                d = t["description"]
                assert d not in descriptions, f"duplicate description {d!r}"
                descriptions.add(d)
        write(HERE / "validation" / f"{area}.json", groups)
    for name, vectors in build_vectors().items():
        for v in vectors:
            assert v["description"] not in descriptions, f"duplicate description {v['description']!r}"
            descriptions.add(v["description"])
        write(HERE / "build" / f"{name}.json", vectors)
    signing = signing_vectors()
    for v in signing:
        assert v["description"] not in descriptions, f"duplicate description {v['description']!r}"
        descriptions.add(v["description"])
    write(HERE / "signing.json", signing)


if __name__ == "__main__":
    main()
