"""What cors-edge relies on in aiohttp beyond its documented API, pinned in one place.

aiohttp is pinned to 3.14 (pyproject.toml). If an upgrade moves one of these names or
behaviours, a test here says which module needs attention:

- proxy/protocol.py subclasses the connection handler and reads its internals;
- proxy/edge_answers.py hands the handler a RawAnswer, which is no StreamResponse;
- proxy/relayed.py overrides two private steps of a response's head (nothing invented,
  header bytes as the upstream sent them).

(proxy/forward.py no longer reads aiohttp's wrapped exceptions: plain HTTP goes over
the lean client, whose failures are its own types.)
"""

from __future__ import annotations

import inspect

import aiohttp
from aiohttp import http_writer, web, web_protocol, web_request, web_server
from aiohttp.base_protocol import BaseProtocol

from proxy.protocol import EdgeHTTPServer, EdgeRequestHandler


def test_the_pinned_aiohttp() -> None:
    assert aiohttp.__version__.startswith("3.14.")


# --- proxy/protocol.py --------------------------------------------------------------


def test_connection_handler_internals_protocol_relies_on() -> None:
    assert hasattr(web_protocol, "_ErrInfo")
    slots = set(web_protocol.RequestHandler.__slots__) | set(BaseProtocol.__slots__)
    assert {
        "_request_count",
        "_waiter",
        "_force_close",
        "_upgraded",
        "_messages",
        "_current_request",
        "_loop",
    } <= slots
    source = inspect.getsource(web_protocol.RequestHandler.data_received)
    assert "_ErrInfo(status=400" in source  # parser errors become queued _ErrInfo messages
    assert "self._request_count += 1" in source
    finish = inspect.signature(web_protocol.RequestHandler.finish_response)
    assert list(finish.parameters) == ["self", "request", "resp", "start_time"]
    assert "await self.finish_response(" in inspect.getsource(web_protocol.RequestHandler)
    handle_error = inspect.signature(web_protocol.RequestHandler.handle_error)
    assert list(handle_error.parameters) == ["self", "request", "status", "exc", "message"]
    assert issubclass(EdgeRequestHandler, web_protocol.RequestHandler)


def test_what_early_answers_rely_on() -> None:
    """proxy/early_answers.py and EdgeRequestHandler's early way: the parser pauses
    after MAX_MSG_QUEUE_SIZE messages in flight until message_consumed() frees a slot,
    bodiless requests come with the shared EMPTY_PAYLOAD, and keep_alive() stops the
    handler's keep-alive timer (tests/unit/test_early_answers.py: the behaviour)."""
    from aiohttp.streams import EMPTY_PAYLOAD

    assert web_protocol.MAX_MSG_QUEUE_SIZE == 32
    start = inspect.getsource(web_protocol.RequestHandler.start)
    assert "self._parser.message_consumed()" in start
    assert "self._keepalive_handle = loop.call_at(" in start
    keep_alive = inspect.getsource(web_protocol.RequestHandler.keep_alive)
    assert "self._keepalive_handle.cancel()" in keep_alive
    assert isinstance(web_protocol.RequestHandler.writing_paused, property)
    assert EMPTY_PAYLOAD.is_eof()


def test_low_level_server_internals_protocol_relies_on() -> None:
    init = inspect.getsource(web_server.Server.__init__)
    assert "self._kwargs = kwargs" in init and "self._loop = " in init
    assert callable(web_server.Server.pre_shutdown)  # undocumented: closes idle connections
    assert list(inspect.signature(web_server.Server.shutdown).parameters) == ["self", "timeout"]
    assert issubclass(EdgeHTTPServer, web.Server)


def test_request_writer_carries_the_100_continue_line() -> None:
    writer = inspect.getattr_static(web_request.BaseRequest, "writer")
    assert isinstance(writer, property)
    assert "eof_received" in vars(web_protocol.RequestHandler)  # ours overrides aiohttp's


# --- proxy/edge_answers.py ----------------------------------------------------------


def test_handler_results_are_only_prepared_ended_and_asked_keep_alive() -> None:
    """RawAnswer provides prepare(), write_eof(), keep_alive and status: all the
    connection handler uses of a handler's result (access logging is off)."""
    finish = inspect.getsource(web_protocol.RequestHandler.finish_response)
    assert "prepare_meth = resp.prepare" in finish and "await resp.write_eof()" in finish
    assert "self._keepalive = bool(resp.keep_alive)" in inspect.getsource(
        web_protocol.RequestHandler.start
    )


# --- proxy/relayed.py -----------------------------------------------------------------


def test_response_head_steps_relayed_overrides() -> None:
    """RelayedResponse takes back what _prepare_headers invents (Server, Content-Type)
    and replaces the serialised head _write_headers leaves in _headers_buf."""
    prepare = inspect.getsource(web.StreamResponse._prepare_headers)
    assert "hdrs.SERVER" in prepare and "hdrs.CONTENT_TYPE" in prepare
    assert inspect.iscoroutinefunction(web.StreamResponse._write_headers)
    write = inspect.getsource(web.StreamResponse._write_headers)
    assert "write_headers(status_line, self._headers)" in write
    assert "_headers_buf" in inspect.getsource(http_writer.StreamWriter.write_headers)
