"""A small legacy-style Flask application, the upstream cors-edge protects.

It is deliberately CORS-unaware (one route even sets a wrong header of its own),
as the applications cors-edge is meant for usually are. Besides the demo routes it
has a few diagnostic routes the test-suite and benchmarks use (echo, slow, big
bodies). Every request it serves is appended to the file named by
``LEGACY_APP_REQUEST_LOG`` (one JSON line each) when that variable is set, so tests
can prove which requests reached the application and which never did.

Run it with ``gunicorn examples.legacy_app:app``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

from flask import Flask, Response, jsonify, request

app = Flask(__name__)

_REQUEST_LOG = os.environ.get("LEGACY_APP_REQUEST_LOG")
_log_lock = threading.Lock()

_ITEMS: dict[int, dict[str, object]] = {
    1: {"id": 1, "name": "widget", "price": 9.5},
    2: {"id": 2, "name": "gadget", "price": 24.0},
}


@app.before_request
def _record_request() -> None:
    if not _REQUEST_LOG:
        return
    entry = {
        "method": request.method,
        "path": request.path,
        "raw_uri": request.environ.get("RAW_URI", ""),
        "origin": request.headers.get("Origin"),
        "host": request.headers.get("Host"),
        "x_forwarded_for": request.headers.get("X-Forwarded-For"),
        "marker": request.headers.get("X-Test-Marker"),
        "pid": os.getpid(),
    }
    with _log_lock, open(_REQUEST_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


# --- the "product" API --------------------------------------------------------


@app.get("/api/items")
def list_items() -> Response:
    response = jsonify(sorted(_ITEMS.values(), key=lambda item: int(str(item["id"]))))
    response.headers["X-Total-Count"] = str(len(_ITEMS))
    response.headers["X-Internal-Trace"] = "legacy-7f3a"
    response.headers["Vary"] = "Accept-Language"
    return response


@app.get("/api/items/<int:item_id>")
def get_item(item_id: int) -> Response | tuple[Response, int]:
    item = _ITEMS.get(item_id)
    if item is None:
        return jsonify(error="no such item"), 404
    return jsonify(item)


@app.post("/api/items")
def create_item() -> tuple[Response, int]:
    payload = request.get_json(force=True, silent=True) or {}
    new_id = max(_ITEMS, default=0) + 1
    _ITEMS[new_id] = {"id": new_id, "name": payload.get("name", "unnamed"), "price": 0}
    return jsonify(_ITEMS[new_id]), 201


@app.route("/api/items/<int:item_id>", methods=["PUT", "DELETE"])
def change_item(item_id: int) -> Response | tuple[Response, int]:
    if request.method == "DELETE":
        _ITEMS.pop(item_id, None)
        return jsonify(deleted=item_id)
    payload = request.get_json(force=True, silent=True) or {}
    _ITEMS.setdefault(item_id, {"id": item_id}).update(payload)
    return jsonify(_ITEMS[item_id])


@app.post("/api/login")
def login() -> Response:
    response = jsonify(logged_in=True)
    response.set_cookie("session", "legacy-session-42", samesite="None", secure=False)
    return response


@app.get("/api/me")
def whoami() -> Response | tuple[Response, int]:
    session = request.cookies.get("session")
    if session is None:
        return jsonify(user=None), 401
    return jsonify(user="alice", session=session)


@app.get("/api/legacy-cors")
def legacy_cors() -> Response:
    """A route whose author 'fixed CORS' by hand, wrongly: cors-edge must replace this."""
    response = jsonify(legacy=True)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


@app.get("/api/boom")
def boom() -> Response:
    raise RuntimeError("legacy code failed")


@app.get("/public/status")
def public_status() -> Response:
    return jsonify(status="ok", service="legacy")


@app.get("/v1/public/info")
def public_info() -> Response:
    return jsonify(version=1, public=True)


@app.route("/admin/users", methods=["GET", "POST", "DELETE"])
def admin_users() -> Response:
    """An admin endpoint no policy covers: cross-origin pages must never read it."""
    return jsonify(users=["alice", "bob"], method=request.method)


# --- diagnostics used by tests and benchmarks ---------------------------------


@app.route("/api/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@app.route("/public/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def echo() -> Response:
    body = request.get_data()
    return jsonify(
        method=request.method,
        path=request.path,
        raw_uri=request.environ.get("RAW_URI", ""),
        query=request.query_string.decode("latin-1"),
        headers={name: value for name, value in request.headers.items()},
        body_length=len(body),
        body=body[:1024].decode("utf-8", "replace"),
    )


@app.get("/api/ping")
def ping() -> Response:
    return Response("pong", mimetype="text/plain")


@app.get("/api/slow")
def slow() -> Response:
    seconds = min(float(request.args.get("seconds", "1")), 120.0)
    time.sleep(seconds)
    return jsonify(slept=seconds)


@app.get("/api/download")
def download() -> Response:
    """Stream ``mb`` MiB of a repeating pattern without holding it in memory."""
    total = int(float(request.args.get("mb", "1")) * 1024 * 1024)
    chunk = bytes(range(256)) * 256  # 64 KiB

    def generate() -> Iterator[bytes]:
        remaining = total
        while remaining > 0:
            piece = chunk[: min(len(chunk), remaining)]
            remaining -= len(piece)
            yield piece

    headers = {"Content-Length": str(total)} if request.args.get("sized") == "1" else {}
    return Response(generate(), mimetype="application/octet-stream", headers=headers)


@app.route("/api/upload", methods=["POST", "PUT"])
def upload() -> Response:
    """Consume the body in small pieces and report its size and a checksum."""
    import hashlib

    digest = hashlib.sha256()
    received = 0
    stream = request.stream
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        received += len(piece)
        digest.update(piece)
    if request.args.get("framing") != "1":
        return jsonify(received=received, sha256=digest.hexdigest())
    # ?framing=1: also the framing headers as Flask saw them (bodies arrive as sent).
    return jsonify(
        received=received,
        sha256=digest.hexdigest(),
        content_encoding=request.headers.get("Content-Encoding"),
        content_length=request.headers.get("Content-Length"),
    )


if __name__ == "__main__":
    app.run(port=5000)
