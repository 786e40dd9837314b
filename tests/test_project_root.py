"""Running repotool from a folder inside the project, and from outside any project.

The project root is the nearest folder at or above the working folder that
holds repotool.toml, as git finds its repository; state (the development key,
the build cache) is only ever made in the root's state folder.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, make_project, run_repotool

COMPONENT = "perfsonar-toolkit-sysctl"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    path = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    yield path
    home = path / ".repotool" / "gnupg"
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def test_a_subfolder_works_on_the_project_and_keeps_state_at_its_root(project: Path) -> None:
    component = project / "specs" / COMPONENT
    built = run_repotool(project / "specs", "build", COMPONENT, "--json", "--quiet")
    assert built.returncode == 0, built.stderr
    rpms = [Path(p) for p in json.loads(built.stdout)["packages"]]
    assert rpms and all((project / ".repotool" / "build-cache") in p.parents for p in rpms)
    # the development key was made at the root, and is used from two folders down
    marker = project / ".repotool/gnupg/DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
    fpr = marker.read_text().split()[0]
    signed = run_repotool(component, "sign", str(rpms[0]), "--json", "--quiet")
    assert signed.returncode == 0, signed.stderr
    assert "Creating a local development signing key" not in signed.stderr
    assert json.loads(signed.stdout)["summary"] == f"1 packages signed by {fpr}"
    again = run_repotool(project / "web", "sign", "--check", str(rpms[0]), "--json", "--quiet")
    assert again.returncode == 0, again.stderr
    stray = sorted(str(p) for p in project.rglob(".repotool") if p != project / ".repotool")
    assert stray == []


def test_advisory_check_from_the_web_folder_reads_the_projects_records(project: Path) -> None:
    at_root = run_repotool(project, "advisory", "check", "--json", "--quiet")
    from_web = run_repotool(project / "web", "advisory", "check", "--json", "--quiet")
    assert at_root.returncode == from_web.returncode == 0, from_web.stderr
    advisories = json.loads(from_web.stdout)["advisories"]
    assert advisories and advisories == json.loads(at_root.stdout)["advisories"]
    # a broken record is found from below too
    first = sorted((project / "web/content/advisories").glob("*.md"))[0]
    first.write_text(first.read_text().replace("severity:", "severty:", 1))
    broken = run_repotool(project / "web" / "content", "advisory", "check")
    assert broken.returncode == 7, broken.stderr
    assert first.name in broken.stderr


def test_outside_any_project_a_clear_error_and_nothing_made(tmp_path: Path) -> None:
    for argv in (("release",), ("advisory", "check"), ("sign", "--check", "x.rpm")):
        done = run_repotool(tmp_path, *argv)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(
            f"repotool: error: {tmp_path}: no repotool.toml here or in any folder above\n"
            "  hint: run repotool inside a project"
        ), done.stderr
    assert list(tmp_path.iterdir()) == []


def test_mirror_commands_run_outside_a_project(tmp_path: Path) -> None:
    """A mirror host holds no project: sync uses the defaults (and here finds no server)."""
    key = tmp_path / "key.asc"
    key.write_text("not used: the server is down\n")
    url = f"http://127.0.0.1:{free_port()}/repo/el7/x86_64/"
    done = run_repotool(
        tmp_path, "mirror", "sync", url, str(tmp_path / "el7"), "--key", str(key), "--timeout", "2"
    )
    assert done.returncode == 11, done.stderr
    assert "repotool.toml" not in done.stderr


def test_an_explicit_config_is_used_from_anywhere(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_repotool(
        elsewhere, "advisory", "list", "--config", str(project / "repotool.toml"), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["advisories"]
    assert list(elsewhere.iterdir()) == []
