"""proxy/headers.py: hop-by-hop hygiene and X-Forwarded-*, both directions."""

from __future__ import annotations

import ipaddress

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.headers import (
    HOP_BY_HOP,
    connection_tokens,
    is_trusted,
    response_headers,
    upstream_request_headers,
)


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def outgoing(*pairs: tuple[str, str], trusted: bool = False) -> CIMultiDict[str]:
    return upstream_request_headers(
        headers(*pairs), peer="10.0.0.7", scheme="http", trusted_peer=trusted
    )


def test_hop_by_hop_headers_stay_on_their_hop() -> None:
    out = outgoing(
        ("Host", "app.test"),
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic x"),
        ("Expect", "100-continue"),
        ("Accept", "*/*"),
        ("Accept", "text/html"),
    )
    assert out["Host"] == "app.test"
    assert out.getall("Accept") == ["*/*", "text/html"]
    for name in (*HOP_BY_HOP, "x-secret"):
        assert name not in out, name


def test_te_trailers_is_the_one_te_passed_on() -> None:
    assert outgoing(("TE", "trailers, deflate"))["TE"] == "trailers"
    assert "TE" not in outgoing(("TE", "gzip"))


def test_connection_tokens() -> None:
    assert connection_tokens(headers(("Connection", "Close, X-A"), ("Connection", " x-b ,"))) == {
        "close",
        "x-a",
        "x-b",
    }


def test_an_untrusted_peer_cannot_forge_x_forwarded() -> None:
    out = outgoing(
        ("Host", "edge.test"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.test"),
    )
    assert out["X-Forwarded-For"] == "10.0.0.7"
    assert out["X-Forwarded-Proto"] == "http"
    assert out["X-Forwarded-Host"] == "edge.test"


def test_a_trusted_peers_x_forwarded_is_appended_to() -> None:
    out = outgoing(
        ("Host", "edge.test"),
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-For", "5.6.7.8"),
        ("X-Forwarded-Host", "app.example.com"),
        trusted=True,
    )
    assert out.getall("X-Forwarded-For") == ["1.2.3.4, 5.6.7.8, 10.0.0.7"]
    assert out["X-Forwarded-Host"] == "app.example.com, edge.test"
    assert out["X-Forwarded-Proto"] == "http"


def test_no_host_no_x_forwarded_host() -> None:
    assert "X-Forwarded-Host" not in outgoing(("Accept", "*/*"))


def test_is_trusted() -> None:
    networks = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert is_trusted("10.1.2.3", networks)
    assert is_trusted("::1", networks)
    assert not is_trusted("192.0.2.1", networks)
    assert not is_trusted("not an address", networks)
    assert not is_trusted(None, networks)
    assert not is_trusted("10.1.2.3", ())


def test_response_headers_drop_hop_by_hop_and_the_upstreams_cors() -> None:
    kept = response_headers(
        headers(
            ("Content-Type", "text/plain"),
            ("Connection", "X-Hop"),
            ("X-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Access-Control-Allow-Origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        )
    )
    assert kept == [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]


def test_response_headers_drop_an_upstreams_cors_edge_headers() -> None:
    # serve --debug's CORS-Edge-Decision is the edge's word; an upstream's must not pass for it.
    kept = response_headers(
        headers(("cors-edge-decision", "allowed; route=x"), ("X-Cors-Edge", "1"), ("A", "b"))
    )
    assert kept == [("X-Cors-Edge", "1"), ("A", "b")]


def test_the_names_connection_lists_are_dropped_per_message_not_remembered() -> None:
    """The dropped sets are memoised per Connection field list: a later message with
    another list (or none) drops its own names, never the previous message's."""
    first = outgoing(("Host", "a"), ("Connection", "X-Secret"), ("X-Secret", "1"), ("X-Other", "2"))
    assert "X-Secret" not in first and first["X-Other"] == "2"
    second = outgoing(("Host", "a"), ("Connection", "X-Other"), ("X-Secret", "1"), ("X-Other", "2"))
    assert second["X-Secret"] == "1" and "X-Other" not in second
    third = outgoing(("Host", "a"), ("X-Secret", "1"), ("X-Other", "2"))
    assert third["X-Secret"] == "1" and third["X-Other"] == "2"
    answer = response_headers(
        headers(("Connection", "X-Other"), ("X-Secret", "1"), ("X-Other", "2"))
    )
    assert answer == [("X-Secret", "1")]


def test_a_trusted_peer_keeps_routing_headers_whatever_connection_says() -> None:
    """Trusted and untrusted peers drop different sets for the same Connection list."""
    pairs = (("Host", "a"), ("Connection", "keep-alive"), ("X-Forwarded-Prefix", "/app"))
    assert "X-Forwarded-Prefix" not in outgoing(*pairs)
    assert outgoing(*pairs, trusted=True)["X-Forwarded-Prefix"] == "/app"
    assert "X-Forwarded-Prefix" not in outgoing(*pairs)


def test_the_dropped_set_memo_stays_bounded() -> None:
    from proxy import headers as module

    for n in range(module._DROPPED_MAX * 2):
        out = outgoing(("Host", "a"), ("Connection", f"X-H{n}"), (f"X-H{n}", "1"), ("X-K", "2"))
        assert f"X-H{n}" not in out and out["X-K"] == "2"
    assert len(module._dropped_sets) <= module._DROPPED_MAX
