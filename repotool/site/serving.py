"""Running the app under uvicorn with the limits a public server needs, and sendfile.

uvicorn keeps a connection that has not sent a whole request open for ever:
its keep-alive timer is cancelled by every byte received, and there is no
timer at all before the first request.  5,000 idle or trickling connections
("slowloris") then hold the server's sockets and memory.  nginx drops them
after ``client_header_timeout`` (60 s) and caps connections per worker.

:class:`ServeLimits` holds our limits; :func:`guarded_protocol` makes the
HTTP protocol class that enforces them, over uvicorn's httptools protocol (C
parser, the default when httptools is installed) or its h11 one:

* ``request_timeout``: a request (line, headers, body) must arrive in full
  within this many seconds of the connection opening or of the previous
  response ending, however slowly its bytes trickle in; else the connection
  is closed;
* ``keepalive_timeout``: an idle keep-alive connection is closed after this;
* ``max_connections``: a connection beyond this many gets ``503`` at once and
  is closed.

The httptools protocol also offers the ASGI ``http.response.pathsend``
extension: Starlette's ``FileResponse`` then hands over the file's path and
the protocol sends it with ``loop.sendfile`` (``os.sendfile``: the kernel
copies the file to the socket, no userspace buffer), as nginx's ``sendfile
on``.  uvicorn itself does not implement the extension.

And it answers a plain GET/HEAD of a released page (the app's
:class:`~repotool.site.http.FastPath`) as soon as the request's headers are
parsed, with the response's bytes made once per export: no ASGI task, no
routing.  Only when nothing else is in flight on the connection (pipelined
answers keep their order), the write buffer is not full, and access logging
is off; everything else (conditional requests, bodies, files, the API) goes
to the app.  The limits above hold for these requests too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from repotool.site.http import FastPath

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
#: the ASGI extension for zero-copy file responses (Starlette's FileResponse uses it)
PATHSEND = "http.response.pathsend"

HttpKind = Literal["auto", "httptools", "h11"]


@dataclass(frozen=True)
class ServeLimits:
    request_timeout: float = 20.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000


def httptools_available() -> bool:
    return importlib.util.find_spec("httptools") is not None


class _Guard:
    """The limits, for any uvicorn HTTP protocol: ``_request_complete`` says whether
    a whole request is waiting for its response (then no timer runs)."""

    limits: ServeLimits
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    # one lazy timer per connection: arming moves a deadline (no timer-heap work per
    # request); when the timer fires it closes the connection or sleeps on
    _timer: asyncio.TimerHandle | None = None
    _request_due: float | None = None  # the awaited request must be whole by then
    _idle_due: float | None = None  # an idle keep-alive connection is closed then
    _linger: asyncio.TimerHandle | None = None
    _rejected = False

    def _request_complete(self) -> bool:
        raise NotImplementedError

    def _over_cap(self) -> bool:
        return len(self.connections) > self.limits.max_connections

    def _reject(self) -> None:
        # answer at once, then half-close and drop what the client sends: closing
        # with its request unread would reset the connection and lose the 503
        self._rejected = True
        self.connections.discard(self)
        self.transport.write(_BUSY)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(REJECT_LINGER, self.transport.close)

    def _arm(self) -> None:
        """The next request must be whole within the request timeout from now."""
        self._request_due = self.loop.time() + self.limits.request_timeout
        self._wake_by(self._request_due)

    def _arm_idle(self) -> None:
        """Close the connection if it stays idle for the keep-alive timeout."""
        self._idle_due = self.loop.time() + self.limits.keepalive_timeout
        self._wake_by(self._idle_due)

    def _disarm(self) -> None:
        self._request_due = None

    def _wake_by(self, when: float) -> None:
        timer = self._timer
        if timer is None or timer.when() > when:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(when, self._expire)

    def _stop_timers(self) -> None:
        self._request_due = self._idle_due = None
        for timer in (self._timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._timer = self._linger = None

    def _expire(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._idle_due is not None and now >= self._idle_due:
            self.transport.close()
            return
        if self._request_due is not None and now >= self._request_due:
            self._request_due = None
            if not self._request_complete():
                self.transport.close()
                return
        pending = [t for t in (self._idle_due, self._request_due) if t is not None]
        if pending:
            self._timer = self.loop.call_at(min(pending), self._expire)


def guarded_protocol(
    limits: ServeLimits, http: HttpKind = "auto", fast: FastPath | None = None
) -> type[asyncio.Protocol]:
    """The HTTP protocol class that enforces ``limits`` (see the module docstring).

    ``http``: ``"httptools"`` (with sendfile and ``fast``), ``"h11"``, or
    ``"auto"`` (httptools when installed).  ``fast``: the app's
    :class:`~repotool.site.http.FastPath`, consulted as soon as a request's
    headers are in.
    """
    if http == "httptools" or (http == "auto" and httptools_available()):
        return _httptools_protocol(limits, fast)
    return _h11_protocol(limits)


def _h11_protocol(limits: ServeLimits) -> type[H11Protocol]:
    class GuardedH11Protocol(_Guard, H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.limits = limits
            super().connection_made(transport)
            if self._over_cap():
                self._reject()
                return
            self._arm()

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
            self._stop_timers()
            super().connection_lost(exc)

        def _request_complete(self) -> bool:
            return self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)

    return GuardedH11Protocol


def _httptools_protocol(limits: ServeLimits, fast: FastPath | None) -> type[asyncio.Protocol]:
    import httptools
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    ok = STATUS_LINE[200]

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        # httptools parses pipelined requests as their bytes arrive (h11 waits for
        # the response): "receiving" is a request begun and not yet whole
        _receiving = False
        # the request being received was answered from memory (and keeps the connection)
        _answered = False
        _answered_keep_alive = True

        def _answer_now(self) -> bool:
            """A released page, written at once when nothing else is in flight."""
            assert fast is not None
            cycle = self.cycle
            if (
                (cycle is not None and not cycle.response_complete)
                or self.pipeline
                or self.flow.write_paused
                or self.root_path
                or self.access_logger.isEnabledFor(logging.INFO)
                or self.parser.should_upgrade()
            ):
                return False
            method = self.parser.get_method()
            if method not in (b"GET", b"HEAD"):
                return False
            for name, _ in self.headers:
                if name in (b"content-length", b"transfer-encoding", b"expect"):
                    return False
            path = httptools.parse_url(self.url).path.decode("ascii")
            if "%" in path:
                path = unquote(path)
            found = fast.lookup(method.decode("ascii"), path, self.headers)
            if found is None:
                return False
            head, body = found
            keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            parts = [ok]
            for name, value in self.server_state.default_headers:
                parts += (name, b": ", value, b"\r\n")
            parts.append(head)
            if not keep_alive:
                parts.append(b"connection: close\r\n")
            parts += (b"\r\n", body)
            self.transport.write(b"".join(parts))
            self._answered, self._answered_keep_alive = True, keep_alive
            return True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.limits = limits
            super().connection_made(transport)
            if self._over_cap():
                self._reject()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._rejected:
                return
            self._idle_due = None  # not idle: the request timer covers what follows
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._receiving = True
            self._answered = False

        def on_headers_complete(self) -> None:
            if fast is not None and self._answer_now():
                return
            before = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not before and cycle is not None:
                self.scope.setdefault("extensions", {})[PATHSEND] = {}
                cycle.send = _with_pathsend(cycle, self.loop)  # type: ignore[method-assign]

        def on_message_complete(self) -> None:
            if self._answered:  # what on_response_complete does for the app's answers
                self._answered = self._receiving = False
                self.server_state.total_requests += 1
                if not self._answered_keep_alive:
                    self.transport.close()
                    return
                self._arm()
                self._arm_idle()  # uvicorn's keep-alive timer, lazily
                return
            super().on_message_complete()
            self._receiving = False
            if self.cycle is not None and self.cycle.response_complete:
                self._arm()  # answered before its body was in: idle from now on
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            queued = bool(self.pipeline)
            super().on_response_complete()
            if not self.transport.is_closing() and (self._receiving or not queued):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timers()
            super().connection_lost(exc)

        def _request_complete(self) -> bool:
            cycle = self.cycle
            return not self._receiving and cycle is not None and not cycle.response_complete

    return GuardedHttpToolsProtocol


def _with_pathsend(cycle: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """``cycle.send`` that also takes ``http.response.pathsend``: the body is the file,
    sent by the kernel (``loop.sendfile``; asyncio falls back to reads where it must)."""
    send = cycle.send

    async def send_with_pathsend(message: Any) -> None:
        if message["type"] != PATHSEND:
            await send(message)
            return
        if cycle.disconnected:
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"'{PATHSEND}' sent outside a response body")
        length = cycle.expected_content_length
        if cycle.scope["method"] != "HEAD" and length > 0:
            if cycle.chunked_encoding:
                raise RuntimeError(f"'{PATHSEND}' needs a content-length")
            if cycle.flow.write_paused:
                await cycle.flow.drain()
            try:
                with open(message["path"], "rb") as fh:
                    sent = await loop.sendfile(cycle.transport, fh, 0, length)
            except (ConnectionError, RuntimeError):  # the client went away meanwhile
                cycle.disconnected = True
                cycle.transport.close()
                return
            cycle.expected_content_length -= sent
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return send_with_pathsend


def server_config(
    app: Any, host: str, port: int, limits: ServeLimits, *, http: HttpKind = "auto"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits, http, getattr(app, "fast_path", None)),
        # the stdlib loop: its sendfile is os.sendfile on sockets (uvloop has none)
        loop="asyncio",
        timeout_keep_alive=max(1, round(limits.keepalive_timeout)),
        log_level="warning",
        lifespan="off",
    )
