"""``cors-edge probe`` on the command line: arguments, the printed report, the exit status.

The fetch itself (what is sent, how redirects are followed, the checks) is
proxy/probe.py; this module only turns arguments into a call and a result into text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .probe import ProbeError, ProbeResult, probe

_SHOWN_PREFIXES = ("access-control-", "location", "vary")


def add_parser(commands: Any, seconds: Callable[[str], float]) -> None:
    """The ``probe`` subcommand (``commands`` is build_parser's subparsers object)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "probe",
        help="send what a browser would for a fetch() from ORIGIN to any server, and judge it",
    )
    parser.add_argument("url", help="the URL the page fetches")
    parser.add_argument("--origin", required=True, help="the page's origin (or null)")
    parser.add_argument("--method", default="GET", help="the fetch() method (default %(default)s)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header the page sets; repeatable",
    )
    parser.add_argument(
        "--credentials", action="store_true", help='fetch(..., {credentials: "include"})'
    )
    parser.add_argument("--json", action="store_true", help="print a machine-readable result")
    parser.add_argument(
        "--timeout", type=seconds, default=10.0, help="per request, seconds (default %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a browser lets the page read the response, 1 when not, 2 on errors."""
    headers = []
    for text in args.header:
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            print(f"cors-edge probe: --header {text!r}: expected 'Name: value'", file=sys.stderr)
            return 2
        headers.append((name.strip(), value.strip()))
    try:
        result = probe(
            args.url,
            origin=args.origin,
            method=args.method,
            headers=headers,
            credentials=args.credentials,
            timeout=args.timeout,
        )
    except ProbeError as error:
        print(f"cors-edge probe: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_json(), indent=2) if args.json else render(result))
    return 0 if result.readable else 1


def shown_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The response headers worth printing: CORS ones, Location and Vary."""
    return [(n, v) for n, v in headers if n.lower().startswith(_SHOWN_PREFIXES)]


def render(result: ProbeResult) -> str:
    """The human report: every exchange, the browser's steps, the verdict."""
    credentials = "include" if result.credentials else "same-origin"
    lines = [
        f"probe: fetch({result.url!r}, {{method: {result.method!r}, credentials:"
        f" {credentials!r}}}) from a page at {result.origin}"
    ]
    for number, exchange in enumerate(result.exchanges, 1):
        lines.append(f"\n{number}. {exchange.kind}: {exchange.method} {exchange.url}")
        lines.extend(f"   > {name}: {value}" for name, value in exchange.sent)
        lines.append(f"   < {exchange.status}")
        lines.extend(f"   < {name}: {value}" for name, value in shown_headers(exchange.received))
        check = exchange.check
        if check is not None:
            lines.extend(f"   browser: {step}" for step in check.steps)
        if exchange.note:
            lines.append(f"   note: {exchange.note}")
    if result.chromium_differs:
        lines.append(f"\nnote: {result.chromium_differs} (the verdict follows Chromium)")
    if result.readable:
        lines.append("\nverdict: readable: a browser lets the page read the response")
    else:
        lines.append(f"\nverdict: blocked: {result.reason}")
    return "\n".join(lines)
