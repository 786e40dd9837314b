"""The session's leak check sees a process a test left working in its temp folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from repotool.process import stop_gpg_agents_in
from tests.conftest import processes_working_under


def test_a_process_left_in_a_temp_folder_is_found_and_only_it(tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    left = subprocess.Popen(["sleep", "60"], cwd=inside)
    elsewhere = subprocess.Popen(["sleep", "60"], cwd="/")
    try:
        found = processes_working_under(tmp_path)
        assert left.pid in found and "sleep 60" in found[left.pid]
        assert elsewhere.pid not in found
    finally:
        for proc in (left, elsewhere):
            proc.kill()
            proc.wait(timeout=10)
    assert left.pid not in processes_working_under(tmp_path)


def test_gpg_agents_of_homes_under_a_folder_are_stopped(tmp_path: Path) -> None:
    """What dnf leaves: an agent whose throwaway home lies under its TMPDIR."""
    home = tmp_path / "tmp" / "tmpdir.abc"
    home.mkdir(parents=True, mode=0o700)
    subprocess.run(
        ["gpg-connect-agent", "--homedir", str(home), "/bye"], check=True, capture_output=True
    )
    assert stop_gpg_agents_in(tmp_path / "tmp") == 1
    assert stop_gpg_agents_in(tmp_path / "tmp") == 0  # gone, and nothing else touched


def test_gpg_agents_started_with_a_tmpdir_under_a_folder_are_stopped(tmp_path: Path) -> None:
    """What dnf also leaves: an agent of a home made in /tmp whatever TMPDIR says
    (/tmp/tmpdir.XXXXXX), which inherited dnf's TMPDIR; its home is then deleted."""
    import os
    import shutil
    import tempfile

    work = tmp_path / "tmp"
    work.mkdir()
    home = Path(tempfile.mkdtemp(prefix="tmpdir.", dir="/tmp"))
    try:
        subprocess.run(
            ["gpg-connect-agent", "--homedir", str(home), "/bye"],
            check=True,
            capture_output=True,
            env={**os.environ, "TMPDIR": str(work)},
        )
    finally:
        shutil.rmtree(home)
    assert stop_gpg_agents_in(work) == 1
    assert stop_gpg_agents_in(work) == 0
