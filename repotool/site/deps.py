"""FastAPI dependencies of the site, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from repotool.site.released import ReleasedSite, ReleasedSource


def released_source(request: Request) -> ReleasedSource:
    source: ReleasedSource = request.app.state.released
    return source


def released_site(request: Request) -> ReleasedSite:
    site = released_source(request).current()
    if site is None:
        raise HTTPException(
            503, "the site has not been published here yet", headers={"retry-after": "60"}
        )
    return site


Released = Annotated[ReleasedSite, Depends(released_site)]
