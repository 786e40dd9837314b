"""The list archive index (repotool.announce.archive) and the outbox entries
(repotool.announce.outbox) as they are read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repotool.announce.archive import read_index
from repotool.announce.outbox import Outbox
from repotool.errors import AnnounceError


def _index(folder: Path, *files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "archive.json"
    path.write_text(json.dumps([
        {"message_id": f"<{i}@example.org>", "subject": "s", "date": "2014-04-10T12:00:00Z",
         "kind": "release", "ref": "3.3.2", "file": f} for i, f in enumerate(files, 1)
    ]))
    return path


def test_the_archive_index_reads_plain_file_names(tmp_path: Path) -> None:
    _index(tmp_path, "20140410-120000-release-3.3.2.eml", "a_b+c@d-1.eml")
    assert [e.file for e in read_index(tmp_path)] == ["20140410-120000-release-3.3.2.eml",
                                                      "a_b+c@d-1.eml"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", ".", ".hidden.eml",
                                  "sub/x.eml", "x.eml\n", ""])
def test_an_archive_entry_naming_anything_but_a_file_beside_it_is_refused(
    tmp_path: Path, name: str
) -> None:
    path = _index(tmp_path / "lists" / "announce", "ok.eml", name)
    with pytest.raises(AnnounceError) as info:
        read_index(path.parent)
    assert info.value.what == (f"message #2 (<2@example.org>) names the file {name!r}, which "
                               "is not a plain file name beside archive.json")
    assert info.value.where == str(path)
    assert "repotool announce archive" in (info.value.hint or "")


@pytest.mark.parametrize("text", ["[]", '"text"', "42", "null", '{"attempts": [1]}'])
def test_an_outbox_entry_that_is_json_but_not_an_entry_is_reported(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "20140410-release-3.3.2.json").write_text(text)
    with pytest.raises(AnnounceError, match="the outbox entry cannot be read") as info:
        Outbox(tmp_path).entries()
    assert info.value.where == str(tmp_path / "20140410-release-3.3.2.json")
