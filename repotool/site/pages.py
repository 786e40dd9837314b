"""Everything outside ``/api/``: the released site first, then the files of ``public/``.

:func:`route` is the pure decision for one GET/HEAD path; :class:`SiteFiles`
is the ASGI app that carries it out.  Pages, feeds, the CSS and the 404 page
come only from the released snapshot in memory (never from disk, so a
half-done export or a stray ``index.html`` is never shown); every other path
is a file of ``public/`` (repositories, keys, media, list archives).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from repotool.site.files import PublicFiles
from repotool.site.http import Document, document_response
from repotool.site.released import ReleasedSite, ReleasedSource, url_is_site_owned

NOT_PUBLISHED = (
    "The site has not been published here yet. "
    "The maintainers publish it with: repotool site build\n"
)


#: where `serve` hands out files from disk: what a release publishes (repositories,
#: keys, live media, list archives, mirror lists and status, CSAF documents); any
#: other file under public/ is not the release's (a planted or stray file): 404
FILE_AREAS = ("/repo/", "/keys/", "/releases/", "/lists/", "/mirrors/", "/.well-known/csaf/")
#: never from disk, even inside an area: what a browser would run or style a page with
#: (the site's own pages, scripts and CSS come only from the released snapshot)
ACTIVE_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml", ".js", ".mjs", ".svg", ".css")


@dataclass(frozen=True)
class Route:
    kind: Literal["document", "redirect", "not_found", "unpublished", "file"]
    document: Document | None = None
    location: str = ""


def route(path: str, site: ReleasedSite | None) -> Route:
    """Pure: what answers a GET/HEAD of ``path`` given the released site (or none)."""
    if site is not None:
        doc = site.document(path)
        if doc is not None:
            return Route("document", doc)
        if not path.endswith("/") and site.document(path + "/") is not None:
            return Route("redirect", location=path + "/")
    if url_is_site_owned(path):
        return Route("unpublished") if site is None else Route("not_found")
    if not path.startswith(FILE_AREAS) or path.lower().endswith(ACTIVE_SUFFIXES):
        return Route("not_found")
    return Route("file")


class SiteFiles:
    """The ASGI app for every path outside ``/api/``; GET and HEAD only."""

    def __init__(self, source: ReleasedSource, public: str) -> None:
        self.source = source
        self.files = PublicFiles(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = Request(scope)
        response = await self.respond(request, scope)
        await response(scope, receive, send)

    async def respond(self, request: Request, scope: Scope) -> Response:
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse(
                "Method Not Allowed\n", status_code=405, headers={"allow": "GET, HEAD"}
            )
        # loading a new export reads and digests every page: not on the event loop
        source = self.source
        site = await anyio.to_thread.run_sync(source.current) if source.due() else source.current()
        path = request.url.path
        chosen = route(path, site)
        if chosen.kind == "document":
            assert chosen.document is not None
            return document_response(request, chosen.document)
        if chosen.kind == "redirect":
            return RedirectResponse(chosen.location, status_code=308)
        if chosen.kind == "unpublished":
            return PlainTextResponse(NOT_PUBLISHED, status_code=503, headers={"retry-after": "60"})
        if chosen.kind == "file":
            try:
                return await self.files.get_response(self.files.get_path(scope), scope)
            except HTTPException as e:
                if e.status_code != 404:
                    raise
        return self.not_found(request, site)

    @staticmethod
    def not_found(request: Request, site: ReleasedSite | None) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        doc = site.not_found() if site is not None else None
        if doc is None:
            return PlainTextResponse("Not Found\n", status_code=404)
        return document_response(request, doc, status_code=404)
