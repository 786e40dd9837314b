"""repotool.atomic: the one temp-then-rename writer."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from repotool.atomic import write_atomic


def test_writes_bytes_with_the_published_mode_and_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "repomd.xml"
    old = os.umask(0o077)
    try:
        write_atomic(target, b"<repomd/>\n")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"<repomd/>\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["repomd.xml"]


def test_mode_is_applied_and_an_existing_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    inode = target.stat().st_ino
    write_atomic(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != inode  # renamed over, not rewritten in place


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]
