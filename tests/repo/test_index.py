"""The repository index file: versioned JSON, typed generations, damage reads as empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    head, _, blob = path.read_bytes().partition(b"\n")
    raw = json.loads(head)
    assert (raw["format"], raw["version"]) == (FORMAT, VERSION) == ("repotool-repo-index", 2)
    # the metadata chunks follow the JSON line as plain UTF-8, where its offsets say
    assert raw["packages"][0]["chunks"] == [0, 20, 20, 20]
    assert blob == b"<package>p</package><package>f</package><package>o</package>"
    assert raw["generations"]["100"] == {
        "packages": ["a-1-1.el7.noarch.rpm"],
        "incoming": [],
        "files": ["x-primary.xml.gz"],
        "retired": 5.0,
        "digest": None,
    }


def _split() -> tuple[dict[str, Any], bytes]:
    head, _, blob = index_bytes(_index()).partition(b"\n")
    return json.loads(head), blob


def _join(raw: dict[str, Any], blob: bytes) -> bytes:
    return json.dumps(raw).encode() + b"\n" + blob


def test_keys_a_later_version_adds_are_ignored() -> None:
    raw, blob = _split()
    raw["written_by"] = "repotool 9"
    raw["packages"][0]["signature_id"] = "x"
    raw["generations"]["100"]["note"] = "x"
    assert parse_index(_join(raw, blob)) == _index()


def test_damage_or_an_unknown_version_reads_as_an_empty_index() -> None:
    raw, blob = _split()
    assert parse_index(_join({**raw, "version": 3}, blob)) == RepoIndex()
    assert parse_index(b"\x80\x05garbage") == RepoIndex()
    assert parse_index(index_bytes(_index())[:-10]) == RepoIndex()  # cut short
    assert parse_index(_join(raw, b"\xff" * len(blob))) == RepoIndex()  # not UTF-8
    raw["generations"]["100"]["packages"] = "not a list"
    assert parse_index(_join(raw, blob)) == RepoIndex()


def test_a_killed_runs_journal_is_read_with_the_index(tmp_path: Path) -> None:
    path = tmp_path / "el7-x86_64.json"
    _index().save(path)
    path.with_suffix(".pending.json").write_text(
        json.dumps({"102": {"packages": ["a-1-1.el7.noarch.rpm"], "files": []}})
    )
    assert RepoIndex.load(path).generations["102"] == Generation(("a-1-1.el7.noarch.rpm",))
