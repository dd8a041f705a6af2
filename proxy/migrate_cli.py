"""The command line of the migration off Flask-CORS: ``cors-edge import`` and ``cors-edge test``.

Kept out of :mod:`proxy.cli` so that module stays the serve/check/explain front; the
work is in :mod:`proxy.importer_policy` and :mod:`proxy.cases`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

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
        from .importer_policy import run_import

        return run_import(args.sources, args.output, sys.stdout, sys.stderr)
    from .cases import run_cases

    return run_cases(args.config, args.cases, sys.stdout, sys.stderr)
