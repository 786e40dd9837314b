"""The development-key banner shows once per command, however often the key is
opened (the release opens it, and the CSAF writer again when it signs documents)."""

from __future__ import annotations

import shutil
from pathlib import Path

from repotool.report import SilentReporter
from repotool.signing.release_key import DEV_KEY_BANNER, _banner_once
from tests.conftest import make_project, release_json, run_repotool

BANNER = "USING A DEVELOPMENT SIGNING KEY"


def test_release_that_signs_csaf_documents_shows_the_banner_once(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text().replace("[media]\n", "[media]\nenabled = false\n", 1))
    release_json(project)
    csaf = project / "public/.well-known/csaf"
    generation = csaf.parent / Path(csaf.readlink()).name if csaf.is_symlink() else csaf
    signatures = list(generation.rglob("*.json.asc"))
    assert signatures, "the session's release published no signed CSAF documents"
    shutil.rmtree(generation)  # the next release writes and signs them again
    csaf.unlink(missing_ok=True)
    done = run_repotool(project, "release")
    assert done.returncode == 0, done.stderr
    assert "CSAF: " in done.stderr and "newly signed" in done.stderr, done.stderr
    assert done.stderr.count(BANNER) == 1, done.stderr
    assert list(csaf.rglob("*.json.asc"))


def test_the_banner_is_shown_to_each_reporter_once() -> None:
    first, second = SilentReporter(), SilentReporter()
    banner = DEV_KEY_BANNER.format(fpr="A" * 40, home="/tmp/x")
    for reporter in (first, first, second):
        _banner_once(reporter, banner)
    assert first.messages == ["WARNING: " + banner] == second.messages
