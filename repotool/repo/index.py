"""The repository index in the state folder: what each package file holds, and the
metadata generations — a versioned JSON file that a newer repotool can read.

Format (``<state>/repo-index/<target>-<arch>.json``): one line of JSON, a
newline, then the packages' metadata chunks as UTF-8, one after the other::

    {"format": "repotool-repo-index", "version": 2,
     "packages": [{"filename", "name", "epoch", "version", "release", "arch",
                   "sha256", "header_range": [start, end],
                   "stat": [size, mtime_ns, ctime_ns, inode],
                   "chunks": [offset, primary bytes, filelists bytes, other bytes]}, ...],
     "generations": {"<revision>": {"packages": [...], "incoming": [...],
                                    "files": [...], "retired": epoch|null,
                                    "digest": sha256|null}, ...}}
    <primary XML><filelists XML><other XML>...   (offsets count from after the newline)

The chunks (nearly all of the bytes) sit outside the JSON so that loading
the index of thousands of packages costs milliseconds, not an unescaping pass
over megabytes.  Readers ignore keys they do not know (a later version may add some); an index
that is missing, damaged or of an unknown version reads as empty, which means
"read the packages again and adopt the generations on disk", never "delete".
A generation written just before a swap waits in ``<index>.pending.json``
(the journal) until the whole index is saved.  :func:`parse_index` and
:func:`index_bytes` are pure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repotool.atomic import write_atomic
from repotool.repo.packages import RepoPackage

FORMAT = "repotool-repo-index"
VERSION = 2


@dataclass(frozen=True)
class Generation:
    """One metadata generation (``.repodata-<revision>/``) as the index knows it."""

    #: package file names its primary.xml lists
    packages: tuple[str, ...]
    #: the files its run brought into Packages/ (only these go if it never became current)
    incoming: tuple[str, ...] = ()
    #: the metadata files it wrote (hard-linked into later generations while it lives)
    files: tuple[str, ...] = ()
    #: when a newer generation replaced it (None: current, or never swapped in)
    retired: float | None = None
    #: content digest of its packages and updateinfo (None: adopted from disk)
    digest: str | None = None

    def live(self, now: float, keep: float) -> bool:
        return self.retired is None or now - self.retired < keep

    def to_json(self) -> dict[str, Any]:
        return {
            "packages": list(self.packages),
            "incoming": list(self.incoming),
            "files": list(self.files),
            "retired": self.retired,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Generation:
        retired = d.get("retired")
        digest = d.get("digest")
        return cls(
            packages=_names(d.get("packages")),
            incoming=_names(d.get("incoming", [])),
            files=_names(d.get("files", [])),
            retired=float(retired) if retired is not None else None,
            digest=str(digest) if digest is not None else None,
        )


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of names")
    return tuple(value)


def _package_json(p: RepoPackage, offset: int, sizes: list[int]) -> dict[str, Any]:
    return {
        "filename": p.filename,
        "name": p.name,
        "epoch": p.epoch,
        "version": p.version,
        "release": p.release,
        "arch": p.arch,
        "sha256": p.sha256,
        "header_range": list(p.header_range),
        "stat": list(p.stat),
        "chunks": [offset, *sizes],
    }


class _Chunks:
    """The chunk bytes after the JSON line; pure ASCII (the usual case) is decoded
    once and sliced, anything else chunk by chunk."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.text = blob.decode("ascii") if blob.isascii() else None

    def take(self, offset: int, size: int) -> str:
        if size < 0 or offset < 0 or offset + size > len(self.blob):
            raise ValueError("a chunk lies outside the file")
        if self.text is not None:
            return self.text[offset : offset + size]
        return self.blob[offset : offset + size].decode("utf-8")


def _package(d: dict[str, Any], blob: _Chunks) -> RepoPackage:
    start, end = d["header_range"]
    size, mtime, ctime, inode = d["stat"]
    offset, n_primary, n_filelists, n_other = d["chunks"]
    take = blob.take
    at = offset + n_primary
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
        (take(offset, n_primary), take(at, n_filelists), take(at + n_filelists, n_other)),
    )


@dataclass
class RepoIndex:
    """Kept in the state folder: what each package file holds, and the generations."""

    packages: dict[str, RepoPackage] = field(default_factory=dict)
    generations: dict[str, Generation] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> RepoIndex:
        try:
            index = parse_index(path.read_bytes())
        except OSError:
            index = cls()
        # a generation written just before a swap that a killed run did not finish
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            index.generations.update(parse_journal(journal_path(path).read_bytes()))
        return index

    def save(self, path: Path) -> None:
        write_atomic(path, index_bytes(self))

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


def index_bytes(index: RepoIndex) -> bytes:
    """Pure: the index file's bytes."""
    blob: list[bytes] = []
    records = []
    offset = 0
    for p in index.packages.values():
        parts = [c.encode("utf-8") for c in p.chunks]
        sizes = [len(b) for b in parts]
        records.append(_package_json(p, offset, sizes))
        blob += parts
        offset += sum(sizes)
    header = json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "packages": records,
            "generations": {rev: g.to_json() for rev, g in index.generations.items()},
        },
        separators=(",", ":"),
    ).encode()
    return b"".join([header, b"\n", *blob])


def parse_index(data: bytes) -> RepoIndex:
    """Pure: an index from its bytes; anything unreadable or unknown is an empty index."""
    cut = data.find(b"\n")
    with _no_gc():
        return _parse(data, cut)


def _parse(data: bytes, cut: int) -> RepoIndex:
    try:
        raw = json.loads(data[:cut])
        if (
            cut < 0
            or not isinstance(raw, dict)
            or raw.get("format") != FORMAT
            or raw.get("version") != VERSION
        ):
            return RepoIndex()
        blob = _Chunks(data[cut + 1 :])
        packages = {p.filename: p for p in (_package(d, blob) for d in raw["packages"])}
        generations = {str(r): Generation.from_json(g) for r, g in raw["generations"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return RepoIndex()
    return RepoIndex(packages, generations)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cyclic collector while an index is built: its objects hold no
    cycles, and the collector's passes over a growing heap made a 10,000-package
    index load 2-3× slower (50,000: 3×)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
