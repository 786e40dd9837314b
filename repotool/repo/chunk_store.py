"""Where the packages' metadata chunks live: segment files beside the index.

Every package's primary/filelists/other XML (nearly all of the index's bytes)
is written once, by the process that read the package, to a *segment*
(``<index>.chunks/<name>.xml``): segments are only ever appended to while
they are written and never changed after; the index names the segment,
offset and sizes of each package's chunks.  So a publish never holds the
metadata of the whole repository in memory (the chunks are read back one at
a time while the metadata files are written), and a publish that adds one
package writes one small segment, not the whole index again.

:func:`collect` is the store's housekeeping when an index is saved: segments
no package names are deleted, and the live chunks of a segment that is mostly
dead are copied to a new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: a segment whose live chunks are less than this share of its bytes is compacted
COMPACT_BELOW = 0.5


class _OpenSegments:
    """A few read descriptors kept open, so that reading 30,000 chunks is 30,000
    ``pread`` calls, not as many ``open`` calls."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self.fds: dict[str, int] = {}

    def fd(self, path: str) -> int:
        fd = self.fds.get(path)
        if fd is None:
            if len(self.fds) >= self.keep:
                oldest = next(iter(self.fds))
                os.close(self.fds.pop(oldest))
            fd = self.fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return fd

    def forget(self, path: str) -> None:
        fd = self.fds.pop(path, None)
        if fd is not None:
            os.close(fd)


_segments = _OpenSegments()


@dataclass(frozen=True, slots=True)
class StoredChunks:
    """A package's three chunks in a segment, read when asked for (``chunks[0]`` is
    its primary XML, ``[1]`` filelists, ``[2]`` other)."""

    segment: str  # the segment file's path
    offset: int
    sizes: tuple[int, int, int]

    def __getitem__(self, i: int) -> str:
        at = self.offset + sum(self.sizes[:i])
        size = self.sizes[i]
        data = os.pread(_segments.fd(self.segment), size, at)
        if len(data) != size:
            raise OSError(f"{self.segment}: the chunk at {at} is cut short")
        return data.decode("utf-8")

    def __len__(self) -> int:
        return 3

    def __iter__(self) -> Iterator[str]:
        return iter(read_all(self))

    @property
    def size(self) -> int:
        return sum(self.sizes)


def read_all(chunks: StoredChunks) -> tuple[str, str, str]:
    """The three chunks as strings (one read)."""
    data = os.pread(_segments.fd(chunks.segment), chunks.size, chunks.offset)
    if len(data) != chunks.size:
        raise OSError(f"{chunks.segment}: the chunks at {chunks.offset} are cut short")
    a, b, _ = chunks.sizes
    return (
        data[:a].decode("utf-8"),
        data[a : a + b].decode("utf-8"),
        data[a + b :].decode("utf-8"),
    )


class SegmentWriter:
    """Appends chunks to one new segment of ``store`` (opened on the first chunk).

    Every chunk goes to the file at once (no buffer: a pool's worker process
    ends without flushing); :func:`sync` makes the segments durable before an
    index names them."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.path: str | None = None
        self.fd = -1
        self.at = 0

    def add(self, chunks: tuple[str, str, str]) -> StoredChunks:
        if self.fd < 0:
            self.store.mkdir(parents=True, exist_ok=True)
            name = f"{os.getpid()}-{os.urandom(6).hex()}.xml"
            self.path = str(self.store / name)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        assert self.path is not None
        parts = [c.encode("utf-8") for c in chunks]
        data = b"".join(parts)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        stored = StoredChunks(self.path, self.at, (len(parts[0]), len(parts[1]), len(parts[2])))
        self.at += len(data)
        return stored

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def sync(segments: Iterable[str]) -> None:
    """Make segments durable (written by this process or by others)."""
    for path in sorted(set(segments)):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def dead_segments(store: Path, live: Iterable[str]) -> list[Path]:
    """Segment files of ``store`` that no live chunk is in."""
    keep = {os.path.basename(s) for s in live}
    try:
        names = os.listdir(store)
    except FileNotFoundError:
        return []
    return [store / n for n in sorted(names) if n.endswith(".xml") and n not in keep]


def to_compact(store: Path, chunks: Iterable[StoredChunks]) -> set[str]:
    """Pure but for the segments' sizes: segments of ``store`` whose live chunks are less
    than :data:`COMPACT_BELOW` of their bytes (their chunks are better copied)."""
    live: dict[str, int] = {}
    for c in chunks:
        live[c.segment] = live.get(c.segment, 0) + c.size
    out = set()
    for segment, size in live.items():
        try:
            total = os.stat(segment).st_size
        except FileNotFoundError:
            continue
        if Path(segment).parent == store and size < COMPACT_BELOW * total:
            out.add(segment)
    return out


def remove(paths: Iterable[Path]) -> None:
    for p in paths:
        _segments.forget(str(p))
        p.unlink(missing_ok=True)
