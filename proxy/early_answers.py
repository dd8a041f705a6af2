"""Edge answers written as soon as their request is parsed, before aiohttp builds it.

A preflight is the request an edge serves most, and its answer is fixed bytes
(:func:`proxy.edge_answers.prepared_answer`). The way aiohttp hands a parsed
request to a handler (a future woken, a task per request, a request object, a
response prepared and drained) costs more than deciding and answering it. So the
connection handler (:class:`proxy.protocol.EdgeRequestHandler`) offers each parsed
message to :meth:`EarlyAnswerParser.feed_data`'s ``answer`` first; what it answers
never reaches aiohttp, everything else goes aiohttp's way unchanged.

Only the plainest case is answered early (the handler checks the connection, the
server the request; see ``EdgeRequestHandler.answer_early``): HTTP/1.1 keep-alive,
no body, no Upgrade, nothing :func:`proxy.refusals.head_refusal` refuses, on an idle
connection whose client is reading (answers stay in order, and a client that
pipelines without reading is held back by aiohttp's flow control as before), and a
verdict answered at the edge on an enforcing route.

Only leading messages are taken: once one is left to aiohttp, every later one in
the read is too, so answers go out in request order.

Reliance on aiohttp internals (aiohttp 3.14, pinned): the request parser object (the
handler's private ``_parser``, as in :mod:`proxy.parser_guard`), its
``message_consumed()`` (the parser counts the messages it has handed out and pauses
after ``MAX_MSG_QUEUE_SIZE`` of them) and its ``feed_data(b"")`` (parsing on from what
it kept after pausing). ``tests/test_aiohttp_contract.py`` pins them;
``tests/unit/test_early_answers.py`` checks the behaviour over sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import MAX_MSG_QUEUE_SIZE

# A parsed message -> whether it was answered (and must not go to aiohttp).
Answer = Callable[[RawRequestMessage], bool]


class EarlyAnswerParser:
    """Delegates to the request parser, and offers ``answer`` each leading message
    without a body; see the module docstring."""

    __slots__ = ("_answer", "_inner")

    def __init__(self, inner: Any, answer: Answer) -> None:
        self._inner = inner
        self._answer = answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def message_consumed(self) -> None:
        # Called once per request: spelled out, as __getattr__ costs a failed lookup.
        self._inner.message_consumed()

    def feed_data(self, data: bytes) -> tuple[Any, bool, bytes]:
        inner, answer = self._inner, self._answer
        messages, upgraded, tail = inner.feed_data(data)
        while messages:
            taken = 0
            for message, payload in messages:
                if payload is not EMPTY_PAYLOAD or not answer(message):
                    break
                taken += 1
                inner.message_consumed()
            if taken < len(messages):
                return messages[taken:], upgraded, tail
            if len(messages) < MAX_MSG_QUEUE_SIZE:
                break
            # The parser paused with a full queue, keeping the rest of the read; all
            # of it was answered, so parse on (nothing else would: no read is due).
            messages, upgraded, tail = inner.feed_data(b"")
        return [], upgraded, tail
