"""The session's leak check sees a process a test left working in its temp folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
