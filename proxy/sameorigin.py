"""Which scheme the browser used, for recognising same-origin requests. Pure.

A request is same-origin when its ``Origin`` equals the origin the browser
addressed: the scheme it used and its ``Host``. Behind a TLS terminator cors-edge
sees plain HTTP, so the scheme is either stated (``public_scheme:``) or reported
by a trusted forwarder (``X-Forwarded-Proto`` from ``trust_forwarded_from``);
otherwise it is a guess (``http``). Whenever what cors-edge assumes is contradicted
(an untrusted ``X-Forwarded-Proto`` says otherwise, or a trusted one disagrees with
``public_scheme``), the scheme is in doubt: ``None``, and then no request counts as
same-origin, so each is judged as cross-origin on its route.
"""

from __future__ import annotations

LISTENER_SCHEME = "http"  # cors-edge itself never terminates TLS


def client_scheme(
    public_scheme: str | None, forwarded_proto: str | None, trusted: bool
) -> str | None:
    """The scheme the browser addressed, or ``None`` when it is in doubt.

    ``forwarded_proto`` is the request's ``X-Forwarded-Proto`` value (its first
    element counts), ``trusted`` whether the peer is in ``trust_forwarded_from``.
    """
    forwarded = forwarded_proto.split(",", 1)[0].strip().lower() if forwarded_proto else ""
    if trusted and forwarded:
        if public_scheme is not None and forwarded != public_scheme:
            return None
        return forwarded
    assumed = public_scheme or LISTENER_SCHEME
    if forwarded and forwarded != assumed:
        return None
    return assumed
