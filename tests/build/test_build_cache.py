"""The build cache in the state folder: a damaged entry is named, with the folder to
delete, and the next build after deleting it works."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from repotool.build.rpmbuild import parse_manifest
from tests.conftest import make_project, run_repotool

COMPONENT = "perfsonar-toolkit-sysctl"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    path = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    yield path
    home = path / ".repotool" / "gnupg"
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def _build(project: Path) -> subprocess.CompletedProcess[str]:
    return run_repotool(project, "build", COMPONENT, "--json", "--quiet")


def _garbage(manifest: Path) -> str:
    manifest.write_bytes(b"\xff\xfe\x00garbage")
    return "packages.json is not JSON text"


def _empty_list(manifest: Path) -> str:
    manifest.write_text("[]")
    return "packages.json does not list the packages"


def _escaping_name(manifest: Path) -> str:
    manifest.write_text('["../../../../etc/passwd"]')
    return 'packages.json names "../../../../etc/passwd", not a package file'


def _package_gone(manifest: Path) -> str:
    name = json.loads(manifest.read_text())[0]
    (manifest.parent / name).unlink()
    return f"{name} is missing"


@pytest.mark.parametrize("damage", [_garbage, _empty_list, _escaping_name, _package_gone])
def test_a_damaged_cache_entry_is_named_with_what_to_delete(
    project: Path, damage: Callable[[Path], str]
) -> None:
    first = _build(project)
    assert first.returncode == 0, first.stderr
    entry = Path(json.loads(first.stdout)["packages"][0]).parent
    manifest = entry / "packages.json"
    what = damage(manifest)
    done = _build(project)
    assert done.returncode == 4, done.stderr
    assert (
        f"repotool: error: {manifest}: the build cache entry is damaged: {what}\n"
        f"  hint: delete the folder {entry}; the next build makes it again\n"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    # doing what the hint says works
    subprocess.run(["rm", "-rf", str(entry)], check=True)
    again = _build(project)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["built"]


def test_manifest_reading() -> None:
    assert parse_manifest(b'["a-1-1.el7.noarch.rpm"]') == ["a-1-1.el7.noarch.rpm"]
    assert parse_manifest(b'{"a": 1}') == "packages.json does not list the packages"
    assert parse_manifest(b"[1]") == "packages.json names 1, not a package file"
    assert (
        parse_manifest(b'[".hidden.rpm"]')
        == 'packages.json names ".hidden.rpm", not a package file'
    )
