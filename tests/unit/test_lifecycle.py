"""proxy/lifecycle.py: a Service started and stopped in-process, in front of the real
Flask app (signals, reload through the file and draining under load are in tests/ops)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.lifecycle import ServeOptions, Service, split_address
from tests.e2e.http import fetch
from tests.support import Upstream

POLICY = """
listen: 127.0.0.1:0
admin: 127.0.0.1:0
routes:
  - path: /api/**
    origins: [http://localhost:3000]
"""


def test_split_address() -> None:
    assert split_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_address("[::1]:9901") == ("::1", 9901)
    assert split_address(":8080") == ("0.0.0.0", 8080)


async def test_a_service_serves_then_drains(tmp_path: Path, upstream: Upstream) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    service = Service(ServeOptions(config=path, upstream=upstream.url, grace=2.0))
    await service.start()
    try:
        assert service.edge_address is not None and service.admin_address is not None
        edge = "http://{}:{}".format(*service.edge_address)
        admin = "http://{}:{}".format(*service.admin_address)
        answer = await fetch("GET", edge + "/api/ping", {"Origin": "http://localhost:3000"})
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        ready = await fetch("GET", admin + "/readyz")
        assert ready.status == 200 and ready.json()["generation"] == 1  # type: ignore[index]
    finally:
        await service.stop()
    assert service.admin_state.draining and not service.admin_state.ready
    with pytest.raises(OSError):
        await fetch("GET", edge + "/api/ping", timeout=5)


async def test_the_admin_listener_never_shares_the_public_port(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        POLICY.replace("admin: 127.0.0.1:0", "admin: 127.0.0.1:18080").replace(
            "listen: 127.0.0.1:0", "listen: 127.0.0.1:18080"
        )
    )
    service = Service(ServeOptions(config=path))
    with pytest.raises(OSError, match="never served on the public port"):
        await service.start()
