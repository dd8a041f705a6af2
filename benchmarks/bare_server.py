"""A bare aiohttp+uvloop server with fixed answers: the practical ceiling for a Python edge.

``web`` uses an ``aiohttp.web.Application`` with one catch-all route; ``lowlevel`` uses
``aiohttp.web.Server`` (no router, no middlewares). ``OPTIONS`` gets a fixed ``204``
carrying the same preflight headers cors-edge sends; anything else gets ``200 pong``.

``forward`` is the floor for an aiohttp proxy: ``web.Server`` relaying every request
through one pooled ``aiohttp.ClientSession`` to ``--upstream`` (body read whole, no
header filtering, no CORS decision) and adding a fixed ``Access-Control-Allow-Origin``.

    python -m benchmarks.bare_server --port 8081 web|lowlevel
    python -m benchmarks.bare_server --port 8081 --upstream http://127.0.0.1:5000 forward
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "http://localhost:3000",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Requested-With",
    "Access-Control-Max-Age": "600",
    "Access-Control-Allow-Credentials": "true",
    "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
}


async def answer(request: web.BaseRequest) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=PREFLIGHT_HEADERS)
    return web.Response(text="pong")


async def serve_forward(port: int, upstream: str) -> None:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )

    async def relay(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read() if request.body_exists else None
        headers = {"Host": request.host}
        if request.content_type and body is not None:
            headers["Content-Type"] = request.content_type
        async with session.request(
            request.method, upstream + request.raw_path, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            out = {
                "Content-Type": answer.headers.get("Content-Type", "application/octet-stream"),
                "Access-Control-Allow-Origin": PREFLIGHT_HEADERS["Access-Control-Allow-Origin"],
                "Vary": "Origin",
            }
            return web.Response(status=answer.status, body=payload, headers=out)

    await serve_lowlevel(port, relay)


async def serve_lowlevel(
    port: int,
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] = answer,
) -> None:
    server = web.Server(handler, access_log=None)
    loop = asyncio.get_running_loop()
    await loop.create_server(server, "127.0.0.1", port, backlog=4096)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", help="for forward: http://host:port")
    parser.add_argument("mode", choices=["web", "lowlevel", "forward"])
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.mode == "web":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        web.run_app(
            app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096
        )
    elif args.mode == "forward":
        asyncio.run(serve_forward(args.port, args.upstream))
    else:
        asyncio.run(serve_lowlevel(args.port))


if __name__ == "__main__":
    main()
