"""`serve` hands out from disk only what a release publishes: a file planted or left
anywhere else under public/, or a page, script or style in a published area, is 404."""

from __future__ import annotations

from pathlib import Path

from repotool.site.app import create_app
from tests.site.site_support import InProcessClient, export_site, make_site_project


def test_planted_files_outside_the_published_areas_are_not_served(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    export_site(project)
    public = project.public
    planted = {
        "stray/a.txt": b"stray",
        "planted.js": b"alert(1)",
        "lists/evil.html": b"<script>alert(1)</script>",
        "releases/3.3.2-2/evil.svg": b"<svg onload=alert(1)/>",
        "repo/el7/x86_64/evil.htm": b"<script>alert(1)</script>",
        "keys/style.css": b"body{}",
    }
    for rel, data in planted.items():
        (public / rel).parent.mkdir(parents=True, exist_ok=True)
        (public / rel).write_bytes(data)
    client = InProcessClient(create_app(project.cfg))
    for rel in planted:
        got = client.get("/" + rel)
        assert got.status_code == 404, rel
        assert b"alert(1)" not in got.content and got.content != b"stray", rel
    # what a release publishes is still served from disk
    key = client.get("/keys/RPM-GPG-KEY-perfsonar")
    assert key.status_code == 200
    assert key.content == (public / "keys/RPM-GPG-KEY-perfsonar").read_bytes()
    assert client.get("/repo/perfsonar.repo").status_code == 200
    assert client.get("/releases/3.3.2-2/media.json").status_code == 200
