"""The read pass over many files: a pool of forked workers gives the same records as
one process, and each worker prefetches the files of the batches ahead of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repotool.repo import read_pass
from repotool.repo.packages import read_and_check
from tests.conftest import build_rpms

SPEC = """Name: many
Version: 1
Release: 1
Summary: one of many
License: MIT
BuildArch: noarch
%description
one of many
%files
"""


@pytest.fixture(scope="module")
def one_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_rpms({"many": SPEC}, tmp_path_factory.mktemp("rpmbuild"))[0]


_CHILD = """
import json, sys
from pathlib import Path
from repotool.repo.read_pass import read_all
paths = [Path(p) for p in sys.argv[2:]]
told = []
reads = read_all(paths, None, frozenset(), Path(sys.argv[1]), lambda d, t: told.append((d, t)))
print(json.dumps(told))
rows = []
for r in reads:
    c = r.package.chunks
    rows.append([r.package.filename, r.package.sha256, [c.segment, c.offset, list(c.sizes)]])
print(json.dumps(rows))
"""


def test_a_pool_of_workers_reads_what_one_process_reads(one_rpm: Path, tmp_path: Path) -> None:
    """Enough files for the pool (a fresh process, so no other thread stops the fork):
    every worker writes its own segment, and the records are the serial path's."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: the read pass never starts a pool here")
    pkgs = tmp_path / "Packages"
    pkgs.mkdir()
    paths = []
    for i in range(200):
        p = pkgs / f"copy{i:03d}-{one_rpm.name}"
        os.link(one_rpm, p)
        paths.append(p)
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    told_line, rows_line = done.stdout.splitlines()
    rows = json.loads(rows_line)
    assert [r[0] for r in rows] == [p.name for p in paths]  # in the order asked
    # progress after every batch of 16, in the reading process, up to all 200
    told = [tuple(t) for t in json.loads(told_line)]
    assert told == [(min(16 * i, 200), 200) for i in range(1, 14)]
    segments = {c[0] for _, _, c in rows}
    assert len(segments) >= 2, "the files were not read by more than one worker"
    for (_, sha, (segment, offset, sizes)), path in zip(rows, paths, strict=True):
        alone = read_and_check(path, None).package
        assert sha == alone.sha256
        data = Path(segment).read_bytes()[offset : offset + sum(sizes)]
        assert data.decode() == "".join(alone.chunks)


def test_each_batch_prefetches_the_batch_one_round_of_workers_ahead(
    one_rpm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = [[tmp_path / f"b{i}-{j}.rpm" for j in range(2)] for i in range(5)]
    for batch in batches:
        for p in batch:
            os.link(one_rpm, p)
    asked: list[list[Path]] = []
    monkeypatch.setattr(read_pass, "prefetch", lambda paths: asked.append(list(paths)))
    read_pass._worker_setup(None, frozenset(), None, batches, 2)
    try:
        assert [r.package.filename for r in read_pass._read_batch(1)] == [
            p.name for p in batches[1]
        ]
        assert asked == [batches[3]]
        read_pass._read_batch(3)
        read_pass._read_batch(4)  # nothing is left ahead of the last ones
        assert asked == [batches[3]]
    finally:
        read_pass._worker = read_pass._Worker()


def test_a_prefetch_of_files_that_cannot_be_opened_is_only_skipped(tmp_path: Path) -> None:
    unreadable = tmp_path / "locked.rpm"
    unreadable.write_bytes(b"x")
    unreadable.chmod(0)
    read_pass.prefetch([tmp_path / "gone.rpm", unreadable, tmp_path])


def test_one_process_tells_its_progress_every_batch_and_at_the_end(
    one_rpm: Path, tmp_path: Path
) -> None:
    paths = []
    for i in range(20):
        p = tmp_path / f"few{i:02d}-{one_rpm.name}"
        os.link(one_rpm, p)
        paths.append(p)
    told: list[tuple[int, int]] = []
    reads = read_pass.read_all(paths, None, frozenset(), None, lambda d, t: told.append((d, t)))
    assert len(reads) == 20
    assert told == [(16, 20), (20, 20)]


def test_the_planning_step_shows_how_many_files_are_read() -> None:
    from repotool.repo.publish import reading_progress

    notes: list[str] = []

    class _Step:
        def advance(self, n: int = 1, *, note: str = "") -> None:
            assert n == 0  # the step counts repositories, not files
            notes.append(note)

    show = reading_progress(_Step(), "el7/x86_64", every=3600)
    for done in range(16, 10_000, 16):
        show(done, 10_000)
    show(10_000, 10_000)
    # the first at once, then none within the hour, the last always
    assert notes == ["el7/x86_64: 16/10,000 files read", "el7/x86_64: 10,000/10,000 files read"]
