"""The HTTP side of ``spectrum serve``: uvicorn with deadlines and a connection cap against slow clients.

uvicorn (h11) waits forever for a request whose headers never finish, so a few hundred such connections
("slowloris") use up the open-file limit and a fresh ``/api/health`` hangs. :class:`GuardedH11Protocol` adds:

- a **header deadline**: a connection must deliver a complete request line and headers within
  ``header_timeout_s`` of connecting (or of its previous response); otherwise it gets ``408`` and is closed;
- an **idle deadline** between requests on a kept-alive connection (uvicorn's ``timeout_keep_alive``,
  set to ``idle_timeout_s``);
- a **connection cap** (``max_connections``): when it is reached, the connection that has waited longest without
  sending a complete request is closed to make room; if every connection is busy with a request, the new one
  gets ``503`` with ``Retry-After`` and is closed. A health check therefore gets through a flood of slow clients.

Slow request *bodies* are bounded by the app itself (408 after ``request_timeout_s``, :mod:`.app`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["GuardedH11Protocol", "build_server", "guarded_protocol", "serve"]


def _reply(transport: asyncio.BaseTransport, status: str, body: bytes, extra: str = "") -> None:
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n")
    try:
        transport.write(head.encode("ascii") + body)  # type: ignore[attr-defined]
    finally:
        transport.close()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (set by :func:`guarded_protocol`)."""

    header_timeout_s: float = 10.0
    max_connections: int = 256

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None
        if len(self.connections) >= self.max_connections and not self._evict_one_waiting():
            self.transport = transport
            _reply(transport, "503 Service Unavailable",
                   b'{"error": "server busy: too many open connections; try again later"}', "retry-after: 1\r\n")
            return
        super().connection_made(transport)
        self._arm_header_deadline()

    def _evict_one_waiting(self) -> bool:
        """Close the connection that has waited longest without a complete request; False if there is none."""
        waiting = [c for c in self.connections
                   if isinstance(c, GuardedH11Protocol) and c._waiting_since is not None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._waiting_since)  # type: ignore[arg-type,return-value]
        oldest._header_timed_out(status="503 Service Unavailable",
                                 body=b'{"error": "connection closed to make room: no complete request"}')
        self.connections.discard(oldest)
        return True

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._waiting_since = time.monotonic()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        self._waiting_since = None

    def _header_timed_out(self, status: str = "408 Request Timeout",
                          body: bytes = b'{"error": "the request headers did not arrive in time"}') -> None:
        self._disarm_header_deadline()
        if not self.transport.is_closing():
            _reply(self.transport, status, body)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_since is not None and self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()  # a complete request line and headers arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the next request's headers are on the same clock

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass with these limits (uvicorn takes a protocol class as ``http``)."""
    if not header_timeout_s > 0:
        raise ValueError(f"header_timeout_s must be > 0, got {header_timeout_s}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, got {max_connections}")
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": float(header_timeout_s), "max_connections": int(max_connections)})


def build_server(app: Any, host: str, port: int, *, header_timeout_s: float = 10.0, idle_timeout_s: float = 5.0,
                 max_connections: int = 256, log_level: str = "info") -> Any:
    """A ``uvicorn.Server`` for ``app`` behind :class:`GuardedH11Protocol` (``.run()`` it; ``should_exit`` stops it)."""
    import uvicorn

    if not idle_timeout_s > 0:
        raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s}")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            http=guarded_protocol(header_timeout_s, max_connections),  # type: ignore[arg-type]
                            timeout_keep_alive=max(1, round(idle_timeout_s)))
    return uvicorn.Server(config)


def serve(app: Any, host: str, port: int, **limits: Any) -> None:
    """Run ``app`` (see :func:`build_server` for ``limits``) until interrupted, with a graceful shutdown."""
    build_server(app, host, port, **limits).run()
