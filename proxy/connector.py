"""A TCP connector for an upstream given as a literal IP address.

A sync gunicorn worker closes every connection, so the proxy connects once per
request. aiohttp's connector routes each connect through aiohappyeyeballs (a Python
socket, ``sock_connect``, then ``create_connection(sock=...)``), which is built for
racing many resolved addresses; for one literal address the event loop's own
``create_connection`` does the same job in C and costs far less CPU per request.

Private aiohttp API used here (the client side's only such module): it overrides
``TCPConnector._wrap_create_connection`` (stable across aiohttp 3.9 to 3.14), reads
the connector's ``_loop`` and the request's ``connection_key``, and uses
``aiohttp.helpers.ceil_timeout``. aiohttp is pinned in pyproject.toml for it;
``tests/test_aiohttp_contract.py`` checks the signatures and
``tests/unit/test_connector.py`` the behaviour, so an upgrade that changes them fails
loudly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.client_exceptions import ClientConnectorError
from aiohttp.helpers import ceil_timeout
from yarl import URL

from .policy import Timeouts


class LiteralAddressConnector(aiohttp.TCPConnector):
    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[Any],
        req: Any,
        timeout: aiohttp.ClientTimeout,
        client_error: type[Exception] = ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, Any]:
        if kwargs.get("ssl") or len(addr_infos) != 1:
            return await super()._wrap_create_connection(
                *args,
                addr_infos=addr_infos,
                req=req,
                timeout=timeout,
                client_error=client_error,
                **kwargs,
            )
        address = addr_infos[0][4]
        try:
            async with ceil_timeout(timeout.sock_connect, ceil_threshold=timeout.ceil_threshold):
                transport, protocol = await self._loop.create_connection(
                    args[0], address[0], address[1]
                )
                return transport, protocol
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc


def make_connector(
    base: str, unix_path: str | None, limit: int, timeouts: Timeouts
) -> aiohttp.BaseConnector:
    """The connector for the upstream at ``base`` (or its UNIX socket); ``limit`` 0 is
    unlimited."""
    if unix_path is not None:
        return aiohttp.UnixConnector(
            path=unix_path, limit=limit, keepalive_timeout=timeouts.upstream_idle
        )
    family = _family_for(base)
    # A literal IP needs no resolver and no address racing: connect directly.
    connector_class = (
        LiteralAddressConnector if family != socket.AF_UNSPEC else aiohttp.TCPConnector
    )
    return connector_class(
        limit=limit,
        family=family,
        use_dns_cache=True,
        ttl_dns_cache=10,
        enable_cleanup_closed=False,
        keepalive_timeout=timeouts.upstream_idle,
    )


def _family_for(base: str) -> socket.AddressFamily:
    host = URL(base).host or ""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return socket.AF_UNSPEC
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET
