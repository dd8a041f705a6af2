"""proxy/upstream_errors.py: each failure's answer and the kind the logs record."""

from __future__ import annotations

import pytest

from proxy.upstream_errors import (
    BodyIncomplete,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    HeadersTooLarge,
    PoolTimeout,
    ProtocolFault,
    ReadTimeout,
    UpstreamError,
)


@pytest.mark.parametrize(
    ("error", "status", "kind", "timeout"),
    [
        (ConnectFailed("x"), 502, "connect", False),
        (ConnectTimeout("x"), 504, "timeout", True),
        (ReadTimeout("x"), 504, "timeout", True),
        (PoolTimeout("x"), 503, "pool_timeout", True),
        (Disconnected("x", nothing_received=True), 502, "disconnected", False),
        (ProtocolFault("x"), 502, "payload", False),
        (HeadersTooLarge("x"), 502, "headers_too_large", False),
        (BodyIncomplete("x"), 502, "payload", False),
    ],
)
def test_answers_and_kinds(error: UpstreamError, status: int, kind: str, timeout: bool) -> None:
    assert (error.status, error.kind, isinstance(error, TimeoutError)) == (status, kind, timeout)


def test_answers_are_worded_for_the_client() -> None:
    assert ConnectFailed.answer == "upstream unavailable"
    assert ReadTimeout.answer == ConnectTimeout.answer == "upstream timed out"
    assert PoolTimeout.answer == "no upstream connection free"
    assert HeadersTooLarge.answer == "upstream sent an invalid response"


def test_too_large_heads_are_protocol_faults() -> None:
    assert issubclass(HeadersTooLarge, ProtocolFault)
    assert Disconnected("x", nothing_received=False).nothing_received is False
