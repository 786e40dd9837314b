"""A web root on a volume of its own: the release stages on that volume, as hosts need."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Released, make_project, release_json


@pytest.fixture
def public_volume(tmp_path: Path) -> Iterator[Path]:
    """``<project>/public`` as a tmpfs mount: another file system than the state folder."""
    mount = tmp_path / "p" / "public"
    mount.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3g,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (mount: {done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_release_with_public_on_another_file_system_publishes_the_media(
    released: Released, public_volume: Path
) -> None:
    project = make_project(
        public_volume.parent, base_url=released.url, share_key_from=released.project
    )
    state = project / ".repotool"
    assert os.stat(public_volume).st_dev != os.stat(state).st_dev
    result = release_json(project)
    assert result["published"] == ["el6/x86_64", "el7/x86_64"]
    releases = public_volume / "releases"
    folder = releases / "3.3.2"
    manifest = json.loads((folder / "media.json").read_text())
    assert manifest["images"]
    sums = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    # nothing half-made is left beside the release, and the repositories are live
    assert [p.name for p in releases.iterdir() if p.name.startswith(".")] == []
    assert (public_volume / "repo/el7/x86_64/repodata/repomd.xml").is_file()
    assert not (state / "media-staging").exists() or not any((state / "media-staging").iterdir())
