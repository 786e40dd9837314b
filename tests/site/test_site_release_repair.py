"""A release notices and repairs what a bad site export (or anyone) removed from the
published tree: repomd.xml.asc and the public key (issue 12 item 6)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_repotool

pytestmark = pytest.mark.slow


def test_release_restores_a_missing_signature_and_key(release_copy: Path) -> None:
    public = release_copy / "public"
    repodata = public / "repo" / "el7" / "x86_64" / "repodata"
    asc = repodata / "repomd.xml.asc"
    key = public / "keys" / "RPM-GPG-KEY-perfsonar"
    assert asc.is_file() and key.is_file()
    asc.unlink()
    key.unlink()

    done = run_repotool(release_copy, "release", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "el7/x86_64" in result["published"]  # not "Nothing changed"
    assert "el7/x86_64" not in result["unchanged"]
    assert asc.is_file() and key.is_file()
    # a host's check: the new repomd.xml against the published key, with gpgv only
    keyring = release_copy / "published.gpg"
    subprocess.run(
        ["gpg", "--batch", "--dearmor", "--output", str(keyring), str(key)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(asc), str(repodata / "repomd.xml")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # the next release has nothing to do again
    again = run_repotool(release_copy, "release", "--json", "--quiet")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["published"] == []
