"""What a visitor finds on the release night (issue 13, items 11-13), app in-process:
the mirrors page before any check, list messages as pages, a home page that says
what the toolkit is, and what crawlers and browsers ask for (robots.txt,
sitemap.xml, a favicon, meta descriptions).  The layout on a phone is measured
in tests/site/test_site_browser.py."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from repotool.announce.pgpmime import assemble, signed_part
from repotool.site.app import create_app
from tests.site.site_support import InProcessClient, SiteProject, export_site, make_site_project

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
MAIL_TEXT = (
    "pS-Performance Toolkit security advisory PSSA-2014-0002\n\n"
    "First make yum see the new errata:\n\n    yum clean expire-cache\n\n"
    "Caf\u00e9 <br> & friends: shown as text, never as markup.\n"
)


def test_mirrors_page_and_menu_entry_before_any_mirror_check(site: InProcessClient) -> None:
    page = site.get("/mirrors/")
    assert page.status_code == 200
    assert "No mirror check has run yet" in page.text
    assert "<code>http://mirror.example.test/repo/</code>" in page.text
    for path in ("/", "/advisories/", "/lists/"):
        assert '<a href="/mirrors/">Mirrors</a>' in site.get(path).text, path


@pytest.fixture(scope="module")
def signed_archive(tmp_path_factory: pytest.TempPathFactory) -> InProcessClient:
    """A site whose list archive holds a real PGP/MIME message (quoted-printable, CRLF)."""
    project = make_site_project(tmp_path_factory.mktemp("site-mail"))
    folder = project.public / "lists" / "perfsonar-announce"
    signature = b"-----BEGIN PGP SIGNATURE-----\n\niQ\n-----END PGP SIGNATURE-----\n"
    message = assemble(
        [
            ("From", "pS-Performance Toolkit <release@example.test>"),
            ("To", "perfsonar-announce@example.test"),
            ("Subject", "[PSSA-2014-0002] OpenSSL Heartbleed: regenerate the host key"),
        ],
        signed_part(MAIL_TEXT),
        signature,
        "=-b0undary",
    )
    (folder / "PSSA-2014-0002.eml").write_bytes(message)
    export_site(project)
    return InProcessClient(create_app(project.cfg))


def test_list_message_is_a_page_and_the_signed_eml_stays(
    signed_archive: InProcessClient,
) -> None:
    page = signed_archive.get("/lists/perfsonar-announce/PSSA-2014-0002/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    assert "<h1>[PSSA-2014-0002] OpenSSL Heartbleed: regenerate the host key</h1>" in html
    assert "pS-Performance Toolkit &lt;release@example.test&gt;" in html
    # the text members read: decoded quoted-printable, one line per line, escaped
    assert "    yum clean expire-cache\n" in html
    assert "Caf\u00e9 &lt;br&gt; &amp; friends" in html
    assert "=C3=A9" not in html and "\r" not in html
    assert (
        '<time class="when" datetime="2014-04-10T12:00:00+00:00">2014-04-10 12:00 UTC</time>'
        in (html)
    )
    assert '<a href="/advisories/PSSA-2014-0002/">PSSA-2014-0002</a>' in html
    eml = signed_archive.get("/lists/perfsonar-announce/PSSA-2014-0002.eml")
    assert eml.status_code == 200 and b"multipart/signed" in eml.content
    assert '<a href="/lists/perfsonar-announce/PSSA-2014-0002.eml"' in html


def test_list_dates_read_as_dates(site: InProcessClient) -> None:
    html = site.get("/lists/").text
    assert ">2014-04-10 12:00 UTC</time>" in html
    assert ">2014-04-10T12:00:00+00:00<" not in html


def test_home_says_what_the_toolkit_is_and_how_to_start(site: InProcessClient) -> None:
    html = site.get("/").text
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "turns a computer into a network measurement host" in text
    for heading in ("Getting started", "Documentation and community"):
        assert f">{heading}</h2>" in html
    assert 'href="/releases/3.3.2/#download">Download the live media' in html
    assert 'href="/releases/3.3.2/#setup">Repository set-up, step by step' in html
    assert 'href="/lists/">perfsonar-announce' in html
    # each date says what it is the date of: the release, then the newest media
    assert "Current release: pS-Performance Toolkit 3.3.2 , released 2014-01-28 ." in text
    assert "Newest live media: 3.3.2-2 , built 2014-04-10 for PSSA-2014-0002." in text
    assert "latest media" not in text


def test_robots_and_sitemap_list_every_page(
    site: InProcessClient, site_project: SiteProject
) -> None:
    robots = site.get("/robots.txt")
    assert robots.status_code == 200
    assert robots.headers["content-type"] == "text/plain; charset=utf-8"
    assert "Sitemap: http://mirror.example.test/sitemap.xml" in robots.text.splitlines()
    assert "Disallow: /repo/" in robots.text.splitlines()

    sitemap = site.get("/sitemap.xml")
    assert sitemap.status_code == 200 and sitemap.headers["content-type"] == "application/xml"
    locs = {e.text for e in ET.fromstring(sitemap.content).iter(SITEMAP_NS + "loc")}
    manifest = json.loads((site_project.public / ".site-export.json").read_bytes())
    # every page but the 404 page and pages that ask not to be indexed (redirects)
    pages = {
        "http://mirror.example.test" + f["url"]
        for rel, f in manifest["files"].items()
        if f["type"].startswith("text/html")
        and f["url"] != "/404.html"
        and b'<meta name="robots" content="noindex">'
        not in (site_project.public / rel).read_bytes()
    }
    assert locs == pages
    assert "http://mirror.example.test/lists/perfsonar-announce/PSSA-2014-0002/" in locs
    assert (site_project.public / "robots.txt").is_file()
    assert (site_project.public / "sitemap.xml").is_file()


def test_favicon_and_meta_descriptions(site: InProcessClient) -> None:
    icon = site.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    seen: dict[str, str] = {}
    for path in ("/", "/advisories/PSSA-2014-0001/", "/advisories/PSSA-2014-0002/", "/mirrors/"):
        html = site.get(path).text
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
        m = re.search(r'<meta name="description" content="([^"]+)">', html)
        assert m, f"{path} has no meta description"
        seen[path] = m.group(1)
    assert len(set(seen.values())) == len(seen), seen
    assert seen["/advisories/PSSA-2014-0002/"].startswith("OpenSSL 1.0.1 up to 1.0.1f")


def test_export_writes_and_lists_the_top_files(tmp_path: Path) -> None:
    """robots.txt and sitemap.xml are site files: a build writes them and lists them."""
    project = make_site_project(tmp_path)
    result = export_site(project)
    assert {"robots.txt", "sitemap.xml", "static/favicon.svg"} <= set(result.files)
