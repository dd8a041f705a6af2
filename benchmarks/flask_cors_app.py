"""The legacy app with Flask-CORS applied in-process: what users run today.

The resources mirror config/policies.yaml as closely as Flask-CORS allows (its
resource keys are regexes matched from the start of the path, its origin strings
are regexes when they contain regex characters). The legacy app itself is untouched.

    gunicorn benchmarks.flask_cors_app:app
"""

from __future__ import annotations

from flask_cors import CORS

from examples.legacy_app import app

CORS(
    app,
    resources={
        r"/api/.*": {
            "origins": [
                "http://localhost:3000",
                r"https://([a-z0-9-]+\.)+example\.com",
                r"https://pr-[0-9]+\.preview\.example\.com",
            ],
            "methods": ["GET", "POST", "PUT", "DELETE"],
            "allow_headers": ["Content-Type", "Authorization", "X-Requested-With"],
            "expose_headers": ["X-Total-Count"],
            "supports_credentials": True,
            "max_age": 600,
        },
        r"/public/.*": {"origins": "*"},
        r"/v[0-9]+/public/.*": {"origins": "*"},
    },
)

__all__ = ["app"]
