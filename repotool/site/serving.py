"""Running the app under uvicorn with the limits a public server needs.

uvicorn (h11) keeps a connection that has not sent a whole request open for
ever: its keep-alive timer is cancelled by every byte received, and there is no
timer at all before the first request.  5,000 idle or trickling connections
("slowloris") then hold the server's sockets and memory.  nginx drops them
after ``client_header_timeout`` (60 s) and caps connections per worker.

:class:`ServeLimits` holds our limits; :func:`guarded_protocol` makes the h11
protocol class that enforces them:

* ``request_timeout``: a request (line, headers, body) must arrive in full
  within this many seconds of the connection opening or of the previous
  response ending, however slowly its bytes trickle in; else the connection
  is closed;
* ``keepalive_timeout``: an idle keep-alive connection is closed after this;
* ``max_connections``: a connection beyond this many gets ``503`` at once and
  is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 10\r\n"
    b"connection: close\r\n"
    b"content-length: 29\r\n\r\n"
    b"Too many connections; retry.\n"
)


#: how long a refused connection may take to read the 503 before it is closed
REJECT_LINGER = 2.0


@dataclass(frozen=True)
class ServeLimits:
    request_timeout: float = 20.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000


def guarded_protocol(limits: ServeLimits) -> type[H11Protocol]:
    """An h11 protocol class that enforces ``limits`` (see the module docstring)."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _rejected = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self._reject()
                return
            self._arm()

        def _reject(self) -> None:
            # answer at once, then half-close and drop what the client sends: closing
            # with its request unread would reset the connection and lose the 503
            self._rejected = True
            self.connections.discard(self)
            self.transport.write(_BUSY)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self._deadline = self.loop.call_later(REJECT_LINGER, self.transport.close)

        def data_received(self, data: bytes) -> None:
            if self._rejected:
                return
            super().data_received(data)
            if self._request_complete():
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()
                if self._request_complete():  # a pipelined request was already whole
                    self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _request_complete(self) -> bool:
            return self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing() and not self._request_complete():
                self.transport.close()

    return GuardedH11Protocol


def server_config(app: Any, host: str, port: int, limits: ServeLimits) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        timeout_keep_alive=max(1, round(limits.keepalive_timeout)),
        log_level="warning",
        lifespan="off",
    )
