"""The ``cors-edge`` command line: serve, check, explain, probe."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, migrate_cli, probe_cli
from .explain import run as run_explain
from .loader import PolicyError, load_policy_file, local_dev_policy
from .policy import Config
from .policyread import FixedPolicy

DEFAULT_CONFIG = "config/policies.yaml"
MAX_WORKERS = 64  # or four per CPU, whichever is more


def _env(name: str, fallback: str | None = None) -> str | None:
    return os.environ.get(name) or fallback


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be finite and >= 0: {text!r}")
    return value


def _workers(text: str) -> int:
    if text == "auto":
        from .cpus import detect

        return detect()
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a worker count or 'auto': {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"workers must be at least 1: {text!r}")
    # A typo must not become a fork bomb: more workers than this only add switching.
    most = max(MAX_WORKERS, 4 * (os.cpu_count() or 1))
    if count > most:
        raise argparse.ArgumentTypeError(f"at most {most} workers on this machine: {text!r}")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cors-edge",
        description="A reverse proxy that owns CORS for an unmodified Flask application.",
    )
    parser.add_argument("--version", action="version", version=f"cors-edge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            default=_env("CORS_EDGE_CONFIG", DEFAULT_CONFIG),
            help="policy file (env CORS_EDGE_CONFIG; default %(default)s)",
        )

    serve = commands.add_parser("serve", help="run the proxy")
    config_option(serve)
    serve.add_argument(
        "--upstream",
        default=_env("CORS_EDGE_UPSTREAM"),
        help="upstream http://host:port or unix:/path.sock (env CORS_EDGE_UPSTREAM)",
    )
    serve.add_argument(
        "--listen", default=_env("CORS_EDGE_LISTEN"), help="HOST:PORT (env CORS_EDGE_LISTEN)"
    )
    serve.add_argument(
        "--admin",
        default=_env("CORS_EDGE_ADMIN"),
        help="admin HOST:PORT for /healthz /readyz /metrics (env CORS_EDGE_ADMIN)",
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="reload when the policy file's content changes (Kubernetes ConfigMaps)",
    )
    serve.add_argument(
        "--watch-interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="with --watch, how often to look at the file (default %(default)s)",
    )
    serve.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, let in-flight requests finish this long (default %(default)s)",
    )
    serve.add_argument(
        "--drain-delay",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, report not-ready (/readyz 503) but keep accepting this long "
        "before closing the listener, so load balancers stop sending first (default %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=_env("CORS_EDGE_WORKERS", "1"),
        metavar="N|auto",
        help="worker processes on one listener; auto = the CPUs this process may use "
        "(affinity mask and cgroup quota) (env CORS_EDGE_WORKERS; default 1)",
    )
    # Set by the parent of --workers N on each worker it starts; not for operators.
    serve.add_argument("--worker-of-parent", help=argparse.SUPPRESS)
    serve.add_argument("--snapshot", help=argparse.SUPPRESS)
    serve.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="access log format on stdout (default %(default)s)",
    )
    serve.add_argument(
        "--no-access-log", action="store_true", help="do not write an access log line per request"
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="local development: read no policy file; one route /** allows this origin "
        "(repeatable), every method and every requested header",
    )
    serve.add_argument(
        "--allow-credentials",
        action="store_true",
        help="with --allow-origin: allow credentials (cookies, Authorization)",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        help="add CORS-Edge-Decision (decision, route, reason) to every response; "
        "loopback listeners only, unless --debug-public (on by default with --allow-origin "
        "on a loopback listener)",
    )
    serve.add_argument(
        "--debug-public",
        action="store_true",
        help="--debug on any listener (implies --debug); the header then never names "
        "allowed origins",
    )

    check = commands.add_parser("check", help="validate and lint a policy file; exit 1 on error")
    config_option(check)

    explain = commands.add_parser(
        "explain", help="show the route, decision and headers for a browser request"
    )
    config_option(explain)
    explain.add_argument("--origin", required=True, help="the page's origin, as the browser sends")
    explain.add_argument("--method", required=True, help="the method the page uses")
    explain.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="H",
        help='a request header the page sets ("Name" or "Name: value"); repeatable',
    )
    explain.add_argument(
        "--credentials",
        action="store_true",
        help='the page sends credentials (fetch(..., {credentials: "include"}))',
    )
    explain.add_argument(
        "--host", default="cors-edge", help="the Host the browser addresses (for same-origin)"
    )
    explain.add_argument("path", help="request path (and query), as the browser sends it")
    probe_cli.add_parser(commands, _seconds)
    migrate_cli.add_commands(commands, config_option)  # import, test
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "check":
        return _check(args)
    if args.command == "probe":
        return probe_cli.run(args)
    if args.command in migrate_cli.COMMANDS:
        return migrate_cli.run(args)
    policies = _load(args.config)
    return 1 if policies is None else run_explain(args, policies)


def _serve(args: argparse.Namespace) -> int:
    from .lifecycle import ServeOptions, Service, serve
    from .records import Observer

    worker = args.worker_of_parent.split(",")[1] if args.worker_of_parent else None
    prefix = f"worker {worker} " if worker is not None else ""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {prefix}%(message)s",
    )
    observers: list[Observer] = []
    if not args.no_access_log:
        from .accesslog import AccessLog

        observers.append(AccessLog(args.log_format, sys.stdout, worker=worker))
    policy_source = None
    if args.allow_origin or args.allow_credentials:
        policy_source = _local_dev_policy(args)
        if policy_source is None:
            return 2
    options = ServeOptions(
        policy_source=policy_source,
        config=Path(args.config),
        upstream=args.upstream,
        listen=args.listen,
        admin=args.admin,
        grace=args.grace,
        watch=args.watch,
        watch_interval=args.watch_interval,
        drain_delay=args.drain_delay,
        debug=_debug_mode(args),
    )
    if args.worker_of_parent:
        from .worker import WorkerSpec, serve_worker

        return serve_worker(
            options, WorkerSpec.parse(args.worker_of_parent, args.snapshot), observers
        )
    if args.workers > 1:
        from .fleet import serve_fleet

        passed_on = ["--log-format", args.log_format] + (
            ["--no-access-log"] if args.no_access_log else []
        )
        passed_on += [flag for flag in ("--debug", "--debug-public") if _flag(args, flag)]
        return serve_fleet(options, args.workers, passed_on)
    return serve(lambda: Service(options, observers))


def _debug_mode(args: argparse.Namespace) -> str | None:
    """None, "loopback", "public" or "auto" (proxy/debug.py): local dev mode
    (``--allow-origin``) turns it on by itself when the listener is loopback."""
    if args.debug_public:
        return "public"
    if args.debug:
        return "loopback"
    return "auto" if args.allow_origin else None


def _flag(args: argparse.Namespace, flag: str) -> bool:
    return bool(getattr(args, flag.removeprefix("--").replace("-", "_")))


def _local_dev_policy(args: argparse.Namespace) -> FixedPolicy | None:
    """``serve --allow-origin``: the flag-built policy, or None after saying why not.

    Its ``--debug`` default (on when the listener is loopback) is :func:`_debug_mode`'s.
    """
    problem = None
    if not args.allow_origin:
        problem = "--allow-credentials needs --allow-origin"
    elif args.watch:
        problem = "--watch needs a policy file; --allow-origin reads none"
    elif args.workers > 1:
        problem = "--allow-origin runs one process; drop --workers"
    if problem is None:
        try:
            return local_dev_policy(args.allow_origin, credentials=args.allow_credentials)
        except PolicyError as error:
            problem = f"--allow-origin: {error.message}"
    print(f"cors-edge: {problem}", file=sys.stderr)
    return None


def _load(path: str) -> Config | None:
    try:
        return load_policy_file(path)
    except PolicyError as error:
        print(f"{error}", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    policies = _load(args.config)
    if policies is None:
        return 1
    for warning in policies.warnings:
        print(warning, file=sys.stderr)
    routes = policies.route_list
    print(
        f"{policies.source}: OK, {len(routes)} route{'s' if len(routes) != 1 else ''}, "
        f"{len(policies.warnings)} warning{'s' if len(policies.warnings) != 1 else ''}, "
        f"upstream {policies.upstream}"
    )
    return 0
