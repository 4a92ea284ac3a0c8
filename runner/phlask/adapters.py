"""The language-adapter table: which argv runs a task of a given ``lang``.

The table is data, not a class hierarchy. Each entry maps an adapter name to

``argv``
    The command template. ``"{file}"`` is one whole element and becomes the script path;
    ``"{args}"`` is one whole element and expands in place to the task's arguments, each
    its own element, verbatim. No shell is ever involved. The first element is the
    interpreter: a command name looked up on the runner's ``PATH``, or an absolute path.
``ext`` (optional)
    File name extension (with the dot) the runner gives inline ``code`` it writes to disk.
``version`` (optional)
    argv that prints the interpreter's version, for ``phlask adapters``. When its first
    element is the adapter's interpreter name, the resolved interpreter is run instead.

Adding a language is one entry, either in :data:`DEFAULT_ADAPTERS` or in ``phlask.toml``::

    [adapters.php]                     # override a built-in entry (unset keys are kept)
    argv = ["/usr/bin/php8.2", "-d", "memory_limit=512M", "{file}", "{args}"]

    [adapters.perl]                    # add one
    argv = ["perl", "{file}", "{args}"]
    ext = ".pl"
    version = ["perl", "-e", "print $^V"]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, TaskRejected
from .wire import DeadReason

FILE = "{file}"
ARGS = "{args}"

#: Same rule as the envelope's ``lang`` (spec/task.schema.json), so every adapter is addressable.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
_EXT_PATTERN = re.compile(r"^\.[A-Za-z0-9_.+-]{1,16}\Z")
_KEYS = frozenset({"argv", "ext", "version"})
VERSION_TIMEOUT = 5.0

DEFAULT_ADAPTERS: dict[str, dict[str, Any]] = {
    "php": {
        "argv": ["php", FILE, ARGS],
        "ext": ".php",
        "version": ["php", "-r", "echo PHP_VERSION;"],
    },
    "node": {
        "argv": ["node", FILE, ARGS],
        "ext": ".js",
        "version": ["node", "--version"],
    },
    "ruby": {
        "argv": ["ruby", FILE, ARGS],
        "ext": ".rb",
        "version": ["ruby", "-e", "print RUBY_VERSION"],
    },
    "shell": {
        # POSIX sh, deliberately not bash: task scripts must not depend on bashisms.
        "argv": ["sh", FILE, ARGS],
        "ext": ".sh",
        # POSIX sh has no version flag; describe() reports what `sh` resolves to instead.
        "version": None,
    },
    "python": {
        "argv": ["python3", FILE, ARGS],
        "ext": ".py",
        "version": ["python3", "-c", "import sys; print(sys.version.split()[0])"],
    },
}


@dataclass(frozen=True)
class Adapter:
    """One resolved adapter: its template and the absolute path of its interpreter."""

    name: str
    argv: tuple[str, ...]
    ext: str | None
    interpreter: str
    version: tuple[str, ...] | None = None

    def argv_for(self, file: str, args: Sequence[str]) -> list[str]:
        """Return the argv that runs ``file`` with ``args``; the interpreter is absolute.

        ``file`` should be absolute (the runner resolves it against its task root). A
        relative path starting with ``-`` is prefixed with ``./`` so that no interpreter
        can mistake it for an option.
        """
        if file.startswith("-"):
            file = "./" + file
        out = [self.interpreter]
        for part in self.argv[1:]:
            if part == FILE:
                out.append(file)
            elif part == ARGS:
                out.extend(args)
            else:
                out.append(part)
        return out


def _check_argv(where: str, key: str, value: Any, template: bool) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty list of strings, got {value!r}")
    for i, part in enumerate(value):
        if not isinstance(part, str) or not part or "\x00" in part:
            raise ConfigError(
                f"{where}: {key}[{i}] must be a non-empty string without NUL, got {part!r}"
            )
    if template:
        for placeholder in (FILE, ARGS):
            whole = sum(1 for p in value if p == placeholder)
            embedded = [p for p in value if placeholder in p and p != placeholder]
            if embedded:
                raise ConfigError(
                    f"{where}: {placeholder} must be a whole argv element, not part of "
                    f"{embedded[0]!r}; write it as its own list item"
                )
            if whole != 1:
                raise ConfigError(
                    f"{where}: argv must contain {placeholder} exactly once as its own element "
                    f"(found {whole}), e.g. [\"{value[0]}\", \"{FILE}\", \"{ARGS}\"]"
                )
        if value[0] in (FILE, ARGS):
            raise ConfigError(
                f"{where}: argv[0] must be the interpreter (a command name or absolute path), "
                f"not {value[0]}"
            )
    if "/" in value[0] and not os.path.isabs(value[0]):
        raise ConfigError(
            f"{where}: {key}[0] {value[0]!r} must be a command name looked up on PATH or an "
            "absolute path; relative paths depend on the working directory"
        )
    return tuple(value)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"adapter name {name!r} is invalid: it must match {NAME_PATTERN.pattern} "
            "(a lowercase letter, then up to 31 of a-z 0-9 _ -)"
        )


def _merge(name: str, entry: Any, base: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a ``phlask.toml`` entry laid over its built-in ``base`` (None for a new adapter)."""
    _check_name(name)
    where = f"[adapters.{name}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(entry).__name__}")
    if base is None:
        if "argv" not in entry:
            raise ConfigError(
                f"{where}: a new adapter needs argv, e.g. argv = [\"{name}\", \"{FILE}\", \"{ARGS}\"]"
            )
        return dict(entry)
    merged = {**base, **entry}
    old = base.get("version")
    if "argv" in entry and "version" not in entry and old and old[0] == base["argv"][0]:
        # An override that swaps the interpreter (php -> /usr/bin/php8.2) must report that
        # interpreter's version, not the default one's.
        argv = entry["argv"]
        if isinstance(argv, (list, tuple)) and argv and isinstance(argv[0], str):
            merged["version"] = [argv[0], *old[1:]]
    return merged


def _validate(name: str, entry: Any) -> dict[str, Any]:
    """Check one complete entry; return it with tuples for argv and version."""
    _check_name(name)
    where = f"[adapters.{name}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: argv, ext, version")
    if "argv" not in entry:
        raise ConfigError(f"{where}: argv is required")
    argv = _check_argv(where, "argv", entry["argv"], template=True)
    ext = entry.get("ext")
    if ext is not None and (not isinstance(ext, str) or not _EXT_PATTERN.match(ext)):
        raise ConfigError(
            f"{where}: ext must be a dot and 1-16 of A-Z a-z 0-9 _ . + - (like \".pl\"), got {ext!r}"
        )
    version = entry.get("version")
    if version is not None:
        version = _check_argv(where, "version", version, template=False)
    return {"argv": argv, "ext": ext, "version": version}


class AdapterTable:
    """The adapters this runner knows, with interpreters resolved lazily and cached.

    Thread-safe: :meth:`resolve` may be called from every worker thread.
    """

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]):
        """Build a table from already-merged entries; prefer :meth:`from_config`.

        Raises :class:`ConfigError` when an entry is malformed.
        """
        self._entries: dict[str, dict[str, Any]] = {
            name: _validate(name, entry) for name, entry in entries.items()
        }
        self._resolved: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> AdapterTable:
        """Return :data:`DEFAULT_ADAPTERS` with ``overrides`` (``phlask.toml``'s ``[adapters]``) applied.

        An override of a built-in entry replaces only the keys it sets; a new name adds an
        adapter and must set ``argv``. Raises :class:`ConfigError` with the offending
        ``[adapters.NAME]`` and the fix.
        """
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError(f"[adapters] must be a table of tables, got {type(overrides).__name__}")
        merged: dict[str, Any] = dict(DEFAULT_ADAPTERS)
        for name, entry in (overrides or {}).items():
            merged[name] = _merge(name, entry, DEFAULT_ADAPTERS.get(name))
        return cls(merged)

    @property
    def names(self) -> list[str]:
        """Sorted names of every configured adapter."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def resolve(self, lang: str) -> Adapter:
        """Return the adapter for ``lang`` with its interpreter's absolute path.

        The interpreter is looked up once on the runner's ``PATH`` and cached. A missing
        interpreter is not cached, so installing it later takes effect without a restart.

        Raises :class:`TaskRejected` with reason ``unknown_lang`` when no adapter is named
        ``lang`` or its interpreter is not installed on this host.
        """
        found = self._resolved.get(lang)
        if found is not None:
            return found
        entry = self._entries.get(lang)
        if entry is None:
            raise TaskRejected(
                DeadReason.UNKNOWN_LANG,
                f"no adapter for lang {lang!r}; this runner knows: {', '.join(self.names)} "
                f"(add one under [adapters.{lang}] in phlask.toml)",
            )
        command = entry["argv"][0]
        path = _which(command)
        if path is None:
            raise TaskRejected(
                DeadReason.UNKNOWN_LANG,
                f"adapter {lang!r} needs the interpreter {command!r}, which is not installed "
                f"on this host (not an executable file{'' if os.path.isabs(command) else ' on PATH'}); "
                f"install it or set [adapters.{lang}] argv in phlask.toml",
            )
        adapter = Adapter(lang, entry["argv"], entry["ext"], path, entry["version"])
        with self._lock:
            return self._resolved.setdefault(lang, adapter)

    def describe(self) -> list[dict[str, Any]]:
        """Describe every adapter for ``phlask adapters``.

        Returns one dict per adapter, sorted by name, with ``name``, ``argv`` (the
        template), ``ext``, ``interpreter`` (absolute path or None), ``version`` (what the
        version command printed, or None) and ``error`` (why the interpreter or its version
        is unavailable, or None). Each version command runs with a 5 s timeout.
        """
        out = []
        for name in self.names:
            entry = self._entries[name]
            row: dict[str, Any] = {
                "name": name,
                "argv": list(entry["argv"]),
                "ext": entry["ext"],
                "interpreter": None,
                "version": None,
                "error": None,
            }
            try:
                adapter = self.resolve(name)
            except TaskRejected as exc:
                row["error"] = exc.message
                out.append(row)
                continue
            row["interpreter"] = adapter.interpreter
            if adapter.version is None:
                # Tells the operator which shell "sh" really is (dash, bash, busybox).
                row["version"] = os.path.basename(os.path.realpath(adapter.interpreter))
            else:
                row["version"], row["error"] = _run_version(adapter)
            out.append(row)
        return out


def _which(command: str) -> str | None:
    path = shutil.which(command, path=os.environ.get("PATH", os.defpath))
    return os.path.abspath(path) if path else None


def _run_version(adapter: Adapter) -> tuple[str | None, str | None]:
    """Run the adapter's version command; return (first line of output, error)."""
    argv = list(adapter.version or ())
    if argv[0] == adapter.argv[0]:
        argv[0] = adapter.interpreter
    # A small, fixed environment: the runner's NODE_OPTIONS or PHPRC must not change the answer.
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=VERSION_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return None, f"version command {argv!r} timed out after {VERSION_TIMEOUT:g} s"
    except OSError as exc:
        return None, f"version command {argv!r} could not start: {exc.strerror}"
    text = (proc.stdout or proc.stderr).decode("utf-8", "replace").strip()
    line = text.splitlines()[0].strip() if text else ""
    if proc.returncode != 0:
        return None, f"version command {argv!r} exited with status {proc.returncode}: {line}"
    if not line:
        return None, f"version command {argv!r} printed nothing"
    return line, None
