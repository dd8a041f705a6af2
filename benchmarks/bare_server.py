"""A bare aiohttp+uvloop server with fixed answers: the practical ceiling for a Python edge.

``web`` uses an ``aiohttp.web.Application`` with one catch-all route; ``lowlevel`` uses
``aiohttp.web.Server`` (no router, no middlewares). ``OPTIONS`` gets a fixed ``204``
carrying the same preflight headers cors-edge sends; anything else gets ``200 pong``.

    python -m benchmarks.bare_server --port 8081 web|lowlevel
"""

from __future__ import annotations

import argparse
import asyncio

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


async def serve_lowlevel(port: int) -> None:
    server = web.Server(answer, access_log=None)
    loop = asyncio.get_running_loop()
    await loop.create_server(server, "127.0.0.1", port, backlog=4096)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("mode", choices=["web", "lowlevel"])
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
    else:
        asyncio.run(serve_lowlevel(args.port))


if __name__ == "__main__":
    main()
