"""phlask.adapters: the lang -> argv table, its configuration, and real scripts per language.

A test that needs an interpreter skips when it is missing, unless CI=true (then it fails).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from phlask import _contract
from phlask.adapters import DEFAULT_ADAPTERS, NAME_PATTERN, Adapter, AdapterTable
from phlask.errors import ConfigError, TaskRejected
from phlask.supervise import ProcessSpec, run

TASKS = Path(__file__).resolve().parent / "tasks"
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
ARGS = ["with space", "it's \"quoted\"", "$(id)", "; ls", "`id`", "two\nlines", "naïve ☃", "", "--version", "-"]
NO_SUCH = "phlask-test-no-such-interpreter"


def need(command: str) -> str:
    """Return the absolute path of ``command``; skip (fail under CI=true) when it is missing."""
    path = shutil.which(command)
    if path is None:
        message = f"{command} is not installed (scripts/system-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_script(adapter: Adapter, script: str, args: list[str], stdin: bytes | None, tmp: Path):
    out = run(ProcessSpec(argv=adapter.argv_for(str(TASKS / script), args), env=dict(ENV),
                          cwd=str(tmp), stdin=stdin, timeout=60))
    assert out.ok, (out.error, out.stderr_tail.decode(errors="replace"))
    return out


# --- the built-in table --------------------------------------------------------------------


def test_default_adapters_are_data():
    assert DEFAULT_ADAPTERS["php"] == {
        "argv": ["php", "{file}", "{args}"], "ext": ".php", "version": ["php", "-r", "echo PHP_VERSION;"],
    }
    assert {n: a["argv"][0] for n, a in DEFAULT_ADAPTERS.items()} == {
        "php": "php", "node": "node", "ruby": "ruby", "shell": "sh", "python": "python3",
    }
    assert {n: a["ext"] for n, a in DEFAULT_ADAPTERS.items()} == {
        "php": ".php", "node": ".js", "ruby": ".rb", "shell": ".sh", "python": ".py",
    }


def test_adapter_names_follow_the_envelope_lang_pattern():
    # The schema's pattern is ECMA-262, where $ is the very end; Python spells that \Z.
    schema_pattern = _contract.task_schema()["properties"]["lang"]["pattern"]
    assert NAME_PATTERN.pattern == schema_pattern.removesuffix("$") + r"\Z"
    assert all(NAME_PATTERN.match(name) for name in DEFAULT_ADAPTERS)


@pytest.mark.parametrize("lang, script", [
    ("python", "echo.py"),
    ("php", "echo.php"),
    ("node", "echo.cjs"),
    ("ruby", "echo.rb"),
])
def test_each_language_runs_a_real_script_with_verbatim_args_and_input(lang, script, tmp_path, monkeypatch):
    # Given the built-in adapter for a language whose interpreter is installed
    monkeypatch.setenv("PHLASK_TEST_SECRET", "hunter2")
    need(DEFAULT_ADAPTERS[lang]["argv"][0])
    adapter = AdapterTable.from_config().resolve(lang)
    assert os.path.isabs(adapter.interpreter)
    # When its echo script runs with awkward arguments and JSON input
    out = run_script(adapter, script, ARGS, b'{"user": 42}', tmp_path)
    # Then the script received exactly those, and nothing of the runner's environment
    seen = json.loads(out.stdout_tail)
    assert seen["lang"] == lang
    assert seen["args"] == ARGS
    assert json.loads(seen["stdin"]) == {"user": 42}
    assert seen["cwd"] == str(tmp_path)
    assert "PHLASK_TEST_SECRET" not in seen["env"]
    # (A version-manager shim such as pyenv's may add to the environment; see test_supervise
    # for the exact-environment check.)
    assert seen["env"]["LANG"] == "C.UTF-8"


def test_the_shell_adapter_runs_posix_sh(tmp_path):
    need("sh")
    adapter = AdapterTable.from_config().resolve("shell")
    out = run_script(adapter, "echo.sh", ARGS, b"input", tmp_path)
    *args, rest = out.stdout_tail.split(b"\0")
    assert [a.decode() for a in args] == ARGS
    assert rest == b"input"


# --- argv templates ----------------------------------------------------------------------


def test_argv_for_expands_file_and_args_in_place():
    adapter = Adapter("x", ("x", "-a", "{file}", "--", "{args}", "--end"), None, "/opt/x/bin/x")
    assert adapter.argv_for("/srv/job.x", ["1", "two words"]) == [
        "/opt/x/bin/x", "-a", "/srv/job.x", "--", "1", "two words", "--end",
    ]
    assert adapter.argv_for("/srv/job.x", []) == ["/opt/x/bin/x", "-a", "/srv/job.x", "--", "--end"]


def test_a_file_that_looks_like_an_option_is_not_one():
    adapter = AdapterTable.from_config().resolve("shell")
    assert adapter.argv_for("-e", []) == [adapter.interpreter, "./-e"]


def test_resolution_happens_once(monkeypatch):
    need("sh")
    table = AdapterTable.from_config()
    first = table.resolve("shell")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert table.resolve("shell") is first


# --- configuration -----------------------------------------------------------------------


def test_an_override_changes_the_interpreter_and_its_options(tmp_path):
    php = need("php")
    # Given phlask.toml: [adapters.php] argv = ["/usr/bin/php", "-d", "memory_limit=512M", ...]
    table = AdapterTable.from_config(
        {"php": {"argv": [php, "-d", "memory_limit=512M", "{file}", "{args}"]}}
    )
    adapter = table.resolve("php")
    # Then the override is used, the unset keys are kept, and the version command follows it
    assert adapter.interpreter == php and adapter.ext == ".php"
    assert adapter.version == (php, "-r", "echo PHP_VERSION;")
    out = run_script(adapter, "php_ini.php", [], None, tmp_path)
    assert out.stdout_tail == b"512M\n"
    row = next(r for r in table.describe() if r["name"] == "php")
    assert row["interpreter"] == php and row["version"][0].isdigit() and row["error"] is None


def test_a_new_adapter_is_one_entry(tmp_path):
    need("perl")
    # Given phlask.toml: [adapters.perl]
    table = AdapterTable.from_config({"perl": {
        "argv": ["perl", "{file}", "{args}"], "ext": ".pl", "version": ["perl", "-e", "print $^V"],
    }})
    adapter = table.resolve("perl")
    assert "perl" in table.names and "php" in table.names
    out = run_script(adapter, "echo.pl", ARGS, b"hello", tmp_path)
    seen = json.loads(out.stdout_tail)
    assert (seen["lang"], seen["args"], seen["stdin"]) == ("perl", ARGS, "hello")
    row = next(r for r in table.describe() if r["name"] == "perl")
    assert row["version"].startswith("v5.") and row["ext"] == ".pl"


@pytest.mark.parametrize("overrides, message", [
    ({"perl": {"argv": ["perl", "{args}"]}}, "must contain {file} exactly once"),
    ({"perl": {"argv": ["perl", "{file}"]}}, "must contain {args} exactly once"),
    ({"perl": {"argv": ["perl", "{file}", "{args}", "{args}"]}}, "must contain {args} exactly once as its own element (found 2)"),
    ({"perl": {"argv": ["perl", "--script={file}", "{args}"]}}, "{file} must be a whole argv element"),
    ({"perl": {"argv": ["{file}", "{args}"]}}, "argv[0] must be the interpreter"),
    ({"perl": {"argv": "perl {file} {args}"}}, "argv must be a non-empty list of strings"),
    ({"perl": {"argv": []}}, "argv must be a non-empty list of strings"),
    ({"perl": {"argv": ["perl", "", "{file}", "{args}"]}}, "argv[1] must be a non-empty string"),
    ({"perl": {"argv": ["bin/perl", "{file}", "{args}"]}}, "must be a command name looked up on PATH or an absolute path"),
    ({"perl": {"ext": ".pl"}}, "[adapters.perl]: a new adapter needs argv"),
    ({"perl": {"argv": ["perl", "{file}", "{args}"], "extension": ".pl"}}, "unknown key 'extension'"),
    ({"perl": {"argv": ["perl", "{file}", "{args}"], "ext": "pl"}}, "ext must be a dot"),
    ({"perl": {"argv": ["perl", "{file}", "{args}"], "version": []}}, "version must be a non-empty list"),
    ({"perl": "perl {file}"}, "[adapters.perl] must be a table"),
    ({"Perl": {"argv": ["perl", "{file}", "{args}"]}}, "adapter name 'Perl' is invalid"),
    ({"9lives": {"argv": ["x", "{file}", "{args}"]}}, "adapter name '9lives' is invalid"),
    ({"a" * 33: {"argv": ["x", "{file}", "{args}"]}}, "is invalid: it must match"),
    ({"php": {"argv": ["php", "{args}"]}}, "[adapters.php]: argv must contain {file}"),
    ({"php": {"ext": 7}}, "[adapters.php]: ext must be a dot"),
])
def test_bad_configuration_is_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError) as exc:
        AdapterTable.from_config(overrides)
    assert message in exc.value.message
    assert exc.value.code == "config"


def test_the_adapters_section_must_be_a_table():
    with pytest.raises(ConfigError, match="must be a table of tables"):
        AdapterTable.from_config(["php"])


# --- refusals ------------------------------------------------------------------------------


def test_an_unknown_lang_is_rejected_naming_the_known_ones():
    with pytest.raises(TaskRejected) as exc:
        AdapterTable.from_config().resolve("cobol")
    assert exc.value.reason == "unknown_lang"
    assert exc.value.message == (
        "no adapter for lang 'cobol'; this runner knows: node, php, python, ruby, shell "
        "(add one under [adapters.cobol] in phlask.toml)"
    )


@pytest.mark.parametrize("command", [NO_SUCH, f"/nonexistent/bin/{NO_SUCH}"])
def test_a_missing_interpreter_is_rejected_naming_it_and_the_adapter(command):
    table = AdapterTable.from_config({"cobol": {"argv": [command, "{file}", "{args}"]}})
    with pytest.raises(TaskRejected) as exc:
        table.resolve("cobol")
    assert exc.value.reason == "unknown_lang"
    assert f"adapter 'cobol' needs the interpreter '{command}', which is not installed" in exc.value.message


def test_describe_lists_every_adapter_with_interpreter_and_version():
    need("sh")
    table = AdapterTable.from_config({
        "cobol": {"argv": [NO_SUCH, "{file}", "{args}"]},
        "broken": {"argv": ["sh", "{file}", "{args}"], "version": ["sh", "-c", "echo nope >&2; exit 3"]},
    })
    rows = {r["name"]: r for r in table.describe()}
    assert list(rows) == sorted(rows)
    assert set(rows) == {*DEFAULT_ADAPTERS, "cobol", "broken"}
    assert rows["cobol"]["interpreter"] is None and rows["cobol"]["version"] is None
    assert NO_SUCH in rows["cobol"]["error"]
    assert rows["broken"]["version"] is None
    sh = shutil.which("sh")
    assert rows["broken"]["error"] == f"version command ['{sh}', '-c', 'echo nope >&2; exit 3'] exited with status 3: nope"
    assert rows["shell"]["interpreter"] == shutil.which("sh") and rows["shell"]["version"]
    for name in ("php", "node", "ruby", "python"):
        if shutil.which(DEFAULT_ADAPTERS[name]["argv"][0]):
            assert rows[name]["version"] and rows[name]["error"] is None, rows[name]
            assert rows[name]["version"][-1].isdigit()
