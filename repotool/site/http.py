"""HTTP behaviour of the site's pages: validators and 304s, gzip, security headers.

* :func:`not_modified` is the pure RFC 9110 decision (If-None-Match first,
  then If-Modified-Since).
* :class:`Document` is a rendered page or feed with its ETag, Last-Modified
  and a gzip copy made once; :func:`document_response` picks what to send.
  :meth:`Document.wire_headers` are the same response's headers, made once,
  for :class:`FastPath`, which answers a plain GET/HEAD of a released page
  from memory before routing and middlewares.
* :class:`SecurityHeadersMiddleware` puts the Content-Security-Policy (and
  friends) on every response.
* :class:`CompressionMiddleware` gzips text the app did not compress itself
  (static text files; a file's gzip copy is kept per version in a bounded
  :class:`~repotool.site.files.GzipCache`); it never touches packages, images or Range requests.
* The published files (Content-Type, Cache-Control, safe resolution, their
  gzip copies) are :mod:`repotool.site.files`.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from functools import cached_property
from typing import Protocol

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from repotool.site.files import GzipCache

#: no script at all, no outside origin: the site must work on an offline mirror
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)
#: media types worth compressing (their text, not their parameters)
COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/plain",
        "text/xml",
        "application/xml",
        "application/json",
        "application/atom+xml",
        "application/rss+xml",
        "application/javascript",
        "image/svg+xml",
        "application/pgp-keys",
    }
)
GZIP_MIN_BYTES = 512
GZIP_MAX_BYTES = 8 * 1024 * 1024
GZIP_SUFFIX = "-gzip"


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def _etags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def not_modified(
    request_headers: Mapping[str, str], etag: str, last_modified: float | None
) -> bool:
    """Pure: may a 304 answer this request for a representation with these validators?"""
    inm = request_headers.get("if-none-match")
    if inm is not None:
        tags = _etags(inm)
        return "*" in tags or etag.removeprefix("W/") in tags
    ims = request_headers.get("if-modified-since")
    if ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
        return int(last_modified) <= since
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    """Pure: does Accept-Encoding allow gzip (q > 0)?"""
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


@dataclass(frozen=True)
class Document:
    """A page or feed, rendered once, with everything a response needs."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str
    last_modified: float

    @classmethod
    def of(cls, body: bytes, media_type: str, last_modified: float) -> Document:
        digest = hashlib.sha256(body).hexdigest()[:32]
        return cls(
            body=body,
            gzipped=gzip.compress(body, compresslevel=6, mtime=0),
            media_type=media_type,
            etag=f'"{digest}"',
            last_modified=last_modified,
        )

    @cached_property
    def wire_headers(self) -> tuple[RawHeaders, RawHeaders]:
        """The 200 response's headers (plain, gzip) exactly as :func:`document_response`
        and :class:`SecurityHeadersMiddleware` send them, built once."""
        heads = []
        for use_gzip, body in ((False, self.body), (True, self.gzipped)):
            response = Response(
                body, headers=_document_headers(self, use_gzip), media_type=self.media_type
            )
            raw = list(response.raw_headers)
            names = {name for name, _ in raw}
            raw += [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in SECURITY_HEADERS
                if name.encode("latin-1") not in names
            ]
            heads.append(raw)
        return heads[0], heads[1]

    @cached_property
    def wire_head(self) -> tuple[bytes, bytes]:
        """:attr:`wire_headers` as the header lines of an HTTP/1.1 response."""
        plain, gzipped = (
            b"".join(name + b": " + value + b"\r\n" for name, value in raw)
            for raw in self.wire_headers
        )
        return plain, gzipped


RawHeaders = list[tuple[bytes, bytes]]
RESPONSE_START = "http.response.start"
RESPONSE_BODY = "http.response.body"


def _document_headers(doc: Document, use_gzip: bool) -> dict[str, str]:
    headers = {
        "etag": doc.etag[:-1] + GZIP_SUFFIX + '"' if use_gzip else doc.etag,
        "last-modified": http_date(doc.last_modified),
        "vary": "Accept-Encoding",
        "cache-control": "public, max-age=60",
    }
    if use_gzip:
        headers["content-encoding"] = "gzip"
    return headers


def document_response(request: Request, doc: Document, *, status_code: int = 200) -> Response:
    """200 (gzip when accepted), or 304 when the client's copy is current."""
    use_gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = _document_headers(doc, use_gzip)
    etag = headers["etag"]
    # CompressionMiddleware hands the app the plain form of a "-gzip" ETag
    if status_code == 200 and (
        not_modified(request.headers, etag, doc.last_modified)
        or not_modified(request.headers, doc.etag, doc.last_modified)
    ):
        headers.pop("content-encoding", None)
        return Response(status_code=304, headers=headers)
    body = doc.gzipped if use_gzip else doc.body
    if request.method == "HEAD":
        headers["content-length"] = str(len(body))
        return Response(status_code=status_code, headers=headers, media_type=doc.media_type)
    return Response(body, status_code=status_code, headers=headers, media_type=doc.media_type)


class FastPath:
    """Answers a plain GET/HEAD of a released page, feed or the CSS from memory.

    It runs in front of the app (no routing, no middlewares, no Request object)
    and sends exactly what the app would: the same body, gzip copy and headers
    (:meth:`Document.wire_headers`).  Anything else goes to the app: other
    paths, other methods, conditional requests (the app's 304 rules), a
    ``root_path``.  ``source`` is the app's own view of the released site
    (:class:`~repotool.site.released.ReleasedSource`): :meth:`answer` loads a
    new export off the event loop when one is due and waits for it;
    :meth:`lookup` (for the HTTP protocol, which cannot wait) has a thread
    look and answers from the snapshot in service meanwhile.
    """

    def __init__(self, source: SiteSource) -> None:
        self.source = source
        self._refreshing = False

    def _find(
        self,
        site: HasDocuments | None,
        method: str,
        path: str,
        headers: Iterable[tuple[bytes, bytes]],
    ) -> tuple[Document, int] | None:
        """The document and which copy (0 plain, 1 gzip), or None: the app answers."""
        if site is None or method not in ("GET", "HEAD"):
            return None
        accept = b""
        for name, value in headers:
            if name in _CONDITIONAL:
                return None
            if name == b"accept-encoding":
                accept = value
        doc = site.document(path)
        if doc is None:
            return None
        return doc, int(bool(accept) and accepts_gzip(accept.decode("latin-1")))

    def lookup(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> tuple[bytes, bytes] | None:
        """(header block, body), or None: the app answers.  Never waits: when a look
        for a new export is due, a thread does it while this answers from the
        snapshot in service (a finished export is in service a moment later).

        The header block is every header line, each ending in CRLF, without
        the status line and the server's own ``date``/``server`` lines.
        """
        source = self.source
        if source.due() and not self._refreshing:
            self._refreshing = True
            asyncio.get_running_loop().run_in_executor(None, self._refresh)
        found = self._find(source.peek(), method, path, headers)
        if found is None:
            return None
        doc, copy = found
        body = b"" if method == "HEAD" else (doc.body, doc.gzipped)[copy]
        return doc.wire_head[copy], body

    def _refresh(self) -> None:
        try:
            self.source.current()
        finally:
            self._refreshing = False

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Send the response and say True, or send nothing and say False."""
        if scope["type"] != "http" or scope.get("root_path"):
            return False
        source = self.source
        # a new export is read and digested in full: not on the event loop
        site = await anyio.to_thread.run_sync(source.current) if source.due() else source.peek()
        method = scope["method"]
        found = self._find(site, method, scope["path"], scope["headers"])
        if found is None:
            return False
        doc, copy = found
        body = b"" if method == "HEAD" else (doc.body, doc.gzipped)[copy]
        await send({"type": RESPONSE_START, "status": 200, "headers": doc.wire_headers[copy]})
        await send({"type": RESPONSE_BODY, "body": body, "more_body": False})
        return True


_CONDITIONAL = frozenset({b"if-none-match", b"if-modified-since"})


class HasDocuments(Protocol):
    """What :class:`FastPath` needs of a released site."""

    def document(self, path: str) -> Document | None: ...


class SiteSource(Protocol):
    """What :class:`FastPath` needs of the released site's source."""

    def due(self) -> bool: ...

    def current(self) -> HasDocuments | None: ...

    def peek(self) -> HasDocuments | None: ...


class SecurityHeadersMiddleware:
    """Adds the CSP and related headers to every HTTP response."""

    def __init__(self, app: ASGIApp, headers: Iterable[tuple[str, str]] = SECURITY_HEADERS):
        self.app = app
        self.headers = tuple(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CompressionMiddleware:
    """Gzip for text the app sent uncompressed (static files of known text types).

    The compressed representation gets its own ETag (``"<etag>-gzip"``); a
    conditional request carrying it is matched against the plain ETag inside.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.files = GzipCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = Headers(scope=scope)
        if (
            scope["method"] not in ("GET",)
            or not accepts_gzip(req.get("accept-encoding", ""))
            or "range" in req
        ):
            await self.app(scope, receive, send)
            return
        inm = req.get("if-none-match")
        if inm and GZIP_SUFFIX in inm:
            plain = ", ".join(t.replace(GZIP_SUFFIX + '"', '"') for t in inm.split(","))
            raw = [(k, v) for k, v in scope["headers"] if k != b"if-none-match"]
            scope = {**scope, "headers": [*raw, (b"if-none-match", plain.encode("latin-1"))]}
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def wrapped(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                length = int(headers.get("content-length", "0") or 0)
                status = message["status"]
                if status == 304 and ctype == "" and inm and GZIP_SUFFIX in inm:
                    _gzip_etag(message)
                    passthrough = True
                    await send(message)
                elif (
                    status != 200
                    or "content-encoding" in headers
                    or ctype not in COMPRESSIBLE
                    or not GZIP_MIN_BYTES <= length <= GZIP_MAX_BYTES
                ):
                    passthrough = True
                    await send(message)
                else:
                    start = message
                return
            assert start is not None
            if message["type"] == "http.response.pathsend":  # a text file: its gzip copy
                key = (message["path"], *Headers(raw=start["headers"]).getlist("etag"))
                body = self.files.get(key)
                if body is None:
                    body = await anyio.to_thread.run_sync(_gzip_file, message["path"])
                    self.files.put(key, body)
            else:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = gzip.compress(b"".join(chunks), compresslevel=6, mtime=0)
            headers = MutableHeaders(scope=start)
            headers["content-encoding"] = "gzip"
            headers["content-length"] = str(len(body))
            headers.append("vary", "Accept-Encoding")
            _gzip_etag(start)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)


def _gzip_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        return gzip.compress(fh.read(GZIP_MAX_BYTES + 1), compresslevel=6, mtime=0)


def _gzip_etag(message: Message) -> None:
    headers = MutableHeaders(scope=message)
    etag = headers.get("etag")
    if etag and etag.endswith('"') and GZIP_SUFFIX not in etag:
        headers["etag"] = etag[:-1] + GZIP_SUFFIX + '"'
