"""Which scheme the browser used, for recognising same-origin requests. Pure.

A request is same-origin when its ``Origin`` equals the origin the browser
addressed: the scheme it used and its ``Host``. Behind a TLS terminator cors-edge
sees plain HTTP, so the scheme is either stated (``public_scheme:``) or reported
by a trusted forwarder (``X-Forwarded-Proto`` from ``trust_forwarded_from``);
otherwise it is a guess (``http``). Whenever what cors-edge assumes is contradicted
(an untrusted ``X-Forwarded-Proto`` says otherwise, or a trusted one disagrees with
``public_scheme``), the scheme is in doubt: ``None``, and then no request counts as
same-origin, so each is judged as cross-origin on its route.

What counts as a report: every element of every ``X-Forwarded-Proto`` field, and
every ``proto=`` of ``Forwarded`` (RFC 7239, what some terminators send instead).
From an untrusted peer any one of them that disagrees puts the scheme in doubt: a
terminator that appends to a list, or sends a second field, must not be outvoted
by the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

LISTENER_SCHEME = "http"  # cors-edge itself never terminates TLS


class _Headers(Protocol):
    def getall(self, key: str, default: Sequence[str], /) -> Sequence[str]: ...


def reported_schemes(headers: _Headers) -> tuple[str, ...]:
    """The schemes a request's forwarding headers claim, lower-cased, in order:
    ``X-Forwarded-Proto`` elements first, then ``Forwarded`` ``proto=`` values."""
    forwarded_proto = headers.getall("X-Forwarded-Proto", ())
    forwarded = headers.getall("Forwarded", ())
    if not forwarded_proto and not forwarded:
        return ()  # the common case: nothing reported
    schemes = [
        element.strip().lower()
        for value in forwarded_proto
        for element in value.split(",")
        if element.strip()
    ]
    for value in forwarded:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, proto = pair.partition("=")
                if name.strip().lower() == "proto":
                    proto = proto.strip().strip('"').strip().lower()
                    if proto:
                        schemes.append(proto)
    return tuple(schemes)


def client_scheme(
    public_scheme: str | None, reported: Sequence[str] | str | None, trusted: bool
) -> str | None:
    """The scheme the browser addressed, or ``None`` when it is in doubt.

    ``reported`` is what the request's forwarding headers claim
    (:func:`reported_schemes`), or one ``X-Forwarded-Proto`` value; ``trusted``
    whether the peer is in ``trust_forwarded_from``, whose first report counts (the
    outermost forwarder's, in a chain that appends).
    """
    if isinstance(reported, str) or reported is None:
        reported = [e.strip().lower() for e in (reported or "").split(",") if e.strip()]
    if trusted and reported:
        forwarded = reported[0]
        if public_scheme is not None and forwarded != public_scheme:
            return None
        return forwarded
    assumed = public_scheme or LISTENER_SCHEME
    if reported and any(scheme != assumed for scheme in reported):
        return None
    return assumed
