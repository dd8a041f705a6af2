"""proxy/upstream_parse.py: framing, limits and out-of-step detection, fed bytes directly."""

from __future__ import annotations

import pytest

from proxy.upstream_errors import BodyIncomplete, Disconnected, HeadersTooLarge, ProtocolFault
from proxy.upstream_parse import HeadLimits, ResponseHead, ResponseParser


class Sink:
    def __init__(self) -> None:
        self.head: ResponseHead | None = None
        self.body: list[bytes] = []
        self.complete = 0
        self.continues = 0

    def head_received(self, head: ResponseHead) -> None:
        self.head = head

    def body_received(self, data: bytes) -> None:
        self.body.append(data)

    def message_complete(self) -> None:
        self.complete += 1

    def continue_received(self) -> None:
        self.continues += 1


def parse(
    *reads: bytes, head_only: bool = False, limits: HeadLimits | None = None
) -> tuple[ResponseParser, Sink, list[ProtocolFault]]:
    sink = Sink()
    parser = ResponseParser(sink, limits or HeadLimits(), head_only=head_only)
    faults = [fault for data in reads if (fault := parser.feed(data)) is not None]
    return parser, sink, faults


def test_content_length_body_after_the_head_is_handed_on_as_read() -> None:
    later = b"y" * 5000
    parser, sink, faults = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5010\r\n\r\nxxxxxxxxxx", later
    )
    assert not faults and parser.complete and parser.keep_alive
    assert sink.body[1] is later  # past the head, reads bypass the parser: no copy
    assert b"".join(sink.body) == b"x" * 10 + later


def test_surplus_past_content_length_puts_the_connection_out_of_step() -> None:
    parser, sink, faults = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", b"abcdef")
    assert not faults and parser.complete and not parser.keep_alive
    assert sink.body == [b"abc"]


def test_a_second_message_in_the_same_read_is_out_of_step() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    parser, sink, _ = parse(first + first)
    assert parser.complete and sink.complete == 1 and not parser.keep_alive


def test_chunked_extensions_and_trailers() -> None:
    parser, sink, faults = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"3;a=b\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    assert not faults and parser.complete and parser.keep_alive
    assert b"".join(sink.body) == b"abc"
    assert sink.head is not None and "X-Trailer" not in sink.head.headers


def test_close_delimited_body_ends_with_the_connection() -> None:
    parser, sink, _ = parse(b"HTTP/1.1 200 OK\r\n\r\nsome", b" more")
    assert not parser.complete
    assert parser.eof() is None
    assert parser.complete and not parser.keep_alive and b"".join(sink.body) == b"some more"


def test_a_reset_cuts_a_close_delimited_body_short() -> None:
    parser, _, _ = parse(b"HTTP/1.1 200 OK\r\n\r\nsome")
    assert isinstance(parser.eof(clean=False), BodyIncomplete) and not parser.complete


def test_eof_before_and_during_the_answer() -> None:
    parser, _, _ = parse()
    error = parser.eof()
    assert isinstance(error, Disconnected) and error.nothing_received
    parser, _, _ = parse(b"HTTP/1.1 200")
    error = parser.eof()
    assert isinstance(error, Disconnected) and not error.nothing_received
    parser, _, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
    assert isinstance(parser.eof(), BodyIncomplete)


def test_1xx_are_skipped_and_100_signalled() -> None:
    parser, sink, _ = parse(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    )
    assert sink.continues == 1 and sink.head is not None and sink.head.status == 201
    assert "Link" not in sink.head.headers and parser.complete


def test_head_answer_ends_with_its_head() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    parser, sink, faults = parse(head, head_only=True)
    assert not faults and parser.complete and parser.keep_alive and sink.body == []
    parser, _, _ = parse(head + b"stray body", head_only=True)
    assert parser.complete and not parser.keep_alive


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    parser, sink, _ = parse(b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status)
    assert parser.complete and sink.body == []


def test_header_line_limit() -> None:
    limits = HeadLimits(max_line=1000, max_total=10_000)
    _, sink, faults = parse(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 990 + b"\r\n\r\n", limits=limits)
    assert faults == [] and sink.head is not None
    _, _, faults = parse(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 1000 + b"\r\n\r\n", limits=limits)
    assert len(faults) == 1 and isinstance(faults[0], HeadersTooLarge)
    assert "over 1000 bytes (limits.max_upstream_header_line): 'X-A' is 1007 bytes" in str(
        faults[0]
    )


def test_total_head_limit_counts_every_line() -> None:
    limits = HeadLimits(max_line=1000, max_total=4000)
    lines = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 500) for i in range(10))
    _, _, faults = parse(b"HTTP/1.1 200 OK\r\n" + lines + b"\r\n", limits=limits)
    assert len(faults) == 1 and isinstance(faults[0], HeadersTooLarge)


def test_an_endless_header_line_is_refused_within_one_read_of_the_limit() -> None:
    limits = HeadLimits(max_line=1000, max_total=4000)
    reads = [b"HTTP/1.1 200 OK\r\nX-Endless: "] + [b"e" * 1000] * 100
    parser, _, faults = parse(*reads, limits=limits)
    assert faults and isinstance(faults[0], HeadersTooLarge)
    assert parser.received <= 4000 + 1000 + len(reads[0])


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Ctl: a\x01b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
    ],
)
def test_invalid_answers_are_faults(wire: bytes) -> None:
    _, _, faults = parse(wire)
    assert len(faults) == 1 and isinstance(faults[0], ProtocolFault)


def test_legacy_leniencies_kept() -> None:
    parser, sink, faults = parse(b"HTTP/1.1 200 OK\nContent-Length: 2\nX-L: 1\n\nok")
    assert not faults and parser.complete and b"".join(sink.body) == b"ok"
    parser, sink, faults = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2  \r\nok\r\n0\r\n\r\n"
    )
    assert not faults and parser.complete


def test_head_fields() -> None:
    _, sink, _ = parse(
        b"HTTP/1.0 404 Not Found\r\nETag: x\r\nX-N: caf\xc3\xa9 \t\r\nContent-Length: 0\r\n\r\n"
    )
    head = sink.head
    assert head is not None
    assert (head.status, head.reason, head.version) == (404, "Not Found", "1.0")
    assert list(head.headers.items()) == [("ETag", "x"), ("X-N", "café"), ("Content-Length", "0")]
    assert head.content_length == 0 and not head.chunked and not head.keep_alive


def test_a_parser_that_ended_the_message_itself_parses_the_next() -> None:
    small = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    parser, sink, _ = parse(small)
    assert parser.reusable
    parser.reset(head_only=False)
    assert parser.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew") is None
    assert parser.complete and sink.head is not None and sink.head.status == 201
    assert sink.body[-1] == b"new"


@pytest.mark.parametrize(
    "reads",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", b"cd"),  # read past llhttp
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1",),  # out of step
        (b"HTTP/1.1 200 OK\r\n\r\nclose-delimited",),
    ],
)
def test_a_parser_left_mid_message_is_not_reused(reads: tuple[bytes, ...]) -> None:
    parser, _, _ = parse(*reads)
    assert not parser.reusable
