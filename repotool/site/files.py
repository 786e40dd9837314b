"""The published files under ``public/``: their types, caching, safe resolution, gzip.

* :func:`public_media_type` and :func:`public_cache_control` are the pure
  Content-Type and Cache-Control of a published file, as nginx with the
  configuration in docs/site.md sends them: compressed metadata is
  ``application/gzip`` (never a gzip Content-Encoding), keys and signatures
  have their PGP types, and only content-addressed metadata may be cached
  without asking again.
* :class:`PublicFiles` serves ``public/`` so that nothing outside it is
  reachable: ``..`` and its encoded forms, and symlinks that lead outside,
  are 404s, while in-tree symlinks (``repodata -> .repodata-<rev>``) work.
* :class:`GzipCache` keeps the gzip copies of text files that
  :class:`~repotool.site.http.CompressionMiddleware` makes, once per version.
"""

from __future__ import annotations

import os
import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

#: Content-Type by file name ending (the longest ending wins); anything else is
#: application/octet-stream, as nginx's default_type
MEDIA_TYPES: tuple[tuple[str, str], ...] = (
    (".xml.gz", "application/gzip"),
    (".gz", "application/gzip"),
    (".zst", "application/zstd"),
    (".bz2", "application/x-bzip2"),
    (".xz", "application/x-xz"),
    (".sqlite", "application/vnd.sqlite3"),
    (".xml", "text/xml"),
    (".rpm", "application/x-redhat-package-manager"),
    (".iso", "application/octet-stream"),
    (".img", "application/octet-stream"),
    (".asc", "application/pgp-signature"),
    (".key", "application/pgp-keys"),
    (".repo", "text/plain; charset=utf-8"),
    (".txt", "text/plain; charset=utf-8"),
    (".json", "application/json"),
    (".eml", "message/rfc822"),
    (".mbox", "application/mbox"),
    (".html", "text/html; charset=utf-8"),
    (".css", "text/css"),
    (".atom", "application/atom+xml"),
    (".rss", "application/rss+xml"),
    (".svg", "image/svg+xml"),
    (".png", "image/png"),
)
#: Content-Type by whole file name (before the endings)
MEDIA_TYPES_BY_NAME: tuple[tuple[str, str], ...] = (
    ("RPM-GPG-KEY-", "application/pgp-keys"),  # a prefix
    ("SHA256SUMS", "text/plain; charset=utf-8"),
    ("mirrorlist", "text/plain; charset=utf-8"),
)
#: content-addressed metadata (createrepo_c's "<sha256>-primary.xml.gz"): never changes
_HASHED_NAME = re.compile(r"^[0-9a-f]{64}-[^/]+$")
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
#: everything else may change in place (repomd.xml, keys, a re-signed package):
#: caches keep it but must revalidate (a 304 costs one small request)
CACHE_REVALIDATE = "no-cache"


def public_media_type(path: str) -> str:
    """Pure: the Content-Type of a published file, by its name."""
    name = path.rsplit("/", 1)[-1]
    for start, media_type in MEDIA_TYPES_BY_NAME:
        if name == start or (start.endswith("-") and name.startswith(start)):
            return media_type
    for ending, media_type in MEDIA_TYPES:
        if name.endswith(ending):
            return media_type
    return "application/octet-stream"


def public_cache_control(path: str) -> str:
    """Pure: the Cache-Control of a published file (hashed metadata is immutable)."""
    name = path.rsplit("/", 1)[-1]
    return CACHE_IMMUTABLE if _HASHED_NAME.match(name) else CACHE_REVALIDATE


class GzipCache:
    """Gzip copies of text files (repomd.xml, .repo files, keys), made once per version.

    Keyed by path and Starlette's ETag (the file's mtime and size): a file
    replaced in place gets a new key, so a stale copy is never sent.  Bounded
    in entries and bytes; the oldest entry goes first.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: dict[tuple[str, ...], bytes] = {}
        self._bytes = 0

    def get(self, key: tuple[str, ...]) -> bytes | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, ...], body: bytes) -> None:
        if len(key) < 2 or len(body) > self.max_bytes:  # no ETag: nothing safe to key on
            return
        old = self._entries.pop(key, None)
        self._bytes -= len(old) if old is not None else 0
        while self._entries and (
            len(self._entries) >= self.max_entries or self._bytes + len(body) > self.max_bytes
        ):
            oldest = next(iter(self._entries))
            self._bytes -= len(self._entries.pop(oldest))
        self._entries[key] = body
        self._bytes += len(body)


_GENERATION = re.compile(r"^\.repodata-\d+$")


def _hidden(part: str) -> bool:
    """Dot-entries are work in progress (staging, views, incoming packages) or state:
    never served.  Metadata generations are the exception: repodata/ links to one."""
    return (
        part not in ("", ".", ".well-known")  # RFC 8615: the CSAF provider tree
        and part.startswith(".")
        and not _GENERATION.match(part)
    )


class PublicFiles(StaticFiles):
    """StaticFiles over public/ that resolves symlinks before the containment check.

    ``follow_symlink=False`` makes Starlette compare the *real* path with the
    real root: an in-tree link resolves inside and is served; a link (or
    ``..``) that leads outside fails the check and is a 404.  Permission
    problems are 404s too, so the response never tells what exists outside.
    """

    def __init__(self, directory: str) -> None:
        # html=False: pages (index.html) come from the released site, never from disk
        super().__init__(directory=directory, html=False, follow_symlink=False)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        name = os.fspath(full_path)
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=public_media_type(name),
            headers={"cache-control": public_cache_control(name)},
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        if "\x00" in path or any(_hidden(part) for part in path.split("/")):
            raise HTTPException(status_code=404)
        try:
            return await super().get_response(path, scope)
        except HTTPException as e:
            if e.status_code == 401:
                raise HTTPException(status_code=404) from e
            raise
