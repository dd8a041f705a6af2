"""Path tricks: the policy cors-edge applies is the one of the endpoint Flask serves.

Every request carries ``Origin: https://evil.com``, which ``/public/**`` allows
(``"*"``) and ``/api/**`` refuses (enforced, credentials). For each trick we take
the edge's own decision and route (its access log) and what the Flask app says it
served (its request log, by marker), and check they agree with a reference that
knows only how Flask/Werkzeug route (decode once, merge slashes, case-sensitive).
"""

from __future__ import annotations

import re
import time

from .conftest import HardEdge, assert_exits_without_tracebacks, marker, raw_exchange

API = "routes[0] path /api/**"
PUBLIC = "routes[1] path /public/**"
ECHO = "routes[2] path /echo"

PATH_TRICKS: list[str] = [
    # dot segments, plain and encoded, to climb from a loose route into a strict one
    "/public/../api/items",
    "/public/./../api/items",
    "/public/%2e%2e/api/items",
    "/public/%2E%2E/api/items",
    "/public/.%2e/api/items",
    "/public/%2e./api/items",
    "/public/status/..",
    "/public/..",
    "/./api/items",
    "/public/status/%2e",
    "/public/status;/../../api/items",
    "/public;/../api/items",
    "/public/status/..;/../api/items",
    # encoded slashes and backslashes, NUL
    "/public%2f..%2fapi/items",
    "/public%2F..%2Fapi%2Fitems",
    "/public/..%2fapi/items",
    "/public/..\\api/items",
    "/public%5c..%5capi/items",
    "/api%2Fitems",
    "/public%00/../api/items",
    "/api/items%00",
    # double slashes
    "//api/items",
    "/api//items",
    "///api///items",
    "//public/status",
    "/public//status",
    # case
    "/API/items",
    "/Api/items",
    "/Public/status",
    "/PUBLIC/status",
    # matrix parameters
    "/api/items;jsessionid=1",
    "/api;x=1/items",
    "/public/status;x=1",
    "/public;/status",
    # query tricks
    "/public/status?/../../api/items",
    "/public/status?x=/api/items",
    "/public/status%3F/../api/items",
    "/public/status%3f%2f..%2fapi",
    "/api/items%3Fx=/public/status",
    "/api/items?%2e%2e",
    "/public/status??/api",
    "/public/status#/../api/items",
    # percent-encoding once, twice, of letters, overlong, unicode
    "/%61pi/items",
    "/%61%70%69/items",
    "/%70ublic/status",
    "/%2570ublic/status",
    "/public/%252e%252e/api/items",
    "/public/%c0%ae%c0%ae/api/items",
    "/public/%u002e%u002e/api/items",
    "/public/.../api/items",
    "/public/status%20",
    "/api/items%0a",
    "/api/%0d%0aitems",
    "/api/items%09",
    "/public/caf%C3%A9",
    # exact-path route and its neighbours
    "/echo",
    "/echo/",
    "//echo",
    "/echo;x",
    "/ech%6f",
    "/Echo",
    "/echo%2F",
    "/admin/users",
    "//admin/users",
]

_PARSER_REFUSAL = re.compile(r"malformed request refused|request target too long")


def reference_route(flask_path: str) -> str | None:
    """The route DESIGN.md gives the path Flask routed (slashes merged as Werkzeug does)."""
    path = re.sub("/{2,}", "/", flask_path)
    if path == "/api" or path.startswith("/api/"):
        return API
    if path == "/public" or path.startswith("/public/"):
        return PUBLIC
    if path == "/echo":
        return ECHO
    return None


def _access_lines(hard_edge: HardEdge) -> list[dict[str, object]]:
    return hard_edge.edge.access_log()


def test_path_tricks_route_like_flask(hard_edge: HardEdge) -> None:
    assert len(PATH_TRICKS) >= 40
    outcomes: dict[str, str] = {}
    for target in PATH_TRICKS:
        mark = marker()
        before = len(_access_lines(hard_edge))
        request = (
            f"GET {target} HTTP/1.1\r\nHost: cors-edge.test\r\nOrigin: https://evil.com\r\n"
            f"X-Test-Marker: {mark}\r\n\r\n"
        ).encode("latin-1")
        responses, _, raw = raw_exchange(hard_edge.port, request, timeout=4.0)
        assert responses, f"{target}: no response ({raw!r})"
        response = responses[0]
        assert response.status is not None and response.status < 500, (target, response.head)
        parser_refused = response.status == 400 and _PARSER_REFUSAL.search(
            response.body.decode("latin-1")
        )
        edge_entry: dict[str, object] | None = None
        if not parser_refused:
            deadline = time.monotonic() + 15  # a safety net: the loop ends on the line (<= 50 ms)
            while len(_access_lines(hard_edge)) <= before and time.monotonic() < deadline:
                time.sleep(0.01)
            lines = _access_lines(hard_edge)
            assert len(lines) > before, f"{target}: no access-log line"
            edge_entry = lines[-1]
            assert edge_entry["path"] == target.split("#")[0] or "#" in target
        served = hard_edge.flask_entries(mark)
        if not served:
            # never reached the app: the edge refused it, or Flask's server did
            outcomes[target] = f"refused {response.status}"
            assert (
                edge_entry is None
                or edge_entry["decision"] in ("bad_path", "blocked")
                or (response.status == 400)
            ), (target, edge_entry, response.head)
            continue
        assert len(served) == 1
        flask_path = str(served[0]["path"])
        expected = reference_route(flask_path)
        assert edge_entry is not None
        assert edge_entry["route"] == expected, (target, flask_path, edge_entry)
        # the refused origin never ran code behind an enforced route
        assert expected != API, (target, flask_path, edge_entry)
        if expected == PUBLIC:
            assert response.header("Access-Control-Allow-Origin") == "*"
        else:
            assert response.cors_headers() == [], (target, response.head)
        outcomes[target] = f"served {flask_path!r} {response.status} via {expected}"
    # the suite means something only if both outcomes occur
    assert any(o.startswith("refused") for o in outcomes.values())
    assert any(o.startswith("served") for o in outcomes.values())


def test_dot_and_encoded_slash_paths_are_400_before_policy(hard_edge: HardEdge) -> None:
    for target in PATH_TRICKS:
        if not re.search(r"(^|/)(\.|%2e){1,2}(/|$|;)|%2f|%5c|\\|%00", target, re.I):
            continue
        if "?" in target.split("%3")[0] and target.index("?") < len(target.split("?")[0]) + 1:
            continue
        responses, _, _ = raw_exchange(
            hard_edge.port, f"OPTIONS {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        path = target.split("?")[0]
        if re.search(r"(^|/)(\.|%2e){1,2}(/|$)|%2f|%5c|\\|%00", path, re.I):
            assert responses[0].status == 400, target
            assert responses[0].cors_headers() == []


def test_no_tracebacks_on_stderr(own_hard_edge: HardEdge) -> None:
    """Every path trick above, as a refused-origin GET and as a bare OPTIONS, sent to an
    edge of this test's own, is answered below 500, and not one leaves a traceback on
    its stderr."""
    for target in PATH_TRICKS:
        for request in (
            f"GET {target} HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.com\r\n\r\n",
            f"OPTIONS {target} HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            responses, _, raw = raw_exchange(own_hard_edge.port, request.encode("latin-1"))
            assert responses, f"{target}: no response ({raw!r})"
            assert responses[0].status is not None and responses[0].status < 500, target
    assert_exits_without_tracebacks(own_hard_edge.edge)
