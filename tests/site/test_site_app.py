"""Route tests of the site on the real content: the app in-process (httpx's
ASGITransport), and a live uvicorn on loopback only where the raw request matters."""

from __future__ import annotations

import gzip
import http.client
import re
from urllib.parse import urlsplit

import feedparser
import pytest

from repotool.site.http import CONTENT_SECURITY_POLICY
from tests.site.site_support import (
    IMAGE_NAME,
    MEDIA_LABEL,
    InProcessClient,
    SiteProject,
)

PAGES: dict[str, list[str]] = {
    "/": ["pS-Performance Toolkit 3.3.2", "PSSA-2014-0002", "Heartbleed", "All news"],
    "/news/": ["Firewall recommendations for toolkit hosts", "About the pS-Performance Toolkit"],
    "/news/about/": ["network performance workshops", "pre-installed and pre-configured"],
    "/news/firewall-recommendations/": ["OWAMP", "861", "8760–9960", "fixed, documented range"],
    "/releases/": ["pS-Performance Toolkit 3.3.2", "respun as 3.3.2-2"],
    "/releases/3.3.2/": ["Release notes", "Respins", "3.3.2-2", IMAGE_NAME, "gpg --verify"],
    "/advisories/": ["PSSA-2014-0001", "PSSA-2014-0002"],
    "/advisories/2014/": ["PSSA-2014-0001", "PSSA-2014-0002"],
    "/advisories/PSSA-2014-0001/": [
        "CVE-2013-5211",
        "Moderate",
        "3.3, 3.3.1",
        "yum update perfsonar-toolkit-ntp",
        "Remediation",
        "3.3.2-1.el7",
    ],
    "/advisories/PSSA-2014-0002/": ["CVE-2014-0160", "Critical", "perfsonar-regenerate-host-cert"],
    "/lists/": ["perfsonar-announce", "perfsonar-user", "subscribe", "archive.mbox"],
}


@pytest.mark.parametrize("path", sorted(PAGES))
def test_every_page_shows_its_content_with_feeds_and_csp(site: InProcessClient, path: str) -> None:
    r = site.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for text in PAGES[path]:
        assert text in r.text, f"{path} lacks {text!r}"
    for href in (
        "/feeds/news.atom",
        "/feeds/news.rss",
        "/feeds/advisories.atom",
        "/feeds/advisories.rss",
    ):
        assert re.search(
            rf'<link rel="alternate" type="[^"]+" title="[^"]+" href="{href}">', r.text
        ), f"{path} does not advertise {href}"
    # no outside resource at all: the site must work on an offline mirror
    assert not re.search(
        r'(src|href)="(https?:)?//(?!nvd\.nist\.gov|www\.|support\.|heartbleed)',
        r.text.split("</head>")[0],
    )


def test_release_page_shows_media_key_and_repo_setup(
    site: InProcessClient, site_project: SiteProject
) -> None:
    text = site.get("/releases/3.3.2/").text
    assert site_project.image_sha256 in text
    assert f'href="/releases/{MEDIA_LABEL}/SHA256SUMS.asc"' in text
    fpr = site_project.fingerprint
    spaced = (
        " ".join(fpr[i : i + 4] for i in range(0, 20, 4))
        + "  "
        + " ".join(fpr[i : i + 4] for i in range(20, 40, 4))
    )
    assert spaced in text
    assert "baseurl=http://mirror.example.test/repo/el$releasever/$basearch/" in text
    # the download links work
    img = site.get(f"/releases/{MEDIA_LABEL}/{IMAGE_NAME}")
    assert img.status_code == 200 and img.headers.get("content-encoding") is None


def test_release_without_media_says_so(site: InProcessClient, site_project: SiteProject) -> None:
    # only 3.3.2-2 has media.json; the 3.3.2 table is absent, not invented
    text = site.get("/releases/3.3.2/").text
    assert "Live media 3.3.2-2" in text and "Live media 3.3.2 " not in text


def test_advisory_filters(site: InProcessClient) -> None:
    crit = site.get("/advisories/critical/").text
    assert "PSSA-2014-0002" in crit and "PSSA-2014-0001/" not in crit
    mod = site.get("/advisories/2014/moderate/").text
    assert "PSSA-2014-0001" in mod and "/advisories/PSSA-2014-0002/" not in mod
    assert site.get("/advisories/2013/").status_code == 404
    assert site.get("/advisories/low/").status_code == 404


def test_bare_page_url_redirects_to_folder(site: InProcessClient) -> None:
    r = site.get("/advisories/PSSA-2014-0001")
    assert r.status_code == 308 and r.headers["location"] == "/advisories/PSSA-2014-0001/"


def test_mailing_list_archive_from_json(site: InProcessClient) -> None:
    text = site.get("/lists/").text
    # the subject opens the message's page; the signed .eml stays downloadable beside it
    assert '<a href="/lists/perfsonar-announce/PSSA-2014-0002/">' in text
    assert 'href="/lists/perfsonar-announce/PSSA-2014-0002.eml" type="message/rfc822"' in text
    assert "OpenSSL Heartbleed: regenerate the host key" in text
    assert "The archive is empty" in text  # perfsonar-user has none
    eml = site.get("/lists/perfsonar-announce/PSSA-2014-0002.eml")
    assert eml.status_code == 200 and "Update now." in eml.text


@pytest.mark.parametrize("name", ["news.atom", "news.rss", "advisories.atom", "advisories.rss"])
def test_feeds_parse_without_errors(site: InProcessClient, name: str) -> None:
    r = site.get("/feeds/" + name)
    assert r.status_code == 200
    kind = "atom" if name.endswith("atom") else "rss"
    assert r.headers["content-type"].startswith(f"application/{kind}+xml")
    parsed = feedparser.parse(r.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    links = [e.link for e in parsed.entries]
    if name.startswith("advisories"):
        assert links[0] == "http://mirror.example.test/advisories/PSSA-2014-0002/"
        assert "CVE-2014-0160" in parsed.entries[0].title
        body = (
            parsed.entries[0].content[0].value
            if kind == "atom"
            else (parsed.entries[0].description)
        )
        assert "perfsonar-regenerate-host-cert" in body
    else:
        assert "http://mirror.example.test/news/firewall-recommendations/" in links


def test_api_same_data_as_pages(site: InProcessClient) -> None:
    rels = site.get("/api/releases").json()
    assert [r["version"] for r in rels] == ["3.3.2"]
    assert rels[0]["latest_version"] == "3.3.2-2"
    assert rels[0]["media"][0]["images"][0]["name"] == IMAGE_NAME
    one = site.get("/api/releases/3.3.2").json()
    assert one == rels[0]
    advs = site.get("/api/advisories").json()
    assert [a["id"] for a in advs] == ["PSSA-2014-0002", "PSSA-2014-0001"]
    crit = site.get("/api/advisories", params={"severity": "Critical"}).json()
    assert [a["id"] for a in crit] == ["PSSA-2014-0002"]
    assert site.get("/api/advisories", params={"year": 2013}).json() == []
    a = site.get("/api/advisories/PSSA-2014-0001").json()
    assert a["cves"] == [
        {"id": "CVE-2013-5211", "url": "https://nvd.nist.gov/vuln/detail/CVE-2013-5211"}
    ]
    assert a["yum_update"] == "yum update perfsonar-toolkit-ntp"
    assert a["url"] == "http://mirror.example.test/advisories/PSSA-2014-0001/"
    missing = site.get("/api/advisories/PSSA-2099-0001")
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": "no advisory 'PSSA-2099-0001'; GET /api/advisories lists the advisories"
    }
    assert site.get("/api/advisories", params={"severity": "Bad"}).status_code == 422
    schema = site.get("/api/openapi.json").json()
    assert set(schema["paths"]) == {
        "/api/releases",
        "/api/releases/{version}",
        "/api/advisories",
        "/api/advisories/{advisory_id}",
    }


def test_etag_and_last_modified_give_304(site: InProcessClient) -> None:
    for path in ("/advisories/PSSA-2014-0001/", "/static/site.css", "/repo/perfsonar.repo"):
        first = site.get(path)
        etag, lm = first.headers["etag"], first.headers["last-modified"]
        again = site.get(path, headers={"if-none-match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert site.get(path, headers={"if-modified-since": lm}).status_code == 304
        other = site.get(path, headers={"if-none-match": '"other"'})
        assert other.status_code == 200


def test_gzip_only_when_accepted(site: InProcessClient) -> None:
    path = "/advisories/PSSA-2014-0001/"
    z = site.get(path, headers={"accept-encoding": "gzip"})
    assert z.headers["content-encoding"] == "gzip" and "Accept-Encoding" in z.headers["vary"]
    plain = site.get(path, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert z.text == plain.text
    assert z.headers["etag"] != plain.headers["etag"]
    # raw bytes on the wire really are gzip
    _, raw = site.get_raw(path, headers={"accept-encoding": "gzip"})
    assert gzip.decompress(raw).decode() == plain.text


def _raw_get(base: str, raw_path: str) -> tuple[int, bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("GET", raw_path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "raw_path",
    [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/static/..%2f..%2f..%2frepotool.toml",
        "/repo/..%2f..%2frepotool.toml",
        "/releases/%2e%2e/%2e%2e/repotool.toml",
        "/..%5c..%5crepotool.toml",
        "/keys/%00",
        "/leak.txt",
        "/leakdir/outside-secret.txt",
        "/%252e%252e/%252e%252e/repotool.toml",
    ],
)
def test_traversal_attempts_get_404(site_url: str, raw_path: str) -> None:
    status, body = _raw_get(site_url, raw_path)
    assert status == 404
    assert b"TOP SECRET" not in body and b"root:" not in body and b"[site]" not in body


def test_in_tree_repodata_symlink_is_served(site: InProcessClient) -> None:
    r = site.get("/repo/el7/x86_64/repodata/repomd.xml")
    assert r.status_code == 200 and b"<repomd" in r.content


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize(
    "path", ["/", "/advisories/PSSA-2014-0001/", "/api/advisories", "/repo/perfsonar.repo"]
)
def test_no_write_endpoint(site: InProcessClient, method: str, path: str) -> None:
    r = site.request(method, path, content=b"x")
    assert r.status_code == 405


def test_unknown_page_is_a_styled_404(site: InProcessClient) -> None:
    r = site.get("/no/such/page/")
    assert r.status_code == 404
    assert "Page not found" in r.text and r.headers["content-security-policy"]
