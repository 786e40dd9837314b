"""The media that `repotool release` makes from the real specs: boot, verify, respin."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    Released,
    copy_of_release,
    copy_project,
    gpgv_check,
    run_repotool,
    tree_digest,
)
from tests.media.media_support import SerialBoot, qemu_available

LIVECD = "pS-Performance_Toolkit-3.3.2-LiveCD-x86_64.iso"


def test_release_publishes_verified_media(released: Released, tmp_path: Path) -> None:
    folder = released.public / "releases/3.3.2"
    manifest = json.loads((folder / "media.json").read_text())
    assert {i["name"] for i in manifest["images"]} >= {LIVECD}
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    report = gpgv_check(
        released.public / "keys/RPM-GPG-KEY-perfsonar",
        folder / "SHA256SUMS.asc",
        folder / "SHA256SUMS",
        tmp_path,
    )
    assert "Good signature" in report
    check = subprocess.run(["checkisomd5", str(folder / LIVECD)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    # the toolkit on the image is the one in the repository, with the Heartbleed fix
    assert "perfsonar-toolkit-security-3.3.2-2.el7.noarch" in manifest["packages"]


@pytest.mark.skipif(not qemu_available(), reason="qemu-system-x86_64 is not installed")
def test_release_livecd_boots_into_the_real_toolkit(released: Released) -> None:
    boot = SerialBoot(["-cdrom", str(released.public / "releases/3.3.2" / LIVECD)])
    try:
        ready = boot.wait_for("pslive: ready", 150)
    finally:
        boot.close()
    out = boot.output
    assert ready, out[-3000:]
    assert "pslive: release: pS-Performance Toolkit release 3.3.2" in out
    # files installed by the real toolkit packages are there in the squashed root
    assert "pslive: toolkit file: /etc/ntp/perfsonar-restrict.conf" in out
    assert "MISSING" not in out


@dataclass(frozen=True)
class Respun:
    project: Path
    result: dict[str, object]
    before: dict[str, str]  #: the 3.3.2 media folder before the respin


@pytest.fixture(scope="module")
def respun(released: Released, tmp_path_factory: pytest.TempPathFactory) -> Respun:
    """A copy of the session release, respun as 3.3.2-2 (read-only: copy it to change it)."""
    project = copy_of_release(released, tmp_path_factory.mktemp("respun") / "project")
    before = tree_digest(project / "public/releases/3.3.2")
    done = run_repotool(project, "release", "--respin", "2", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    return Respun(project, json.loads(done.stdout), before)


def test_respin_makes_new_media_and_leaves_the_old(
    respun: Respun, served_url: str, tmp_path: Path
) -> None:
    project = respun.project
    media = respun.result["media"]
    assert isinstance(media, dict) and media["version"] == "3.3.2-2"
    respin = project / "public/releases/3.3.2-2"
    assert (respin / "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso").is_file()
    assert (
        subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=respin, capture_output=True
        ).returncode
        == 0
    )
    after = tree_digest(project / "public/releases/3.3.2")
    # the 3.3.2 media are untouched; only the exported release page may change
    assert {k: v for k, v in after.items() if not k.endswith(".html")} == {
        k: v for k, v in respun.before.items() if not k.endswith(".html")
    }
    # the site page of the release shows the respin's download table
    page = (project / "public/releases/3.3.2/index.html").read_text()
    assert "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso" in page
    assert requests.get(f"{served_url}/releases/3.3.2/", timeout=10).status_code == 200
    # an unlisted respin is refused before any work, naming the record to edit
    mine = copy_project(project, tmp_path / "p")
    bad = run_repotool(mine, "release", "--respin", "7")
    assert bad.returncode == 7
    assert "the release record lists no respin 3.3.2-7" in bad.stderr
    assert re.search(r"web/content/releases/3\.3\.2\.md", bad.stderr)


def test_release_announcement_is_sent_and_appears_in_the_site_archive(
    respun: Respun, tmp_path: Path
) -> None:
    """The whole night: release, announce the respin with its media, the site shows it."""
    from tests.announce.announce_support import ListServer, smtp_server
    from tests.conftest import free_port

    project = copy_project(respun.project, tmp_path / "p")
    port = free_port()
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text() + f"\n[announce]\nsmtp_port = {port}\n")
    shown = run_repotool(project, "announce", "release", "3.3.2-2", "--quiet")
    assert shown.returncode == 0, shown.stderr
    sums = (project / "public/releases/3.3.2-2/SHA256SUMS").read_text().split()
    assert sums[0] in shown.stdout  # the media's SHA-256 is in the message
    with smtp_server(port, ListServer()) as server:
        sent = run_repotool(project, "announce", "release", "3.3.2-2", "--send", "--json")
    assert sent.returncode == 0, sent.stderr
    assert len(server.received) == 1
    subject = json.loads(sent.stdout)["subject"]
    assert subject.startswith("[perfsonar-announce]")
    page = (project / "public/lists/index.html").read_text()
    assert subject.split("] ", 1)[1] in page
    again = run_repotool(project, "announce", "release", "3.3.2-2", "--send")
    assert again.returncode == 10 and "--force" in again.stderr
