"""The partial file of a download, on disk: where it resumes from, and how it grows.

Shared by every :class:`~repotool.mirror.fetch.Fetcher` (the real
:class:`~repotool.mirror.fetch.HttpFetcher` and the in-memory fake), so both resume
and refuse alike.  The partial file is only ever opened with ``O_NOFOLLOW``: a
symbolic link planted there is refused, never followed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from repotool.errors import MirrorError


def resume_point(dest: Path, size: int) -> int:
    """How many bytes of ``dest`` an earlier attempt left to resume from (0: start over).

    The partial file is looked at, never followed: a symbolic link there is refused.
    """
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise MirrorError(
            "the partial download is a symbolic link or not a regular file; refusing to follow it",
            where=str(dest),
            hint="only repotool writes there: check it, delete it, then sync again",
        )
    return st.st_size if st.st_size < size else 0


class PartialSink:
    """Appends a download to its partial file (``O_NOFOLLOW``), hashing as it writes."""

    def __init__(self, dest: Path, have: int, algo: str | None) -> None:
        self.dest = dest
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        flags |= os.O_APPEND if have else os.O_TRUNC
        try:
            if algo is None:
                self._hash = None
            elif have:
                with open(os.open(dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
                    self._hash = hashlib.file_digest(f, algo)  # the head kept from before
            else:
                self._hash = hashlib.new(algo)
            try:
                self._fd = os.open(dest, flags, 0o666)
            except FileNotFoundError:
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(dest, flags, 0o666)
        except OSError as e:
            raise self._error(e) from e

    def _error(self, e: OSError) -> MirrorError:
        return MirrorError(
            f"cannot write the download: {e.strerror}",
            where=str(self.dest),
            hint="check the disk space and the permissions of DEST's folder; run again to resume",
        )

    def write(self, chunk: bytes) -> None:
        if self._hash is not None:
            self._hash.update(chunk)
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            raise self._error(e) from e

    def close(self) -> None:
        os.close(self._fd)

    def digest(self) -> str | None:
        return self._hash.hexdigest() if self._hash is not None else None
