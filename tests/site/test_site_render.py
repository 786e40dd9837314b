"""Sanitized Markdown, XSS in an advisory body, HTTP decisions, and the static export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from repotool.errors import PublishedFileError, SiteExportError
from repotool.report import SilentReporter
from repotool.site.app import create_app
from repotool.site.export import build_site, output_name
from repotool.site.http import accepts_gzip, not_modified
from repotool.site.key_inspection import FixedKeyInspector, primary_fingerprint
from repotool.site.published import parse_archive, parse_media
from repotool.site.render import markdown_to_html
from tests.site.site_support import (
    REPO_ROOT,
    InProcessClient,
    export_site,
    make_site_project,
)

XSS_PAYLOADS = (
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    "[click](javascript:alert(1))",
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">entity</a>',
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe src="https://evil.example/"></iframe>',
    '<p style="background:url(javascript:alert(1))" onmouseover="alert(1)">hover</p>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="https://evil.example/"><input name=q></form>',
    '<object data="javascript:alert(1)"></object>',
)


def _assert_inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<iframe" not in lowered and "<object" not in lowered and "<form" not in lowered
    assert "<svg" not in lowered and "<style" not in lowered
    assert not re.search(r"<[^>]+\son\w+\s*=", lowered), "an event handler survived"
    assert not re.search(r"(href|src|action|data)\s*=\s*\"?\s*javascript:", lowered)
    assert "style=" not in lowered


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_markdown_payload_is_inert(payload: str) -> None:
    _assert_inert(str(markdown_to_html(f"Text before.\n\n{payload}\n\nAfter.")))


def test_markdown_keeps_what_records_use() -> None:
    html = str(
        markdown_to_html(
            "## Fix\n\n1. Run:\n\n   ```\n   yum update\n   ```\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
            "See [NVD](https://nvd.nist.gov/vuln/detail/CVE-2014-0160) and `code`."
        )
    )
    assert "<h2>Fix</h2>" in html and "<pre><code>yum update" in html
    assert "<table>" in html and "<td>1</td>" in html
    nvd = "https://nvd.nist.gov/vuln/detail/CVE-2014-0160"
    assert f'<a href="{nvd}" rel="noopener noreferrer">' in html


def _xss_content(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    shutil.copytree(REPO_ROOT / "web" / "content", content)
    src = (content / "advisories" / "PSSA-2014-0001.md").read_text(encoding="utf-8")
    evil = "\n\n".join(XSS_PAYLOADS)
    src = src.replace("## Impact", f"{evil}\n\n## Impact")
    src = src.replace(
        'title: "NTP amplification', 'title: "<script>alert(1)</script> NTP amplification'
    )
    (content / "advisories" / "PSSA-2014-0001.md").write_text(src, encoding="utf-8")
    return content


def test_xss_in_an_advisory_renders_inert_on_page_api_and_feed(tmp_path: Path) -> None:
    project = make_site_project(tmp_path, content=_xss_content(tmp_path))
    export_site(project)
    site = InProcessClient(create_app(project.cfg))
    page = site.get("/advisories/PSSA-2014-0001/")
    assert page.status_code == 200
    _assert_inert(page.text)
    # the title is escaped text, visible as written
    assert "&lt;script&gt;alert(1)&lt;/script&gt; NTP amplification" in page.text
    api = site.get("/api/advisories/PSSA-2014-0001").json()
    _assert_inert(api["body_html"])
    feed = site.get("/feeds/advisories.atom").text
    # in a feed the HTML is escaped once more; unescape it and check it
    import html as html_lib

    _assert_inert(html_lib.unescape(feed.split("PSSA-2014-0001/")[-1]))


def test_not_modified_rules() -> None:
    etag = '"abc"'
    assert not_modified({"if-none-match": '"abc"'}, etag, 1000.0)
    assert not_modified({"if-none-match": 'W/"abc", "x"'}, etag, 1000.0)
    assert not_modified({"if-none-match": "*"}, etag, None)
    assert not not_modified({"if-none-match": '"x"'}, etag, 1000.0)
    # If-None-Match wins over If-Modified-Since
    assert not not_modified(
        {"if-none-match": '"x"', "if-modified-since": "Thu, 01 Jan 2099 00:00:00 GMT"}, etag, 1.0
    )
    assert not_modified({"if-modified-since": "Thu, 01 Jan 1970 00:16:40 GMT"}, etag, 1000.0)
    assert not not_modified({"if-modified-since": "Thu, 01 Jan 1970 00:16:39 GMT"}, etag, 1000.0)
    assert not not_modified({"if-modified-since": "garbage"}, etag, 1000.0)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("", False),
        ("br;q=1.0, gzip;q=0.5", True),
    ],
)
def test_accepts_gzip(header: str, ok: bool) -> None:
    assert accepts_gzip(header) is ok


def test_output_names() -> None:
    assert output_name("/") == "index.html"
    assert output_name("/advisories/PSSA-2014-0001/") == "advisories/PSSA-2014-0001/index.html"
    assert output_name("/feeds/news.atom") == "feeds/news.atom"
    with pytest.raises(SiteExportError, match=re.escape("unsafe path '/news/../../etc/'")):
        output_name("/news/../../etc/")


def test_fingerprint_from_gpg_colons() -> None:
    colons = (
        "pub:-:2048:1:D03A2EC8DC50F317:1:::-:::scSC::::::23::0:\n"
        "fpr:::::::::EA5A4F792E867AEF8E7AAE0AD03A2EC8DC50F317:\n"
        "uid:-::::1::X::Site Test <t@localhost>::::::::::0:\n"
    )
    assert primary_fingerprint(colons) == "EA5A4F792E867AEF8E7AAE0AD03A2EC8DC50F317"
    assert primary_fingerprint("") == ""


def test_broken_published_files_name_the_file() -> None:
    with pytest.raises(PublishedFileError, match="image #1 lacks") as e:
        parse_media(
            b'{"images": [{"name": "../x", "size": 1, "sha256": "00"}]}',
            "3.3.2",
            "public/releases/3.3.2/media.json",
        )
    assert e.value.where == "public/releases/3.3.2/media.json"
    assert e.value.what == (
        "image #1 lacks a plain file name: '../x' is not a name beside media.json"
    )
    assert e.value.hint == "rerun: repotool media build"
    with pytest.raises(PublishedFileError, match="not valid JSON"):
        parse_archive(b"{", "perfsonar-announce", "archive.json")
    # a file name that is not plain is refused (the announcements' reader), never linked
    with pytest.raises(PublishedFileError) as e:
        parse_archive(
            b'[{"message_id": "<m>", "subject": "s", "date": "2014", "kind": "release",'
            b' "ref": "3.3.2", "file": "../../x"}]',
            "perfsonar-announce",
            "public/lists/perfsonar-announce/archive.json",
        )
    assert e.value.what == (
        "message #1 (<m>) names the file '../../x', which is not a plain "
        "file name beside archive.json"
    )
    assert e.value.where == "public/lists/perfsonar-announce/archive.json"
    assert "repotool announce archive" in (e.value.hint or "")
    with pytest.raises(PublishedFileError, match=r"message #1 lacks a 'kind' string"):
        parse_archive(
            b'[{"message_id": "<m>", "subject": "s", "date": "2014", "file": "x"}]',
            "perfsonar-announce",
            "archive.json",
        )


def test_archive_entries_link_their_message_newest_first() -> None:
    def msg(n: int, date: str) -> dict[str, str]:
        return {
            "message_id": f"<{n}>",
            "subject": f"s{n}",
            "date": date,
            "kind": "advisory",
            "ref": f"PSSA-2014-000{n}",
            "file": f"{n}.eml",
        }

    data = json.dumps([msg(1, "2014-04-08T12:00:00Z"), msg(2, "2014-04-10T12:00:00Z")])
    entries = parse_archive(data.encode(), "perfsonar-announce", "archive.json")
    assert [(e.message_id, e.url) for e in entries] == [
        ("<2>", "/lists/perfsonar-announce/2.eml"),
        ("<1>", "/lists/perfsonar-announce/1.eml"),
    ]


def test_export_writes_every_page_atomically_and_skips_when_unchanged(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    reporter = SilentReporter()
    # the fake of the key seam: its fingerprint is what the release page shows
    keys = FixedKeyInspector("0123456789ABCDEF0123456789ABCDEF01234567")
    first = build_site(project.cfg, reporter, keys=keys)
    assert keys.asked == [(project.public / "keys" / "RPM-GPG-KEY-perfsonar").read_bytes()]
    assert "0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567" in (
        project.public / "releases/3.3.2/index.html"
    ).read_text(encoding="utf-8")
    assert not first.skipped
    public = project.public
    for rel in (
        "index.html",
        "advisories/PSSA-2014-0001/index.html",
        "releases/3.3.2/index.html",
        "advisories/2014/critical/index.html",
        "lists/index.html",
        "news/about/index.html",
        "feeds/news.atom",
        "feeds/advisories.rss",
        "static/site.css",
        "404.html",
    ):
        assert (public / rel).is_file(), rel
    # other stages' files are untouched; no staging folder is left behind
    assert (public / "releases" / "3.3.2-2" / "media.json").is_file()
    assert not list(public.glob(".site-staging-*"))
    # the export and the app serve the same bytes
    live = InProcessClient(create_app(project.cfg)).get("/advisories/PSSA-2014-0001/").content
    assert live == (public / "advisories/PSSA-2014-0001/index.html").read_bytes()

    mtime = (public / "index.html").stat().st_mtime_ns
    second = build_site(project.cfg, reporter, keys=keys)
    assert second.skipped and second.written == ()
    assert (public / "index.html").stat().st_mtime_ns == mtime

    # a new news item: only the pages that show it change; a removed one disappears
    news = project.root / "web" / "content" / "news"
    (news / "mirror-call.md").write_text(
        "---\ntitle: Call for mirrors\ndate: 2014-05-01\n---\nHost a mirror.\n", encoding="utf-8"
    )
    third = build_site(project.cfg, reporter, keys=keys)
    assert "news/mirror-call/index.html" in third.written
    assert "advisories/PSSA-2014-0001/index.html" not in third.written
    (news / "mirror-call.md").unlink()
    fourth = build_site(project.cfg, reporter, keys=keys)
    assert fourth.removed == ("news/mirror-call/index.html",)
    assert not (public / "news" / "mirror-call" / "index.html").exists()


def test_site_build_command(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    repotool = REPO_ROOT / ".venv" / "bin" / "repotool"
    done = subprocess.run(
        [str(repotool), "site", "build", "--json"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"skipped": false' in done.stdout
    again = subprocess.run(
        [str(repotool), "site", "build"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.stdout.startswith(f"site unchanged in {project.public}")
    # a broken record is exit status 7 with file and line
    bad = project.root / "web" / "content" / "news" / "bad.md"
    bad.write_text("---\ntitle: x\n---\nno date\n", encoding="utf-8")
    broken = subprocess.run(
        [str(repotool), "site", "build"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert broken.returncode == 7
    assert f"{bad}:1: date: is required but missing" in broken.stderr
