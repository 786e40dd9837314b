"""The app serves what was released, never the working tree; the export removes only its
own files (issue 12 items 1 and 6)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path

import pytest

from repotool.site.app import create_app
from repotool.site.released import MANIFEST_NAME, ReleasedSource
from tests.site.site_support import (
    REPO_ROOT,
    InProcessClient,
    SiteProject,
    _gpg,
    export_site,
    make_site_project,
)

REPOTOOL = str(REPO_ROOT / ".venv" / "bin" / "repotool")
NEW_ID = "PSSA-2014-0003"
#: what readers, feed readers and API clients fetch
WATCHED = (
    "/",
    "/advisories/",
    "/advisories/PSSA-2014-0002/",
    "/advisories/2014/critical/",
    "/feeds/advisories.atom",
    "/feeds/advisories.rss",
    "/api/advisories",
    "/api/releases",
    "/static/site.css",
)


def _repotool(project: SiteProject, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPOTOOL, *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _answers(site: InProcessClient) -> dict[str, tuple[int, bytes]]:
    out = {}
    for path in WATCHED:
        r = site.get(path, headers={"accept-encoding": "identity"})
        out[path] = (r.status_code, r.content)
    return out


def _write_valid_advisory(project: SiteProject) -> Path:
    adv = project.root / "web" / "content" / "advisories"
    text = (adv / "PSSA-2014-0002.md").read_text(encoding="utf-8")
    text = text.replace("id: PSSA-2014-0002", f"id: {NEW_ID}")
    text = text.replace('title: "OpenSSL', 'title: "EMBARGOED OpenSSL', 1)
    path = adv / f"{NEW_ID}.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_working_tree_changes_nothing_served_until_site_build(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    export_site(project)
    site = InProcessClient(create_app(project.cfg, check_interval=0))
    before = _answers(site)
    assert all(status == 200 for status, _ in before.values())

    # the maintainer starts an embargoed advisory: the invalid scaffold is on disk
    new = _repotool(project, "advisory", "new", "--title", "EMBARGOED", "--year", "2014")
    assert new.returncode == 0, new.stderr
    scaffold = project.root / "web" / "content" / "advisories" / f"{NEW_ID}.md"
    assert "FILL IN" in scaffold.read_text(encoding="utf-8")
    assert _answers(site) == before
    assert site.get(f"/advisories/{NEW_ID}/").status_code == 404

    # the draft validates: still not public before a release or site build
    _write_valid_advisory(project)
    assert _answers(site) == before
    assert site.get(f"/advisories/{NEW_ID}/").status_code == 404
    assert site.get(f"/api/advisories/{NEW_ID}").status_code == 404

    # an edit that site build refuses (exit 7) leaves the live site as it was
    broken = project.root / "web" / "content" / "advisories" / "PSSA-2014-0001.md"
    good_text = broken.read_text(encoding="utf-8")
    broken.write_text(good_text.replace("severity: Moderate", "severity: Catastrophic"))
    refused = _repotool(project, "site", "build")
    assert refused.returncode == 7, refused.stderr
    assert f"{broken}:" in refused.stderr
    assert _answers(site) == before
    # a fresh server over the same public/ answers the same (nothing is read from web/)
    assert _answers(InProcessClient(create_app(project.cfg))) == before

    # fixed and exported: the new advisory appears on the page, the API and the feed
    broken.write_text(good_text, encoding="utf-8")
    done = _repotool(project, "site", "build")
    assert done.returncode == 0, done.stderr
    assert site.get(f"/advisories/{NEW_ID}/").status_code == 200
    assert "EMBARGOED OpenSSL" in site.get(f"/advisories/{NEW_ID}/").text
    assert NEW_ID in [a["id"] for a in site.get("/api/advisories").json()]
    assert f"/advisories/{NEW_ID}/" in site.get("/feeds/advisories.atom").text
    assert f"/advisories/{NEW_ID}/" in site.get("/").text


def test_a_half_done_export_is_never_served_and_never_a_500(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    export_site(project)
    site = InProcessClient(create_app(project.cfg, check_interval=0))
    before = _answers(site)
    public = project.public
    # what an export killed before its manifest leaves: new and changed pages on disk
    page = public / "advisories" / NEW_ID / "index.html"
    page.parent.mkdir()
    page.write_text("<p>EMBARGOED half-exported</p>", encoding="utf-8")
    (public / "index.html").write_text("<p>EMBARGOED half-exported home</p>", encoding="utf-8")
    (public / "feeds" / "advisories.atom").write_text("EMBARGOED", encoding="utf-8")

    assert _answers(site) == before
    for path in (f"/advisories/{NEW_ID}/", f"/advisories/{NEW_ID}/index.html"):
        r = site.get(path)
        assert r.status_code == 404 and "EMBARGOED" not in r.text, path

    # a server started now finds files that differ from the manifest: no site, no 500,
    # and the repository still works
    fresh = InProcessClient(create_app(project.cfg))
    for path in WATCHED:
        r = fresh.get(path)
        assert r.status_code == 503, path
        assert b"EMBARGOED" not in r.content
    assert "repotool site build" in fresh.get("/").text
    assert fresh.get("/repo/perfsonar.repo").status_code == 200
    assert fresh.get("/keys/RPM-GPG-KEY-perfsonar").status_code == 200

    # site build notices the damage (same inputs) and repairs it
    repaired = export_site(project)
    assert not repaired.skipped
    assert set(repaired.written) == {"index.html", "feeds/advisories.atom"}
    assert _answers(InProcessClient(create_app(project.cfg))) == before


def test_each_snapshot_seen_during_an_export_is_whole(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    export_site(project)
    source = ReleasedSource(project.public, check_interval=0)
    old = source.current()
    assert old is not None
    _write_valid_advisory(project)
    seen = []
    exporter = threading.Thread(target=export_site, args=(project,))
    exporter.start()
    for _ in range(20_000):
        current = source.current()
        assert current is not None
        seen.append(current)
        if not exporter.is_alive() and current is not old:
            break
    exporter.join(timeout=60)
    assert not exporter.is_alive()
    new = source.current()
    assert new is not None and new is not old
    for snap in {id(s): s for s in seen}.values():
        has_page = snap.document(f"/advisories/{NEW_ID}/") is not None
        in_api = NEW_ID in [a.id for a in snap.api.advisories]
        home = snap.document("/")
        assert home is not None
        # one site: the page, the API and the home page agree
        assert has_page == in_api == (f"/advisories/{NEW_ID}/".encode() in home.body)


# --- item 6: the export removes only its own files ---------------------------------


def _sign_repomd(project: SiteProject) -> Path:
    repomd = project.public / "repo" / "el7" / "x86_64" / "repodata" / "repomd.xml"
    asc = repomd.with_name("repomd.xml.asc")
    asc.write_bytes(
        _gpg(project.gnupghome, "--armor", "--detach-sign", "--output", "-", str(repomd))
    )
    return asc


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_forged_manifest_removes_nothing_of_others(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    export_site(project)
    public = project.public
    asc = _sign_repomd(project)
    key = public / "keys" / "RPM-GPG-KEY-perfsonar"
    outside = tmp_path / "x"
    outside.write_text("outside public/\n", encoding="utf-8")
    manifest_path = public / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_bytes())
    for rel, path in (
        ("../x", outside),
        (str(outside), outside),
        ("keys/RPM-GPG-KEY-perfsonar", key),
        ("repo/el7/x86_64/repodata/repomd.xml.asc", asc),
    ):
        manifest["files"][rel] = {"url": "/x/", "sha256": _sha(path), "type": "text/html"}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    # and the state file of older versions, with the same entries
    state = project.cfg.state / "site" / "export-0123456789abcdef.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"fingerprint": "x", "files": ["../x", "keys/" + key.name]}))

    result = export_site(project, force=True)
    assert result.removed == ()
    for path in (outside, key, asc):
        assert path.is_file(), path
    # the key and the signature still verify: el7 stays installable
    subprocess.run(
        [
            "gpgv",
            "--keyring",
            str(project.gnupghome / "pubring.kbx"),
            str(asc),
            str(asc.with_name("repomd.xml")),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # the forged manifest is replaced by a true one; the site is served again
    assert "../x" not in json.loads(manifest_path.read_bytes())["files"]
    assert InProcessClient(create_app(project.cfg)).get("/").status_code == 200


def test_stale_pages_go_but_edited_ones_stay(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    news = project.root / "web" / "content" / "news"
    for slug in ("gone", "edited"):
        (news / f"{slug}.md").write_text(
            f"---\ntitle: {slug}\ndate: 2014-05-01\n---\nBody of {slug}.\n", encoding="utf-8"
        )
    export_site(project)
    public = project.public
    edited = public / "news" / "edited" / "index.html"
    edited.write_text(edited.read_text(encoding="utf-8") + "<!-- local note -->")
    (news / "gone.md").unlink()
    (news / "edited.md").unlink()

    result = export_site(project)
    assert result.removed == ("news/gone/index.html",)
    assert not (public / "news" / "gone" / "index.html").exists()
    assert edited.is_file() and "local note" in edited.read_text(encoding="utf-8")
    assert result.notes == ("left in place: news/edited/index.html",)
    # it is not part of the site any more: the app does not serve it
    site = InProcessClient(create_app(project.cfg))
    assert site.get("/news/edited/").status_code == 404
    assert site.get("/news/edited/index.html").status_code == 404


@pytest.mark.parametrize(
    ("rel", "owned"),
    [
        ("index.html", True),
        ("advisories/PSSA-2014-0001/index.html", True),
        ("404.html", True),
        ("feeds/news.atom", True),
        ("static/site.css", True),
        ("../x", False),
        ("/etc/passwd", False),
        ("news/../../x/index.html", False),
        ("keys/RPM-GPG-KEY-perfsonar", False),
        ("repo/el7/x86_64/repodata/repomd.xml.asc", False),
        ("releases/3.3.2-2/SHA256SUMS", False),
        (".site-export.json", False),
        ("feeds", False),
        ("lists/perfsonar-announce/archive.json", False),
    ],
)
def test_site_owned_paths(rel: str, owned: bool) -> None:
    from repotool.site.released import site_owned

    assert site_owned(rel) is owned


def test_a_manifest_cannot_point_a_url_at_another_file(site_project: SiteProject) -> None:
    from repotool.errors import PublishedFileError
    from repotool.site.released import parse_manifest

    data = json.loads((site_project.public / MANIFEST_NAME).read_bytes())
    assert parse_manifest(json.dumps(data).encode(), "m").files["index.html"].url == "/"
    data["files"]["index.html"]["url"] = "/keys/RPM-GPG-KEY-perfsonar"
    with pytest.raises(PublishedFileError) as e:
        parse_manifest(json.dumps(data).encode(), "public/.site-export.json")
    assert e.value.what == "the entry 'index.html' is not a file the site writes"
    assert e.value.where == "public/.site-export.json"
    assert e.value.hint == "export the site again: repotool site build --force"
