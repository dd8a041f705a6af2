"""Fixtures of the in-process tests."""

from __future__ import annotations

import pytest
from aiohttp.http_parser import RawRequestMessage

from proxy.server import EdgeServer


@pytest.fixture
def early_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request offered to the server's early answer, whether it answered it
    (the spy is in place before the edge makes its server, which binds the method)."""
    calls: list[bool] = []
    real = EdgeServer.answer_early

    def spy(self: EdgeServer, message: RawRequestMessage, peer: str | None) -> bytes | None:
        answer = real(self, message, peer)
        calls.append(answer is not None)
        return answer

    monkeypatch.setattr(EdgeServer, "answer_early", spy)
    return calls
