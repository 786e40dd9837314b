"""The JSON API under ``/api/``: releases and advisories, the same data as the pages.

Read-only by design: content comes from git, so there is no write endpoint
to protect.  The answers come from the released site (the data the last
export stored in its manifest), never from ``web/content/`` as it is now.
The models are in :mod:`repotool.site.api_models`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from repotool.site.api_models import AdvisoryOut, ErrorOut, ReleaseOut
from repotool.site.contexts import severity_slug
from repotool.site.deps import Released

SeverityParam = Literal["Critical", "Important", "Moderate", "Low"]


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such record"}
}


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["records"])

    @router.get("/releases", summary="All releases, newest first")
    def list_releases(site: Released) -> list[ReleaseOut]:
        return site.api.releases

    @router.get("/releases/{version}", summary="One release", responses=NOT_FOUND)
    def get_release(site: Released, version: Annotated[str, Path(max_length=64)]) -> ReleaseOut:
        rel = next((r for r in site.api.releases if r.version == version), None)
        if rel is None:
            raise HTTPException(
                404, f"no release {version!r}; GET /api/releases lists the releases"
            )
        return rel

    @router.get("/advisories", summary="Advisories, newest first; filter by severity and year")
    def list_advisories(
        site: Released,
        severity: Annotated[SeverityParam | None, Query()] = None,
        year: Annotated[int | None, Query(ge=1970, le=9999)] = None,
    ) -> list[AdvisoryOut]:
        return [
            a
            for a in site.api.advisories
            if (severity is None or severity_slug(a.severity) == severity_slug(severity))
            and (year is None or a.year == year)
        ]

    @router.get("/advisories/{advisory_id}", summary="One advisory", responses=NOT_FOUND)
    def get_advisory(
        site: Released, advisory_id: Annotated[str, Path(max_length=64)]
    ) -> AdvisoryOut:
        adv = next((a for a in site.api.advisories if a.id == advisory_id), None)
        if adv is None:
            raise HTTPException(
                404, f"no advisory {advisory_id!r}; GET /api/advisories lists the advisories"
            )
        return adv

    return router
