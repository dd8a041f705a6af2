"""The legacy app behind the method-override middleware of Flask's own documentation
("Adding HTTP Method Overrides"), as legacy apps that served old proxies have it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from examples.legacy_app import app as flask_app

ALLOWED = frozenset({"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"})
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class HTTPMethodOverrideMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if method in ALLOWED:
            environ["REQUEST_METHOD"] = method
        if method in BODYLESS:
            environ["CONTENT_LENGTH"] = "0"
        return self.app(environ, start_response)


app = HTTPMethodOverrideMiddleware(flask_app)
