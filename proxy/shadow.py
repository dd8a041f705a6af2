"""Shadow mode (``enforce: shadow``): cors-edge's verdict next to the app's own CORS.

On a shadow route the server forwards everything, preflights included, and relays the
app's answer untouched. :func:`judge` then applies the browser's check
(:mod:`proxy.browser`) twice to the same request: to the headers cors-edge would have
sent under its policy, and to what the app answered. A difference is a disagreement,
counted in ``cors_edge_shadow_disagreements_total`` and logged by :class:`ShadowLog`
at a bounded rate. Pure apart from the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import browser
from .cors import Decision, Verdict

log = logging.getLogger("cors_edge.shadow")

Headers = Sequence[tuple[str, str]]
_PREFLIGHTS = frozenset({Decision.PREFLIGHT_OK, Decision.PREFLIGHT_REFUSED})
_NOT_CORS = frozenset({Decision.NO_ORIGIN, Decision.SAME_ORIGIN, Decision.NO_ROUTE})
_NOT_CORS |= {Decision.BAD_PATH}


@dataclass(frozen=True, slots=True)
class Judgement:
    ours: str  # "allowed" | "refused": what a browser concludes under cors-edge's policy
    upstream: str  # the same, on what the app answered

    @property
    def disagrees(self) -> bool:
        return self.ours != self.upstream


def _word(ok: bool) -> str:
    return "allowed" if ok else "refused"


def judge(
    verdict: Verdict,
    *,
    origin: str | None,
    request_method: str | None,
    request_headers: str | None,
    credentials: bool,
    status: int,
    upstream_headers: Headers,
) -> Judgement | None:
    """Both verdicts for one cross-origin request, or ``None`` when it is not CORS.

    ``credentials`` is whether the request carried cookies (a page's ``credentials:
    "include"``); a preflight never does, so it is judged without.
    """
    if origin is None or verdict.decision in _NOT_CORS:
        return None
    if verdict.decision in _PREFLIGHTS and request_method is not None:
        names = sorted(
            {part.strip().lower() for part in (request_headers or "").split(",") if part.strip()}
        )

        def preflight(answer_status: int, headers: Headers) -> bool:
            return browser.check_preflight(
                origin=origin,
                method=request_method,
                header_names=names,
                credentials=False,
                status=answer_status,
                response_headers=headers,
            ).ok

        ours = preflight(verdict.status or 200, verdict.headers)
        return Judgement(_word(ours), _word(preflight(status, upstream_headers)))
    stamped = verdict.headers if verdict.decision is Decision.ALLOWED else ()
    mine = browser.check_response(origin=origin, credentials=credentials, response_headers=stamped)
    theirs = browser.check_response(
        origin=origin, credentials=credentials, response_headers=upstream_headers
    )
    return Judgement(_word(mine.ok), _word(theirs.ok))


class ShadowLog:
    """One log line per disagreement, at most ``burst`` per ``interval`` seconds; the
    next line that gets through says how many were left out."""

    def __init__(
        self,
        burst: int = 10,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.window_start = clock()
        self.in_window = 0
        self.suppressed = 0

    def __call__(self, route: str, method: str, path: str, origin: str, j: Judgement) -> bool:
        now = self.clock()
        if now - self.window_start >= self.interval:
            self.window_start, self.in_window = now, 0
        if self.in_window >= self.burst:
            self.suppressed += 1
            return False
        self.in_window += 1
        left_out = f" ({self.suppressed} more since the last line)" if self.suppressed else ""
        self.suppressed = 0
        log.warning(
            "shadow disagreement: %s %s from %s on %s: cors-edge %s, upstream %s%s",
            method,
            path,
            origin,
            route,
            j.ours,
            j.upstream,
            left_out,
        )
        return True
