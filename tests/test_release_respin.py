"""Respins out of order: `release --respin 2` after 3.3.2-3 is refused unless forced;
forced media are marked superseded (media.json, release page, --json); the respin's
own URL leads to its section of the release page; --json names only public/ paths."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from repotool.media.manifest import ManifestError, parse_manifest
from repotool.media.plan import ImageRecord, manifest_json, media_names
from repotool.mirror.media_plan import parse_media_manifest
from repotool.records.respins import (
    RespinArgumentError,
    newer_respin,
    parse_respin,
    superseded_by,
)
from tests.conftest import (
    Released,
    copy_of_release,
    copy_project,
    free_port,
    run_repotool,
    start_server,
    tree_digest,
)

RESPIN_3 = """\
  - version: 3.3.2-3
    date: 2014-06-05
    notes: >-
      New LiveCD and LiveUSB images with the OpenSSL fixes of June 2014.
"""

# --- the pure decisions -------------------------------------------------------------


def test_newer_respin_counts_the_record_and_the_published_media() -> None:
    listed = ["3.3.2-2", "3.3.2-3"]
    assert newer_respin("3.3.2", 2, listed, ["3.3.2", "3.3.2-2"]) == "3.3.2-3"
    assert newer_respin("3.3.2", 2, ["3.3.2-2"], ["3.3.2", "3.3.2-4"]) == "3.3.2-4"
    assert newer_respin("3.3.2", 3, listed, ["3.3.2-3"]) is None
    assert newer_respin("3.3.2", 4, listed, []) is None
    # another release's respins and stray folder names do not count
    assert newer_respin("3.3.2", 2, ["3.3.2-2"], ["3.4-7", "3.3.2-x", ".media-staging"]) is None
    # numbers, not text: 3.3.2-10 is newer than 3.3.2-9
    assert newer_respin("3.3.2", 9, ["3.3.2-9", "3.3.2-10"], []) == "3.3.2-10"


def test_superseded_by_names_the_newest_media_of_the_same_release() -> None:
    assert superseded_by(["3.3.2", "3.3.2-2", "3.3.2-3", "3.4", "3.3.2-x"]) == {
        "3.3.2": "3.3.2-3",
        "3.3.2-2": "3.3.2-3",
    }
    assert superseded_by(["3.3.2"]) == {}
    assert superseded_by(["3.3.2-10", "3.3.2-9"]) == {"3.3.2-9": "3.3.2-10"}


def test_respin_argument_takes_a_number_or_the_configured_versions_respin() -> None:
    assert parse_respin("2", "3.3.2") == 2
    assert parse_respin("3.3.2-3", "3.3.2") == 3
    with pytest.raises(RespinArgumentError, match=r"respin of 3\.3\.1, but .* 3\.3\.2"):
        parse_respin("3.3.1-3", "3.3.2")
    for bad in ("0", "3.3.2", "3.3.2-0", "two", "3.3.2-3\n"):
        with pytest.raises(RespinArgumentError):
            parse_respin(bad, "3.3.2")


def _manifest(superseded: str = "") -> str:
    n = media_names(
        prefix="pS-Performance_Toolkit",
        version_label="3.3.2-2",
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    return manifest_json(
        names=n,
        product="pS-Performance Toolkit",
        source_date_epoch=1397131200,
        images=[ImageRecord("LiveCD", n.livecd, 10, "c" * 64)],
        kernel="6.1.0",
        base="busybox",
        packages=["perfsonar-toolkit"],
        superseded_by=superseded,
    )


def test_media_json_superseded_by_is_written_read_and_checked() -> None:
    assert "superseded_by" not in json.loads(_manifest())
    text = _manifest("3.3.2-3")
    assert json.loads(text)["superseded_by"] == "3.3.2-3"
    assert parse_manifest(text, "media.json").superseded_by == "3.3.2-3"
    # a mirror reads it with the same parser: the new field is accepted
    assert parse_media_manifest(text.encode(), "media.json").version == "3.3.2-2"
    doc = json.loads(text)
    for bad in ("../3.3.2-3", "3.3.2-3\n", 3):
        doc["superseded_by"] = bad
        with pytest.raises(ManifestError, match="superseded_by"):
            parse_manifest(json.dumps(doc), "media.json")


# --- what a maintainer sees -----------------------------------------------------------


@dataclass(frozen=True)
class Respun3:
    project: Path
    result: dict[str, object]


def _list_respin_3(project: Path) -> None:
    record = project / "web/content/releases/3.3.2.md"
    text = record.read_text()
    front_end = text.index("\n---\n", 4) + 1
    front = text[:front_end]
    # the respins list is the front matter's last field: the new entry goes at its end
    assert re.findall(r"^(\w+):", front, re.M)[-1] == "respins", front
    record.write_text(front + RESPIN_3 + text[front_end:])


@pytest.fixture(scope="module")
def respun3(released: Released, tmp_path_factory: pytest.TempPathFactory) -> Respun3:
    """A copy of the session release with 3.3.2-3 listed and its media built (read-only)."""
    project = copy_of_release(released, tmp_path_factory.mktemp("respun3") / "project")
    _list_respin_3(project)
    done = run_repotool(project, "release", "--respin", "3", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    return Respun3(project, json.loads(done.stdout))


def test_an_older_respin_after_a_newer_one_is_refused(respun3: Respun3) -> None:
    project = respun3.project
    assert (project / "public/releases/3.3.2-3/media.json").is_file()
    before = tree_digest(project / "public")
    done = run_repotool(project, "release", "--respin", "2")
    assert done.returncode == 8, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    err = done.stderr
    assert "3.3.2-2 is older than the newest respin, 3.3.2-3" in err
    assert "published in " in err and "public/releases/3.3.2-3" in err
    assert "dated 2014-04-10 but hold the packages published now" in err
    assert "'repotool release --respin 3'" in err and "--force" in err
    # nothing was built or published
    assert sorted(p.name for p in (project / "public/releases/3.3.2-2").iterdir()) == [
        "index.html"  # the exported page that leads to the respin's section, nothing else
    ]
    assert tree_digest(project / "public") == before


def test_the_respin_version_form_is_accepted_for_the_configured_version(
    respun3: Respun3, tmp_path: Path
) -> None:
    project = copy_project(respun3.project, tmp_path / "p")
    same = run_repotool(project, "release", "--respin", "3.3.2-3", "--json", "--quiet")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["media"] == {
        "version": "3.3.2-3",
        "skipped": "already published",
    }
    older = run_repotool(project, "release", "--respin", "3.3.2-2")
    assert older.returncode == 8 and "--force" in older.stderr
    other = run_repotool(project, "release", "--respin", "3.3.1-2")
    assert other.returncode == 2
    assert "--respin 3.3.1-2 is a respin of 3.3.1, but the version being released is 3.3.2" in (
        other.stderr
    )
    assert "repotool.toml" in other.stderr and "Traceback" not in other.stderr


@dataclass(frozen=True)
class Forced:
    project: Path
    result: dict[str, object]
    stderr: str


@pytest.fixture(scope="module")
def forced(respun3: Respun3, tmp_path_factory: pytest.TempPathFactory) -> Forced:
    """`release --respin 2 --force` after 3.3.2-3, on a copy (read-only)."""
    project = copy_project(respun3.project, tmp_path_factory.mktemp("forced") / "project")
    done = run_repotool(project, "release", "--respin", "2", "--force", "--json")
    assert done.returncode == 0, done.stderr
    return Forced(project, json.loads(done.stdout), done.stderr)


def test_forced_older_respin_is_marked_superseded(forced: Forced) -> None:
    project = forced.project
    assert "WARNING: building media 3.3.2-2 after 3.3.2-3 (--force)" in forced.stderr
    media = forced.result["media"]
    assert isinstance(media, dict)
    assert media["version"] == "3.3.2-2" and media["superseded_by"] == "3.3.2-3"
    summary = str(forced.result["summary"])
    assert not summary.startswith("Nothing changed"), summary
    assert summary.startswith(
        "New media 3.3.2-2 in public/releases/3.3.2-2/ (superseded by 3.3.2-3)"
    )
    manifest = json.loads((project / "public/releases/3.3.2-2/media.json").read_text())
    assert manifest["superseded_by"] == "3.3.2-3"
    assert manifest["date"].startswith("2014-04-10")
    # the newest media say nothing of the kind
    newest = json.loads((project / "public/releases/3.3.2-3/media.json").read_text())
    assert "superseded_by" not in newest
    # the release page: 3.3.2-2 (and 3.3.2) are marked, with a link to 3.3.2-3's section
    page = (project / "public/releases/3.3.2/index.html").read_text()
    notice = re.search(r'<p class="notice superseded" id="superseded-3\.3\.2-2">(.*?)</p>', page)
    assert notice, page
    assert 'href="/releases/3.3.2/#respin-3.3.2-3"' in notice.group(1)
    assert (
        "They were built after 3.3.2-3, with the packages published then, not those of "
        "2014-04-10." in notice.group(1)
    )
    # 3.3.2 was built in order: superseded, but not said to be built late
    base = re.search(r'<p class="notice superseded" id="superseded-3\.3\.2">(.*?)</p>', page)
    assert base and "built after" not in base.group(1)
    assert "Live media 3.3.2-2 (2014-04-10) · superseded by 3.3.2-3" in page
    assert 'id="superseded-3.3.2-3"' not in page


def test_release_json_names_only_files_in_public(forced: Forced, respun3: Respun3) -> None:
    for project, result in ((forced.project, forced.result), (respun3.project, respun3.result)):
        public = (project / "public").resolve()
        media = result["media"]
        assert isinstance(media, dict)
        label = media["version"]
        for key in ("directory", "checksums", "signature", "manifest"):
            path = Path(str(media[key]))
            assert path.is_relative_to(public / "releases" / label), (key, path)
            assert ".media-staging" not in path.parts and "media-staging" not in path.parts
            assert path.exists(), (key, path)
        site = result["site"]
        assert isinstance(site, dict) and Path(str(site["public_dir"])).resolve() == public
    # sha256sum -c in the folder --json names checks the forced media
    media = forced.result["media"]
    assert isinstance(media, dict)
    folder = Path(str(media["directory"]))
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True)
    assert check.returncode == 0, check.stdout


def test_respin_url_leads_to_the_respin_section(respun3: Respun3) -> None:
    """GET /releases/3.3.2-3/ through `repotool serve`: a page whose canonical link and
    refresh lead to the release page's respin section, which is there."""
    project = respun3.project
    exported = project / "public/releases/3.3.2-3/index.html"
    assert exported.is_file()
    sitemap = (project / "public/sitemap.xml").read_text()
    assert "/releases/3.3.2-3/" not in sitemap and "/releases/3.3.2/" in sitemap
    server = start_server(project, free_port())
    try:
        bare = requests.get(f"{server.url}/releases/3.3.2-3", timeout=10, allow_redirects=False)
        assert bare.status_code == 308 and bare.headers["location"] == "/releases/3.3.2-3/"
        got = requests.get(f"{server.url}/releases/3.3.2-3/", timeout=10)
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("text/html")
        refresh = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', got.text)
        assert refresh and refresh.group(1) == "/releases/3.3.2/#respin-3.3.2-3", got.text
        assert re.search(
            r'<link rel="canonical" href="http://127\.0\.0\.1:\d+/releases/3\.3\.2/#respin-3\.3\.2-3">',
            got.text,
        )
        # the images of the respin are still files of its folder
        iso = "pS-Performance_Toolkit-3.3.2-3-LiveCD-x86_64.iso"
        head = requests.head(f"{server.url}/releases/3.3.2-3/{iso}", timeout=10)
        assert head.status_code == 200
        page, _, fragment = refresh.group(1).partition("#")
        landed = requests.get(server.url + page, timeout=10)
        assert landed.status_code == 200
        section = re.search(
            rf'<div class="card" id="{re.escape(fragment)}">(.*?)</div>', landed.text, re.S
        )
        assert section, landed.text
        assert "OpenSSL fixes of June 2014" in section.group(1)
        if shutil.which("chromium"):
            # a real browser follows the refresh: the DOM it ends with is the release page
            dom = _browser_dom(f"{server.url}/releases/3.3.2-3/")
            assert "<h1>pS-Performance Toolkit 3.3.2</h1>" in dom, dom[-2000:]
            assert 'id="respin-3.3.2-3"' in dom and 'http-equiv="refresh"' not in dom
    finally:
        server.stop()


def _browser_dom(url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="respin-chromium-") as profile:
        done = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_api_lists_the_superseded_media_for_mirrors(forced: Forced) -> None:
    """/api/releases (what `repotool mirror media` reads for its labels) keeps every label
    and adds superseded_by; the labels a mirror takes from it are unchanged."""
    from repotool.config import load_config
    from repotool.mirror.media_plan import parse_release_labels
    from repotool.site.app import create_app
    from tests.site.site_support import InProcessClient

    cfg = load_config(forced.project / "repotool.toml")
    got = InProcessClient(create_app(cfg)).get("/api/releases")
    assert got.status_code == 200
    (release,) = [r for r in got.json() if r["version"] == "3.3.2"]
    assert [(m["label"], m["superseded_by"]) for m in release["media"]] == [
        ("3.3.2-3", ""),
        ("3.3.2-2", "3.3.2-3"),
        ("3.3.2", "3.3.2-3"),
    ]
    assert parse_release_labels(got.content, "/api/releases") == ["3.3.2-3", "3.3.2-2", "3.3.2"]
