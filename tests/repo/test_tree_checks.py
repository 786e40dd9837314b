"""Before a publish writes anything: names from input and links out of public/ are refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from repotool.config import Config, TargetConfig
from repotool.errors import UnsafePathError
from repotool.repo.tree_checks import check_config_names, unsafe_name_reason
from tests.conftest import Released, make_project, run_repotool, tree_digest
from tests.release_support import bump_release, make_rpm


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("perfsonar-toolkit-3.3.2-1.el7.noarch.rpm", None),
        ("el7", None),
        ("a\nb.rpm", "it holds the control character '\\n'"),
        ("el7\x1b[2J", "it holds the control character '\\x1b'"),
        ("evil\u202egpj.rpm", "it holds the control character '\\u202e'"),
        ("a/b", "it holds a '/' or '\\'"),
        (".hidden", "it starts with '.' or '-'"),
        ("", "it is empty"),
    ],
)
def test_names_that_cannot_be_published(name: str, reason: str | None) -> None:
    assert unsafe_name_reason(name) == reason


def test_a_target_or_arch_name_with_a_control_character_is_refused(tmp_path: Path) -> None:
    cfg = Config(root=tmp_path, targets=(TargetConfig(name="el7", arches=("x86_64", "i\t386")),))
    with pytest.raises(UnsafePathError) as e:
        check_config_names(cfg)
    assert "the arch 'i\\t386' cannot be published: it holds the control character" in str(e.value)


def _published(released: Released, tmp_path: Path) -> Path:
    project = make_project(
        tmp_path / "p",
        base_url=released.url,
        share_key_from=released.project,
        share_builds_from=released.project,
    )
    done = run_repotool(project, "release", "--no-media", "--quiet")
    assert done.returncode == 0, done.stderr
    return project


def test_package_file_names_with_control_characters_are_refused(
    released: Released, tmp_path: Path
) -> None:
    project = _published(released, tmp_path)
    before = tree_digest(project / "public")
    rpm = make_rpm(tmp_path, "odd")
    odd = rpm.with_name("odd\nname-1.0-1.el7.noarch.rpm")
    rpm.rename(odd)
    done = run_repotool(project, "publish", "--add", "el7", str(odd))
    assert done.returncode == 6, done.stderr
    assert "the package file name 'odd\\nname-1.0-1.el7.noarch.rpm' cannot be published" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert tree_digest(project / "public") == before
    # one dropped into Packages/ by hand is refused the same way
    pkgs = project / "public/repo/el7/x86_64/Packages"
    shutil.copyfile(odd, pkgs / "dropped\x07.rpm")
    done = run_repotool(project, "release", "--no-media")
    assert done.returncode == 6, done.stderr
    assert "'dropped\\x07.rpm' cannot be published" in done.stderr
    assert "\x07" not in done.stderr  # the message shows it escaped, never raw


def test_a_symlink_out_of_public_is_refused_before_anything_is_written(
    released: Released, tmp_path: Path
) -> None:
    project = _published(released, tmp_path)
    el7 = project / "public/repo/el7"
    outside = tmp_path / "elsewhere" / "el7"
    outside.parent.mkdir()
    el7.rename(outside)
    el7.symlink_to(outside)
    before = tree_digest(project / "public")
    before_outside = tree_digest(outside)
    spec = project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec"
    bump_release(spec)
    done = run_repotool(project, "release", "--no-media")
    assert done.returncode == 6, done.stderr
    assert f"{el7}: a symlink leads this path outside the publish folder, to {outside}" in (
        done.stderr
    )
    assert tree_digest(project / "public") == before
    assert tree_digest(outside) == before_outside
    # a link that stays inside public/ is fine
    el7.unlink()
    inside = project / "public/el7-store"
    outside.rename(inside)
    os.symlink("../el7-store", el7)
    done = run_repotool(project, "release", "--no-media", "--quiet")
    assert done.returncode == 0, done.stderr
