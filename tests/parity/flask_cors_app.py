"""The unmodified legacy app with Flask-CORS applied, configured like cors-edge's parity policy.

Run with ``gunicorn tests.parity.flask_cors_app:app``. The resources
(``tests/parity/resources.py``) are the equivalent of ``PARITY_POLICY`` in
``tests/parity/matrix.py``.
"""

from __future__ import annotations

from flask_cors import CORS

from examples.legacy_app import app
from tests.parity.resources import RESOURCES

CORS(app, resources=RESOURCES)
