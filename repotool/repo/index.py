"""The repository index in the state folder: what each package file holds, and the
metadata generations — a versioned JSON file that a newer repotool can read.

Format (``<state>/repo-index/<target>-<arch>.json``), version 5: a head line,
then the package rows, 500 to a line::

    {"format": "repotool-repo-index", "version": 5,
     "fields": ["filename", "name", "epoch", "version", "release", "arch", "sha256",
                "header_start", "header_end", "size", "mtime_ns", "ctime_ns", "inode",
                "segment", "offset", "primary_bytes", "filelists_bytes", "other_bytes"],
     "rows": <how many package rows follow>,
     "generations": {"<revision>": {"packages": [...], "incoming": [...],
                                    "files": [...], "retired": epoch|null,
                                    "digest": sha256|null}, ...}}
    [[one row per package, its values in the order "fields" names], ...]
    [...]

Lines, not one document: the file is read and written a line at a time, so a
load or save never holds the parsed rows of every package at once besides the
records (loading 10,000: 4 MiB less at the peak, and faster).  A file with
fewer or more rows than its head says reads as empty.

A generation whose package list differs little from the one written before it
names that one instead of listing its packages again: ``{"base": "<revision>",
"added": [...], "removed": [...], ...}`` (since version 4; a repository keeps several
generations of the same 10,000 names, and listing each in full made the file
and its loading grow with every release in the keep window).

The packages' metadata chunks (nearly all of the bytes) are not in the file:
they lie in segment files in ``<target>-<arch>.chunks/``
(:mod:`repotool.repo.chunk_store`), written once by whoever read the package,
so that saving the index after adding one package writes a few hundred bytes
of chunks and the JSON, and no process holds every chunk at once.  Version 2
(the chunks after the JSON line), version 3 (every generation listed in full)
and version 4 (one JSON document, the rows in "packages") are still read; each
is saved as version 5.

Rows rather than objects: the JSON of 10,000 packages loads in about a third
of the time.  Readers ignore keys and columns they do not know (a later
version may add some; a reader finds its columns by name); an index
that is missing, damaged or of an unknown version reads as empty, and a
package whose segment is gone is left out, which means "read the packages
again and adopt the generations on disk", never "delete".  A generation
written just before a swap waits in ``<index>.pending.json`` (the journal)
until the whole index is saved.  :func:`parse_index` and :func:`index_bytes`
are pure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from repotool.atomic import write_atomic
from repotool.repo import chunk_store
from repotool.repo.chunk_store import SegmentWriter, StoredChunks
from repotool.repo.generations import Generation, ListFacts, generations_json
from repotool.repo.packages import RepoPackage

FORMAT = "repotool-repo-index"
VERSION = 5
#: the versions this one reads
READS = (2, 3, 4, 5)
#: package rows per line of the file (version 5)
ROWS_PER_LINE = 500
#: at most this many segments; past it, the smaller ones are merged into one
MAX_SEGMENTS = 32


#: the columns of a package row in versions 3 to 5 (a later version may add some: readers find
#: the columns they know by name and ignore the rest)
FIELDS = (
    "filename",
    "name",
    "epoch",
    "version",
    "release",
    "arch",
    "sha256",
    "header_start",
    "header_end",
    "size",
    "mtime_ns",
    "ctime_ns",
    "inode",
    "segment",
    "offset",
    "primary_bytes",
    "filelists_bytes",
    "other_bytes",
)


def _package_row(p: RepoPackage, names: dict[str, str]) -> list[Any]:
    c = p.chunks
    if not isinstance(c, StoredChunks):
        raise ValueError(f"{p.filename}: its chunks are not in the store yet")
    return [
        p.filename,
        p.name,
        p.epoch,
        p.version,
        p.release,
        p.arch,
        p.sha256,
        *p.header_range,
        *p.stat,
        names.get(c.segment) or names.setdefault(c.segment, os.path.basename(c.segment)),
        c.offset,
        *c.sizes,
    ]


class _Chunks:
    """Version 2: the chunk bytes after the JSON line; pure ASCII (the usual case) is
    decoded once and sliced, anything else chunk by chunk."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.text = blob.decode("ascii") if blob.isascii() else None

    def take(self, offset: int, size: int) -> str:
        if size < 0 or offset < 0 or offset + size > len(self.blob):
            raise ValueError("a chunk lies outside the file")
        if self.text is not None:
            return self.text[offset : offset + size]
        return self.blob[offset : offset + size].decode("utf-8")

    def __call__(self, raw: list[Any]) -> tuple[str, str, str]:
        offset, n_primary, n_filelists, n_other = raw
        at = offset + n_primary
        take = self.take
        return (take(offset, n_primary), take(at, n_filelists), take(at + n_filelists, n_other))


class _Segments:
    """Versions 3 and 4: the chunks' place in the store; a segment that is missing or too
    short leaves its packages out (they are read again)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.sizes: dict[str, tuple[str, int]] = {}

    def __call__(self, raw: list[Any]) -> StoredChunks | None:
        name, offset, n_primary, n_filelists, n_other = raw
        known = self.sizes.get(name) or self._look(name)
        sizes = (int(n_primary), int(n_filelists), int(n_other))
        if min(offset, *sizes) < 0 or offset + sum(sizes) > known[1]:
            return None
        return StoredChunks(known[0], int(offset), sizes)

    def _look(self, name: object) -> tuple[str, int]:
        """A segment's path and size, once per segment (-1: it is not there)."""
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            raise ValueError("a segment name that is not a plain file name")
        path = str(self.store / name)
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        self.sizes[name] = (path, size)
        return path, size


def _package(
    d: dict[str, Any], chunks: tuple[str, str, str] | StoredChunks | None
) -> RepoPackage | None:
    if chunks is None:
        return None
    start, end = d["header_range"]
    size, mtime, ctime, inode = d["stat"]
    return RepoPackage(
        str(d["filename"]),
        str(d["name"]),
        int(d["epoch"]),
        str(d["version"]),
        str(d["release"]),
        str(d["arch"]),
        str(d["sha256"]),
        (int(start), int(end)),
        (int(size), int(mtime), int(ctime), int(inode)),
        chunks,
    )


@dataclass
class RepoIndex:
    """Kept in the state folder: what each package file holds, and the generations."""

    packages: dict[str, RepoPackage] = field(default_factory=dict)
    generations: dict[str, Generation] = field(default_factory=dict)
    #: what is known of the generations' package lists (read with them: saving the
    #: index again does not compare the lists it read)
    facts: ListFacts = field(default_factory=ListFacts, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path) -> RepoIndex:
        try:
            with path.open("rb") as f:  # a line at a time: the file is never held whole
                index = parse_index_file(f, chunk_dir(path))
        except OSError:
            index = cls()
        # a generation written just before a swap that a killed run did not finish
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            index.generations.update(parse_journal(journal_path(path).read_bytes()))
        return index

    def save(self, path: Path) -> None:
        """Chunks not yet in this index's store go there (a few hundred bytes per new
        package), then the JSON; segments no package names any more are deleted."""
        store = chunk_dir(path)
        self._store_chunks(store)
        segments = {c.segment for c in _stored(self.packages.values())}
        chunk_store.sync(segments)
        write_atomic(path, index_lines(self))
        chunk_store.remove(chunk_store.dead_segments(store, segments))

    def _store_chunks(self, store: Path) -> None:
        stored = _stored(self.packages.values())
        copy = chunk_store.to_compact(store, stored)
        if len({c.segment for c in stored}) > MAX_SEGMENTS:  # merge the smaller half
            sizes: dict[str, int] = {}
            for s in stored:
                sizes[s.segment] = sizes.get(s.segment, 0) + s.size
            copy |= set(sorted(sizes, key=sizes.__getitem__)[: len(sizes) // 2])
        copy |= {s for s in {c.segment for c in stored} if os.path.dirname(s) != str(store)}
        writer = SegmentWriter(store)
        try:
            for name, p in self.packages.items():
                c = p.chunks
                if not isinstance(c, StoredChunks):
                    text = c
                elif c.segment in copy:  # from a sparse segment, or another store
                    text = chunk_store.read_all(c)
                else:
                    continue
                self.packages[name] = dataclasses.replace(p, chunks=writer.add(text))
        finally:
            writer.close()

    def retire(self, revision: str, now: float) -> None:
        gen = self.generations.get(revision)
        if gen is not None and gen.retired is None:
            self.generations[revision] = dataclasses.replace(gen, retired=now)


def journal_path(index_path: Path) -> Path:
    return index_path.with_suffix(".pending.json")


def journal_bytes(revision: str, generation: Generation) -> bytes:
    return json.dumps({revision: generation.to_json()}).encode()


def parse_journal(data: bytes) -> dict[str, Generation]:
    raw = json.loads(data)
    return {str(rev): Generation.from_json(gen) for rev, gen in raw.items()}


def chunk_dir(index_path: Path) -> Path:
    """The chunk store of the index at ``index_path``."""
    return index_path.with_suffix(".chunks")


def _stored(packages: Iterable[RepoPackage]) -> list[StoredChunks]:
    return [p.chunks for p in packages if isinstance(p.chunks, StoredChunks)]


def index_lines(index: RepoIndex) -> Iterator[bytes]:
    """Pure: the index file's bytes, a line at a time (every package's chunks must be
    in the store): the head, then the package rows, :data:`ROWS_PER_LINE` a line."""
    names: dict[str, str] = {}
    packages = list(index.packages.values())
    # orjson: the 10,000 rows in about a fifth of the json module's time
    yield orjson.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "fields": FIELDS,
            "rows": len(packages),
            "generations": generations_json(index.generations, index.facts),
        }
    )
    for i in range(0, len(packages), ROWS_PER_LINE):
        rows = [_package_row(p, names) for p in packages[i : i + ROWS_PER_LINE]]
        yield b"\n" + orjson.dumps(rows)


def index_bytes(index: RepoIndex) -> bytes:
    """Pure: the index file's bytes (every package's chunks must be in the store)."""
    return b"".join(index_lines(index))


def parse_index(data: bytes, store: Path) -> RepoIndex:
    """Pure but for a look at the segments' sizes: an index from its bytes; anything
    unreadable or unknown is an empty index, a package whose chunks are gone is left out."""
    return parse_index_file(io.BytesIO(data), store)


def parse_index_file(f: BinaryIO, store: Path) -> RepoIndex:
    """:func:`parse_index` of the file ``f`` (its lines read one at a time)."""
    with gc_paused():
        return _parse(f, store)


def _parse(f: BinaryIO, store: Path) -> RepoIndex:
    try:
        raw = orjson.loads(f.readline())
        version = raw.get("version") if isinstance(raw, dict) else None
        if raw.get("format") != FORMAT or version not in READS:
            return RepoIndex()
        if version == 2:
            v2 = _Chunks(f.read())
            found = [_package(d, v2(d["chunks"])) for d in raw["packages"]]
        elif version == 5:
            found = _row_lines(raw["fields"], int(raw["rows"]), f, _Segments(store))
        else:
            found = _rows(raw["fields"], raw["packages"], _Segments(store))
        packages = {p.filename: p for p in found if p is not None}
        generations: dict[str, Generation] = {}
        facts = ListFacts()
        for r, g in raw["generations"].items():
            generations[str(r)] = Generation.from_json(g, generations, facts)
    except (ValueError, TypeError, KeyError, AttributeError):
        return RepoIndex()
    return RepoIndex(packages, generations, facts)


def _row_lines(
    fields: list[str], count: int, lines: Iterable[bytes], segments: _Segments
) -> list[RepoPackage | None]:
    """Version 5: the package rows after the head, parsed a line at a time."""
    out: list[RepoPackage | None] = []
    for line in lines:
        out += _rows(fields, orjson.loads(line), segments)
    if len(out) != count:
        raise ValueError("the index has fewer or more package rows than its head says")
    return out


def _rows(
    fields: list[str], rows: list[list[Any]], segments: _Segments
) -> list[RepoPackage | None]:
    """Package rows (versions 3 to 5), by the column names the file gives."""
    at = [fields.index(f) for f in FIELDS]  # ValueError: a column is missing
    out: list[RepoPackage | None] = []
    intern = sys.intern
    same = at == list(range(len(FIELDS)))  # the usual case: this version wrote it
    for row in rows:
        v = row if same else [row[i] for i in at]
        chunks = segments(v[13:18])
        out.append(
            None
            if chunks is None
            else RepoPackage(
                intern(str(v[0])),
                intern(str(v[1])),
                int(v[2]),
                intern(str(v[3])),
                intern(str(v[4])),
                intern(str(v[5])),
                str(v[6]),
                (int(v[7]), int(v[8])),
                (int(v[9]), int(v[10]), int(v[11]), int(v[12])),
                chunks,
            )
        )
    return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Without the cyclic collector (as it was again after): the index's and the
    publish's objects hold no cycles, and the collector's passes over a growing heap
    made a 10,000-package index load 2-3× slower (50,000: 3×) and took a tenth of a
    +1 publish of 10,000."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
