"""The repository index file: versioned JSON, typed generations, damage reads as empty."""

from __future__ import annotations

import json
from pathlib import Path

from repotool.repo.index import FORMAT, VERSION, Generation, RepoIndex, index_bytes, parse_index
from repotool.repo.packages import RepoPackage


def _index() -> RepoIndex:
    pkg = RepoPackage(
        "a-1-1.el7.noarch.rpm",
        "a",
        2,
        "1",
        "1.el7",
        "noarch",
        "ab" * 32,
        (104, 2000),
        (3000, 1, 2, 77),
        ("<package>p</package>", "<package>f</package>", "<package>o</package>"),
    )
    return RepoIndex(
        {pkg.filename: pkg},
        {
            "100": Generation(("a-1-1.el7.noarch.rpm",), files=("x-primary.xml.gz",), retired=5.0),
            "101": Generation(("a-1-1.el7.noarch.rpm",), incoming=("a-1-1.el7.noarch.rpm",)),
        },
    )


def test_the_index_reads_back_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    assert RepoIndex.load(path) == _index()
    raw = json.loads(path.read_bytes())
    assert (raw["format"], raw["version"]) == (FORMAT, VERSION) == ("repotool-repo-index", 2)
    assert raw["generations"]["100"] == {
        "packages": ["a-1-1.el7.noarch.rpm"],
        "incoming": [],
        "files": ["x-primary.xml.gz"],
        "retired": 5.0,
        "digest": None,
    }


def test_keys_a_later_version_adds_are_ignored() -> None:
    raw = json.loads(index_bytes(_index()))
    raw["written_by"] = "repotool 9"
    raw["packages"][0]["signature_id"] = "x"
    raw["generations"]["100"]["note"] = "x"
    assert parse_index(json.dumps(raw).encode()) == _index()


def test_damage_or_an_unknown_version_reads_as_an_empty_index() -> None:
    raw = json.loads(index_bytes(_index()))
    assert parse_index(json.dumps({**raw, "version": 3}).encode()) == RepoIndex()
    assert parse_index(b"\x80\x05garbage") == RepoIndex()
    assert parse_index(index_bytes(_index())[:-40]) == RepoIndex()
    raw["generations"]["100"]["packages"] = "not a list"
    assert parse_index(json.dumps(raw).encode()) == RepoIndex()


def test_a_killed_runs_journal_is_read_with_the_index(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    path.with_suffix(".pending.json").write_text(
        json.dumps({"102": {"packages": ["a-1-1.el7.noarch.rpm"], "files": []}})
    )
    assert RepoIndex.load(path).generations["102"] == Generation(("a-1-1.el7.noarch.rpm",))
