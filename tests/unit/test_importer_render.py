"""proxy/importer_render.py: scalars that YAML reads back unchanged."""

from __future__ import annotations

import yaml

from proxy.importer_render import scalar


def test_scalars_read_back_as_the_same_strings() -> None:
    texts = [
        "/api/**", "/api/*", r"^/v[0-9]+/public/", "http://localhost:3000", "true", "null",
        "600", "no", "*", "a: b", "#x", r"^(?i:https://.*\.example\.com)$", "Content-Type",
        "'quoted'", "{braces}", "-dash",
    ]  # fmt: skip
    for text in texts:
        assert yaml.safe_load(f"key: {scalar(text)}") == {"key": text}, text


def test_plain_where_it_reads_well() -> None:
    assert scalar("http://localhost:3000") == "http://localhost:3000"
    assert scalar("/api/**") == "/api/**"
    assert scalar("true") == '"true"'
