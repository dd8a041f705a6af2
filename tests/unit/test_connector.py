"""proxy/connector.py: a literal upstream address is connected to without happy eyeballs.

The private method it overrides is pinned in tests/test_aiohttp_contract.py."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.connector import LiteralAddressConnector


async def test_connects_to_a_literal_address_without_happy_eyeballs(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import aiohappyeyeballs

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("happy eyeballs should not run for a literal address")

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", forbidden)

    async def hello(request: web.BaseRequest) -> web.Response:
        return web.Response(text="hello")

    runner = web.ServerRunner(web.Server(hello))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        connector = LiteralAddressConnector()
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            assert await response.text() == "hello"
    finally:
        await runner.cleanup()


async def test_refused_connection_is_a_client_connector_error() -> None:
    import socket

    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    async with aiohttp.ClientSession(connector=LiteralAddressConnector()) as session:
        try:
            await session.get(f"http://127.0.0.1:{port}/")
        except aiohttp.ClientConnectorError as error:
            assert error.port == port
        else:
            raise AssertionError("expected a refused connection")
