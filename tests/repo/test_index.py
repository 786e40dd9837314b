"""The repository index file: versioned JSON, typed generations, chunks in a store beside
it, damage reads as empty."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from repotool.repo import generations
from repotool.repo.chunk_store import StoredChunks, read_all
from repotool.repo.generations import Generation
from repotool.repo.index import (
    FORMAT,
    ROWS_PER_LINE,
    VERSION,
    RepoIndex,
    chunk_dir,
    index_bytes,
    parse_index,
)
from repotool.repo.packages import RepoPackage


def _pkg(name: str = "a", chunks: tuple[str, str, str] | None = None) -> RepoPackage:
    return RepoPackage(
        f"{name}-1-1.el7.noarch.rpm",
        name,
        2,
        "1",
        "1.el7",
        "noarch",
        "ab" * 32,
        (104, 2000),
        (3000, 1, 2, 77),
        chunks or ("<package>p</package>", "<package>f</package>", "<package>o</package>"),
    )


def _index() -> RepoIndex:
    pkg = _pkg()
    return RepoIndex(
        {pkg.filename: pkg},
        {
            "100": Generation(("a-1-1.el7.noarch.rpm",), files=("x-primary.xml.gz",), retired=5.0),
            "101": Generation(("a-1-1.el7.noarch.rpm",), incoming=("a-1-1.el7.noarch.rpm",)),
        },
    )


def _texts(index: RepoIndex) -> RepoIndex:
    """The index with every package's chunks read out of the store."""
    return RepoIndex(
        {
            name: dataclasses.replace(
                p, chunks=read_all(p.chunks) if isinstance(p.chunks, StoredChunks) else p.chunks
            )
            for name, p in index.packages.items()
        },
        dict(index.generations),
    )


def _segments(path: Path) -> dict[str, bytes]:
    store = chunk_dir(path)
    return {p.name: p.read_bytes() for p in sorted(store.iterdir())}


def _lines(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """A version 5 file's head, and its package rows from the lines after it."""
    head, *lines = path.read_bytes().split(b"\n")
    return json.loads(head), [row for line in lines for row in json.loads(line)]


def _v5(head: dict[str, Any], rows: list[list[Any]], per_line: int = 2) -> bytes:
    lines = [rows[i : i + per_line] for i in range(0, len(rows), per_line)]
    return b"\n".join(json.dumps(x).encode() for x in [head, *lines])


def test_the_index_reads_back_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    assert _texts(RepoIndex.load(path)) == _index()
    raw, rows = _lines(path)
    assert (raw["format"], raw["version"]) == (FORMAT, VERSION) == ("repotool-repo-index", 5)
    assert raw["rows"] == 1
    # the metadata chunks are in a segment of the store beside the index, where it says
    ((segment, data),) = _segments(path).items()
    assert raw["fields"][-5:] == [
        "segment",
        "offset",
        "primary_bytes",
        "filelists_bytes",
        "other_bytes",
    ]
    assert rows == [
        [
            "a-1-1.el7.noarch.rpm",
            "a",
            2,
            "1",
            "1.el7",
            "noarch",
            "ab" * 32,
            104,
            2000,
            3000,
            1,
            2,
            77,
            segment,
            0,
            20,
            20,
            20,
        ]
    ]
    assert data == b"<package>p</package><package>f</package><package>o</package>"
    assert raw["generations"]["100"] == {
        "packages": ["a-1-1.el7.noarch.rpm"],
        "incoming": [],
        "files": ["x-primary.xml.gz"],
        "retired": 5.0,
        "digest": None,
    }


def test_adding_a_package_writes_its_chunks_only(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    index = RepoIndex({p.filename: p for p in (_pkg(f"p{i}") for i in range(50))})
    index.save(path)
    before = _segments(path)
    (old,) = before
    stat = os.stat(chunk_dir(path) / old)
    index = RepoIndex.load(path)
    new = _pkg("new", ("<package>N</package>", "<f/>", "<o/>"))
    index.packages[new.filename] = new
    index.save(path)
    after = _segments(path)
    # the old segment is untouched; the new one holds the new package's chunks alone
    assert after[old] == before[old]
    assert os.stat(chunk_dir(path) / old).st_mtime_ns == stat.st_mtime_ns
    assert [data for name, data in after.items() if name != old] == [
        b"<package>N</package><f/><o/>"
    ]
    assert _texts(RepoIndex.load(path)).packages[new.filename] == new


def test_segments_no_package_needs_are_deleted_and_sparse_ones_compacted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "el7-x86_64.json"
    index = RepoIndex({p.filename: p for p in (_pkg(f"p{i}") for i in range(10))})
    index.save(path)
    index.packages["x-1-1.el7.noarch.rpm"] = _pkg("x")
    index.save(path)
    assert len(_segments(path)) == 2
    del index.packages["x-1-1.el7.noarch.rpm"]  # pruned: its segment goes
    index.save(path)
    (first,) = _segments(path)
    for i in range(6):  # most of the first segment is dead: its live chunks are copied
        del index.packages[f"p{i}-1-1.el7.noarch.rpm"]
    index.save(path)
    ((second, data),) = _segments(path).items()
    assert second != first
    assert data == b"<package>p</package><package>f</package><package>o</package>" * 4
    assert _texts(RepoIndex.load(path)) == _texts(index)


def _split() -> tuple[dict[str, Any], bytes]:
    text = _index()
    head, _, blob = _v2_bytes(text).partition(b"\n")
    return json.loads(head), blob


def _v2_bytes(index: RepoIndex) -> bytes:
    """An index as repotool wrote it before the chunk store (version 2)."""
    records, blob, offset = [], b"", 0
    for p in index.packages.values():
        parts = [c.encode() for c in p.chunks]
        records.append(
            {
                "filename": p.filename,
                "name": p.name,
                "epoch": p.epoch,
                "version": p.version,
                "release": p.release,
                "arch": p.arch,
                "sha256": p.sha256,
                "header_range": list(p.header_range),
                "stat": list(p.stat),
                "chunks": [offset, *map(len, parts)],
            }
        )
        blob += b"".join(parts)
        offset += sum(map(len, parts))
    gens = {rev: g.to_json() for rev, g in index.generations.items()}
    head = {"format": FORMAT, "version": 2, "packages": records, "generations": gens}
    return json.dumps(head).encode() + b"\n" + blob


def _join(raw: dict[str, Any], blob: bytes) -> bytes:
    return json.dumps(raw).encode() + b"\n" + blob


def test_an_index_of_version_2_is_read_and_saved_as_version_5(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    path.write_bytes(_v2_bytes(_index()))
    index = RepoIndex.load(path)
    assert index == _index()
    index.save(path)
    assert _lines(path)[0]["version"] == 5
    assert _texts(RepoIndex.load(path)) == _index()


def test_keys_a_later_version_adds_are_ignored(tmp_path: Path) -> None:
    raw, blob = _split()
    raw["written_by"] = "repotool 9"
    raw["packages"][0]["signature_id"] = "x"
    raw["generations"]["100"]["note"] = "x"
    assert parse_index(_join(raw, blob), tmp_path) == _index()
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    head, rows = _lines(path)
    # a column more, and the columns in another order: read by their names
    head["fields"] = ["signature_id", *reversed(head["fields"])]
    rows = [["x", *reversed(row)] for row in rows]
    head["note"] = "x"
    assert _texts(parse_index(_v5(head, rows), chunk_dir(path))) == _index()
    del head["fields"][-1]  # a column it needs is missing: read the packages again
    assert parse_index(_v5(head, rows), chunk_dir(path)) == RepoIndex()


def test_damage_or_an_unknown_version_reads_as_an_empty_index(tmp_path: Path) -> None:
    raw, blob = _split()
    assert parse_index(_join({**raw, "version": 99}, blob), tmp_path) == RepoIndex()
    assert parse_index(b"\x80\x05garbage", tmp_path) == RepoIndex()
    assert parse_index(_v2_bytes(_index())[:-10], tmp_path) == RepoIndex()  # cut short
    assert parse_index(_join(raw, b"\xff" * len(blob)), tmp_path) == RepoIndex()  # not UTF-8
    raw["generations"]["100"]["packages"] = "not a list"
    assert parse_index(_join(raw, blob), tmp_path) == RepoIndex()


def test_a_package_whose_chunks_are_gone_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    a, b = _pkg("a"), _pkg("b")
    index = RepoIndex({a.filename: a}, dict(_index().generations))
    index.save(path)
    index.packages[b.filename] = b
    index.save(path)
    segment_of_b = index.packages[b.filename].chunks
    assert isinstance(segment_of_b, StoredChunks)
    Path(segment_of_b.segment).unlink()  # damage: b is read again, a stays known
    loaded = RepoIndex.load(path)
    assert sorted(loaded.packages) == [a.filename]
    assert loaded.generations == index.generations
    (Path(loaded.packages[a.filename].chunks.segment)).write_bytes(b"short")  # type: ignore[union-attr]
    assert RepoIndex.load(path).packages == {}


def test_a_killed_runs_journal_is_read_with_the_index(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    path.with_suffix(".pending.json").write_text(
        json.dumps({"102": {"packages": ["a-1-1.el7.noarch.rpm"], "files": []}})
    )
    assert RepoIndex.load(path).generations["102"] == Generation(("a-1-1.el7.noarch.rpm",))


def test_index_bytes_needs_the_chunks_in_the_store() -> None:
    try:
        index_bytes(_index())
    except ValueError as e:
        assert "not in the store" in str(e)
    else:
        raise AssertionError("index_bytes wrote chunks it does not have")


def test_many_small_segments_are_merged(tmp_path: Path) -> None:
    """One segment per publish that adds a package: past MAX_SEGMENTS the smaller
    half is merged, so reading the chunks back never opens hundreds of files."""
    from repotool.repo.index import MAX_SEGMENTS

    path = tmp_path / "el7-x86_64.json"
    index = RepoIndex()
    for i in range(MAX_SEGMENTS * 2 + 5):
        p = _pkg(f"n{i:03d}", (f"<p>{i}</p>", f"<f>{i}</f>", f"<o>{i}</o>"))
        index.packages[p.filename] = p
        index.save(path)
        assert len(_segments(path)) <= MAX_SEGMENTS + 1
    loaded = _texts(RepoIndex.load(path))
    assert loaded == _texts(index)
    assert loaded.packages["n042-1-1.el7.noarch.rpm"].chunks == (
        "<p>42</p>",
        "<f>42</f>",
        "<o>42</o>",
    )


def _names(n: int, skip: int = -1, extra: str | None = None) -> tuple[str, ...]:
    names = {f"p{i:05d}-1-1.el7.noarch.rpm" for i in range(n) if i != skip}
    return tuple(sorted(names | ({extra} if extra else set())))


def test_generations_that_differ_a_little_are_written_as_changes(tmp_path: Path) -> None:
    """A repository keeps several generations of nearly the same names: each after
    the first is saved as its change to the one before, and reads back the same."""
    gens = {
        "100": Generation(_names(1000), files=("a-primary.xml.gz",), retired=5.0),
        "101": Generation(_names(1000, extra="q-1-1.el7.noarch.rpm"), retired=6.0),
        "102": Generation(_names(1000, skip=7, extra="q-1-1.el7.noarch.rpm"), digest="d" * 64),
        "103": Generation(("b.rpm", "a.rpm")),  # not in order: listed in full
        "104": Generation(("b.rpm", "a.rpm"), incoming=("a.rpm",)),  # nor based on 103
        "105": Generation(_names(3)),
        "106": Generation(_names(3), incoming=("x.rpm",)),  # the same tuple as 105
    }
    gens["106"] = dataclasses.replace(gens["106"], packages=gens["105"].packages)
    path = tmp_path / "el7-x86_64.json"
    RepoIndex({}, gens).save(path)
    raw = _lines(path)[0]["generations"]
    assert raw["100"]["packages"] == list(_names(1000))
    assert (raw["101"]["base"], raw["101"]["added"], raw["101"]["removed"]) == (
        "100",
        ["q-1-1.el7.noarch.rpm"],
        [],
    )
    assert "packages" not in raw["101"] and raw["101"]["retired"] == 6.0
    assert (raw["102"]["added"], raw["102"]["removed"]) == ([], ["p00007-1-1.el7.noarch.rpm"])
    assert raw["103"]["packages"] == ["b.rpm", "a.rpm"]
    assert raw["104"]["packages"] == ["b.rpm", "a.rpm"]
    assert (raw["106"]["base"], raw["106"]["added"], raw["106"]["removed"]) == ("105", [], [])
    assert path.stat().st_size < 40_000  # one list of 1,000 names, not three
    loaded = RepoIndex.load(path).generations
    assert loaded == gens
    assert loaded["106"].packages is loaded["105"].packages  # shared, not held twice


def test_saving_again_compares_only_the_lists_not_read_with_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A week of generations read from the index are written back as the changes they
    were read as: only the generation this run added is compared with the one before
    (each comparison sorts the 10,000 names of a list), and the bytes are the same."""
    path = tmp_path / "el7-x86_64.json"
    gens = {str(100 + i): Generation(_names(200, skip=i % 2)) for i in range(20)}
    RepoIndex({}, gens).save(path)
    loaded = RepoIndex.load(path)
    loaded.generations["120"] = Generation(_names(200, skip=5, extra="q-1-1.el7.noarch.rpm"))
    sorted_lists: list[int] = []
    real = generations._ascending

    def counted(names: tuple[str, ...]) -> bool:
        sorted_lists.append(len(names))
        return real(names)

    monkeypatch.setattr(generations, "_ascending", counted)
    written = index_bytes(loaded)
    assert sorted_lists == [200]  # the new list; without what was read: 21
    fresh = RepoIndex({}, dict(loaded.generations))  # knows nothing of its lists
    assert index_bytes(fresh) == written
    assert len(sorted_lists) == 1 + 21
    raw = json.loads(written.split(b"\n")[0])["generations"]
    assert (raw["120"]["base"], raw["120"]["added"], raw["120"]["removed"]) == (
        "119",
        ["p00001-1-1.el7.noarch.rpm", "q-1-1.el7.noarch.rpm"],
        ["p00005-1-1.el7.noarch.rpm"],
    )
    path.write_bytes(written)
    assert RepoIndex.load(path).generations == loaded.generations


def test_a_generation_whose_base_is_missing_reads_as_an_empty_index(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    gens = {"100": Generation(_names(10)), "101": Generation(_names(10, skip=3))}
    RepoIndex({}, gens).save(path)
    assert _lines(path)[0]["generations"]["101"]["base"] == "100"

    def base_gone(g: dict[str, Any]) -> None:
        del g["100"]

    def removes_what_base_lacks(g: dict[str, Any]) -> None:
        g["101"]["removed"] = ["not-listed.rpm"]

    def adds_what_base_has(g: dict[str, Any]) -> None:
        g["101"].update(removed=[], added=[_names(10)[0]])

    def base_out_of_order(g: dict[str, Any]) -> None:
        g["100"]["packages"] = list(reversed(_names(10)))

    for damage in (base_gone, removes_what_base_lacks, adds_what_base_has, base_out_of_order):
        broken, rows = _lines(path)
        damage(broken["generations"])
        assert parse_index(_v5(broken, rows), tmp_path) == RepoIndex()


def test_an_index_of_version_3_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    head, rows = _lines(path)
    raw = {**head, "version": 3, "packages": rows}
    raw["generations"] = {rev: g.to_json() for rev, g in _index().generations.items()}
    assert _texts(parse_index(json.dumps(raw).encode(), chunk_dir(path))) == _index()


def test_an_index_of_version_4_is_still_read(tmp_path: Path) -> None:
    """Version 4: one document, the rows in "packages"."""
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    head, rows = _lines(path)
    del head["rows"]
    raw = {**head, "version": 4, "packages": rows}
    assert _texts(parse_index(json.dumps(raw).encode(), chunk_dir(path))) == _index()


def test_the_rows_are_written_a_line_at_a_time_and_counted(tmp_path: Path) -> None:
    """1,201 packages: three lines of rows after the head; a line lost (or one more)
    makes the index read as empty, not as a repository without those packages."""
    path = tmp_path / "el7-x86_64.json"
    one = _pkg(chunks=("<p/>", "<f/>", "<o/>"))
    packages = {
        f"p{i:05d}.rpm": dataclasses.replace(one, filename=f"p{i:05d}.rpm") for i in range(1201)
    }
    RepoIndex(packages).save(path)
    lines = path.read_bytes().split(b"\n")
    assert [len(json.loads(line)) for line in lines[1:]] == [ROWS_PER_LINE, ROWS_PER_LINE, 201]
    assert json.loads(lines[0])["rows"] == 1201
    assert set(RepoIndex.load(path).packages) == set(packages)
    store = chunk_dir(path)
    assert parse_index(b"\n".join(lines[:-1]), store) == RepoIndex()
    assert parse_index(b"\n".join([*lines, lines[-1]]), store) == RepoIndex()
