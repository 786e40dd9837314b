"""A production nginx ``server`` block for the static export in ``public/``.

:func:`render_server_block` is pure (settings in, text out);
``repotool site nginx-conf`` is its thin command.  The block makes nginx send
what ``repotool serve`` sends (tests run the real nginx with it and compare):

* Content-Type from the same table as the app (:data:`repotool.site.files.MEDIA_TYPES`
  and the whole-name rules for ``RPM-GPG-KEY-*``, ``SHA256SUMS``, ``mirrorlist``),
  ``charset=utf-8`` on text;
* Cache-Control per file kind: content-addressed metadata
  (``<sha256>-primary.xml.gz``) immutable for a year; pages, feeds and the CSS
  ``public, max-age=60``; everything else (``repomd.xml`` and its signature,
  keys, ``.repo`` files, packages, media) ``no-cache``, i.e. revalidated;
* the security headers (CSP, nosniff, no referrer, no framing) on every
  response, errors included (nginx drops a parent's ``add_header`` in any
  location that has its own, so each location repeats them);
* ``sendfile``, ``gzip`` for text and ``gzip_static`` (a ``file.gz`` placed
  beside ``file`` is sent as its gzip encoding; the export writes none);
* no directory listing (a folder without ``index.html`` is the site's 404),
  dot-entries hidden (``.site-export.json``, staging folders) except
  ``.well-known/`` and the metadata generations ``.repodata-<n>/``,
  symlinks followed only when link and target have the same owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from repotool.errors import SiteError
from repotool.site.files import (
    CACHE_IMMUTABLE,
    CACHE_REVALIDATE,
    MEDIA_TYPES,
    MEDIA_TYPES_BY_NAME,
)
from repotool.site.http import COMPRESSIBLE, GZIP_MIN_BYTES, SECURITY_HEADERS

#: pages, feeds, the CSS and the other files of the export (documents in the app)
CACHE_PAGES = "public, max-age=60"

_SERVER_NAME = re.compile(r"^[A-Za-z0-9*_.~-]+( [A-Za-z0-9*_.~-]+)*$")
_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]:|[A-Za-z0-9.-]+:)?[0-9]{1,5}( [a-z_]+)*$")
_ROOT_BAD = re.compile(r"[\s\"'\\;{}$#]")


@dataclass(frozen=True)
class NginxSite:
    """What varies between hosts: the public/ folder, the name and the listen address."""

    root: str
    server_name: str = "_"
    listen: str = "80"


def _check(site: NginxSite) -> None:
    if not site.root.startswith("/") or _ROOT_BAD.search(site.root):
        raise SiteError(
            f"the web root {site.root!r} is not an absolute path nginx can take as is",
            where="repotool site nginx-conf",
            hint="give an absolute path without spaces, quotes, ';', '{', '}', '$' or '#'",
        )
    if not _SERVER_NAME.match(site.server_name):
        raise SiteError(
            f"the server name {site.server_name!r} is not a list of host names",
            where="repotool site nginx-conf --server-name",
            hint="give names such as 'downloads.perfsonar.net' or "
            "'example.org www.example.org' ('_' for any)",
        )
    if not _LISTEN.match(site.listen):
        raise SiteError(
            f"the listen address {site.listen!r} is not one nginx takes",
            where="repotool site nginx-conf --listen",
            hint="give a port ('80') or address:port ('127.0.0.1:8080', '[::]:80'), "
            "optionally with flags ('80 default_server')",
        )


def types_block() -> list[tuple[str, list[str]]]:
    """Pure: the ``types`` of the app's table as (media type, extensions), in order."""
    by_type: dict[str, list[str]] = {}
    for ending, media_type in MEDIA_TYPES:
        if ending.count(".") != 1:  # ".xml.gz": nginx looks at the last extension only
            continue
        base = media_type.split(";")[0].strip()
        exts = by_type.setdefault(base, [])
        if ending[1:] not in exts:
            exts.append(ending[1:])
    return list(by_type.items())


def charset_types() -> list[str]:
    """Pure: the types the app sends with ``charset=utf-8`` (Starlette adds it to text/*)."""
    out = []
    for base, _ in types_block():
        if base.startswith("text/") and base != "text/html":  # text/html: always
            out.append(base)
    for _, media_type in MEDIA_TYPES_BY_NAME:
        base = media_type.split(";")[0].strip()
        if "charset=" in media_type and base not in out and base != "text/html":
            out.append(base)
    return out


def _headers(cache: str, indent: str) -> list[str]:
    lines = [f'{indent}add_header Cache-Control "{cache}" always;']
    for name, value in SECURITY_HEADERS:
        title = "-".join(p.capitalize() for p in name.split("-"))
        lines.append(f'{indent}add_header {title} "{value}" always;')
    return lines


def _location(match: str, cache: str, *extra: str) -> list[str]:
    body = [f"        {line}" for line in extra]
    return [f"    location {match} {{", *body, *_headers(cache, "        "), "    }"]


def render_server_block(site: NginxSite) -> str:
    """Pure: the nginx ``server { … }`` block for ``site`` (SiteError on a bad value)."""
    _check(site)
    width = max(len(base) for base, _ in types_block())
    types = [f"        {base:<{width}}  {' '.join(exts)};" for base, exts in types_block()]
    gzip_types = sorted(t for t in COMPRESSIBLE if t != "text/html")  # text/html: always
    by_name = dict(MEDIA_TYPES_BY_NAME)
    key_type, text_type = by_name["RPM-GPG-KEY-"], by_name["SHA256SUMS"].split(";")[0]
    lines = [
        "# nginx server block for the static export of the pS-Performance Toolkit site and",
        "# repositories, written by 'repotool site nginx-conf'.  Put it in",
        "# /etc/nginx/conf.d/ (inside nginx's http block), then: nginx -t && nginx -s reload",
        "server {",
        f"    listen {site.listen};",
        f"    server_name {site.server_name};",
        f'    root "{site.root}";',
        "",
        "    index index.html;",
        "    autoindex off;",
        "    server_tokens off;",
        "    absolute_redirect off;",
        "    disable_symlinks if_not_owner from=$document_root;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "",
        "    charset utf-8;",
        f"    charset_types {' '.join(charset_types())};",
        "    types {",
        *types,
        "    }",
        "    default_type application/octet-stream;",
        "",
        "    gzip on;",
        "    gzip_static on;",
        "    gzip_vary on;",
        f"    gzip_min_length {GZIP_MIN_BYTES};",
        f"    gzip_types {' '.join(gzip_types)};",
        "",
        "    # the site's own 404 page; a folder without index.html is not listed",
        "    error_page 404 /404.html;",
        "    error_page 403 =404 /404.html;",
        *_headers(CACHE_REVALIDATE, "    "),
        "",
        "    # work in progress and state (.site-export.json, staging folders): never served",
        '    location ~ "/\\.(?!well-known(/|$)|repodata-[0-9]+(/|$))" {',
        "        return 404;",
        "    }",
        "    # content-addressed repository metadata: a new file gets a new name",
        *_location('~ "/[0-9a-f]{64}-[^/]+$"', CACHE_IMMUTABLE),
        "    # keys, checksums and mirror lists have no extension to type them by",
        *_location('~ "/RPM-GPG-KEY-[^/]+$"', CACHE_REVALIDATE, f"default_type {key_type};"),
        *_location(
            '~ "/(SHA256SUMS|mirrorlist)$"',
            CACHE_REVALIDATE,
            f"default_type {text_type};",
        ),
        "    # pages, feeds, the CSS: the export replaces them in place",
        *_location(
            '~ "(/|\\.html|^/feeds/[^/]+|^/static/.+|^/robots\\.txt|^/sitemap\\.xml)$"',
            CACHE_PAGES,
        ),
        "    # repomd.xml (+ .asc, .key), .repo files, packages, media, list archives:",
        "    # caches keep them but ask again each time (a 304 costs one small request)",
        *_location("/", CACHE_REVALIDATE, "try_files $uri $uri/ =404;"),
        "}",
    ]
    return "\n".join(lines) + "\n"
