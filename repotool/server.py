"""The HTTP face of repotool: the published tree (and the site) over FastAPI.

``create_app(cfg)`` builds the app; nothing happens at import time.  The
published tree is static files: repositories, keys, media, exported pages.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from repotool.config import Config
from repotool.errors import SiteError


def create_app(cfg: Config) -> FastAPI:
    public = cfg.public_dir
    if not public.is_dir():
        raise SiteError(
            "nothing is published yet",
            where=str(public),
            hint="run 'repotool release' first",
        )
    app = FastAPI(title=cfg.site.title, docs_url=None, redoc_url=None)
    app.mount("/", StaticFiles(directory=public, html=True, follow_symlink=True), name="public")
    return app
