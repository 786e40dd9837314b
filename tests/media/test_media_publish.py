"""repotool.media.publish: the move of a checked release folder into public/releases/."""

from __future__ import annotations

from pathlib import Path

import pytest

from repotool.media.publish import exchange_paths, swap_into_place


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def _files(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_exchange_paths_swaps_two_folders_in_one_step(tmp_path: Path) -> None:
    a = _folder(tmp_path / "a", {"x": "from a"})
    b = _folder(tmp_path / "b", {"y": "from b"})
    if not exchange_paths(a, b):
        pytest.skip("this file system has no renameat2(RENAME_EXCHANGE)")
    assert _files(a) == {"y": "from b"} and _files(b) == {"x": "from a"}
    with pytest.raises(FileNotFoundError):
        exchange_paths(a, tmp_path / "missing")


@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "two-renames"])
def test_swap_replaces_the_release_folder_and_keeps_the_sites_files(
    tmp_path: Path, atomic: bool
) -> None:
    releases = tmp_path / "public" / "releases"
    final = _folder(
        releases / "3.3.2",
        {"live.iso": "old", "SHA256SUMS": "old sums", "index.html": "site page", ".hidden": "x"},
    )
    stage = _folder(
        tmp_path / "state" / "media-staging" / "3.3.2", {"live.iso": "new", "SHA256SUMS": "sums"}
    )
    used: list[tuple[Path, Path]] = []

    def exchange(a: Path, b: Path) -> bool:
        used.append((a, b))
        return exchange_paths(a, b) if atomic else False

    swap_into_place(stage, final, exchange=exchange)
    assert used == [(stage, final)]
    assert _files(final) == {"SHA256SUMS": "sums", "index.html": "site page", "live.iso": "new"}
    assert not stage.exists()
    assert [p.name for p in releases.iterdir()] == ["3.3.2"]


def test_a_swap_cut_short_is_repaired_on_the_next_run(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    # a crash between the two renames of 3.3.1's swap: 3.3.1 is missing, its old folder
    # waits under .old-; another crash left 3.3.2's replaced folder behind
    _folder(releases / ".old-3.3.1-4242", {"a.iso": "3.3.1"})
    _folder(releases / "3.3.2", {"b.iso": "3.3.2 new"})
    _folder(releases / ".old-3.3.2-4243", {"b.iso": "3.3.2 old"})
    stage = _folder(tmp_path / "stage", {"c.iso": "3.3.3"})
    swap_into_place(stage, releases / "3.3.3")
    assert sorted(p.name for p in releases.iterdir()) == ["3.3.1", "3.3.2", "3.3.3"]
    assert _files(releases / "3.3.1") == {"a.iso": "3.3.1"}
    assert _files(releases / "3.3.2") == {"b.iso": "3.3.2 new"}
