"""The ``phlask`` command line: run, enqueue, status, inspect, dead, validate, adapters."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, logs
from .brokers import connect, default_url
from .config import load_file, settings_from
from .envelope import decode
from .errors import ConfigError, EnvelopeError, PhlaskError
from .producer import UNSET, Task

log = logging.getLogger("phlask.cli")


def _broker_url(args: argparse.Namespace, file_data: dict[str, Any] | None = None) -> str:
    return (getattr(args, "broker", None) or os.environ.get("PHLASK_BROKER")
            or (file_data or {}).get("runner", {}).get("broker") or default_url())


def _open(args: argparse.Namespace, **options: Any):
    file_data = load_file(getattr(args, "config", None))
    return connect(_broker_url(args, file_data), **options)


def _kv(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or ():
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ConfigError(f"{flag} {item!r}: expected NAME=VALUE")
        out[k] = v
    return out


# --- run ---------------------------------------------------------------------------------


class _Progress:
    """The live line drain mode shows on a terminal: done, failed, running, left, rate."""

    def __init__(self, broker, queues: list[str], stream=sys.stderr):
        self.broker, self.queues, self.stream = broker, queues, stream
        self.shown = False

    def __call__(self, stats) -> None:
        try:
            counts = self.broker.counts()
            left = sum(n for q, by in counts.items() if q in self.queues
                       for st, n in by.items() if st == "queued")
        except Exception:
            left = "?"
        line = (f"done {stats.succeeded} · failed {stats.dead} · retrying {stats.retried} · "
                f"running {stats.running} · left {left} · {stats.rate():.1f}/s")
        self.stream.write("\r\033[K" + line)
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


class _ClearingHandler(logging.StreamHandler):
    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write("\r\033[K")
        super().emit(record)


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import Runner

    file_data = load_file(args.config)
    overrides = {
        "broker": args.broker, "results": args.results, "queues": args.queue, "max_processes": args.max_processes,
        "wait": args.wait, "daemon": True if args.daemon else (False if args.drain else None),
        "roots": args.root, "allow_inline": True if args.allow_inline else None, "log_dir": args.log_dir,
        "log_format": args.log_format, "default_timeout": args.default_timeout, "kill_grace": args.kill_grace,
        "shutdown_grace": args.shutdown_grace, "lease": args.lease, "keys": _kv(args.key, "--key"),
        "contain_escapes": True,  # the CLI owns its process: every child it did not start is a task's
    }
    s = settings_from(file_data, overrides)
    handler = logs.setup(s.log_format)
    broker = connect(s.broker or _broker_url(args, file_data))
    results = None
    if s.results:
        from .results import open_results
        results = open_results(s.results)
    progress = None
    if not s.daemon and s.log_format == "human" and sys.stderr.isatty():
        progress = _Progress(broker, s.queues)
        clearing = _ClearingHandler(sys.stderr)
        clearing.setFormatter(handler.formatter)
        logging.getLogger("phlask").handlers[:] = [clearing]
    log.info("phlask %s runner: broker %s, queues %s, max_processes %d, %s mode", __version__,
             _redact(broker.url), ",".join(s.queues), s.max_processes, "daemon" if s.daemon else "drain")
    try:
        stats = Runner(broker, settings=s, results=results, on_progress=progress).run()
    finally:
        if progress:
            progress.clear()
        broker.close()
    summary = (f"{stats.succeeded} succeeded, {stats.dead} dead, {stats.retried} retried, "
               f"{stats.released} returned to the queue, in {__import__('time').monotonic() - stats.began:.1f}s "
               f"({stats.rate():.1f} tasks/s)")
    if s.log_format == "json":
        log.info("summary: " + summary, extra={"task": {"event": "summary", "succeeded": stats.succeeded,
                                                        "dead": stats.dead, "retried": stats.retried}})
    else:
        print(summary, file=sys.stderr)
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


# --- enqueue -----------------------------------------------------------------------------


def cmd_enqueue(args: argparse.Namespace) -> int:
    signing = None
    if args.key:
        keys = _kv([args.key], "--key")
        signing = next(iter(keys.items()))
    broker = _open(args, signing_key=signing)
    try:
        if args.json:
            data = sys.stdin.buffer.read() if args.json == "-" else open(args.json, "rb").read()
            bodies = [line for line in data.splitlines() if line.strip()]
            ids = broker.push_many(bodies)
        else:
            if not args.lang or (args.file is None) == (args.code is None):
                raise ConfigError("give --lang and exactly one of --file or --code (or --json FILE for ready envelopes)")
            task_input = UNSET
            if args.input is not None:
                try:
                    task_input = json.loads(args.input)
                except ValueError as exc:
                    raise ConfigError(f"--input is not valid JSON: {exc}") from None
            task = Task(lang=args.lang, file=args.file, code=args.code, args=args.args, env=_kv(args.env, "--env"),
                        input=task_input, timeout=args.timeout, max_attempts=args.max_attempts,
                        priority=args.priority, queue=args.queue, delay=args.delay, id=args.id,
                        meta=_kv(args.meta, "--meta"))
            ids = [broker.push(task)]
    finally:
        broker.close()
    for i in ids:
        print(i)
    return 0


# --- status, inspect, dead -----------------------------------------------------------------


STATES = ("queued", "running", "succeeded", "dead")


def _results_url(args: argparse.Namespace) -> str | None:
    return args.results or load_file(args.config).get("runner", {}).get("results")


def cmd_status(args: argparse.Namespace) -> int:
    broker = _open(args)
    try:
        counts = broker.counts()
    finally:
        broker.close()
    if _results_url(args):
        from .results import open_results
        store = open_results(_results_url(args))
        try:  # the broker knows what is queued, running, dead; the store what succeeded
            for q, by in store.counts().items():
                for st, n in by.items():
                    counts.setdefault(q, {}).setdefault(st, n)
        finally:
            store.close()
    if args.json:
        print(json.dumps(counts, indent=2, sort_keys=True))
        return 0
    if not counts:
        print("no tasks")
        return 0
    width = max(5, *(len(q) for q in counts))
    print(f"{'queue':<{width}}  " + "  ".join(f"{s:>9}" for s in STATES))
    for q in sorted(counts):
        print(f"{q:<{width}}  " + "  ".join(f"{counts[q].get(s, 0):>9}" for s in STATES))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    broker = _open(args)
    try:
        if not broker.supports_inspect and _results_url(args):
            from .results import open_results
            store = open_results(_results_url(args))
            try:
                info = store.inspect(args.id)
            finally:
                store.close()
        else:
            info = broker.inspect(args.id)
    finally:
        broker.close()
    data = info.to_json()
    try:
        data["envelope"] = json.loads(data["envelope"])
    except ValueError:
        pass
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"id:        {info.id}\nqueue:     {info.queue}\nstate:     {info.state}"
          + (f" ({info.reason})" if info.reason else "") + f"\nattempts:  {info.attempts}\npriority:  {info.priority}")
    print("envelope:  " + json.dumps(data["envelope"], ensure_ascii=False))
    if info.result:
        r = info.result
        print(f"last:      attempt {r.get('attempt')}, exit {r.get('exit_code')}, signal {r.get('signal')}, "
              f"timed_out {r.get('timed_out')}, {r.get('duration')}s")
        if r.get("error"):
            print(f"error:     {r['error']}")
        if r.get("result") is not None:
            print("result:    " + json.dumps(r["result"], ensure_ascii=False))
        for stream in ("stdout", "stderr"):
            tail = r.get(f"{stream}_tail") or ""
            if tail:
                print(f"{stream} (last {min(len(tail), 2000)} chars):\n" + tail[-2000:])
    return 0


def cmd_dead(args: argparse.Namespace) -> int:
    broker = _open(args)
    try:
        if args.action == "list":
            items = broker.dead_list(args.queue, limit=args.limit)
            if args.json:
                print(json.dumps([i.to_json() for i in items], indent=2, ensure_ascii=False))
            elif not items:
                print("no dead tasks")
            for i in items if not args.json else ():
                err = (i.result or {}).get("error") or ""
                print(f"{i.id}  {i.queue}  {i.reason}  attempts={i.attempts}  {err[:120]}")
        elif args.action == "retry":
            if not args.all and not args.ids:
                raise ConfigError("phlask dead retry: give task ids, or --all")
            n = broker.dead_retry(None if args.all else args.ids)
            print(f"{n} task(s) queued again")
        else:
            n = broker.dead_purge(args.queue)
            print(f"{n} dead task(s) purged")
    finally:
        broker.close()
    return 0


# --- validate, adapters ---------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate one envelope, or one per line; print `valid` or each error with its path."""
    data = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()
    stripped = data.strip()
    # One JSON document is one envelope, even when pretty-printed; otherwise JSON Lines.
    try:
        json.loads(stripped)
        docs = [stripped]
    except ValueError:
        docs = [line for line in stripped.splitlines() if line.strip()] or [stripped]
    bad = 0
    for n, doc in enumerate(docs, 1):
        where = f"line {n}: " if len(docs) > 1 else ""
        try:
            env = decode(doc)
        except EnvelopeError as exc:
            bad += 1
            for err in exc.errors:
                print(f"{where}invalid: {err.path}: {err.message}")
        else:
            print(f"{where}valid ({env.id})" if len(docs) > 1 else "valid")
    return 1 if bad else 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from .adapters import AdapterTable

    file_data = load_file(args.config)
    table = AdapterTable.from_config(file_data.get("adapters"))
    rows = table.describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        status = row.get("version") or ""
        where = row.get("interpreter") or f"missing: {row.get('reason') or row.get('error')}"
        print(f"{row['name']:<10} {where:<40} {status}")
    return 0


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="phlask", description="Polyglot, distributed task runner.")
    p.add_argument("--version", action="version", version=f"phlask {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def broker_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--broker", metavar="URL", help="broker URL (default: $PHLASK_BROKER, then phlask.toml, "
                                                         "then the embedded SQLite file)")
        sp.add_argument("--config", metavar="FILE", help="settings file (default: ./phlask.toml if present)")

    r = sub.add_parser("run", help="run tasks from the queue", description="Claim tasks and run each as its own "
                       "supervised process. Drains the queue and exits by default; --daemon keeps listening.")
    broker_flags(r)
    r.add_argument("--queue", "-q", action="append", metavar="Q", help="queue to take tasks from (repeatable; default: default)")
    r.add_argument("--max-processes", "-n", type=int, metavar="N", help="tasks running at once (default 10)")
    r.add_argument("--wait", type=float, metavar="MS", help="milliseconds between polls when idle (default 500)")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--drain", action="store_true", help="exit when nothing is ready or running (the default)")
    mode.add_argument("--daemon", action="store_true", help="keep listening for new tasks until SIGTERM/SIGINT")
    r.add_argument("--root", action="append", metavar="DIR", help="allowed task root (repeatable; default: the working directory); relative task files resolve against the first")
    r.add_argument("--allow-inline", action="store_true", help="run tasks that carry inline code")
    r.add_argument("--log-dir", metavar="DIR", help="write each attempt's full stdout/stderr to DIR/<id>.<attempt>.log")
    r.add_argument("--log-format", choices=("human", "json"), help="log lines for people (default) or JSON lines")
    r.add_argument("--key", action="append", metavar="ID=SECRET", help="accept envelopes signed with this key (repeatable); with any key, unsigned envelopes are refused")
    r.add_argument("--results", metavar="URL", help="also record every attempt's result in this SQLite or MongoDB store (for RabbitMQ-fed runners)")
    r.add_argument("--default-timeout", type=float, metavar="S", help="timeout for tasks that set none (default 3600)")
    r.add_argument("--kill-grace", type=float, metavar="S", help="seconds between SIGTERM and SIGKILL on timeout (default 10)")
    r.add_argument("--shutdown-grace", type=float, metavar="S", help="on SIGTERM, seconds to let running tasks finish (default 30)")
    r.add_argument("--lease", type=float, metavar="S", help="claim lease, renewed while a task runs (default 30)")
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("enqueue", help="put a task on the queue; prints its id",
                       description="Enqueue one task, or ready envelopes (one JSON per line) with --json.")
    broker_flags(e)
    e.add_argument("--queue", default="default")
    e.add_argument("--lang", help="adapter: php, node, ruby, shell, python, or one the runner adds")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--file", help="path of the script on the runner host")
    src.add_argument("--code", help="inline source (the runner must allow inline code)")
    src.add_argument("--json", metavar="FILE", help="ready envelopes, one per line; - for stdin")
    e.add_argument("--input", metavar="JSON", help="JSON value given to the task on stdin")
    e.add_argument("--env", action="append", metavar="K=V", help="environment variable for the task (repeatable)")
    e.add_argument("--meta", action="append", metavar="K=V", help="opaque metadata (repeatable)")
    e.add_argument("--timeout", type=float, metavar="S")
    e.add_argument("--max-attempts", type=int, default=1, metavar="N")
    e.add_argument("--priority", type=int, default=0, metavar="P", help="0-9, higher first")
    e.add_argument("--delay", type=float, metavar="S", help="do not run before S seconds from now")
    e.add_argument("--id", help="task id (default: a new UUIDv7)")
    e.add_argument("--key", metavar="ID=SECRET", help="sign the envelope with this key")
    e.add_argument("args", nargs="*", metavar="ARG", help="arguments for the task, after --")
    e.set_defaults(func=cmd_enqueue)

    st = sub.add_parser("status", help="counts per queue and state")
    broker_flags(st)
    st.add_argument("--results", metavar="URL", help="result store the runners record into (RabbitMQ)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    i = sub.add_parser("inspect", help="one task: envelope, state, attempts, last result")
    broker_flags(i)
    i.add_argument("--results", metavar="URL", help="result store the runners record into (RabbitMQ)")
    i.add_argument("id")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_inspect)

    d = sub.add_parser("dead", help="list, retry or purge dead tasks")
    broker_flags(d)
    d.add_argument("action", choices=("list", "retry", "purge"))
    d.add_argument("ids", nargs="*", metavar="ID")
    d.add_argument("--all", action="store_true", help="with retry: every dead task")
    d.add_argument("--queue", help="only this queue (list, purge)")
    d.add_argument("--limit", type=int, default=100)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_dead)

    v = sub.add_parser("validate", help="check envelopes against the task schema",
                       description="Check one envelope (or one per line) against spec/task.schema.json.")
    v.add_argument("file", help="file with the envelope JSON, or - for standard input")
    v.set_defaults(func=cmd_validate)

    a = sub.add_parser("adapters", help="list language adapters and their interpreters")
    a.add_argument("--config", metavar="FILE")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_adapters)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EnvelopeError as exc:
        for err in exc.errors:
            print(f"phlask: invalid: {err.path}: {err.message}", file=sys.stderr)
        return 1
    except PhlaskError as exc:
        print(f"phlask: {exc.message}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"phlask: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
