"""A real headless Chromium loads the site, follows links, and leaves screenshots.

Screenshots go to tests/artifacts/ (gitignored).  The layout tests drive
Chromium through the DevTools protocol over a pipe (:class:`DevTools`): the
viewport is set exactly (1280×900 desktop, 390×844 phone; a headless window
cannot be narrower than 500 px), and the page's own geometry is measured with
``Runtime.evaluate`` (not subject to the site's no-script CSP): nothing may
stick out of the viewport, no table may need sideways scrolling, no cell may
cut its content off.  Each page is also saved as a screenshot of the viewport
and of the whole page, to look at.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

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
    assert "Current release: pS-Performance Toolkit 3.3.2 , released 2014-01-28" in home_text
    assert "Newest live media: 3.3.2-2 , built 2014-04-10 for PSSA-2014-0002" in home_text
    assert "Security advisories" in home_text and "News" in home_text
    screenshot(site_url + "/", "site-home.png")

    advisory_href = next(h for h, t in links if re.fullmatch(r"/advisories/PSSA-2014-0002/", h))
    adv_text, adv_links = visible(dump_dom(site_url + advisory_href))
    assert 'OpenSSL "Heartbleed": regenerate the host key and certificate' in adv_text
    assert "Severity Critical" in adv_text
    # the record's command and the refresh, not the one toolkit package (OpenSSL needs all)
    assert "yum clean expire-cache" in adv_text and "perfsonar-regenerate-host-cert" in adv_text
    assert "yum update perfsonar-toolkit-security" not in adv_text
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
    """Even a script that got into a released page (here through an edited template,
    so it is in the export and its manifest) is refused by the CSP header."""
    from repotool.site.app import create_app
    from tests.site.site_support import export_site, live_server, make_site_project

    project = make_site_project(tmp_path)
    home = project.root / "web" / "templates" / "home.html"
    home.write_text(
        home.read_text(encoding="utf-8").replace(
            "{% block content %}",
            "{% block content %}<p id=t>inert</p>"
            "<script>document.getElementById('t').textContent='EXECUTED'</script>"
            "<img src=x onerror=\"document.body.dataset.pwned='1'\">",
            1,
        ),
        encoding="utf-8",
    )
    export_site(project)
    assert "<script>document.getElementById" in (project.public / "index.html").read_text(
        encoding="utf-8"
    )
    with live_server(create_app(project.cfg)) as url:
        dom = dump_dom(url + "/")
    assert '<p id="t">inert</p>' in dom and "EXECUTED" not in dom.split("</p>")[0]
    assert "data-pwned" not in dom


# --- layout, measured in a real browser ---------------------------------------------

DESKTOP = (1280, 900)
PHONE = (390, 844)

#: what the layout tests measure, in the page, after it loaded
MEASURE_JS = r"""
(() => {
  const doc = document.documentElement;
  const vw = doc.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const scroller = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === "auto" || ox === "scroll") return p;
    }
    return null;
  };
  const text = (el) => el.textContent.trim().replace(/\s+/g, " ").slice(0, 50);
  const out = {viewport: vw, pageWidth: doc.scrollWidth, sticksOut: [], tableScrolls: [],
               cutOff: [], codeScrolls: [], squeezed: []};
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= 0) continue;  // hidden, or parked off-screen on purpose
    if (r.right > vw + 1 && !scroller(el))
      out.sticksOut.push([name(el), Math.round(r.right), text(el)]);
  }
  for (const box of document.querySelectorAll(".table-scroll")) {
    if (box.scrollWidth > box.clientWidth + 1)
      out.tableScrolls.push([name(box), box.scrollWidth, box.clientWidth, text(box)]);
  }
  for (const cell of document.querySelectorAll("td, th, dd, dt, h1, h2, h3, p, li, summary")) {
    if (cell.clientWidth && cell.scrollWidth > cell.clientWidth + 1)
      out.cutOff.push([name(cell), cell.scrollWidth, cell.clientWidth, text(cell)]);
  }
  // one word (a hash, a URL, a file name) broken over 3 or more lines of a narrow
  // column, a few characters a line: the old SHA-256 column on a phone
  for (const el of document.querySelectorAll("caption, th, td, dt, dd, code, a")) {
    const r = el.getBoundingClientRect();
    const line = parseFloat(getComputedStyle(el).lineHeight) || 20;
    const word = el.textContent.trim();
    if (r.width && r.width < 160 && r.height > 2.5 * line && word.length > 12 && !/\s/.test(word))
      out.squeezed.push([name(el), Math.round(r.width), Math.round(r.height / line), text(el)]);
  }
  for (const cap of document.querySelectorAll("caption")) {
    const c = cap.getBoundingClientRect(), t = cap.parentElement.getBoundingClientRect();
    if (c.width && c.width < t.width / 2)
      out.squeezed.push([name(cap), Math.round(c.width), Math.round(t.width), text(cap)]);
  }
  for (const pre of document.querySelectorAll("pre")) {
    if (pre.scrollWidth > pre.clientWidth + 1) out.codeScrolls.push([name(pre), text(pre)]);
  }
  return out;
})()
"""


def _pipe_fds(read_end: int, write_end: int) -> None:
    """In the child: the DevTools pipe on fds 3 (commands in) and 4 (answers out)."""
    a, b = os.dup(read_end), os.dup(write_end)  # above 4, so dup2 makes them inheritable
    os.dup2(a, 3)
    os.dup2(b, 4)


class DevTools:
    """Chromium driven through the DevTools protocol on ``--remote-debugging-pipe``:
    JSON messages ending in NUL, commands on fd 3, answers and events on fd 4."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="site-devtools-")
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        self.proc = subprocess.Popen(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=lambda: _pipe_fds(to_child, from_child),
        )
        os.close(to_child)
        os.close(from_child)
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Page.enable", session=self.session)

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._id:
                assert "error" not in answer, f"{method}: {answer['error']}"
                result: dict[str, Any] = answer["result"]
                return result
            self._events.append(answer)

    def page(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.send(method, params, session=self.session)

    def _wait_event(self, method: str, timeout: float = 60) -> None:
        if any(e.get("method") == method for e in self._events):
            self._events = [e for e in self._events if e.get("method") != method]
            return
        deadline = time.monotonic() + timeout
        while self._read(deadline).get("method") != method:
            pass

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def open(self, url: str, size: tuple[int, int]) -> None:
        width, height = size
        self.page(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
        )
        self._events.clear()
        self.page("Page.navigate", {"url": url})
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        done = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in done, done
        return done["result"].get("value")

    def screenshot(self, name: str, *, full: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full:
            size = self.page("Page.getLayoutMetrics")["cssContentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            }
        ARTIFACTS.mkdir(exist_ok=True)
        out = ARTIFACTS / name
        out.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", params)["data"]))
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    tools = DevTools()
    try:
        yield tools
    finally:
        tools.close()


def _slug(path: str) -> str:
    return path.strip("/").replace("/", "-") or "home"


def layout_problems(report: dict[str, Any]) -> list[str]:
    """Pure: what a reader would see cut off or needing a sideways scroll."""
    problems = []
    if report["pageWidth"] > report["viewport"]:
        problems.append(f"the page is {report['pageWidth']} px wide in {report['viewport']} px")
    problems += [f"sticks out of the viewport: {x}" for x in report["sticksOut"]]
    problems += [f"table needs a sideways scroll: {x}" for x in report["tableScrolls"]]
    problems += [f"content cut off: {x}" for x in report["cutOff"]]
    problems += [f"code needs a sideways scroll: {x}" for x in report["codeScrolls"]]
    problems += [f"text squeezed into a narrow column: {x}" for x in report["squeezed"]]
    return problems


LAYOUT_PAGES = (
    "/",
    "/advisories/",
    "/advisories/PSSA-2014-0001/",
    "/advisories/PSSA-2014-0002/",
    "/releases/",
    "/releases/3.3.2/",
    "/news/",
    "/news/firewall-recommendations/",
    "/lists/",
    "/lists/perfsonar-announce/PSSA-2014-0002/",
    "/mirrors/",
)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280x900", "390x844"])
def test_no_page_overflows_on_desktop_or_phone(
    browser: DevTools, site_url: str, size: tuple[int, int]
) -> None:
    found: dict[str, list[str]] = {}
    for path in LAYOUT_PAGES:
        browser.open(site_url + path, size)
        report = browser.evaluate(MEASURE_JS)
        assert report["viewport"] == size[0], report
        tag = f"site-{_slug(path)}-{size[0]}x{size[1]}"
        browser.screenshot(tag + ".png")
        browser.screenshot(tag + "-full.png", full=True)
        problems = layout_problems(report)
        if problems:
            found[path] = problems
    assert not found, json.dumps(found, indent=1)


def test_layout_check_catches_a_table_wider_than_a_phone(browser: DevTools, tmp_path: Path) -> None:
    """The measurement itself can fail: the old SHA-256 column squeezed to a few
    characters per line and the mirror URL column ran off the screen."""
    page = tmp_path / "wide.html"
    page.write_text(
        '<!doctype html><meta name="viewport" content="width=device-width">'
        '<div class="table-scroll" style="overflow-x:auto"><table><tr>'
        "<td>https://mirror.example.org/a/very/long/path/to/the/perfsonar/repository/</td>"
        "<td>https://mirror.example.org/another/very/long/path/perfsonar/</td></tr></table></div>",
        encoding="utf-8",
    )
    browser.open(page.as_uri(), PHONE)
    problems = layout_problems(browser.evaluate(MEASURE_JS))
    assert any(p.startswith("table needs a sideways scroll") for p in problems), problems
    # and a 64-digit hash squeezed into a narrow column, as the release page had it
    page.write_text(
        '<!doctype html><meta name="viewport" content="width=device-width"><table><tr>'
        "<td>pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso</td><td>19.9 MB</td>"
        f'<td><code style="word-break:break-all">{"a53f8b9060" * 6}15bb</code></td></tr></table>',
        encoding="utf-8",
    )
    browser.open(page.as_uri(), PHONE)
    problems = layout_problems(browser.evaluate(MEASURE_JS))
    assert any(p.startswith("text squeezed") and "a53f8b" in p for p in problems), problems


def test_phone_shows_a_short_hash_with_the_full_one_a_tap_away(
    browser: DevTools, site_url: str, site_project: SiteProject
) -> None:
    sha = site_project.image_sha256
    state = r"""
    (() => {
      const full = document.querySelector("td .hash-full");
      const short = document.querySelector("td .hash-short");
      const opened = short.querySelector("code.hash");
      const box = (el) => { const r = el.getBoundingClientRect();
        return {w: Math.round(r.width), h: Math.round(r.height), right: Math.round(r.right),
                line: parseFloat(getComputedStyle(el).lineHeight) || 0, text: el.innerText,
                seen: el.checkVisibility()}; };
      return {full: box(full), summary: box(short.querySelector("summary")),
              opened: box(opened), vw: document.documentElement.clientWidth};
    })()
    """
    browser.open(site_url + "/releases/3.3.2/", DESKTOP)
    desk = browser.evaluate(state)
    assert desk["full"]["text"] == sha and desk["full"]["seen"] and not desk["summary"]["seen"]
    assert desk["full"]["h"] < 2 * desk["full"]["line"], f"the hash wraps on a desktop: {desk}"

    browser.open(site_url + "/releases/3.3.2/", PHONE)
    phone = browser.evaluate(state)
    assert not phone["full"]["seen"], "the 64-digit hash is still squeezed into the phone's table"
    assert phone["summary"]["seen"]
    assert phone["summary"]["text"] == f"{sha[:12]}…{sha[-6:]}"
    assert phone["summary"]["h"] < 2 * phone["summary"]["line"], phone
    assert not phone["opened"]["seen"]  # closed until tapped
    browser.evaluate('document.querySelector("td .hash-short summary").click()')
    tapped = browser.evaluate(state)
    assert tapped["opened"]["text"] == sha and tapped["opened"]["seen"]
    assert tapped["opened"]["right"] <= tapped["vw"], tapped
    # at most 2 lines for 64 digits, not 8 characters per line
    assert tapped["opened"]["h"] <= 3 * tapped["opened"]["line"], tapped
    browser.screenshot("site-release-phone-hash-open.png")


def test_dates_read_as_dates_and_do_not_wrap(browser: DevTools, site_url: str) -> None:
    for size in (DESKTOP, PHONE):
        browser.open(site_url + "/lists/", size)
        dates = browser.evaluate(
            "[...document.querySelectorAll('time.when')].map(t => [t.innerText,"
            " t.getClientRects().length])"
        )
        assert dates == [["2014-04-10 12:00 UTC", 1]], dates


MIRROR_STATUS = {
    "schema": 1,
    "generated": "2014-04-10T13:05:00Z",
    "mirrors": [
        {
            "name": "ESnet (Berkeley)",
            "url": "https://mirror.es.example.net/pub/perfsonar/toolkit/repository/",
            "region": "US",
            "contact": "mirror-admin@es.example.net",
            "status": "stale",
            "repos": {
                "el7/x86_64": {
                    "status": "stale",
                    "detail": "59 min behind the master (revision 1795762561 vs 1795766101)",
                }
            },
        },
        {
            "name": "GEANT (Cambridge)",
            "url": "https://mirror.geant.example.org/perfsonar/",
            "region": "EU",
            "contact": "noc@geant.example.org",
            "status": "fresh",
            "repos": {"el7/x86_64": {"status": "fresh", "detail": ""}},
        },
    ],
}


def test_mirror_table_labelled_coloured_linked_and_whole_on_a_phone(
    browser: DevTools, tmp_path: Path
) -> None:
    from repotool.site.app import create_app
    from tests.site.site_support import export_site, live_server, make_site_project

    project = make_site_project(tmp_path)
    (project.public / "mirrors").mkdir()
    (project.public / "mirrors" / "status.json").write_text(json.dumps(MIRROR_STATUS))
    export_site(project)
    table = r"""
    (() => {
      const heads = [...document.querySelectorAll("table.mirrors thead th")].map(
        th => th.innerText);
      const badges = [...document.querySelectorAll("table.mirrors .status")].map(
        b => [b.innerText, getComputedStyle(b).backgroundColor]);
      const links = [...document.querySelectorAll("table.mirrors a")].map(
        a => a.getAttribute("href"));
      const checked = document.querySelector("main time").innerText;
      return {heads, badges, links, checked};
    })()
    """
    with live_server(create_app(project.cfg)) as url:
        for size in (DESKTOP, PHONE):
            browser.open(url + "/mirrors/", size)
            report = browser.evaluate(MEASURE_JS)
            tag = f"site-mirrors-status-{size[0]}x{size[1]}"
            browser.screenshot(tag + ".png")
            browser.screenshot(tag + "-full.png", full=True)
            assert layout_problems(report) == [], report
            seen = browser.evaluate(table)
            assert seen["heads"] == ["Mirror", "Region", "Status", "Details", "Address"]
            (stale, stale_bg), (fresh, fresh_bg) = seen["badges"][:2]
            assert (stale, fresh) == ("stale", "fresh") and stale_bg != fresh_bg
            assert stale_bg not in ("rgba(0, 0, 0, 0)", "transparent")
            assert MIRROR_STATUS["mirrors"][0]["url"] in seen["links"]  # type: ignore[index]
            assert "mailto:noc@geant.example.org" in seen["links"]
            assert seen["checked"] == "2014-04-10 13:05 UTC"


def test_advisory_with_its_rpm_and_checksum_fits_desktop_and_phone(
    browser: DevTools, tmp_path: Path
) -> None:
    """The package table with a real RPM link and its 64-digit SHA-256 in it."""
    from repotool.site.app import create_app
    from tests.conftest import build_rpms, createrepo
    from tests.site.site_support import (
        SECURITY_SPEC,
        export_site,
        live_server,
        make_site_project,
    )

    project = make_site_project(tmp_path)
    rpm = build_rpms({"perfsonar-toolkit-security": SECURITY_SPEC}, tmp_path / "rpmbuild")[0]
    arch_dir = project.public / "repo" / "el7" / "x86_64"
    shutil.copy2(rpm, arch_dir / "Packages" / rpm.name)
    (arch_dir / "repodata").unlink()
    shutil.rmtree(arch_dir / ".repodata-1")
    createrepo(arch_dir)
    export_site(project)
    with live_server(create_app(project.cfg)) as url:
        for size in (DESKTOP, PHONE):
            browser.open(url + "/advisories/PSSA-2014-0002/", size)
            assert layout_problems(browser.evaluate(MEASURE_JS)) == [], size
            shown = browser.evaluate(
                "[...document.querySelectorAll('#pkg-h ~ div td a.file')].map(a => a.innerText)"
            )
            assert shown == [rpm.name], shown
            browser.screenshot(f"site-advisory-rpm-{size[0]}x{size[1]}-full.png", full=True)
