"""Three servers that are not cors-edge, for tests/browser/test_probe_vs_chromium.py.

Each does CORS its own way, configured the way their docs show:
- ``flask_app`` (gunicorn): Flask-CORS on several resources, plus ``/manual/...``,
  a hand-rolled "CORS" view whose answers come from the query string (how many apps
  really do it), for the answers no library gives: a trailing slash in
  Access-Control-Allow-Origin, two values, `True`, `*` next to Authorization...
- ``starlette_app`` (uvicorn): Starlette's CORSMiddleware, one instance per mount.
- ``falcon_app`` (gunicorn): Falcon's CORSMiddleware, one falcon.App per prefix.

The allowed page origin comes from the environment (PROBE_PAGE_ORIGIN), as the page
server's port is only known at run time. Every server can redirect (``?to=URL&code=N``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import falcon
from flask import Flask, Response, redirect, request
from flask_cors import CORS
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

PAGE = os.environ.get("PROBE_PAGE_ORIGIN", "http://localhost:3000")

# --- Flask + Flask-CORS ----------------------------------------------------------------

flask_app = Flask(__name__)
CORS(
    flask_app,
    resources={
        r"/fc/open/.*": {},  # Flask-CORS defaults: origins "*" (reflected), every header
        r"/fc/creds/.*": {"origins": [PAGE], "supports_credentials": True},
        r"/fc/strict/.*": {
            "origins": [PAGE],
            "methods": ["GET", "POST"],
            "allow_headers": ["Content-Type"],
        },
        r"/fc/wild/.*": {"origins": "*", "send_wildcard": True},
        r"/fc/starcreds/.*": {"origins": "*", "supports_credentials": True},
    },
)

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]  # Werkzeug upper-cases "patch"


@flask_app.route("/fc/<kind>/<path:rest>", methods=_METHODS)
def flask_cors_view(kind: str, rest: str) -> Any:
    target = request.args.get("to")
    if target:
        return redirect(target, code=int(request.args.get("code", "302")))
    return f"flask-cors {kind} {rest}\n"


def _pairs(values: Iterable[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, _, text = value.partition(":")
        pairs.append((name, text))
    return pairs


@flask_app.route(
    "/manual/<path:rest>", methods=[*_METHODS, "OPTIONS"], provide_automatic_options=False
)
def manual_view(rest: str) -> Response:
    """Answers with the headers named in the query: h= always, p= on preflights only."""
    preflight = request.method == "OPTIONS"
    headers = _pairs(request.args.getlist("h"))
    if preflight:
        headers += _pairs(request.args.getlist("p"))
        status = int(request.args.get("ps", "204"))
    else:
        status = int(request.args.get("code", "200"))
        if request.args.get("to"):
            headers.append(("Location", request.args["to"]))
    response = Response(b"" if status == 204 else b"manual\n", status=status)
    for name, value in headers:
        response.headers.add(name, value)
    return response


# --- Starlette + CORSMiddleware ----------------------------------------------------------


async def starlette_view(request: Request) -> PlainTextResponse | RedirectResponse:
    target = request.query_params.get("to")
    if target:
        return RedirectResponse(target, status_code=int(request.query_params.get("code", "302")))
    return PlainTextResponse(f"starlette {request.url.path}\n")


def _starlette_mount(path: str, **options: Any) -> Mount:
    inner = Starlette(routes=[Route("/{rest:path}", starlette_view, methods=_METHODS)])
    wrapped: ASGIApp = CORSMiddleware(inner, **options)
    return Mount(path, app=wrapped)


starlette_app = Starlette(
    routes=[
        _starlette_mount("/open", allow_origins=["*"]),  # the defaults: GET, no headers
        _starlette_mount(
            "/creds",
            allow_origins=[PAGE],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        ),
        _starlette_mount(
            "/starcreds",
            allow_origins=["*"],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        ),
        _starlette_mount(
            "/strict", allow_origins=[PAGE], allow_methods=["GET", "PUT"], allow_headers=["X-Token"]
        ),
        _starlette_mount("/regex", allow_origin_regex=r"http://localhost:[0-9]+"),
    ]
)

# --- Falcon + CORSMiddleware --------------------------------------------------------------


class _ReadWrite:
    def on_get(self, req: falcon.Request, resp: falcon.Response, case: str) -> None:
        target = req.get_param("to")
        if target:
            raise falcon.HTTPFound(target)
        resp.text = f"falcon {case}\n"

    on_post = on_put = on_patch = on_delete = on_get


class _ReadOnly:
    def on_get(self, req: falcon.Request, resp: falcon.Response, case: str) -> None:
        resp.text = f"falcon read-only {case}\n"


def _falcon(prefix: str, **options: Any) -> falcon.App:
    app = falcon.App(middleware=[falcon.CORSMiddleware(**options)])
    app.add_route(f"/{prefix}/items/{{case}}", _ReadWrite())
    app.add_route(f"/{prefix}/ro/{{case}}", _ReadOnly())
    return app


_FALCON_APPS = {
    "open": _falcon("open", allow_origins="*"),
    "creds": _falcon("creds", allow_origins=[PAGE], allow_credentials=[PAGE]),
    "starcreds": _falcon("starcreds", allow_origins="*", allow_credentials="*"),
}


def falcon_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """One falcon.App per first path segment (a CORSMiddleware is app-wide)."""
    prefix = environ.get("PATH_INFO", "/").split("/")[1]
    app = _FALCON_APPS.get(prefix)
    if app is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such falcon app\n"]
    return app(environ, start_response)  # type: ignore[no-any-return]
