"""Reading the policy file: regular files only, bounded in size and in time."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from proxy.drafts import PolicyError
from proxy.policyread import MAX_POLICY_BYTES, BoundedReader, read_policy_bytes


def test_a_regular_file_and_a_symlink_to_one_are_read(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_bytes(b"routes: []\n")
    link = tmp_path / "policies.yaml"
    link.symlink_to(target)
    assert read_policy_bytes(target) == read_policy_bytes(link) == b"routes: []\n"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: os.mkfifo(p), "a FIFO"),
        (lambda p: p.symlink_to("/dev/zero"), "a character device"),
        (lambda p: p.mkdir(), "a directory"),
    ],
)
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path: Path, make, kind: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "policies.yaml"
    make(path)
    with pytest.raises(PolicyError) as caught:
        read_policy_bytes(path)  # a FIFO nobody writes would block open() for ever
    assert str(caught.value) == (
        f"{path}:0 (file): cannot read: {kind}; the policy must be a regular file"
    )


def test_the_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 101)
    assert read_policy_bytes(path, limit=101) == b"#" * 101
    with pytest.raises(PolicyError, match="larger than the 100 byte limit"):
        read_policy_bytes(path, limit=100)
    assert MAX_POLICY_BYTES == 8 * 1024 * 1024


def test_a_missing_file_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r":0 \(file\): cannot read: No such file"):
        read_policy_bytes(tmp_path / "nope.yaml")


class Hung:
    """A reader that blocks like a read on a hung mount, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, path: Path) -> bytes:
        self.calls += 1
        self.release.wait(30)
        return b"late"


async def test_a_stuck_read_times_out_and_later_reads_are_refused_until_it_returns() -> None:
    hung = Hung()
    reader = BoundedReader(Path("/mnt/hung/policies.yaml"), timeout=0.05, read=hung)
    ticks = 0

    async def ticker() -> None:  # the event loop keeps running meanwhile
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker())
    with pytest.raises(PolicyError, match=r"no answer within 0\.05 s \(a hung mount\?\)"):
        await reader.read()
    running.cancel()
    assert ticks > 1
    with pytest.raises(PolicyError, match="an earlier read has still not returned"):
        await reader.read()
    assert hung.calls == 1  # no thread piles up behind the stuck one
    hung.release.set()
    while reader._stuck is not None and reader._stuck.is_alive():
        await asyncio.sleep(0.01)
    assert await reader.read() == b"late"
    assert hung.calls == 2


def test_the_blocking_read_is_bounded_too(tmp_path: Path) -> None:
    hung = Hung()
    reader = BoundedReader(tmp_path / "p.yaml", timeout=0.05, read=hung)
    with pytest.raises(PolicyError, match="no answer within"):
        reader.read_blocking()
    hung.release.set()
    good = BoundedReader(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_bytes(b"x: 1\n")
    assert good.read_blocking() == b"x: 1\n"
    with pytest.raises(PolicyError, match="No such file"):
        BoundedReader(tmp_path / "missing.yaml").read_blocking()


def test_the_bytes_read_hash_to_the_configs_sha256(tmp_path: Path) -> None:
    # --watch compares this digest with Config.sha256 to skip unchanged content.
    import hashlib

    from proxy.loader import load_policy_file

    path = tmp_path / "policy.yaml"
    path.write_text("routes:\n  - {path: /api/**, origins: [http://localhost:3000]}\n")
    assert hashlib.sha256(read_policy_bytes(path)).hexdigest() == load_policy_file(path).sha256


async def test_a_fixed_policy_says_there_is_no_file_to_re_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from proxy.policyread import FixedPolicy

    fixed = FixedPolicy("routes: []\n", "--allow-origin x")
    assert fixed.read_blocking() == b"routes: []\n" and fixed.source == "--allow-origin x"
    with caplog.at_level("INFO", logger="cors_edge"):
        assert await fixed.read() == b"routes: []\n"
    assert "no policy file to re-read" in caplog.text
