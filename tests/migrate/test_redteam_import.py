"""Red-team findings on `cors-edge import`: the app's source is data, never policy text."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main
from proxy.loader import load_policy_file

# An origin string that is no origin (so import leaves it out with a comment quoting
# it) and holds a newline and a whole route after it.
INJECTED_ROUTE = (
    "http://b.test\\n  - path: /x/y\\n    origins:\\n      - https://evil.test\\n"
    "    supports_credentials: true\\n#"
)


@pytest.mark.parametrize(
    "value",
    [
        INJECTED_ROUTE,
        INJECTED_ROUTE.replace("\\n", "\\r"),
        INJECTED_ROUTE.replace("\\n", "\\u2028"),  # a line break to YAML, not to Python
        INJECTED_ROUTE.replace("\\n", "\\x85"),
        "http://c.test\\x00",
    ],
)
def test_a_string_in_the_app_cannot_write_policy_through_a_comment(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The importer quoted the app's strings in its comments as they were: a newline
    in a string ended the comment, and the rest became policy. Here that wrote a
    credentialed route for https://evil.test that Flask-CORS never had (the import said
    "wrote 1 routes", the file loaded with 2); NUL or other control bytes made the
    written file unloadable (exit 1, "the policy written does not load")."""
    app = tmp_path / "app.py"
    app.write_text(
        "from flask import Flask\nfrom flask_cors import CORS\napp = Flask(__name__)\n"
        'CORS(app, resources={r"/api/*": {"origins": ["http://a.test", "' + value + '"]}})\n'
    )
    output = tmp_path / "policies.yaml"
    assert main(["import", "--output", str(output), str(app)]) == 0, capsys.readouterr().err
    config = load_policy_file(output)
    assert len(config.routes) == 1, [rule.source for rule, _ in config.routes.entries]
    _, route = config.routes.entries[0]
    assert route.origins.exact == frozenset({"http://a.test"})
    assert not route.supports_credentials
