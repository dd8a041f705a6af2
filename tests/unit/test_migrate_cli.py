"""proxy/migrate_cli.py: `cors-edge import` and `cors-edge test` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import build_parser, main


def test_import_and_test_parse_their_arguments() -> None:
    args = build_parser().parse_args(["import", "--output", "p.yaml", "a.py", "b.py"])
    assert (args.command, args.output, args.sources) == ("import", "p.yaml", ["a.py", "b.py"])
    args = build_parser().parse_args(["test", "--config", "p.yaml", "cases.yaml"])
    assert (args.command, args.config, args.cases) == ("test", "p.yaml", "cases.yaml")


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text("from flask_cors import CORS\nfrom flask import Flask\nCORS(Flask('x'))\n")
    assert main(["import", str(tmp_path / "missing.py")]) == 1
    assert "cannot read" in capsys.readouterr().err
    policy = tmp_path / "p.yaml"
    policy.write_text("routes:\n  - {path: /a, origins: '*'}\n")
    cases = tmp_path / "cases.yaml"
    cases.write_text("- {origin: http://a.test, method: GET, path: /a, expect: allowed}\n")
    assert main(["test", "--config", str(policy), str(cases)]) == 0
    assert capsys.readouterr().out.endswith("1 passed, 0 failed\n")
    cases.write_text("- {origin: http://a.test, method: GET, path: /a, expect: refused}\n")
    assert main(["test", "--config", str(policy), str(cases)]) == 1
    assert main(["test", "--config", str(tmp_path / "none.yaml"), str(cases)]) == 2
