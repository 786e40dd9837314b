"""A real headless Chromium loads the site, follows links, and leaves screenshots.

Screenshots go to tests/artifacts/ (gitignored): home, an advisory and a
release page at desktop size, and the advisory at phone size.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.site.site_support import SiteProject

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.slow


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="site-chromium-") as profile:
        return subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )


def dump_dom(url: str) -> str:
    return chromium("--virtual-time-budget=2000", "--dump-dom", url).stdout


def screenshot(url: str, name: str, size: str = "1280,1800") -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / name
    out.unlink(missing_ok=True)
    chromium(f"--screenshot={out}", f"--window-size={size}", url)
    assert out.is_file() and out.stat().st_size > 10_000, f"no screenshot of {url}"
    return out


class _Visible(HTMLParser):
    """Text a reader sees (not inside head, script or style) and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.text: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "script", "style", "template"):
            self.hidden += 1
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "script", "style", "template"):
            self.hidden -= 1
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._link_text).split())))
            self._href = None

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.text.append(data)
            if self._href is not None:
                self._link_text.append(data)


def visible(dom: str) -> tuple[str, list[tuple[str, str]]]:
    p = _Visible()
    p.feed(dom)
    return " ".join(" ".join(p.text).split()), p.links


def test_reader_goes_from_home_to_an_advisory_and_a_release(
    site_url: str, site_project: SiteProject
) -> None:
    home_text, links = visible(dump_dom(site_url + "/"))
    assert "Current release: pS-Performance Toolkit 3.3.2" in home_text
    assert "Security advisories" in home_text and "News" in home_text
    screenshot(site_url + "/", "site-home.png")

    advisory_href = next(h for h, t in links if re.fullmatch(r"/advisories/PSSA-2014-0002/", h))
    adv_text, adv_links = visible(dump_dom(site_url + advisory_href))
    assert 'OpenSSL "Heartbleed": regenerate the host key and certificate' in adv_text
    assert "Severity Critical" in adv_text
    assert "yum update perfsonar-toolkit-security" in adv_text
    assert ("https://nvd.nist.gov/vuln/detail/CVE-2014-0160", "CVE-2014-0160") in adv_links
    screenshot(site_url + advisory_href, "site-advisory.png")
    screenshot(site_url + advisory_href, "site-advisory-phone.png", size="390,1400")

    release_href = next(h for h, t in links if t == "Download and set-up")
    rel_text, _ = visible(dump_dom(site_url + release_href))
    assert "Download the LiveCD and LiveUSB" in rel_text
    assert "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso" in rel_text
    assert site_project.image_sha256 in rel_text
    assert site_project.fingerprint[:4] + " " + site_project.fingerprint[4:8] in rel_text
    assert "Respin 3.3.2-2" in rel_text or "3.3.2-2 · 2014-04-10" in rel_text
    screenshot(site_url + release_href, "site-release.png", size="1280,2600")


def test_injected_script_does_not_run_in_the_browser(tmp_path: Path) -> None:
    """Even a script that got into a page would be refused by the CSP header."""
    from repotool.site.app import create_app
    from tests.site.site_support import live_server, make_site_project

    project = make_site_project(tmp_path)
    evil = project.public / "evil.html"
    evil.write_text(
        "<!doctype html><html><body><p id=t>inert</p>"
        "<script>document.getElementById('t').textContent='EXECUTED'</script>"
        "<img src=x onerror=\"document.body.dataset.pwned='1'\"></body></html>",
        encoding="utf-8",
    )
    with live_server(create_app(project.cfg)) as url:
        dom = dump_dom(url + "/evil.html")
    assert '<p id="t">inert</p>' in dom and "EXECUTED" not in dom.split("</p>")[0]
    assert "data-pwned" not in dom
