"""The ``cors-edge`` command line: serve, check, explain."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .advice import legacy_code_exposure
from .cors import Decision, Verdict, decide
from .loader import PolicyError, load_policy_file
from .origins import parse_origin
from .policy import Config, Unmatched

DEFAULT_CONFIG = "config/policies.yaml"
SAFELISTED_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
SIMPLE_METHODS = frozenset({"GET", "HEAD", "POST"})


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
        "--debug",
        action="store_true",
        help="add CORS-Edge-Decision (decision, route, reason) to every response; "
        "loopback listeners only, unless --debug-public",
    )
    serve.add_argument(
        "--debug-public",
        action="store_true",
        help="allow --debug on any listener; the header then never names allowed origins",
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
        "--host", default="cors-edge", help="the Host the browser addresses (for same-origin)"
    )
    explain.add_argument("path", help="request path (and query), as the browser sends it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "check":
        return _check(args)
    return _explain(args)


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
    options = ServeOptions(
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
    """None, "loopback" or "public" (proxy/debug.py). Hook for local dev mode: once
    ``--allow-origin`` exists, it turns "loopback" on when the listener is loopback."""
    if args.debug_public:
        return "public"
    return "loopback" if args.debug else None


def _flag(args: argparse.Namespace, flag: str) -> bool:
    return bool(getattr(args, flag.removeprefix("--").replace("-", "_")))


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


def _explain(args: argparse.Namespace) -> int:
    policies = _load(args.config)
    if policies is None:
        return 1
    method = args.method.upper() if args.method.upper() in SIMPLE_METHODS else args.method
    header_names: list[str] = []
    needs_preflight = method not in SIMPLE_METHODS
    for header in args.header:
        name, _, value = header.partition(":")
        name, value = name.strip(), value.strip()
        header_names.append(name.lower())
        lower = name.lower()
        if lower in ("accept", "accept-language", "content-language"):
            continue
        if lower == "content-type" and value.split(";")[0].strip().lower() in (
            SAFELISTED_CONTENT_TYPES
        ):
            continue
        needs_preflight = True
    raw_path = args.path.split("?", 1)[0]
    self_origin = parse_origin(f"{policies.public_scheme or 'http'}://{args.host}")
    cross_origin = parse_origin(args.origin) != self_origin
    print(f"request: {method} {args.path} from {args.origin}")
    if needs_preflight:
        unsafe = [
            name
            for name in header_names
            if name not in ("accept", "accept-language", "content-language")
        ]
        verdict = _decide(
            policies,
            "OPTIONS",
            raw_path,
            args.origin,
            self_origin,
            request_method=method,
            request_headers=", ".join(unsafe) or None,
        )
        print("\nstep 1, the browser's preflight:")
        print(f"  OPTIONS {args.path}")
        print(f"  Origin: {args.origin}")
        print(f"  Access-Control-Request-Method: {method}")
        if unsafe:
            print(f"  Access-Control-Request-Headers: {', '.join(unsafe)}")
        _print_verdict(verdict, policies, cross_origin)
        if verdict.decision not in (Decision.PREFLIGHT_OK, Decision.NO_ROUTE):
            print("\nthe browser stops here: the actual request is never sent.")
            return 0
        if verdict.decision is Decision.NO_ROUTE:
            print("\nthe browser needs a 2xx with CORS headers from the upstream to go on.")
            return 0
        print("\nstep 2, the actual request:")
    else:
        print("\nno preflight: the browser sends the request directly (a simple request).")
    verdict = _decide(policies, method, raw_path, args.origin, self_origin)
    _print_verdict(verdict, policies, cross_origin)
    return 0


def _decide(
    policies: Config,
    method: str,
    raw_path: str,
    origin: str,
    self_origin: str | None,
    **preflight: str | None,
) -> Verdict:
    return decide(
        policies.routes,
        method,
        raw_path,
        [origin],
        self_origin=self_origin,
        block_unmatched=policies.unmatched is Unmatched.BLOCK,
        **preflight,
    )


def _print_verdict(verdict: Verdict, policies: Config, cross_origin: bool) -> None:
    route = verdict.route
    if route is not None:
        print(f"  route:    {route.name} ({policies.source}:{route.line})")
        print(f"  origins:  {', '.join(route.origin_sources) or 'none (origins: [])'}")
    else:
        print("  route:    none")
    if verdict.routing_path is not None:
        print(f"  routed as {verdict.routing_path}")
    print(f"  decision: {verdict.decision.value}: {verdict.reason}")
    status = verdict.status
    if status is not None:
        print(f"  answer:   {status} from cors-edge (not forwarded to the upstream)")
    else:
        print("  answer:   forwarded to the upstream; its status, with these headers")
    if verdict.headers or verdict.vary:
        print("  headers:")
        for name, value in verdict.headers:
            print(f"    {name}: {value}")
        if verdict.vary:
            print(f"    Vary: {verdict.vary}")
    else:
        print("  headers:  none")
    browser = _browser_view(verdict)
    print(f"  browser:  {browser}")
    exposure = legacy_code_exposure(verdict, cross_origin=cross_origin)
    if exposure is not None:
        print(f"  warning:  {exposure}")


def _browser_view(verdict: Verdict) -> str:
    decision = verdict.decision
    if decision is Decision.PREFLIGHT_OK:
        return "preflight passes"
    if decision is Decision.PREFLIGHT_REFUSED:
        return "preflight fails: 'Response to preflight request doesn't pass access control check'"
    if decision in (Decision.ALLOWED, Decision.SAME_ORIGIN):
        return "the page can read the response"
    if decision is Decision.BLOCKED:
        return "the request never reaches the application; the page sees a network error"
    if decision is Decision.NO_ROUTE:
        return "no CORS headers: 'No 'Access-Control-Allow-Origin' header is present'"
    if decision is Decision.BAD_PATH:
        return "400 Bad Request"
    return "the application runs, but the page cannot read the response"
