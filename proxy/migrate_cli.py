"""The command line of the migration off Flask-CORS: ``cors-edge import`` and ``cors-edge test``.

Kept out of :mod:`proxy.cli` so that module stays the serve/check/explain front; the
work is in :mod:`proxy.importer_policy` and :mod:`proxy.cases`, the files and exit
codes are here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

COMMANDS = ("import", "test")


def add_commands(commands: Any, config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``import`` and ``test`` to the ``cors-edge`` subcommands."""
    importer = commands.add_parser(
        "import", help="write a policy equivalent to an app's Flask-CORS usage (read with ast)"
    )
    importer.add_argument("--output", metavar="PATH", help="write here (default: stdout)")
    importer.add_argument("sources", nargs="+", metavar="APP.py", help="the app's sources")
    test = commands.add_parser("test", help="check policy expectations without a server")
    config_option(test)
    test.add_argument("cases", metavar="CASES.yaml", help="the expected decisions")


def run(args: argparse.Namespace) -> int:
    if args.command == "import":
        return run_import(args.sources, args.output, sys.stdout, sys.stderr)
    from .cases import run_cases

    return run_cases(args.config, args.cases, sys.stdout, sys.stderr)


def run_import(paths: list[str], output: str | None, out: TextIO, err: TextIO) -> int:
    """``cors-edge import``: 0 when a policy was written, 1 when there was nothing to write."""
    # Imported here: serve never needs the importer.
    from .drafts import PolicyError
    from .importer import SourceError, read_sources
    from .importer_policy import build_policy

    try:
        usage = read_sources([Path(p) for p in paths])
    except SourceError as error:
        print(f"{error}", file=err)
        return 1
    if not usage.found:
        print(
            f"{', '.join(paths)}: no Flask-CORS usage found (CORS(...), init_app, @cross_origin)",
            file=err,
        )
        for todo in usage.todos:
            print(todo, file=err)
        return 1
    try:
        result = build_policy(usage, paths)
    except PolicyError as error:  # a bug of the importer's, never the app's
        print(f"cors-edge import: the policy written does not load: {error}", file=err)
        return 1
    for _, refusal in result.refusals:
        print(f"{refusal.where or paths[0]}: refused: {refusal.message}", file=err)
    for todo in result.todos:
        print(todo, file=err)
    for note in result.no_effect:
        print(f"{note.split(': ', 1)[0]}: no effect: {note.split(': ', 1)[-1]}", file=err)
    if output is None:
        out.write(result.text)
    else:
        Path(output).write_text(result.text, encoding="utf-8")
        print(f"{output}: wrote {len(result.routes)} routes", file=err)
    return 0
