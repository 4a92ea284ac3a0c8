"""The ``phlask`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .envelope import decode
from .errors import EnvelopeError, PhlaskError


def _cmd_validate(args: argparse.Namespace) -> int:
    """Validate one envelope, or one per line; print `valid` or each error with its path."""
    data = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()
    stripped = data.strip()
    # A file that parses as one JSON document is one envelope, even if pretty-printed over
    # many lines; otherwise it is JSON Lines.
    docs: list[bytes]
    try:
        import json
        json.loads(stripped)
        docs = [stripped]
    except ValueError:
        docs = [line for line in stripped.splitlines() if line.strip()]
    if not docs:
        print("error: no envelope given", file=sys.stderr)
        return 1
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="phlask", description="Polyglot, distributed task runner.")
    p.add_argument("--version", action="version", version=f"phlask {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    v = sub.add_parser("validate", help="check envelopes against the task schema",
                       description="Check one envelope (or one per line) against spec/task.schema.json.")
    v.add_argument("file", help="file with the envelope JSON, or - for standard input")
    v.set_defaults(func=_cmd_validate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PhlaskError as exc:
        print(f"phlask: {exc.message}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"phlask: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
