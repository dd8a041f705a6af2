"""proxy/shadow.py: cors-edge's verdict and the upstream's, judged by the browser's check."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.cors import decide
from proxy.drafts import PolicyError
from proxy.loader import load_policy_text
from proxy.shadow import Judgement, ShadowLog, judge

POLICY = """
defaults: {enforce: shadow}
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, PUT]
    supports_credentials: true
  - path: /enforced/**
    origins: "*"
    enforce: true
"""
APP = "http://localhost:3000"
REFLECTED = [("Access-Control-Allow-Origin", "http://evil.test")]


def _config():  # type: ignore[no-untyped-def]
    return load_policy_text(POLICY)


def test_enforce_shadow_is_loaded_and_decides_as_enforced() -> None:
    shadow, enforced = _config().route_list
    assert shadow.shadow and shadow.enforce
    assert enforced.enforce and not enforced.shadow
    with pytest.raises(PolicyError, match="expected true, false or shadow"):
        load_policy_text("routes:\n  - {path: /a, origins: '*', enforce: sometimes}\n")


def test_an_app_reflecting_a_refused_origin_is_a_disagreement() -> None:
    verdict = decide(_config().routes, "GET", "/api/me", ["http://evil.test"])
    judged = judge(
        verdict,
        origin="http://evil.test",
        request_method=None,
        request_headers=None,
        credentials=False,
        status=200,
        upstream_headers=REFLECTED,
    )
    assert judged == Judgement("refused", "allowed") and judged.disagrees


def test_agreement_on_an_allowed_credentialed_request() -> None:
    verdict = decide(_config().routes, "GET", "/api/me", [APP])
    upstream = [("Access-Control-Allow-Origin", APP), ("Access-Control-Allow-Credentials", "true")]
    judged = judge(
        verdict,
        origin=APP,
        request_method=None,
        request_headers=None,
        credentials=True,
        status=200,
        upstream_headers=upstream,
    )
    assert judged == Judgement("allowed", "allowed")
    # Without Access-Control-Allow-Credentials the app's answer fails a credentialed fetch.
    judged = judge(
        verdict,
        origin=APP,
        request_method=None,
        request_headers=None,
        credentials=True,
        status=200,
        upstream_headers=upstream[:1],
    )
    assert judged == Judgement("allowed", "refused")


def test_preflights_are_judged_as_preflights() -> None:
    routes = _config().routes
    verdict = decide(routes, "OPTIONS", "/api/me", [APP], request_method="DELETE")
    answer = [("Access-Control-Allow-Origin", APP), ("Access-Control-Allow-Methods", "DELETE")]
    kwargs = {"origin": APP, "request_method": "DELETE", "request_headers": None}
    judged = judge(verdict, **kwargs, credentials=False, status=200, upstream_headers=answer)
    assert judged == Judgement("refused", "allowed")
    judged = judge(verdict, **kwargs, credentials=False, status=404, upstream_headers=answer)
    assert judged == Judgement("refused", "refused")


def test_requests_that_are_not_cors_are_not_judged() -> None:
    routes = _config().routes
    for verdict, origin in (
        (decide(routes, "GET", "/api/me", []), None),
        (decide(routes, "GET", "/nowhere", [APP]), APP),
    ):
        assert (
            judge(
                verdict,
                origin=origin,
                request_method=None,
                request_headers=None,
                credentials=False,
                status=200,
                upstream_headers=REFLECTED,
            )
            is None
        )


def test_the_log_is_rate_limited_and_says_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    limited = ShadowLog(burst=2, interval=10.0, clock=lambda: now[0])
    judged = Judgement("refused", "allowed")
    caplog.set_level(logging.WARNING, "cors_edge.shadow")
    results = [limited("r", "GET", "/p", "http://o", judged) for _ in range(5)]
    assert results == [True, True, False, False, False]
    now[0] = 10.0
    assert limited("r", "GET", "/p", "http://o", judged)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3
    assert lines[0] == (
        "shadow disagreement: GET /p from http://o on r: cors-edge refused, upstream allowed"
    )
    assert lines[2].endswith("(3 more since the last line)")


def test_explain_says_a_shadow_route_forwards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    args = ["explain", "--config", str(policy), "--origin", "http://evil.test"]
    assert main([*args, "--method", "GET", "/api/x"]) == 0
    out = capsys.readouterr().out
    assert "answer:   enforce: shadow: forwarded to the upstream" in out
    assert "in shadow the application runs" in out
    assert "from cors-edge (not forwarded" not in out
