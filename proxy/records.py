"""What the edge remembers about requests: the policy in force, and one record per request.

- :class:`PolicyHolder` holds the :class:`Snapshot` in force: the configuration, the
  verdict cache built for it and its generation, swapped together in one assignment
  (a request reads the snapshot once and never sees a cache of another generation).
- :class:`RequestRecord` is what happened to one request; the server hands it to
  every :data:`Observer` (access log, upstream error log, metrics) when it is done.
- :class:`ErrorKind` names why a request failed and knows whose fault that was:
  the client's (its body) or the upstream's.

Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .cors import Verdict, VerdictCache
from .debug import debug_annotator
from .policy import Config


class ErrorKind(StrEnum):
    """Why the edge answered for a request itself, or cut its response off."""

    CONNECT = "connect"  # the upstream refused the connection or is unreachable
    TIMEOUT = "timeout"  # the upstream did not connect or answer in time
    DISCONNECTED = "disconnected"  # the upstream closed the connection without answering
    PAYLOAD = "payload"  # the upstream failed while receiving the request body
    UPSTREAM = "upstream"  # any other upstream failure; the exception's name is the detail
    POOL_TIMEOUT = "pool_timeout"  # no upstream connection came free within timeouts.pool_wait
    BAD_RESPONSE = "bad_response"  # the upstream's answer is not valid HTTP; detail says why
    BODY_TOO_LARGE = "body_too_large"  # the client's body is past limits.max_body_bytes
    CLIENT_BODY_TIMEOUT = "client_body_timeout"  # the client went silent mid-body
    CLIENT_BODY_INCOMPLETE = "client_body_incomplete"  # the client stopped short of its body
    CLIENT_ABORTED = "client_aborted"  # the client went away mid-response (a cancelled download)
    CLIENT_SEND_TIMEOUT = "client_send_timeout"  # the client stopped reading its response
    WEBSOCKET_HANDSHAKE = "websocket_handshake"  # the upstream answered an upgrade with no 101
    WEBSOCKETS_FULL = "websockets_full"  # limits.max_websockets are open already

    @property
    def is_client(self) -> bool:
        """The client's doing (logged at INFO, not counted as an upstream error)."""
        return self in _CLIENT_KINDS


_CLIENT_KINDS = frozenset(
    {
        ErrorKind.BODY_TOO_LARGE,
        ErrorKind.CLIENT_BODY_TIMEOUT,
        ErrorKind.CLIENT_BODY_INCOMPLETE,
        ErrorKind.CLIENT_ABORTED,
        ErrorKind.CLIENT_SEND_TIMEOUT,
    }
)


@dataclass(frozen=True, slots=True)
class RequestError:
    """One failure: its kind, whether the response was already under way, and detail."""

    kind: ErrorKind
    aborted: bool = False  # the response head was sent: the client saw a cut-off response
    # For ErrorKind.UPSTREAM the exception's class name; for BAD_RESPONSE what was wrong.
    detail: str | None = None

    @property
    def label(self) -> str:
        """How the access log and the metrics name it: ``timeout``, ``aborted:connect``."""
        name = self.detail if self.kind is ErrorKind.UPSTREAM and self.detail else self.kind
        return f"aborted:{name}" if self.aborted else str(name)

    @property
    def is_client(self) -> bool:
        return self.kind.is_client


@dataclass(slots=True)
class RequestRecord:
    """What happened to one request; handed to observers (access log, metrics)."""

    method: str
    path: str
    route: str | None
    origin: str | None
    decision: str
    status: int
    bytes_sent: int
    upstream_ms: float | None
    total_ms: float
    error: RequestError | None = None
    shadow: tuple[str, str] | None = None  # (ours, upstream) on an enforce: shadow disagreement
    generation: int = 0


Observer = Callable[[RequestRecord], None]
# Rewrites each new verdict once before the cache keeps it (serve --debug: proxy/debug.py).
Annotator = Callable[[Verdict, Sequence[str]], Verdict]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The configuration in force, with its verdict cache and generation."""

    config: Config
    verdicts: VerdictCache
    generation: int

    @classmethod
    def of(cls, config: Config, generation: int, annotate: Annotator | None = None) -> Snapshot:
        return cls(config, VerdictCache(config, annotate=annotate), generation)


class PolicyHolder:
    """The snapshot in force, swapped in one assignment; each request reads it once.

    ``annotate`` is the serve-time verdict rewrite (``--debug``), kept across swaps."""

    __slots__ = ("annotate", "snapshot")

    def __init__(self, config: Config, annotate: Annotator | None = None) -> None:
        self.annotate = annotate
        self.snapshot = Snapshot.of(config, 1, annotate)

    @classmethod
    def serving(cls, config: Config, debug: str | None) -> PolicyHolder:
        """The holder ``serve`` uses: with the annotator of its ``--debug`` mode
        (:func:`proxy.debug.debug_annotator`: raises DebugRefused for ``--debug`` on a
        listener that is not loopback)."""
        return cls(config, debug_annotator(debug, config.listen))

    @property
    def current(self) -> Config:
        return self.snapshot.config

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    def swap(self, config: Config, generation: int | None = None) -> int:
        """Put ``config`` in force as the next generation (or as ``generation``, which
        the parent of ``--workers N`` numbers for all its workers alike); returns it."""
        snapshot = Snapshot.of(config, generation or self.snapshot.generation + 1, self.annotate)
        self.snapshot = snapshot
        return snapshot.generation
