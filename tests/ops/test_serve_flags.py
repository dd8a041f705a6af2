"""The serve flags this area owns: defaults, validation, and how they reach ServeOptions."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cli import build_parser
from tests.support import REPO


def serve_args(*argv: str) -> dict[str, object]:
    return vars(build_parser().parse_args(["serve", *argv]))


def test_defaults() -> None:
    args = serve_args()
    assert args["grace"] == 10.0
    assert args["drain_delay"] == 0.0
    assert args["watch"] is False
    assert args["watch_interval"] == 1.0
    assert args["log_format"] == "json"
    assert args["no_access_log"] is False


def test_values() -> None:
    args = serve_args(
        "--grace", "20", "--drain-delay", "5", "--watch", "--watch-interval", "0.5",
        "--log-format", "text", "--no-access-log",
    )  # fmt: skip
    assert (args["grace"], args["drain_delay"], args["watch_interval"]) == (20.0, 5.0, 0.5)
    assert args["watch"] is True
    assert args["log_format"] == "text"
    assert args["no_access_log"] is True


@pytest.mark.parametrize("flag", ["--grace", "--drain-delay", "--watch-interval"])
@pytest.mark.parametrize("bad", ["-1", "abc", "inf", "nan"])
def test_seconds_are_validated(flag: str, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        serve_args(flag, bad)
    assert exit_info.value.code == 2
    assert "seconds" in capsys.readouterr().err


def test_admin_never_on_the_public_port(tmp_path: Path) -> None:
    config = tmp_path / "policies.yaml"
    config.write_text("routes: []\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "proxy", "serve", "--config", str(config)),
            *("--upstream", "http://127.0.0.1:1", "--listen", address, "--admin", address),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 1
    assert "never served on the public port" in done.stderr


def test_busy_admin_port_leaves_the_proxy_serving(tmp_path: Path) -> None:
    import re
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from tests.support import REPO, LineCollector, _stop

    config = tmp_path / "p.yaml"
    config.write_text("routes: [{path: /public/**, origins: '*'}]\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        admin_port = busy.getsockname()[1]
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "serve",
                "--config",
                str(config),
                "--upstream",
                "http://127.0.0.1:9",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                f"127.0.0.1:{admin_port}",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stderr = LineCollector(process.stderr)
            stderr.wait_for(f"admin listener 127.0.0.1:{admin_port} unavailable")
            port = int(stderr.wait_for(r"listening on \S+?:(\d+) \(admin unavailable\)")[1])
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/public/x",
                method="OPTIONS",
                headers={"Origin": "http://a.test", "Access-Control-Request-Method": "GET"},
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 204
                assert answer.headers["Access-Control-Allow-Origin"] == "*"
            assert re.search("Traceback", stderr.text()) is None
        finally:
            assert _stop(process) == 0
