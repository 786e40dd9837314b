"""An empty or missing content folder is never reported as valid records."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import make_project, run_repotool


def test_advisory_check_refuses_an_empty_or_missing_content_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    content = project / "web" / "content"
    shutil.rmtree(content)
    for sub in ("advisories", "releases", "news"):
        (content / sub).mkdir(parents=True)
    done = run_repotool(project, "advisory", "check")
    assert done.returncode == 7, done.stdout + done.stderr
    assert f"{content}:0: the content folder holds no records" in done.stderr
    assert "valid" not in done.stdout

    shutil.rmtree(content)
    done = run_repotool(project, "advisory", "check")
    assert done.returncode == 7, done.stdout + done.stderr
    assert f"{content}:0: the content folder does not exist" in done.stderr
    assert "check [site] content_dir in repotool.toml" in done.stderr
