"""The one place cors-edge overrides aiohttp internals: keep it honest across upgrades."""

from __future__ import annotations

import inspect

import aiohttp
from aiohttp import web

from proxy.connector import LiteralAddressConnector


def test_overridden_method_still_has_the_signature_we_replace() -> None:
    parameters = inspect.signature(aiohttp.TCPConnector._wrap_create_connection).parameters
    assert list(parameters)[:2] == ["self", "args"]
    assert {"addr_infos", "req", "timeout", "client_error", "kwargs"} <= set(parameters)


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


def test_allocator_tuning_applies_on_glibc() -> None:
    import platform

    from proxy.lifecycle import keep_freed_memory

    assert platform.libc_ver()[0] == "glibc"  # what the image and CI run on
    assert keep_freed_memory() is True
