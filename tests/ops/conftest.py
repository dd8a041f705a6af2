"""Fixtures for the operations tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    _GUNICORN_LISTENING,
    GUNICORN,
    REPO,
    EdgeFactory,
    LineCollector,
    Upstream,
    _stop,
)


def start_roomy_upstream(tmp: Path, *, workers: int = 2, threads: int = 32) -> Upstream:
    """The legacy app under gunicorn with enough threads *per worker* for a burst of
    slow requests: gthread workers do not share connections evenly (one worker may
    take 16 of 20), so each worker alone must be able to hold the whole burst."""
    request_log = tmp / "flask-requests.jsonl"
    process = subprocess.Popen(
        [
            GUNICORN,
            "--bind",
            "127.0.0.1:0",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "--graceful-timeout",
            "2",
            "examples.legacy_app:app",
        ],
        cwd=REPO,
        env={**os.environ, "LEGACY_APP_REQUEST_LOG": str(request_log)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    logs = LineCollector(process.stderr)
    try:
        match = logs.wait_for(_GUNICORN_LISTENING)
        logs.wait_for(r"Booting worker")
    except BaseException:
        _stop(process)
        raise
    return Upstream(process, f"http://127.0.0.1:{match[1]}", request_log, logs)


@pytest.fixture(scope="module")
def roomy_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_roomy_upstream(tmp_path_factory.mktemp("roomy-upstream"))
    yield server
    server.stop()


@pytest.fixture
def roomy_edge_factory(tmp_path: Path, roomy_upstream: Upstream) -> Iterator[EdgeFactory]:
    factory = EdgeFactory(tmp_path, roomy_upstream)
    yield factory
    factory.close()
