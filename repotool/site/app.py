"""The HTTP face of repotool: the released site, its API and the published tree.

``create_app(cfg)`` builds the app; nothing happens at import time.  It
renders nothing: pages, feeds, CSS and the API's data are what the last
``repotool site build`` (or ``release``) exported into ``public/``, read
through its manifest (:mod:`repotool.site.released`).  Editing
``web/content/`` changes nothing here until the next export, and a new export
is switched in all at once.  Routes, in order: the JSON API (``/api/``,
schema at ``/api/openapi.json``), then :class:`~repotool.site.pages.SiteFiles`
(released documents, then every file of ``public/``).  Errors become HTTP
status codes here and nowhere else.  In front of all of it,
:class:`SiteApp` answers plain GET/HEADs of released pages from memory
(:class:`~repotool.site.http.FastPath`): same bytes, same headers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from repotool.config import Config
from repotool.errors import RepotoolError, SiteError
from repotool.site.api import api_router
from repotool.site.http import CompressionMiddleware, FastPath, SecurityHeadersMiddleware
from repotool.site.pages import SiteFiles
from repotool.site.released import ReleasedSource

logger = logging.getLogger("repotool.site.app")


class SiteApp(FastAPI):
    """FastAPI with :class:`~repotool.site.http.FastPath` in front: a plain GET/HEAD
    of a released page is answered from memory, byte for byte what the routes
    and middlewares would send, before any of them runs."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and await fast.answer(scope, send):
            return
        await super().__call__(scope, receive, send)


def create_app(
    cfg: Config, *, public_dir: Path | None = None, check_interval: float = 1.0
) -> FastAPI:
    """The app over ``public_dir`` (default ``cfg.public_dir``).

    ``check_interval``: how often (seconds) to look for a new export.
    """
    public = public_dir if public_dir is not None else cfg.public_dir
    if not public.is_dir():
        raise SiteError(
            "nothing is published yet",
            where=str(public),
            hint="run 'repotool release' first",
        )
    source = ReleasedSource(public, check_interval=check_interval)
    files = SiteFiles(source, str(public))

    app = SiteApp(
        title=f"{cfg.site.title} API",
        description="Releases and security advisories of the toolkit, as on the site. "
        "Read-only: records are reviewed in git.",
        version=cfg.version,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.released = source
    app.fast_path = FastPath(source)
    app.include_router(api_router())
    app.mount("/", files, name="public")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not request.url.path.startswith("/api/"):
            return files.not_found(request, source.current())
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RepotoolError)
    async def repotool_error(request: Request, exc: RepotoolError) -> Response:
        # the details (paths on the server) go to the log, not to anonymous readers
        logger.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the server could not answer this; the maintainers have the details"},
            status_code=500,
        )

    app.add_middleware(CompressionMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
