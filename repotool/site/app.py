"""The HTTP face of repotool: the site, its API and the published tree on one app.

``create_app(cfg)`` builds the app; nothing happens at import time.  Routes,
in order: the JSON API (``/api/``, schema at ``/api/openapi.json``), the feeds,
the HTML pages, the site's own CSS (``/static/``), then every file of
``public/`` (repositories, keys, media, mailing list archives).  Errors become
HTTP status codes here and nowhere else.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from repotool.config import Config
from repotool.errors import RepotoolError, SiteError
from repotool.process import SubprocessRunner
from repotool.site.api import api_router
from repotool.site.http import (
    CompressionMiddleware,
    PublicFiles,
    SecurityHeadersMiddleware,
    document_response,
)
from repotool.site.pages import feeds_router, pages_router
from repotool.site.published import GpgKeyInspector, KeyInspector
from repotool.site.state import SiteSource

logger = logging.getLogger("repotool.site.app")


def create_app(
    cfg: Config, *, keys: KeyInspector | None = None, public_dir: Path | None = None
) -> FastAPI:
    public = public_dir if public_dir is not None else cfg.public_dir
    if not public.is_dir():
        raise SiteError(
            "nothing is published yet",
            where=str(public),
            hint="run 'repotool release' first",
        )
    static = cfg.path(cfg.site.static_dir)
    if not static.is_dir():
        raise SiteError(
            "the site's static files folder does not exist",
            where=str(static),
            hint="set [site] static_dir in repotool.toml to the folder with site.css",
        )
    source = SiteSource(cfg, keys or GpgKeyInspector(SubprocessRunner()), public_dir=public)
    # fail at start, not on the first request, when a record or template is broken
    source.snapshot()

    app = FastAPI(
        title=f"{cfg.site.title} API",
        description="Releases and security advisories of the toolkit, as on the site. "
        "Read-only: records are reviewed in git.",
        version=cfg.version,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.site_source = source
    app.include_router(api_router())
    app.include_router(feeds_router())
    app.include_router(pages_router())
    app.mount("/static", PublicFiles(str(static)), name="static")
    app.mount("/", PublicFiles(str(public)), name="public")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not request.url.path.startswith("/api/"):
            doc = source.snapshot().not_found()
            return document_response(request, doc, status_code=404)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RepotoolError)
    async def repotool_error(request: Request, exc: RepotoolError) -> Response:
        # the details (paths on the server) go to the log, not to anonymous readers
        logger.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the server could not render this; the maintainers have the details"},
            status_code=500,
        )

    app.add_middleware(CompressionMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
