"""Advice for operators, derived from verdicts: when a cross-origin request runs legacy code.

CORS only decides whether the page may *read* an answer; the request itself has
already reached Flask. A cross-origin request that cors-edge forwards without
letting the page read the answer (no route, or ``enforce: false``) still runs the
endpoint with the user's cookies: a cross-site form can change data. ``explain``
prints this text so the gap is visible, with the key that closes it. Pure: text only.
"""

from __future__ import annotations

from .cors import Decision, Verdict


def legacy_code_exposure(
    verdict: Verdict, *, cross_origin: bool, preflight: bool = False
) -> str | None:
    """The warning for a cross-origin request that reaches Flask unreadable, else ``None``.

    ``preflight``: the verdict is for the browser's preflight, which carries no cookies.
    """
    if preflight and verdict.decision is Decision.NO_ROUTE and cross_origin:
        return (
            "this preflight reaches Flask: no route covers the path, so its OPTIONS "
            "handling (before_request hooks included) runs, without cookies (browsers "
            "send none on a preflight). Close it with `unmatched: block` at the top of "
            "the policy file (or a route for this path)."
        )
    if verdict.decision is Decision.UNENFORCED and verdict.route is not None:
        return (
            "this cross-origin request reaches Flask: the legacy code runs with the user's "
            "cookies although the page may not read the answer (a cross-site form can still "
            f"change data). Close it with `enforce: true` on {verdict.route.name}."
        )
    if verdict.decision is Decision.NO_ROUTE and cross_origin:
        return (
            "this cross-origin request reaches Flask: no route covers the path, so the legacy "
            "code runs with the user's cookies although the page may not read the answer "
            "(a cross-site form can still change data). Close it with `unmatched: block` "
            "at the top of the policy file (or a route for this path)."
        )
    return None
