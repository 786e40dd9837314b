"""Content-Type and Cache-Control of published files (issue 12 item 15), in-process, and
the same headers from nginx with the configuration docs/site.md recommends."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from repotool.site.files import CACHE_IMMUTABLE, public_cache_control, public_media_type
from tests.site.site_support import (
    IMAGE_NAME,
    MEDIA_LABEL,
    InProcessClient,
    SiteProject,
    free_port,
    run_nginx,
)

REPODATA = "/repo/el7/x86_64/repodata/"


def _primary(project: SiteProject) -> str:
    repodata = project.public / "repo" / "el7" / "x86_64" / "repodata"
    return REPODATA + next(p.name for p in repodata.iterdir() if p.name.endswith("primary.xml.gz"))


def _expected(project: SiteProject) -> dict[str, tuple[str, str]]:
    """URL path -> (Content-Type, Cache-Control) that hosts, proxies and browsers get."""
    text = "text/plain; charset=utf-8"
    return {
        REPODATA + "repomd.xml": ("text/xml; charset=utf-8", "no-cache"),
        _primary(project): ("application/gzip", CACHE_IMMUTABLE),
        "/keys/RPM-GPG-KEY-perfsonar": ("application/pgp-keys", "no-cache"),
        "/repo/perfsonar.repo": (text, "no-cache"),
        f"/releases/{MEDIA_LABEL}/SHA256SUMS": (text, "no-cache"),
        f"/releases/{MEDIA_LABEL}/SHA256SUMS.asc": ("application/pgp-signature", "no-cache"),
        f"/releases/{MEDIA_LABEL}/{IMAGE_NAME}": ("application/octet-stream", "no-cache"),
        f"/releases/{MEDIA_LABEL}/media.json": ("application/json", "no-cache"),
        "/lists/perfsonar-announce/PSSA-2014-0002.eml": ("message/rfc822", "no-cache"),
        "/lists/perfsonar-announce/archive.mbox": ("application/mbox", "no-cache"),
    }


def test_published_files_have_their_types_and_caching(
    site: InProcessClient, site_project: SiteProject
) -> None:
    for path, (ctype, cache) in _expected(site_project).items():
        r = site.get(path, headers={"accept-encoding": "gzip"})
        assert r.status_code == 200, path
        assert (r.headers["content-type"], r.headers["cache-control"]) == (ctype, cache), path


def test_compressed_metadata_is_sent_as_is(
    site: InProcessClient, site_project: SiteProject
) -> None:
    path = _primary(site_project)
    on_disk = (site_project.public / path.lstrip("/")).read_bytes()
    r, raw = site.get_raw(path, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in r.headers
    assert raw == on_disk  # gzip once, as createrepo_c wrote it; its checksum holds
    assert gzip.decompress(raw).startswith(b"<?xml")


def test_pages_may_be_cached_briefly(site: InProcessClient) -> None:
    r = site.get("/advisories/")
    assert r.headers["cache-control"] == "public, max-age=60"


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        (
            "Packages/perfsonar-toolkit-3.3.2-2.el7.x86_64.rpm",
            "application/x-redhat-package-manager",
        ),
        ("repodata/abc-primary.sqlite.bz2", "application/x-bzip2"),
        ("repodata/abc-primary.xml.zst", "application/zstd"),
        ("repodata/repomd.xml.key", "application/pgp-keys"),
        ("mirrors/el7/x86_64/mirrorlist", "text/plain; charset=utf-8"),
        ("something-unknown", "application/octet-stream"),
    ],
)
def test_media_types_by_name(name: str, ctype: str) -> None:
    assert public_media_type(name) == ctype


def test_only_content_addressed_names_are_immutable() -> None:
    sha = "a" * 64
    assert public_cache_control(f"repodata/{sha}-primary.xml.gz") == CACHE_IMMUTABLE
    for name in ("repodata/repomd.xml", "repodata/repomd.xml.asc", f"x/{sha[:40]}-p.xml.gz"):
        assert public_cache_control(name) == "no-cache", name


# --- nginx with the recommended configuration sends the same -----------------------

SERVER_BLOCK = """\
server {{
    listen 127.0.0.1:{port};
    root {public};
{site_conf}
}}
"""


def _site_conf() -> str:
    """The server-block lines docs/site.md gives for nginx (between its markers)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "site.md").read_text(encoding="utf-8")
    return doc.split("# --- nginx: begin\n", 1)[1].split("# --- nginx: end\n", 1)[0]


@contextlib.contextmanager
def nginx(public: Path, tmp: Path) -> Iterator[str]:
    port = free_port()
    block = tmp / "server.conf"
    block.write_text(SERVER_BLOCK.format(port=port, public=public, site_conf=_site_conf()))
    with run_nginx(block, tmp / "nginx", port, probe="/repo/perfsonar.repo") as url:
        yield url


def test_nginx_with_the_documented_config_agrees(
    site: InProcessClient, site_project: SiteProject, tmp_path: Path
) -> None:
    with nginx(site_project.public, tmp_path) as url:
        for path in _expected(site_project):
            ours = site.get(path, headers={"accept-encoding": "gzip"})
            theirs = httpx.get(url + path, headers={"accept-encoding": "gzip"}, timeout=10)
            assert theirs.status_code == 200, path
            for header in ("content-type", "cache-control"):
                assert theirs.headers.get(header) == ours.headers[header], (path, header)
            assert theirs.headers.get("content-encoding") == ours.headers.get("content-encoding"), (
                path
            )
