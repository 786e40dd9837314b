"""The list archive index (repotool.announce.archive) and the outbox entries
(repotool.announce.outbox) as they are read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repotool.announce.archive import ArchiveEntry, index_json, parse_index, read_index
from repotool.announce.outbox import Outbox
from repotool.errors import AnnounceError


def _index(folder: Path, *files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "archive.json"
    path.write_text(
        json.dumps(
            [
                {
                    "message_id": f"<{i}@example.org>",
                    "subject": "s",
                    "date": "2014-04-10T12:00:00Z",
                    "kind": "release",
                    "ref": "3.3.2",
                    "file": f,
                }
                for i, f in enumerate(files, 1)
            ]
        )
    )
    return path


def test_the_archive_index_reads_plain_file_names(tmp_path: Path) -> None:
    _index(tmp_path, "20140410-120000-release-3.3.2.eml", "a_b+c@d-1.eml")
    assert [e.file for e in read_index(tmp_path)] == [
        "20140410-120000-release-3.3.2.eml",
        "a_b+c@d-1.eml",
    ]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "..", ".", ".hidden.eml", "sub/x.eml", "x.eml\n", ""],
)
def test_an_archive_entry_naming_anything_but_a_file_beside_it_is_refused(
    tmp_path: Path, name: str
) -> None:
    path = _index(tmp_path / "lists" / "announce", "ok.eml", name)
    with pytest.raises(AnnounceError) as info:
        read_index(path.parent)
    assert info.value.what == (
        f"message #2 (<2@example.org>) names the file {name!r}, which "
        "is not a plain file name beside archive.json"
    )
    assert info.value.where == str(path)
    assert "repotool announce archive" in (info.value.hint or "")


def test_no_archive_yet_is_an_empty_index(tmp_path: Path) -> None:
    assert read_index(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (
            b"{",
            "the list archive index is not valid JSON: Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1)",
        ),
        (b'{"message_id": "<1@x>"}', "the list archive index is not a list of messages"),
        (b'["x.eml"]', "message #1 is not a JSON object"),
        (
            b'[{"message_id": "<1@x>", "subject": "s", "date": "2014-04-10T12:00:00Z", '
            b'"kind": "release", "file": "x.eml"}]',
            "message #1 lacks a 'ref' string",
        ),
        (
            b'[{"message_id": "<1@x>", "subject": "s", "date": "2014-04-10T12:00:00Z", '
            b'"kind": "release", "ref": 3.3, "file": "x.eml"}]',
            "message #1 lacks a 'ref' string",
        ),
    ],
)
def test_an_archive_index_of_another_shape_is_refused(
    tmp_path: Path, data: bytes, what: str
) -> None:
    (tmp_path / "archive.json").write_bytes(data)
    with pytest.raises(AnnounceError) as info:
        read_index(tmp_path)
    assert info.value.what == what
    assert info.value.where == str(tmp_path / "archive.json")
    assert info.value.hint == (
        "move it aside and rewrite it from the sent record with: repotool announce archive"
    )


def test_the_index_parser_reads_what_the_writer_writes() -> None:
    entries = [
        ArchiveEntry("<1@x>", "s1", "2014-04-08T12:00:00Z", "advisory", "PSSA-2014-0001", "a.eml"),
        ArchiveEntry("<2@x>", "s2", "2014-04-10T12:00:00Z", "release", "3.3.2", "b.eml"),
    ]
    assert parse_index(index_json(entries), "archive.json") == entries


@pytest.mark.parametrize("text", ["[]", '"text"', "42", "null", '{"attempts": [1]}'])
def test_an_outbox_entry_that_is_json_but_not_an_entry_is_reported(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "20140410-release-3.3.2.json").write_text(text)
    with pytest.raises(AnnounceError, match="the outbox entry cannot be read") as info:
        Outbox(tmp_path).entries()
    assert info.value.where == str(tmp_path / "20140410-release-3.3.2.json")
