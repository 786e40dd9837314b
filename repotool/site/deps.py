"""FastAPI dependencies of the site, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from repotool.site.state import SiteSnapshot, SiteSource


def site_source(request: Request) -> SiteSource:
    source: SiteSource = request.app.state.site_source
    return source


def current_snapshot(request: Request) -> SiteSnapshot:
    return site_source(request).snapshot()


Snapshot = Annotated[SiteSnapshot, Depends(current_snapshot)]
