"""The released site: what the last export put into ``public/``, and nothing else.

``repotool site build`` (and ``release``) renders every page, feed and static
file into ``public/`` and writes the manifest ``public/.site-export.json``
*last*.  The manifest names every file the export wrote, with its SHA-256 and
media type, and carries the JSON API's data.  The app serves only what a
manifest describes, from memory, so that:

* ``web/content/`` being edited (``advisory new``, a draft, a broken file)
  changes nothing anyone sees until a release or ``site build`` publishes it;
* a new export shows up all at once: :class:`ReleasedSource` reads the new
  manifest and every file it names, checks each digest, and swaps one
  reference.  While an export is half-way, or when a file does not match, the
  previous snapshot stays in service;
* the export removes only files a manifest says it wrote, with the content it
  wrote (:func:`removable`).

The manifest format (:func:`parse_manifest`, :meth:`ExportManifest.to_bytes`)
and the path rules (:func:`site_owned`, :func:`plain_relative`) are pure;
:func:`load_released` and :class:`ReleasedSource` are the thin shell.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from repotool.errors import PublishedFileError, SiteError
from repotool.site.api_models import ApiData
from repotool.site.http import Document

MANIFEST_NAME = ".site-export.json"
FORMAT = 1
NOT_FOUND_URL = "/404.html"
#: files the export writes at the top of public/ (crawlers ask for them there)
TOP_FILES = frozenset({"robots.txt", "sitemap.xml"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

logger = logging.getLogger("repotool.site.released")


@dataclass(frozen=True)
class ExportedFile:
    """One file of the export: the URL that serves it, its digest and media type."""

    url: str
    sha256: str
    media_type: str


@dataclass(frozen=True)
class ExportManifest:
    """What one export wrote (``files`` by path relative to public/) and the API data."""

    fingerprint: str
    last_modified: float
    files: Mapping[str, ExportedFile]
    api: ApiData

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "last_modified": self.last_modified,
            "files": {
                rel: {"url": f.url, "sha256": f.sha256, "type": f.media_type}
                for rel, f in sorted(self.files.items())
            },
            "api": self.api.model_dump(mode="json"),
        }
        return json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"


def plain_relative(rel: str) -> bool:
    """Pure: a relative POSIX path of plain names (no '..', no '/x', no dot-entries)."""
    if not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel:
        return False
    return all(p not in ("", ".", "..") and not p.startswith(".") for p in rel.split("/"))


def site_owned(rel: str) -> bool:
    """Pure: could the export have written this path?  Pages (``…/index.html``), the
    404 page, feeds and the CSS; never keys, repositories, media or list archives."""
    if not plain_relative(rel):
        return False
    parts = PurePosixPath(rel).parts
    return (
        parts[-1] == "index.html"
        or rel == NOT_FOUND_URL.lstrip("/")
        or rel in TOP_FILES
        or (parts[0] in ("feeds", "static") and len(parts) >= 2)
    )


def url_is_site_owned(path: str) -> bool:
    """Pure: is this URL path one that only the released site answers (never a file on
    disk)?  Folders (pages), ``…/index.html``, the 404 page, feeds and the CSS."""
    return (
        path.endswith("/")
        or path.endswith("/index.html")
        or path == NOT_FOUND_URL
        or path.lstrip("/") in TOP_FILES
        or path.startswith(("/feeds/", "/static/"))
    )


def file_for_url(url: str) -> str:
    """Pure: the export's file for a URL ('/a/' -> 'a/index.html', '/feeds/x' -> 'feeds/x')."""
    rel = url.removeprefix("/")
    return rel + "index.html" if rel == "" or rel.endswith("/") else rel


def _problem(where: str, what: str) -> PublishedFileError:
    return PublishedFileError(
        what, where=where, hint="export the site again: repotool site build --force"
    )


def parse_manifest(data: bytes, where: str) -> ExportManifest:
    """Pure: the manifest's bytes in, the checked manifest out (PublishedFileError)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise _problem(where, f"not valid JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _problem(where, f"not a site export manifest of format {FORMAT}")
    raw_files = doc.get("files")
    if not isinstance(raw_files, dict):
        raise _problem(where, "the manifest has no 'files' table")
    files: dict[str, ExportedFile] = {}
    for rel, entry in raw_files.items():
        if not (
            isinstance(entry, dict)
            and site_owned(rel)
            and isinstance(entry.get("url"), str)
            and str(entry["url"]).startswith("/")
            and file_for_url(entry["url"]) == rel
            and isinstance(entry.get("sha256"), str)
            and _HEX64.match(entry["sha256"])
            and isinstance(entry.get("type"), str)
        ):
            raise _problem(where, f"the entry {rel!r} is not a file the site writes")
        files[rel] = ExportedFile(entry["url"], entry["sha256"], entry["type"])
    try:
        api = ApiData.model_validate(doc.get("api"))
    except ValidationError as e:
        raise _problem(where, f"the API data is invalid: {e.errors()[0]['msg']}") from e
    modified = doc.get("last_modified")
    return ExportManifest(
        fingerprint=str(doc.get("fingerprint", "")),
        last_modified=float(modified) if isinstance(modified, int | float) else 0.0,
        files=files,
        api=api,
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_exported(public: Path, rel: str) -> bytes | None:
    """A regular file of the export inside ``public`` (no symlink anywhere), or None."""
    if not plain_relative(rel):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    target = public / rel
    try:
        if target.parent.resolve() != (public.resolve() / rel).parent:
            return None
        fd = os.open(target, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def removable(public: Path, rel: str, entry: ExportedFile) -> bool:
    """May the export delete this file it once wrote?  Only when it is the site's kind
    of file, inside public/ without symlinks, and still holds exactly what was written."""
    if not site_owned(rel):
        return False
    data = read_exported(public, rel)
    return data is not None and sha256_hex(data) == entry.sha256


@dataclass(frozen=True)
class ReleasedSite:
    """One released snapshot: every document by URL path, and the API data."""

    documents: Mapping[str, Document]
    api: ApiData
    fingerprint: str

    def document(self, path: str) -> Document | None:
        doc = self.documents.get(path)
        if doc is None and path.endswith("/index.html"):
            doc = self.documents.get(path.removesuffix("index.html"))
        return doc

    def not_found(self) -> Document | None:
        return self.documents.get(NOT_FOUND_URL)


def read_manifest(public: Path) -> ExportManifest | None:
    path = public / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _problem(str(path), f"cannot read the manifest: {e.strerror}") from e
    return parse_manifest(data, str(path))


def load_released(public: Path) -> ReleasedSite | None:
    """Read the manifest and every file it names; None when nothing was exported.

    Raises PublishedFileError when a file is missing or differs from what the
    manifest says (an export is half-way, or someone edited public/).
    """
    manifest = read_manifest(public)
    if manifest is None:
        return None
    documents: dict[str, Document] = {}
    for rel, entry in manifest.files.items():
        data = read_exported(public, rel)
        if data is None:
            raise _problem(str(public / rel), "a file of the site export is missing")
        if sha256_hex(data) != entry.sha256:
            raise _problem(str(public / rel), "the file differs from what the export wrote")
        documents[entry.url] = Document.of(data, entry.media_type, manifest.last_modified)
    return ReleasedSite(documents, manifest.api, manifest.fingerprint)


def _manifest_signature(public: Path) -> tuple[int, int, int] | None:
    try:
        st = (public / MANIFEST_NAME).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class ReleasedSource:
    """Hands out the current :class:`ReleasedSite`; never raises.

    At most once per ``check_interval`` it looks at the manifest's stat; when
    that changed it loads the new snapshot completely and then swaps it in
    with one assignment.  A snapshot that cannot be loaded is logged once and
    the previous one stays in service.
    """

    def __init__(
        self,
        public: Path,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.public = public
        self.check_interval = check_interval
        self.clock = clock
        self._site: ReleasedSite | None = None
        self._signature: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self.problem: SiteError | None = None

    def due(self) -> bool:
        """Would :meth:`current` look at the disk now (async callers then use a thread)?"""
        return self.clock() - self._checked >= self.check_interval

    def peek(self) -> ReleasedSite | None:
        """The snapshot in service now, without looking at the disk (callers that
        cannot wait; they have :meth:`current` run in a thread when :meth:`due`)."""
        return self._site

    def current(self) -> ReleasedSite | None:
        now = self.clock()
        if now - self._checked < self.check_interval:
            return self._site
        with self._lock:
            if now - self._checked >= self.check_interval:
                self._refresh()
                self._checked = now
        return self._site

    def _refresh(self) -> None:
        signature = _manifest_signature(self.public)
        if signature == self._signature:
            return
        try:
            site = load_released(self.public)
        except SiteError as e:
            # retried when the manifest changes (the export writes it last)
            logger.error("keeping the site as it was: %s", e)
            self.problem = e
        else:
            if site is not None:
                self._site = site
            self.problem = None
        self._signature = signature
