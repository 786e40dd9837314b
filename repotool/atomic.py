"""Writes that no reader ever sees half-done.

:func:`write_atomic` puts the bytes into a temp file in the target's own
folder (same file system, so the rename cannot turn into a copy), flushes
them to disk, sets the mode, and only then renames the temp file over the
target with :func:`os.replace`.  A reader, a web server, or a mirror
fetching at the same moment sees either the old file or the new one, and a
crash leaves at worst a stray ``.<name>.*.tmp`` beside it, never a truncated
target.

Used for every small file the tool writes in place: repository indexes and
journals, the published key and ``.repo`` file, outbox entries and the list
archive, mirror state, mirror lists and status, the site export's state.
Whole trees (repodata generations, media, site pages) are staged in a folder
and swapped separately.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomic(path: Path, data: bytes | Iterable[bytes], *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (bytes, or pieces written one after the other:
    a large file need not be held whole) in one step; create its folder if needed.

    The data is fsync'd before the rename so that a crash right after it
    cannot leave an empty file under the final name.  ``mode`` is applied
    exactly (not filtered by the umask): the files are published, and
    ``mkstemp`` would otherwise leave them readable only by their owner.
    On any failure the temp file is removed and the exception propagates;
    the previous ``path``, if there was one, is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                f.write(piece)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
