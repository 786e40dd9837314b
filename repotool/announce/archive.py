"""The public list archive that the site renders: ``public/lists/<list_name>/``.

Contract with the site (it renders the pages, this module writes the data)::

    archive.json   [{"message_id", "subject", "date", "kind", "ref", "file"}, ...]
                   oldest first; date is ISO 8601 UTC (2014-04-10T12:00:00Z);
                   kind "release" or "advisory"; ref the version or advisory id;
                   file the name of the .eml beside it
    <file>.eml     each sent message, byte for byte as sent (CRLF)
    archive.mbox   all of them, oldest first, in mboxrd format (LF line ends)

The folder is written from the outbox's sent entries (the sent record), so it
can always be written again; every file is replaced atomically, archive.json
last, so a reader never sees an index naming a file that is not there.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from repotool.atomic import write_atomic
from repotool.errors import AnnounceError

INDEX = "archive.json"
MBOX = "archive.mbox"


@dataclass(frozen=True)
class ArchiveEntry:
    message_id: str
    subject: str
    date: str
    kind: str
    ref: str
    file: str

    def to_json(self) -> dict[str, str]:
        return {
            "message_id": self.message_id,
            "subject": self.subject,
            "date": self.date,
            "kind": self.kind,
            "ref": self.ref,
            "file": self.file,
        }


def index_json(entries: Sequence[ArchiveEntry]) -> bytes:
    """Pure: archive.json."""
    return (json.dumps([e.to_json() for e in entries], indent=2) + "\n").encode("utf-8")


_FROM = re.compile(rb"^(>*From )", re.MULTILINE)


def mbox_bytes(messages: Sequence[tuple[ArchiveEntry, bytes]], sender: str) -> bytes:
    """Pure: an mboxrd file of the messages (``From `` lines quoted with ``>``)."""
    out: list[bytes] = []
    for entry, raw in messages:
        stamp = datetime.fromisoformat(entry.date.replace("Z", "+00:00")).timestamp()
        out.append(f"From {sender} {time.asctime(time.gmtime(stamp))}\n".encode("ascii"))
        body = raw.replace(b"\r\n", b"\n")
        body = _FROM.sub(rb">\1", body)
        out.append(body if body.endswith(b"\n") else body + b"\n")
        out.append(b"\n")
    return b"".join(out)


#: a message file's name: a plain name beside archive.json, never a path, never
#: hidden (the site links it as /lists/<list>/<file>)
_FILE_NAME = re.compile(r"[\w@+-][\w.@+-]*")
_REWRITE = "move it aside and rewrite it from the sent record with: repotool announce archive"


def parse_index(data: bytes, where: str) -> list[ArchiveEntry]:
    """Pure: archive.json's bytes in, its entries (oldest first, as written) out.

    The one reader of the index, for the announcements and the site.  Every
    entry needs all six fields as strings and a plain file name beside
    archive.json; anything else is an :class:`AnnounceError` naming ``where``.
    """
    try:
        doc = json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise AnnounceError(
            f"the list archive index is not valid JSON: {e}", where=where, hint=_REWRITE
        ) from e
    if not isinstance(doc, list):
        raise AnnounceError(
            "the list archive index is not a list of messages", where=where, hint=_REWRITE
        )
    entries: list[ArchiveEntry] = []
    for i, item in enumerate(doc, 1):
        if not isinstance(item, dict):
            raise AnnounceError(f"message #{i} is not a JSON object", where=where, hint=_REWRITE)
        for key in ArchiveEntry.__dataclass_fields__:
            if not isinstance(item.get(key), str):
                raise AnnounceError(
                    f"message #{i} lacks a {key!r} string", where=where, hint=_REWRITE
                )
        entry = ArchiveEntry(**{k: item[k] for k in ArchiveEntry.__dataclass_fields__})
        if not _FILE_NAME.fullmatch(entry.file):
            raise AnnounceError(
                f"message #{i} ({entry.message_id}) names the file {entry.file!r}, which is "
                "not a plain file name beside archive.json",
                where=where,
                hint="remove that entry (or the whole archive.json) and rewrite the archive "
                "from the sent record with: repotool announce archive",
            )
        entries.append(entry)
    return entries


def read_index(folder: Path) -> list[ArchiveEntry]:
    """The entries of an archive.json, or none when there is no archive yet."""
    path = folder / INDEX
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise AnnounceError(
            f"the list archive index cannot be read: {e.strerror}",
            where=str(path),
            hint="check its permissions",
        ) from e
    return parse_index(data, str(path))


def write_archive(
    folder: Path, messages: Sequence[tuple[ArchiveEntry, bytes]], sender: str
) -> None:
    """Write the .eml files, the mbox and, last, the index."""
    for entry, raw in messages:
        target = folder / entry.file
        if not target.exists() or target.read_bytes() != raw:
            write_atomic(target, raw)
    write_atomic(folder / MBOX, mbox_bytes(messages, sender))
    write_atomic(folder / INDEX, index_json([e for e, _ in messages]))
