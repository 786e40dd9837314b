"""Pure: Atom and RSS feeds of news and advisories (values in, bytes out).

Dates come from the records, never from the clock, so the same records give
byte-identical feeds (the static export and the app agree, and a mirror does
not see a change where there is none).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime

from repotool.records.models import Advisory, NewsItem
from repotool.site.contexts import SiteInfo, advisory_path, news_path
from repotool.site.render import first_paragraph, markdown_to_html

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"


@dataclass(frozen=True)
class FeedEntry:
    title: str
    path: str
    updated: dt.date
    published: dt.date
    summary: str
    html: str


@dataclass(frozen=True)
class Feed:
    path: str
    title: str
    entries: tuple[FeedEntry, ...]


def _when(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def _absolute(site: SiteInfo, path: str) -> str:
    return site.base_url.rstrip("/") + path


def news_entries(news: Sequence[NewsItem]) -> tuple[FeedEntry, ...]:
    return tuple(
        FeedEntry(
            title=n.title,
            path=news_path(n),
            updated=n.date,
            published=n.date,
            summary=n.summary or first_paragraph(n.body),
            html=str(markdown_to_html(n.body)),
        )
        for n in news
    )


def advisory_entries(advisories: Sequence[Advisory]) -> tuple[FeedEntry, ...]:
    ordered = sorted(advisories, key=lambda a: (a.last_updated, a.id), reverse=True)
    return tuple(
        FeedEntry(
            title=f"[{a.severity or a.type}] {a.id}: {a.title}",
            path=advisory_path(a),
            updated=a.last_updated,
            published=a.issued,
            summary=a.summary or first_paragraph(a.sections.get("Description", "")),
            html=str(markdown_to_html(a.body)),
        )
        for a in ordered
    )


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def render_atom(site: SiteInfo, feed: Feed, self_path: str) -> bytes:
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(root, "title", f"{site.title}: {feed.title}")
    sub(root, "id", _absolute(site, self_path))
    newest = max((e.updated for e in feed.entries), default=dt.date(1970, 1, 1))
    sub(root, "updated", _when(newest).isoformat())
    sub(root, "link", rel="self", type=ATOM_TYPE, href=_absolute(site, self_path))
    sub(root, "link", rel="alternate", type="text/html", href=_absolute(site, "/"))
    author = sub(root, "author")
    sub(author, "name", site.product)
    for e in feed.entries:
        entry = sub(root, "entry")
        sub(entry, "title", e.title)
        sub(entry, "id", _absolute(site, e.path))
        sub(entry, "link", rel="alternate", type="text/html", href=_absolute(site, e.path))
        sub(entry, "published", _when(e.published).isoformat())
        sub(entry, "updated", _when(e.updated).isoformat())
        sub(entry, "summary", e.summary)
        sub(entry, "content", e.html, type="html")
    return _xml(root)


def render_rss(site: SiteInfo, feed: Feed, self_path: str) -> bytes:
    ET.register_namespace("atom", ATOM_NS)
    root = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(root, "channel")
    ET.SubElement(channel, "title").text = f"{site.title}: {feed.title}"
    ET.SubElement(channel, "link").text = _absolute(site, "/")
    ET.SubElement(channel, "description").text = f"{feed.title} of the {site.product}"
    ET.SubElement(channel, "language").text = "en"
    ET.SubElement(
        channel,
        f"{{{ATOM_NS}}}link",
        {"rel": "self", "type": RSS_TYPE, "href": _absolute(site, self_path)},
    )
    newest = max((e.updated for e in feed.entries), default=dt.date(1970, 1, 1))
    ET.SubElement(channel, "lastBuildDate").text = format_datetime(_when(newest))
    for e in feed.entries:
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = e.title
        ET.SubElement(item, "link").text = _absolute(site, e.path)
        ET.SubElement(item, "guid", {"isPermaLink": "true"}).text = _absolute(site, e.path)
        ET.SubElement(item, "pubDate").text = format_datetime(_when(e.published))
        ET.SubElement(item, "description").text = e.html
    return _xml(root)


def plan_feeds(
    site: SiteInfo, news: Sequence[NewsItem], advisories: Sequence[Advisory]
) -> dict[str, tuple[str, bytes]]:
    """Every feed by URL path: (media type, bytes)."""
    news_feed = Feed("news", "News", news_entries(news))
    adv_feed = Feed("advisories", "Security advisories", advisory_entries(advisories))
    out: dict[str, tuple[str, bytes]] = {}
    for feed in (news_feed, adv_feed):
        atom = f"/feeds/{feed.path}.atom"
        rss = f"/feeds/{feed.path}.rss"
        out[atom] = (ATOM_TYPE, render_atom(site, feed, atom))
        out[rss] = (RSS_TYPE, render_rss(site, feed, rss))
    return out


SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
#: files at the top of the site that crawlers ask for by name
ROBOTS_PATH = "/robots.txt"
SITEMAP_PATH = "/sitemap.xml"


def render_sitemap(site: SiteInfo, page_paths: Sequence[str]) -> bytes:
    """Pure: sitemap.xml listing every HTML page (not the 404 page)."""
    ET.register_namespace("", SITEMAP_NS)
    root = ET.Element(f"{{{SITEMAP_NS}}}urlset")
    for path in sorted(page_paths):
        if path.endswith("/"):
            url = ET.SubElement(root, f"{{{SITEMAP_NS}}}url")
            ET.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = _absolute(site, path)
    return _xml(root)


def render_robots(site: SiteInfo) -> bytes:
    """Pure: robots.txt: the pages are for everyone; the repository and media trees
    are for yum and downloads, not for crawlers (they are large and change often)."""
    lines = [
        "User-agent: *",
        "Disallow: /repo/",
        "Disallow: /releases/*/*.iso",
        "Disallow: /releases/*/*.img",
        "Allow: /",
        f"Sitemap: {_absolute(site, SITEMAP_PATH)}",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def plan_site_files(site: SiteInfo, page_paths: Sequence[str]) -> dict[str, tuple[str, bytes]]:
    """robots.txt and sitemap.xml by URL path: (media type, bytes)."""
    return {
        ROBOTS_PATH: ("text/plain; charset=utf-8", render_robots(site)),
        SITEMAP_PATH: ("application/xml", render_sitemap(site, page_paths)),
    }
