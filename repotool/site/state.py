"""The site as the records make it now: records and public/ loaded, pages rendered.

Only the static export (:func:`repotool.site.export.build_site`) renders from
here; the app serves what the export released (:mod:`repotool.site.released`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from repotool.config import Config
from repotool.records.loading import load_records
from repotool.records.models import Records
from repotool.site.contexts import (
    NOT_FOUND_PATH,
    REDIRECT_TEMPLATE,
    Page,
    SiteInfo,
    page_context,
    plan_pages,
)
from repotool.site.feeds import plan_feeds, plan_site_files
from repotool.site.http import Document
from repotool.site.key_inspection import KeyInspector
from repotool.site.published import Published, published_inputs, read_published
from repotool.site.render import render_template, template_environment

HTML_TYPE = "text/html; charset=utf-8"


def site_info(cfg: Config) -> SiteInfo:
    return SiteInfo(
        title=cfg.site.title,
        base_url=cfg.site.base_url.rstrip("/"),
        product=cfg.product,
        version=cfg.version,
        targets=tuple(t.name for t in cfg.targets),
    )


def _walk(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.rglob("*") if p.is_file())


def input_files(cfg: Config, public: Path) -> list[Path]:
    """Every file the site is made from (existing or not yet)."""
    files: list[Path] = []
    for folder in (cfg.site.content_dir, cfg.site.templates_dir, cfg.site.static_dir):
        files.extend(_walk(cfg.path(folder)))
    files.extend(published_inputs(cfg, public))
    return files


def content_fingerprint(paths: list[Path]) -> str:
    """A digest of the inputs' names and bytes (for the export's skip check)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode() + b"\0")
        try:
            h.update(hashlib.sha256(p.read_bytes()).digest())
        except OSError:
            h.update(b"absent")
    return h.hexdigest()


@dataclass
class SiteSnapshot:
    """One consistent view of the site; documents are rendered once, on first use."""

    site: SiteInfo
    records: Records
    published: Published
    pages: dict[str, Page]
    feeds: dict[str, tuple[str, bytes]]
    env: jinja2.Environment
    last_modified: float
    _cache: dict[str, Document] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        return [*self.pages, *self.feeds]

    def document(self, path: str) -> Document | None:
        """The page or feed at a URL path, or None when there is none."""
        doc = self._cache.get(path)
        if doc is not None:
            return doc
        if path in self.pages:
            page = self.pages[path]
            ctx = page_context(self.site, page, self.published.mirrors is not None)
            html = render_template(self.env, page.template, ctx)
            doc = Document.of(html.encode("utf-8"), HTML_TYPE, self.last_modified)
        elif path in self.feeds:
            media_type, body = self.feeds[path]
            doc = Document.of(body, media_type, self.last_modified)
        else:
            return None
        with self._lock:
            self._cache[path] = doc
        return doc

    def not_found(self) -> Document:
        doc = self.document(NOT_FOUND_PATH)
        assert doc is not None
        return doc


def load_snapshot(cfg: Config, public: Path, keys: KeyInspector) -> SiteSnapshot:
    """Read everything and plan every page (rendering waits for the first request)."""
    files = input_files(cfg, public)
    mtimes = [p.stat().st_mtime for p in files if p.exists()]
    records = load_records(cfg.path(cfg.site.content_dir))
    published = read_published(cfg, public, keys)
    info = site_info(cfg)
    pages = plan_pages(info, records, published)
    return SiteSnapshot(
        site=info,
        records=records,
        published=published,
        pages=pages,
        # robots.txt and sitemap.xml ride with the feeds: generated files, not pages
        feeds=plan_feeds(info, records.news, records.advisories)
        | plan_site_files(info, [p for p, pg in pages.items() if _in_site_map(p, pg.template)]),
        env=template_environment(cfg.path(cfg.site.templates_dir)),
        last_modified=float(int(max(mtimes, default=0.0))),
    )


def _in_site_map(path: str, template: str) -> bool:
    """Every page but the 404 page and the pages that only send the browser on."""
    return path != NOT_FOUND_PATH and template != REDIRECT_TEMPLATE
