"""Pure: the JSON API's models (its contract, they make the OpenAPI schema) and the
conversions from records and the published tree into them.

The static export computes these once, from the records it renders, and stores
them in its manifest; the app answers ``/api/`` from that released copy.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

from repotool.records.models import Advisory, Records, Release
from repotool.site.contexts import advisory_path, release_path, yum_update_command
from repotool.site.published import MediaSet, Published, media_for
from repotool.site.render import cve_url, markdown_to_html

SeverityParam = Literal["Critical", "Important", "Moderate", "Low"]


class ReferenceOut(BaseModel):
    url: str
    title: str


class CveOut(BaseModel):
    id: str
    url: str


class PackageOut(BaseModel):
    target: str
    name: str
    evr: str
    arch: str
    nevra: str


class AdvisoryOut(BaseModel):
    id: str
    type: str
    severity: str | None
    title: str
    summary: str
    issued: dt.date
    updated: dt.date
    year: int
    cves: list[CveOut]
    references: list[ReferenceOut]
    packages: list[PackageOut]
    affected_releases: list[str]
    fixed_in: str
    yum_update: str
    url: str
    body_markdown: str
    body_html: str


class ImageOut(BaseModel):
    kind: str
    name: str
    size: int
    sha256: str
    url: str


class MediaOut(BaseModel):
    label: str
    date: str
    images: list[ImageOut]
    checksums_url: str
    signature_url: str
    #: the newer media of the same release that replace these ("" if none)
    superseded_by: str = ""


class RespinOut(BaseModel):
    version: str
    date: dt.date
    advisories: list[str]
    notes: str


class ReleaseOut(BaseModel):
    version: str
    latest_version: str
    date: dt.date
    title: str
    summary: str
    advisories: list[str]
    respins: list[RespinOut]
    media: list[MediaOut]
    url: str
    notes_markdown: str
    notes_html: str


class ErrorOut(BaseModel):
    detail: str


def advisory_out(a: Advisory, base_url: str) -> AdvisoryOut:
    return AdvisoryOut(
        id=a.id,
        type=a.type,
        severity=a.severity,
        title=a.title,
        summary=a.summary,
        issued=a.issued,
        updated=a.last_updated,
        year=a.year,
        cves=[CveOut(id=c, url=cve_url(c)) for c in a.cves],
        references=[ReferenceOut(url=r.url, title=r.title) for r in a.references],
        packages=[
            PackageOut(target=t, name=p.name, evr=p.evr, arch=p.arch, nevra=str(p.nevra))
            for t, pkgs in sorted(a.packages.items())
            for p in pkgs
        ],
        affected_releases=list(a.affected_releases),
        fixed_in=a.fixed_in,
        yum_update=yum_update_command(a),
        url=base_url + advisory_path(a),
        body_markdown=a.body,
        body_html=str(markdown_to_html(a.body)),
    )


def _media_out(m: MediaSet, base_url: str) -> MediaOut:
    return MediaOut(
        label=m.label,
        date=m.date,
        images=[
            ImageOut(
                kind=i.kind,
                name=i.name,
                size=i.size,
                sha256=i.sha256,
                url=base_url + m.image_url(i),
            )
            for i in m.images
        ],
        checksums_url=base_url + m.checksums_url,
        signature_url=base_url + m.signature_url,
        superseded_by=m.superseded_by,
    )


def release_out(r: Release, published: Published, base_url: str) -> ReleaseOut:
    labels = [s.version for s in reversed(r.respins)] + [r.version]
    return ReleaseOut(
        version=r.version,
        latest_version=r.latest_version,
        date=r.date,
        title=r.title,
        summary=r.summary,
        advisories=list(r.all_advisories),
        respins=[
            RespinOut(version=s.version, date=s.date, advisories=list(s.advisories), notes=s.notes)
            for s in r.respins
        ],
        media=[_media_out(m, base_url) for m in media_for(published, labels)],
        url=base_url + release_path(r.version),
        notes_markdown=r.body,
        notes_html=str(markdown_to_html(r.body)),
    )


class ApiData(BaseModel):
    """Everything the API answers, as the export released it (newest first)."""

    releases: list[ReleaseOut]
    advisories: list[AdvisoryOut]


def api_data(records: Records, published: Published, base_url: str) -> ApiData:
    advisories = sorted(records.advisories, key=lambda a: (a.issued, a.id), reverse=True)
    return ApiData(
        releases=[release_out(r, published, base_url) for r in records.releases],
        advisories=[advisory_out(a, base_url) for a in advisories],
    )
