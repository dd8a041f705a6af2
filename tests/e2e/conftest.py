"""Fixtures for the end-to-end tests: two recording servers on two origins (probe)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.recorder import Recorder, start_recorder


@pytest.fixture
def a() -> Iterator[Recorder]:
    recorder = start_recorder("127.0.0.1")
    yield recorder
    recorder.close()


@pytest.fixture
def b() -> Iterator[Recorder]:
    recorder = start_recorder("localhost")  # another origin than a's (host and port)
    yield recorder
    recorder.close()
