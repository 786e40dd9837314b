"""Pure: the site's pages, as (URL path, template, context), from records and public/.

Every URL is a folder (``/advisories/PSSA-2014-0001/``) so that the static
export (``<path>/index.html``) and the app answer the same addresses, and any
static server or mirror can host the export.  Advisory filters are pages too
(``/advisories/2014/``, ``/advisories/critical/``, ``/advisories/2014/critical/``),
so they work without a server that reads query strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repotool.records.models import Advisory, NewsItem, Records, Release
from repotool.records.terms import SEVERITIES
from repotool.records.updateinfo import update_commands
from repotool.site.published import ListMessage, MediaSet, Published, media_for
from repotool.site.render import first_paragraph, markdown_to_html

#: feeds advertised in every page head: (path, media type, title)
FEEDS: tuple[tuple[str, str, str], ...] = (
    ("/feeds/news.atom", "application/atom+xml", "News (Atom)"),
    ("/feeds/news.rss", "application/rss+xml", "News (RSS)"),
    ("/feeds/advisories.atom", "application/atom+xml", "Security advisories (Atom)"),
    ("/feeds/advisories.rss", "application/rss+xml", "Security advisories (RSS)"),
)
NOT_FOUND_PATH = "/404.html"
#: a page that only sends the browser on (a respin's own URL): not in the site map
REDIRECT_TEMPLATE = "redirect.html"


@dataclass(frozen=True)
class SiteInfo:
    """What every page needs to know about the site itself (from the config)."""

    title: str
    base_url: str
    product: str
    version: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    path: str
    template: str
    title: str
    context: Mapping[str, Any] = field(default_factory=dict)


def severity_slug(severity: str | None) -> str:
    return (severity or "none").lower()


def advisory_path(a: Advisory) -> str:
    return f"/advisories/{a.id}/"


def release_path(version: str) -> str:
    """A release or respin's page (a respin is a section of its release's page)."""
    base, sep, _ = version.partition("-")
    return f"/releases/{base}/#respin-{version}" if sep else f"/releases/{version}/"


def news_path(n: NewsItem) -> str:
    return f"/news/{n.slug}/"


def yum_update_command(a: Advisory) -> str:
    """The record's update command (default ``yum update --advisory <id>``)."""
    return a.update_cmd


def short_hash(hexdigest: str) -> str:
    """'0123…cdef': a digest short enough for a phone, still recognisable."""
    return hexdigest if len(hexdigest) <= 20 else f"{hexdigest[:12]}…{hexdigest[-6:]}"


def format_timestamp(iso: str) -> str:
    """'2014-04-10T12:00:00+00:00' -> '2014-04-10 12:00 UTC' (dates as people read them)."""
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


#: the mirror table's columns, in order: (status.json key, heading); the contact
#: goes under the mirror's name
MIRROR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Mirror"),
    ("region", "Region"),
    ("status", "Status"),
    ("detail", "Details"),
    ("url", "Address"),
)
#: what each mirror status means, for the legend
MIRROR_STATUSES: tuple[tuple[str, str], ...] = (
    ("fresh", "same metadata as the master"),
    ("stale", "signed correctly but behind the master"),
    ("down", "could not be reached"),
    ("bad-signature", "metadata that does not verify against the release key: do not use"),
)


def _by_issued(advisories: Sequence[Advisory]) -> list[Advisory]:
    return sorted(advisories, key=lambda a: (a.issued, a.id), reverse=True)


def advisory_filters(advisories: Sequence[Advisory]) -> list[tuple[int | None, str | None]]:
    """Every (year, severity) filter that has a page; None means 'all'."""
    years = sorted({a.year for a in advisories}, reverse=True)
    sevs = [s for s in SEVERITIES if any(a.severity == s for a in advisories)]
    out: list[tuple[int | None, str | None]] = [(None, None)]
    out += [(y, None) for y in years]
    out += [(None, s) for s in sevs]
    out += [(y, s) for y in years for s in sevs]
    return out


def filter_path(year: int | None, severity: str | None) -> str:
    parts = ["advisories"]
    if year is not None:
        parts.append(str(year))
    if severity is not None:
        parts.append(severity_slug(severity))
    return "/" + "/".join(parts) + "/"


def select_advisories(
    advisories: Sequence[Advisory], year: int | None, severity: str | None
) -> list[Advisory]:
    return [
        a
        for a in _by_issued(advisories)
        if (year is None or a.year == year)
        and (severity is None or severity_slug(a.severity) == severity_slug(severity))
    ]


def _package_rows(a: Advisory, published: Published) -> list[dict[str, Any]]:
    """Every fixed package: target, name, the versions still vulnerable, its files."""
    rows = []
    for target, pkgs in sorted(a.packages.items()):
        for p in pkgs:
            files = published.package_files.get((target, p.nevra), ())
            rows.append(
                {
                    "target": target,
                    "package": p,
                    "fixed": f"{p.evr}.{p.arch}",
                    "vulnerable": f"{p.name} < {p.evr}",
                    "files": files,
                }
            )
    return rows


def _announcement(a: Advisory, published: Published) -> ListMessage | None:
    """The advisory's signed message in the list archive, if it was sent."""
    return next(
        (
            m
            for lst in published.lists
            for m in lst.archive
            if m.kind == "advisory" and m.ref == a.id
        ),
        None,
    )


def _advisory_view(a: Advisory, records: Records, published: Published) -> dict[str, Any]:
    sections = a.sections
    fixed_release = records.release(a.fixed_in.partition("-")[0]) if a.fixed_in else None
    commands = update_commands(a)
    return {
        "advisory": a,
        "path": advisory_path(a),
        "severity_slug": severity_slug(a.severity),
        "description_html": markdown_to_html(sections.get("Description", "")),
        "impact_html": markdown_to_html(sections.get("Impact", "")),
        "remediation_html": markdown_to_html(sections.get("Remediation", "")),
        "other_sections": [
            (name, markdown_to_html(text))
            for name, text in sections.items()
            if name not in ("Description", "Impact", "Remediation")
        ],
        "yum_update": yum_update_command(a),
        "first_commands": commands,
        "update_in_steps": len(commands) == 1,
        "updateinfo_command": f"yum updateinfo info {a.id}",
        "fixed_in_path": release_path(a.fixed_in) if fixed_release else "",
        "packages": sorted(a.packages.items()),
        "package_rows": _package_rows(a, published),
        "announcement": _announcement(a, published),
        "description": a.summary or first_paragraph(sections.get("Description", ""), 155),
    }


def _release_view(rel: Release, records: Records, published: Published) -> dict[str, Any]:
    labels = [r.version for r in reversed(rel.respins)] + [rel.version]
    media: tuple[MediaSet, ...] = media_for(published, labels)
    return {
        "release": rel,
        "path": release_path(rel.version),
        "notes_html": markdown_to_html(rel.body),
        "media": media,
        "advisories": [a for aid in rel.all_advisories if (a := records.advisory(aid))],
        "respins": [
            {
                "respin": r,
                "notes_html": markdown_to_html(r.notes),
                "advisories": [a for aid in r.advisories if (a := records.advisory(aid))],
            }
            for r in rel.respins
        ],
    }


def plan_pages(site: SiteInfo, records: Records, published: Published) -> dict[str, Page]:
    """Every HTML page of the site, by URL path."""
    current = records.releases[0] if records.releases else None
    pages = [
        _home_page(site, records, published, current),
        *_news_pages(records),
        *_release_pages(site, records, published, current),
        *_advisory_pages(records, published),
        *_list_pages(site, published),
        _mirrors_page(site, published),
        Page(NOT_FOUND_PATH, "404.html", "Page not found", {}),
    ]
    return {page.path: page for page in pages}


def _page(url: str, template: str, title: str, /, **context: Any) -> Page:
    return Page(url, template, title, context)


def _home_page(
    site: SiteInfo, records: Records, published: Published, current: Release | None
) -> Page:
    latest = current.respins[-1] if current and current.respins else None
    return _page(
        "/",
        "home.html",
        site.title,
        current=_release_view(current, records, published) if current else None,
        latest_respin=latest,
        news=list(records.news[:4]),
        advisories=[
            _advisory_view(a, records, published) for a in _by_issued(records.advisories)[:5]
        ],
        yum=published.yum,
        description=(
            f"The {site.product}: network measurement hosts on a LiveCD, a LiveUSB or a "
            "signed yum repository. Downloads, set-up, security advisories and news."
        ),
    )


def _news_pages(records: Records) -> list[Page]:
    pages = [_page("/news/", "news_index.html", "News", news=list(records.news))]
    for n in records.news:
        pages.append(
            _page(
                news_path(n),
                "news.html",
                n.title,
                item=n,
                body_html=markdown_to_html(n.body),
                description=n.summary or first_paragraph(n.body, 155),
            )
        )
    return pages


def _release_pages(
    site: SiteInfo, records: Records, published: Published, current: Release | None
) -> list[Page]:
    pages = [
        _page(
            "/releases/",
            "release_index.html",
            "Releases",
            releases=[_release_view(r, records, published) for r in records.releases],
        )
    ]
    for rel in records.releases:
        pages.append(
            _page(
                release_path(rel.version),
                "release.html",
                rel.title or f"{site.product} {rel.version}",
                yum=published.yum,
                is_current=rel is current,
                description=rel.summary or f"{site.product} {rel.version}: downloads and notes.",
                **_release_view(rel, records, published),
            )
        )
        # /releases/3.3.2-3/ (typed, or guessed from the media folder's name) leads to
        # the respin's section of its release's page
        pages.extend(
            _page(
                f"/releases/{r.version}/",
                REDIRECT_TEMPLATE,
                f"{site.product} {r.version}",
                target=release_path(r.version),
                description=f"Respin {r.version} is described on the page of release "
                f"{rel.version}.",
            )
            for r in rel.respins
        )
    return pages


def _advisory_pages(records: Records, published: Published) -> list[Page]:
    filters = advisory_filters(records.advisories)
    years = sorted({y for y, _ in filters if y is not None}, reverse=True)
    sevs = [s for s in SEVERITIES if any(sv == s for _, sv in filters)]
    pages = []
    for year, sev in filters:
        chosen = select_advisories(records.advisories, year, sev)
        label = " ".join(p for p in (sev, str(year) if year else None) if p)
        pages.append(
            _page(
                filter_path(year, sev),
                "advisory_index.html",
                f"{label} security advisories" if label else "Security advisories",
                advisories=[_advisory_view(a, records, published) for a in chosen],
                year=year,
                severity=sev,
                years=years,
                severities=sevs,
                filter_path=filter_path,
            )
        )
    pages.extend(
        _page(
            advisory_path(a),
            "advisory.html",
            f"{a.id}: {a.title}",
            **_advisory_view(a, records, published),
        )
        for a in records.advisories
    )
    return pages


def _list_pages(site: SiteInfo, published: Published) -> list[Page]:
    pages = [
        _page(
            "/lists/",
            "lists.html",
            "Mailing lists",
            lists=published.lists,
            description=f"The {site.product} mailing lists: subscribe, read the signed archive.",
        )
    ]
    pages.extend(
        _page(m.page, "message.html", m.subject, message=m, list=lst, description=m.subject)
        for lst in published.lists
        for m in lst.archive
        if m.page
    )
    return pages


def _mirrors_page(site: SiteInfo, published: Published) -> Page:
    return _page(
        "/mirrors/",
        "mirrors.html",
        "Mirror status",
        mirrors=published.mirrors or (),
        checked=published.mirrors_checked,
        columns=MIRROR_COLUMNS,
        statuses=MIRROR_STATUSES,
        description=f"Mirrors of the {site.product} repository and how fresh each one is.",
    )


def page_context(site: SiteInfo, page: Page, has_mirrors: bool = True) -> dict[str, Any]:
    """The context a template gets: the page's own plus what the layout needs.

    The mirrors page is always there (it says when no check ran yet), so
    ``has_mirrors`` no longer changes the menu."""
    nav = [
        ("/", "Home"),
        ("/releases/", "Releases"),
        ("/advisories/", "Advisories"),
        ("/news/", "News"),
        ("/lists/", "Mailing lists"),
        ("/mirrors/", "Mirrors"),
    ]
    section = "/" + page.path.strip("/").split("/")[0] + "/" if page.path != "/" else "/"
    return {
        **page.context,
        "site": site,
        "page_title": page.title,
        "path": page.path,
        "nav": nav,
        "section": section,
        "feeds": FEEDS,
        "release_path": release_path,
        "page_description": page.context.get("description")
        or f"{page.title}: {site.title}, the {site.product} site.",
        "short_hash": short_hash,
        "format_timestamp": format_timestamp,
    }
