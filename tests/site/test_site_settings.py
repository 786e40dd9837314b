"""A change of the site's settings (not only of its files) re-renders the pages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from repotool.report import SilentReporter
from repotool.site.export import build_site
from repotool.site.key_inspection import FixedKeyInspector
from tests.site.site_support import make_site_project


def test_a_new_site_title_is_not_skipped_as_unchanged(tmp_path: Path) -> None:
    project = make_site_project(tmp_path)
    keys = FixedKeyInspector("0123456789ABCDEF0123456789ABCDEF01234567")
    reporter = SilentReporter()
    assert not build_site(project.cfg, reporter, keys=keys).skipped
    assert build_site(project.cfg, reporter, keys=keys).skipped

    retitled = dataclasses.replace(
        project.cfg, site=dataclasses.replace(project.cfg.site, title="perfSONAR Node Toolkit")
    )
    again = build_site(retitled, reporter, keys=keys)
    assert not again.skipped
    assert "index.html" in again.written
    home = (project.public / "index.html").read_text(encoding="utf-8")
    assert "perfSONAR Node Toolkit" in home
