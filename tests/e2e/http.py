"""A tiny HTTP helper for end-to-end tests: one request, the whole answer."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def cors(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.lower().startswith("access-control-")}

    def json(self) -> object:
        import json

        return json.loads(self.body)


async def fetch(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 20,
) -> Answer:
    async with (
        aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
        ) as session,
        session.request(
            method,
            aiohttp.client.URL(url, encoded=True),
            headers=headers,
            data=data,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response,
    ):
        body = await response.read()
        return Answer(response.status, response.headers, body)
