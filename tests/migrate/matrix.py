"""Case matrices for the Flask-CORS importer, with expected verdicts from Flask-CORS itself.

For each case the fixture app runs under Flask's test client with Flask-CORS as
configured in its source; the browser's check (proxy/browser.py) is applied to the
headers Flask-CORS really sent. Nothing here is written by hand: the expectation is what
a browser would have concluded in front of the unchanged app.
"""

from __future__ import annotations

import importlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from flask import Flask

from proxy import browser
from proxy.cases import Case, run_case
from proxy.cors import decide
from proxy.importer import read_sources
from proxy.importer_fields import Refusal
from proxy.importer_policy import ImportResult, build_policy
from proxy.loader import load_policy_text
from proxy.policy import Config

REPO = Path(__file__).resolve().parents[2]

ORIGINS = (
    "http://localhost:3000",
    "https://app.example.com",
    "https://app.example.com.evil.example",
    "https://partner.example",
    "https://partner.example.evil.example",
    "http://evil.test",
    "null",
)
METHODS = ("GET", "POST", "PUT", "DELETE")
HEADERS: tuple[tuple[tuple[str, str], ...], ...] = (
    (),
    (("Content-Type", "application/json"),),
    (("Authorization", "Bearer t"),),
    (("X-Custom", "1"),),
)


@dataclass(frozen=True)
class Fixture:
    name: str
    files: tuple[str, ...]
    paths: tuple[str, ...]
    factory: str | None = None  # a create_app-style function instead of a module-level app
    package: str = "tests.migrate.apps"  # where the files are (they are passed to import)

    def app(self) -> Flask:
        module = importlib.import_module(f"{self.package}.{self.files[0]}")
        app = getattr(module, self.factory)() if self.factory else module.app
        assert isinstance(app, Flask)
        return app

    def sources(self) -> list[Path]:
        base = REPO / self.package.replace(".", "/")
        return [(base / f"{name}.py").resolve() for name in self.files]


FIXTURES = {
    f.name: f
    for f in (
        Fixture("bare", ("bare",), ("/api/items", "/api/items/7")),
        Fixture("seed", ("seed",), ("/api/items", "/api/items/3", "/public/status", "/private")),
        Fixture(
            "factory",
            ("factory", "factory_settings"),
            ("/api/items", "/status", "/other"),
            factory="create_app",
        ),
        Fixture(
            "blueprints",
            ("blueprints",),
            (
                "/partners/orders",
                "/partners/orders/9",
                "/v2/reports/public",
                "/v2/reports/internal",
                "/public/info",
            ),
        ),
        Fixture("decorated", ("decorated",), ("/api/items", "/api/widget/5", "/feed", "/late")),
        Fixture("decorated_alone", ("decorated_alone",), ("/api/v1/things", "/hook", "/plain")),
        Fixture("stacked", ("stacked",), ("/api/stacked", "/api/single")),
        Fixture("unsafe", ("unsafe",), ("/api/me", "/embed", "/partner/data")),
        # The parity suite's Flask-CORS app: the bundled legacy app, resources in a module.
        Fixture(
            "parity",
            ("flask_cors_app", "resources", "../../examples/legacy_app"),
            ("/api/echo", "/public/echo", "/echo", "/v1/public/info", "/admin/users"),
            package="tests.parity",
        ),
    )
}


def cases(fixture: Fixture) -> list[Case]:
    out = []
    combos = itertools.product(ORIGINS, METHODS, fixture.paths, HEADERS, (False, True))
    for origin, method, path, headers, credentials in combos:
        shown = ",".join(name for name, _ in headers) or "-"
        name = f"{method} {path} from {origin} headers={shown}" + (" creds" if credentials else "")
        out.append(Case(name, 0, origin, method, path, headers, credentials, False, None))
    return out


def flask_cors_allows(app: Flask, case: Case) -> tuple[bool, int]:
    """Whether a browser let the page read the app's answer under Flask-CORS, and the
    status of the last answer it got."""
    client = app.test_client()
    page = browser.page_headers(list(case.headers))
    if browser.needs_preflight(case.method, page):
        names = browser.unsafe_header_names(page)
        asked = {"Origin": case.origin, "Access-Control-Request-Method": case.method}
        if names:
            asked["Access-Control-Request-Headers"] = ",".join(names)
        answer = client.open(case.path, method="OPTIONS", headers=asked)
        check = browser.check_preflight(
            origin=case.origin,
            method=case.method,
            header_names=names,
            credentials=case.credentials,
            status=answer.status_code,
            response_headers=list(answer.headers.items()),
        )
        if not check.ok:
            return False, answer.status_code
    answer = client.open(case.path, method=case.method, headers=[("Origin", case.origin), *page])
    check = browser.check_response(
        origin=case.origin,
        credentials=case.credentials,
        response_headers=list(answer.headers.items()),
    )
    return check.ok, answer.status_code


def imported(fixture: Fixture) -> tuple[ImportResult, Config]:
    sources = fixture.sources()
    result = build_policy(read_sources(sources), [str(p) for p in sources])
    return result, load_policy_text(result.text, f"{fixture.name}.yaml")


def explains(refusal: Refusal, case: Case) -> bool:
    """Whether a refusal the importer reported accounts for cors-edge refusing ``case``."""
    if refusal.kind == "wildcard-credentials":
        return True
    if refusal.kind == "null":
        return case.origin == "null"
    if refusal.kind == "regex-anchor":
        starts = re.match(refusal.pattern, case.origin, re.IGNORECASE) is not None
        return starts and re.fullmatch(refusal.pattern, case.origin, re.IGNORECASE) is None
    return False


@dataclass
class Comparison:
    expected: dict[str, bool]  # case name -> what Flask-CORS let the page read
    edge: dict[str, bool]
    explained: dict[str, str]  # case name -> refusal kind, where cors-edge refuses by design
    unexplained: list[str]


def compare(fixture: Fixture) -> tuple[list[Case], Comparison, ImportResult]:
    app = fixture.app()
    result, config = imported(fixture)
    by_route: dict[int, list[Refusal]] = {}
    for index, refusal in result.refusals:
        by_route.setdefault(index, []).append(refusal)
    comparison = Comparison({}, {}, {}, [])
    all_cases = cases(fixture)
    for case in all_cases:
        want, status = flask_cors_allows(app, case)
        got = run_case(config, case).allowed
        comparison.expected[case.name] = want
        comparison.edge[case.name] = got
        if want == got:
            continue
        route = decide(config.routes, case.method, case.path, [case.origin]).route
        reasons = by_route.get(route.index, []) if route is not None else []
        kinds = [r.kind for r in reasons if want and not got and explains(r, case)]
        if not want and got and status == 405 and route is not None:
            # Flask answers a method the view is not routed for before Flask-CORS runs;
            # cors-edge has no per-method routes, so it stamps that 405 (no data in it).
            kinds.append("405")
        if kinds:
            comparison.explained[case.name] = kinds[0]
        else:
            comparison.unexplained.append(
                f"{case.name}: Flask-CORS {'allowed' if want else 'refused'}, "
                f"cors-edge {'allowed' if got else 'refused'}"
            )
    return all_cases, comparison, result


def cases_yaml(all_cases: list[Case], verdicts: dict[str, bool]) -> str:
    items = []
    for case in all_cases:
        item: dict[str, object] = {
            "name": case.name,
            "origin": case.origin,
            "method": case.method,
            "path": case.path,
            "expect": "allowed" if verdicts[case.name] else "refused",
        }
        if case.headers:
            item["headers"] = [f"{name}: {value}" for name, value in case.headers]
        if case.credentials:
            item["credentials"] = True
        items.append(item)
    return yaml.safe_dump(items, sort_keys=False)
