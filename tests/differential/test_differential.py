"""The same requests through aiohttp's ClientSession leg and the lean client, against
canned upstream behaviours: the bytes the upstream receives and what the edge's client
would get must be identical, except where the lean client is more correct.

Where they differ (each pinned below, both sides asserted, in ``DIFFERENT``):

1. **A fresh connection closed without an answer is not replayed.** aiohttp re-sent an
   idempotent request once on a new connection after any disconnect, so an upstream
   worker that died (or was killed by its timeout) mid-request got the request twice.
   The lean client retries only a *pooled* connection that went stale while idle and
   sent nothing back (RFC 9112 §9.3.1.1); otherwise the client gets a 502.
2. **Bytes past Content-Length do not fail the response**: the upstream's message is
   relayed as its Content-Length frames it and the connection is then closed (as nginx
   does); aiohttp read the surplus as the next response and failed the current one (502).
3. **Obs-fold and control characters in upstream header values are refused** with 502,
   as RFC 9112 §5.2 lets a proxy do; aiohttp's lenient parser joined folded lines and
   relayed control bytes to the client.
4. **A 101 to a request that asked for no upgrade is a 502**; aiohttp handed it on as a
   response, and the client got a 101 with nothing behind it.
5. **Header names keep the upstream's spelling**: aiohttp respelled names it knows
   (``ETag`` became ``Etag``); names compare case-insensitively everywhere else here.
6. **A close-delimited body ended by a reset is incomplete** (RFC 9112 §8: complete only
   "unless an error was indicated by the underlying connection"): the client's response
   is aborted; aiohttp relayed what had come as a complete answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from proxy.policy import Limits, Timeouts

from .canned import CannedServer, Reply
from .paths import EDGE, Outcome, Req, run_new, run_old

TIMEOUTS = Timeouts(connect=2.0, read=1.0, upstream_idle=30.0)
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


def ok(body: bytes = b"hello", extra: bytes = b"") -> Reply:
    return Reply((OK_HEAD + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body,))


@dataclass(frozen=True)
class Case:
    name: str
    replies: list[Reply]
    requests: list[Req] = field(default_factory=lambda: [Req()])


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
CSP = b"default-src 'self'; " + b"img-src https://cdn.example.com; " * 270  # ~9 KB
BIG_HEAD = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
CASES = [
    Case("content-length", [ok()]),
    # Issue 10, item 12 (limits.max_upstream_header_line / _bytes): both legs alike.
    Case("9 KB header line", [ok(extra=b"Content-Security-Policy: " + CSP + b"\r\n")]),
    Case("head over 64 KiB", [ok(extra=BIG_HEAD)]),
    Case("keep-alive reused", [ok(b"one"), ok(b"two"), ok(b"three")], [Req()] * 3),
    Case(
        "chunked with extensions",
        [Reply((CHUNKED + b'3;name=value;q="a b"\r\nabc\r\n5 ;x\r\nhello\r\n0;end=1\r\n\r\n',))],
    ),
    Case(
        "chunked with trailers",
        [Reply((CHUNKED + b"4\r\nwiki\r\n0\r\nX-Checksum: 1234\r\nX-More: y\r\n\r\n",))],
    ),
    Case(
        "chunked pieces across reads",
        [Reply((CHUNKED + b"4\r\nwi", 0.02, b"ki\r\n5\r", 0.02, b"\npedia\r\n0\r\n\r\n"))],
    ),
    Case(
        "close-delimited",
        [
            Reply(
                (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil", 0.02, b" close"), True
            )
        ],
    ),
    Case(
        "reset mid-body",
        [Reply((OK_HEAD + b"Content-Length: 100\r\n\r\nsome", 0.05), reset=True)],
    ),
    Case(
        "HTTP/1.0 close-delimited",
        [Reply((b"HTTP/1.0 200 OK\r\nServer: legacy\r\n\r\nold style",), True)],
    ),
    Case(
        "1xx skipped",
        [
            Reply(
                (
                    b"HTTP/1.1 100 Continue\r\n\r\n",
                    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                    OK_HEAD + b"Content-Length: 2\r\n\r\nok",
                )
            )
        ],
    ),
    Case(
        "HEAD with Content-Length",
        [Reply((OK_HEAD + b"Content-Length: 1234\r\n\r\n",)), ok(b"after")],
        [Req("HEAD"), Req()],
    ),
    Case(
        "204 and 304 without body",
        [
            Reply((b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",)),
            Reply((b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 99\r\n\r\n',)),
            ok(b"third"),
        ],
        [Req(), Req(), Req()],
    ),
    Case(
        "early close mid-body", [Reply((OK_HEAD + b"Content-Length: 100\r\n\r\nonly", 0.05), True)]
    ),
    Case(
        "chunked cut short",
        [Reply((CHUNKED + b"4\r\nwiki\r\n", 0.05), True)],
    ),
    Case(
        "slow headers within the read timeout",
        [Reply((b"HTTP/1.1 200 OK\r\n", 0.3, b"Content-Length: 2\r\n", 0.3, b"\r\nok"))],
    ),
    Case("silent upstream", [Reply((b"HTTP/1.1 200 OK\r\n", 1.6, b"\r\n"))]),
    Case("silent mid-body", [Reply((OK_HEAD + b"Content-Length: 10\r\n\r\nabc", 1.6, b"defghij"))]),
    Case(
        "keep-alive then close",
        [ok(b"first", b"Connection: close\r\n"), ok(b"second")],
        [Req()] * 2,
    ),
    Case("bare LF line ends", [Reply((b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Legacy: 1\n\nok",))]),
    Case(
        "non-ASCII header bytes",
        [ok(extra="X-Name: caf\u00e9\r\n".encode())],
    ),
    Case(
        "request bodies",
        [ok(b"1"), ok(b"2"), ok(b"3"), ok(b"4")],
        [
            Req("POST", "/p?q=%20x", body=b'{"a": 1}'),
            Req("PUT", "/upload", body=b"x" * 100_000, stream=True),
            Req("POST", "/empty"),
            Req("DELETE", "/thing"),
        ],
    ),
    Case("no Host from the client", [ok()], [Req(headers=(("X-A", "1"),))]),
    Case(
        "bodiless methods",
        [ok(b"1"), ok(b"2"), ok(b"3"), Reply((OK_HEAD + b"Content-Length: 9\r\n\r\n",))],
        [Req("OPTIONS"), Req("PATCH"), Req("TRACE"), Req("HEAD")],
    ),
    Case(
        "bad chunk framing mid-body",
        [Reply((CHUNKED + b"4\r\nwiki\r\nzz\r\n", 0.05), True)],
    ),
    Case("a megabyte with Content-Length", [ok(bytes(range(256)) * 4096)]),
    Case(
        "chunked request body",
        [ok()],
        [
            Req(
                "POST",
                "/c",
                headers=(("Host", "app.test"),),
                body=b"abcdefghij",
                stream=True,
                chunked=True,
            )
        ],
    ),
]


@dataclass(frozen=True)
class Different:
    case: Case
    old: list[Outcome]
    new: list[Outcome]
    old_requests: int  # how many requests the upstream saw on each side
    new_requests: int


def _ok(body: bytes, *extra: tuple[str, str]) -> Outcome:
    headers = (("content-type", "text/plain"), *extra, ("content-length", str(len(body))))
    return Outcome(200, "OK", headers, body)


CLOSE_DELIMITED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial"
DIFFERENT = [
    Different(
        Case("close-delimited cut by a reset", [Reply((CLOSE_DELIMITED, 0.05), reset=True)]),
        old=[Outcome(200, "OK", (("content-type", "text/plain"),), b"partial")],
        new=[Outcome(200, "OK", (("content-type", "text/plain"),), aborted=True)],
        old_requests=1,
        new_requests=1,
    ),
    Different(
        Case("closed without answering", [Reply((), True), ok(b"again")]),
        old=[_ok(b"again")],
        new=[Outcome(502)],
        old_requests=2,
        new_requests=1,
    ),
    Different(
        Case("closed mid-head", [Reply((b"HTTP/1.1 200 OK\r\nContent-Le",), True), ok(b"again")]),
        old=[_ok(b"again")],
        new=[Outcome(502)],
        old_requests=2,
        new_requests=1,
    ),
    Different(
        Case(
            "bytes past Content-Length",
            [Reply((OK_HEAD + b"Content-Length: 3\r\n\r\nabcdef",)), ok(b"next")],
            [Req(), Req()],
        ),
        old=[Outcome(502), _ok(b"next")],
        new=[_ok(b"abc"), _ok(b"next")],
        old_requests=2,
        new_requests=2,
    ),
    Different(
        Case("obs-fold", [ok(extra=b"X-Fold: a\r\n b\r\n")]),
        old=[_ok(b"hello", ("x-fold", "a b"))],
        new=[Outcome(502)],
        old_requests=1,
        new_requests=1,
    ),
    Different(
        Case("control character", [ok(extra=b"X-Ctl: a\x01b\r\n")]),
        old=[_ok(b"hello", ("x-ctl", "a\x01b"))],
        new=[Outcome(502)],
        old_requests=1,
        new_requests=1,
    ),
    Different(
        Case(
            "101 unasked",
            [
                Reply(
                    (
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                        b"Connection: upgrade\r\n\r\n",
                    )
                )
            ],
        ),
        old=[Outcome(101, "Switching Protocols", (("upgrade", "x"), ("connection", "upgrade")))],
        new=[Outcome(502)],
        old_requests=1,
        new_requests=1,
    ),
]


async def _run(case: Case, runner: object) -> tuple[list[bytes], list[Outcome], int]:
    server = await CannedServer(list(case.replies)).start()
    try:
        outcomes = await runner(server.url, case.requests, TIMEOUTS)  # type: ignore[operator]
    finally:
        await server.stop()
    port = b":%d" % server.port  # each run has its own server: only the port may differ
    received = [request.replace(port, b":PORT") for request in server.received]
    return received, outcomes, server.connections


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_same_bytes_both_ways(case: Case) -> None:
    old_received, old, _ = await _run(case, run_old)
    new_received, new, _ = await _run(case, run_new)
    assert new_received == old_received
    assert new == old


async def test_streamed_bodies_keep_their_framing() -> None:
    """The generic comparison would pass if both sides dropped bodies alike: pin the bytes."""
    case = next(c for c in CASES if c.name == "request bodies")
    received, outcomes, _ = await _run(case, run_new)
    assert [o.body for o in outcomes] == [b"1", b"2", b"3", b"4"]
    assert received[0].endswith(b'Content-Length: 8\r\n\r\n{"a": 1}')
    assert received[1].endswith(b"Content-Length: 100000\r\n\r\n" + b"x" * 100_000)
    assert received[2].endswith(b"Content-Length: 0\r\n\r\n")
    assert received[3].startswith(b"DELETE /thing HTTP/1.1\r\nHost: app.test\r\n")
    chunked = next(c for c in CASES if c.name == "chunked request body")
    received, _, _ = await _run(chunked, run_new)
    assert received == [
        b"POST /c HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n1\r\nj\r\n0\r\n\r\n"
    ]


@pytest.mark.parametrize("different", DIFFERENT, ids=[d.case.name for d in DIFFERENT])
async def test_listed_differences(different: Different) -> None:
    old_received, old, _ = await _run(different.case, run_old)
    new_received, new, _ = await _run(different.case, run_new)
    assert (len(old_received), old) == (different.old_requests, different.old)
    assert (len(new_received), new) == (different.new_requests, different.new)
    assert new_received[0] == old_received[0]  # the same request went up


async def test_header_names_keep_the_upstreams_spelling() -> None:
    from proxy.upstream_pool import UpstreamPool

    server = await CannedServer([ok(extra=b'ETag: "1"\r\nX-Request-ID: 5\r\n')]).start()
    pool = UpstreamPool.for_config(server.url, TIMEOUTS, Limits())
    try:
        response = await pool.request("GET", "/", [("Host", "app.test")])
        assert list(response.headers) == ["Content-Type", "ETag", "X-Request-ID", "Content-Length"]
        response.release()
    finally:
        await pool.close()
        await server.stop()
    assert EDGE not in {"OK"}
