"""Flask-CORS resources equivalent to cors-edge's ``PARITY_POLICY`` (no side effects).

What a Flask-CORS user would write for that policy: resource keys are regexes matched
from the start of the path, and origins with regex characters are regexes matched from
the start of the origin. Defaults that differ between the two are set explicitly.
"""

from __future__ import annotations

from typing import Any

DEFAULT_METHODS = ["GET", "HEAD", "POST"]

RESOURCES: dict[str, dict[str, Any]] = {
    r"/api/*": {
        "origins": [
            "http://localhost:3000",
            r"https://.*\.example\.com",
            r"^https://pr-[0-9]+\.preview\.example\.com$",
        ],
        "methods": ["GET", "POST", "PUT", "DELETE"],
        "allow_headers": ["Content-Type", "Authorization"],
        "expose_headers": ["X-Total-Count"],
        "supports_credentials": True,
        "max_age": 600,
    },
    r"/public/*": {
        "origins": "*",
        # Flask-CORS reflects the origin by default; cors-edge sends "*" by default.
        "send_wildcard": True,
        "methods": DEFAULT_METHODS,
        "allow_headers": ["Content-Type"],
        "max_age": 600,
    },
    r"^/v[0-9]+/public/": {
        "origins": "*",
        "send_wildcard": False,
        "methods": DEFAULT_METHODS,
        "allow_headers": ["Content-Type"],
        "max_age": 600,
    },
    "/echo": {
        "origins": ["http://localhost:3000"],
        # Flask-CORS has no "whatever is asked" for methods: its default is every method.
        "methods": ["GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"],
        "allow_headers": "*",
        "max_age": 600,
        "allow_private_network": True,
    },
}
