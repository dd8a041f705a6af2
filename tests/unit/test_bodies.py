"""proxy/bodies.py: the bounds on a request body (its size, its silences, its pace)."""

from __future__ import annotations

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.bodies import (
    BodyTooLarge,
    ClientBodyIncomplete,
    ClientBodyTimeout,
    body_deadline,
    client_body_fault,
    only_chunked,
)
from proxy.policy import Timeouts


def test_the_deadline_grows_with_what_arrived() -> None:
    timeouts = Timeouts(client_body=2.0, client_body_min_rate=100.0)
    assert body_deadline(timeouts, 0, 10.0) == 12.0  # the grace alone
    assert body_deadline(timeouts, 500, 10.0) == 17.0  # + 1 s per 100 bytes
    # A byte a second never catches up with the deadline: 2 s + n/100 s < n s for n > 2.
    assert body_deadline(timeouts, 5, 0.0) < 5.0


@pytest.mark.parametrize("fault", [BodyTooLarge(), ClientBodyTimeout(), ClientBodyIncomplete()])
def test_a_fault_is_found_however_aiohttp_wrapped_it(fault: Exception) -> None:
    wrapped = aiohttp.ClientPayloadError("body failed")
    wrapped.__cause__ = aiohttp.ClientConnectionError("send failed")
    wrapped.__cause__.__cause__ = fault
    assert client_body_fault(wrapped) is fault
    assert client_body_fault(aiohttp.ClientPayloadError("the upstream's")) is None


def test_only_chunked_transfer_coding_is_understood() -> None:
    def headers(*values: str) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(CIMultiDict(("Transfer-Encoding", value) for value in values))

    assert only_chunked(headers())
    assert only_chunked(headers("chunked"))
    assert only_chunked(headers(" Chunked "))
    assert not only_chunked(headers("gzip, chunked"))
    assert not only_chunked(headers("gzip", "chunked"))  # split over two fields
