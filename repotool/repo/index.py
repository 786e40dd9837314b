"""The repository index in the state folder: what each package file holds, and the
metadata generations — a versioned JSON file that a newer repotool can read.

Format (``<state>/repo-index/<target>-<arch>.json``)::

    {"format": "repotool-repo-index", "version": 2,
     "packages": [{"filename", "name", "epoch", "version", "release", "arch",
                   "sha256", "header_range": [start, end],
                   "stat": [size, mtime_ns, ctime_ns, inode],
                   "primary", "filelists", "other"}, ...],
     "generations": {"<revision>": {"packages": [...], "incoming": [...],
                                    "files": [...], "retired": epoch|null,
                                    "digest": sha256|null}, ...}}

Readers ignore keys they do not know (a later version may add some); an index
that is missing, damaged or of an unknown version reads as empty, which means
"read the packages again and adopt the generations on disk", never "delete".
A generation written just before a swap waits in ``<index>.pending.json``
(the journal) until the whole index is saved.  :func:`parse_index` and
:func:`index_bytes` are pure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
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


def _package_json(p: RepoPackage) -> dict[str, Any]:
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
        "primary": p.chunks[0],
        "filelists": p.chunks[1],
        "other": p.chunks[2],
    }


def _package(d: dict[str, Any]) -> RepoPackage:
    start, end = (int(v) for v in d["header_range"])
    size, mtime, ctime, inode = (int(v) for v in d["stat"])
    return RepoPackage(
        filename=str(d["filename"]),
        name=str(d["name"]),
        epoch=int(d["epoch"]),
        version=str(d["version"]),
        release=str(d["release"]),
        arch=str(d["arch"]),
        sha256=str(d["sha256"]),
        header_range=(start, end),
        stat=(size, mtime, ctime, inode),
        chunks=(str(d["primary"]), str(d["filelists"]), str(d["other"])),
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
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "packages": [_package_json(p) for p in index.packages.values()],
            "generations": {rev: g.to_json() for rev, g in index.generations.items()},
        },
        separators=(",", ":"),
    ).encode()


def parse_index(data: bytes) -> RepoIndex:
    """Pure: an index from its bytes; anything unreadable or unknown is an empty index."""
    try:
        raw = json.loads(data)
        if (
            not isinstance(raw, dict)
            or raw.get("format") != FORMAT
            or raw.get("version") != VERSION
        ):
            return RepoIndex()
        packages = {p.filename: p for p in map(_package, raw["packages"])}
        generations = {str(r): Generation.from_json(g) for r, g in raw["generations"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return RepoIndex()
    return RepoIndex(packages, generations)
