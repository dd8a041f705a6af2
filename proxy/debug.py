"""What cors-edge says about its own decisions: explain's words and the debug header.

``cors-edge explain`` prints a verdict's decision, reason and near-miss hint;
``serve --debug`` puts the same words on every response it can decide, as
``CORS-Edge-Decision: <decision>; route=<name>; reason="<one line>"``, and lists the
header in ``Access-Control-Expose-Headers`` wherever CORS headers are stamped, so page
script can read it where the browser lets it read the response at all.

The header depends on the verdict only, so it is built once per cached verdict
(:class:`~proxy.cors.VerdictCache` calls :func:`annotator`'s function on each new
verdict), never per request.

``--debug`` tells anyone who can reach the listener why a request was refused, so it
refuses to start on a non-loopback listener (:func:`listener_refusal`) unless
``--debug-public`` is given; the public header never names an allowed origin (no
near-miss hint).

Pure but for :func:`debug_annotator`'s one start-up log line: no aiohttp, no I/O.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence

from .cors import Decision, Verdict
from .nearmiss import nearest
from .policy import TOKEN_RE, RoutePolicy

log = logging.getLogger("cors_edge")

HEADER = "CORS-Edge-Decision"
Annotator = Callable[[Verdict, Sequence[str]], Verdict]

# Decisions that refuse the page's origin (or, for a preflight, possibly its method or
# headers: the hint is only given when the origin itself is what failed).
_REFUSALS = frozenset({Decision.BLOCKED, Decision.PREFLIGHT_REFUSED, Decision.UNENFORCED})
# What a header value may carry: visible ASCII and spaces (never CR, LF or NUL).
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def decision_words(verdict: Verdict) -> str:
    """``<decision>: <reason>``, as ``explain`` prints it on its ``decision:`` line."""
    return f"{verdict.decision.value}: {verdict.reason}"


def refused_origin_hint(route: RoutePolicy | None, origin: str, allowed: bool) -> str | None:
    """The near-miss hint for an ``origin`` the route refused: the nearest allowed origin
    and what differs (proxy/nearmiss.py), or None (origin allowed, no route, none near)."""
    if route is None or allowed:
        return None
    miss = nearest(origin, route.origin_sources)
    return None if miss is None else miss.hint


def verdict_hint(verdict: Verdict, origin_values: Sequence[str]) -> str | None:
    """:func:`refused_origin_hint` for a verdict the engine reached on ``origin_values``."""
    if verdict.decision not in _REFUSALS or len(origin_values) != 1:
        return None
    route = verdict.route
    allowed = (
        route is not None and verdict.origin is not None and route.origins.allows(verdict.origin)
    )
    return refused_origin_hint(route, origin_values[0], allowed)


def header_value(verdict: Verdict, hint: str | None = None) -> str:
    """``<decision>; route=<name>; reason="<reason>[; <hint>]"``, one safe header line.
    On an ``enforce: shadow`` route (everything forwarded, the app's own CORS headers
    kept) the decision reads ``shadow:<decision>``, as in the access log."""
    route = verdict.route
    name = route.name if route is not None else "none"
    decision = verdict.decision.value
    if route is not None and route.shadow:
        decision = f"shadow:{decision}"
    reason = verdict.reason if hint is None else f"{verdict.reason}; {hint}"
    return f"{decision}; route={_param(name)}; reason={_quoted(reason)}"


def annotator(*, public: bool) -> Annotator:
    """The function that gives each new verdict its debug header (see the module doc)."""

    def annotate(verdict: Verdict, origin_values: Sequence[str]) -> Verdict:
        hint = None if public else verdict_hint(verdict, origin_values)
        return with_debug_header(verdict, header_value(verdict, hint))

    return annotate


def with_debug_header(verdict: Verdict, value: str) -> Verdict:
    """``verdict`` answering with ``CORS-Edge-Decision: value`` on every response, and
    exposing it to page script wherever the verdict stamps ``Access-Control-Allow-Origin``
    on an actual response (a preflight's answer is never read by script)."""
    headers = verdict.headers
    stamps_origin = any(name == "Access-Control-Allow-Origin" for name, _ in headers)
    if stamps_origin and verdict.decision is not Decision.PREFLIGHT_OK:
        headers = _exposed(headers)
    return dataclasses.replace(verdict, headers=headers, extra=((HEADER, value),))


def _exposed(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    out = []
    found = False
    for name, value in headers:
        if name == "Access-Control-Expose-Headers":
            found = True
            value = f"{value}, {HEADER}"
        out.append((name, value))
    if not found:
        out.append(("Access-Control-Expose-Headers", HEADER))
    return tuple(out)


def _param(text: str) -> str:
    return text if TOKEN_RE.fullmatch(text) else _quoted(text)


# A hostile Origin can be as long as the header limit allows; the reason and hint
# repeat parts of it, so the quoted text is bounded.
_MAX_TEXT = 600


def _quoted(text: str) -> str:
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 3] + "..."
    safe = _UNSAFE.sub("?", text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{safe}"'


def is_loopback(listen: str) -> bool:
    """Whether ``HOST:PORT`` listens on loopback only (127.0.0.0/8, ::1, localhost)."""
    host = listen.rpartition(":")[0].strip("[]") if ":" in listen else listen
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or empty (all interfaces): not known to be loopback


def listener_refusal(listen: str) -> str | None:
    """Why ``--debug`` (without ``--debug-public``) may not serve on ``listen``, or None."""
    if is_loopback(listen):
        return None
    return (
        f"--debug on {listen}, which is not a loopback listener: the CORS-Edge-Decision "
        "header would tell every caller why a request was refused and which origin is "
        "allowed instead. Listen on 127.0.0.1 (--listen 127.0.0.1:PORT), or add "
        "--debug-public (a header that never names allowed origins)"
    )


class DebugRefused(OSError):
    """``--debug`` asked for on a non-loopback listener without ``--debug-public``."""


def debug_annotator(mode: str | None, listen: str) -> Annotator | None:
    """The verdict annotator for ``serve``'s debug ``mode`` on ``listen``, said in one
    start-up log line. Modes: None (off), ``loopback`` (``--debug``: raises
    :class:`DebugRefused` on a listener that is not loopback), ``public``
    (``--debug-public``), ``auto`` (``--allow-origin``: on when the listener is loopback,
    else off)."""
    if mode is None or (mode == "auto" and not is_loopback(listen)):
        return None
    if mode == "loopback":
        refusal = listener_refusal(listen)
        if refusal is not None:
            raise DebugRefused(refusal)
    public = mode == "public"
    log.info(
        "debug: every response says %s (decision, route, reason%s)%s",
        HEADER,
        "" if public else ", nearest allowed origin",
        " by default with --allow-origin on loopback" if mode == "auto" else "",
    )
    return annotator(public=public)
