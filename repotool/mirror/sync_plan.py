"""Pure decisions of a mirror sync: bytes in, values out.

Parses repomd.xml and primary metadata into the list of files a repository is
made of, decides whether a newly fetched repomd.xml may replace the held one
(rollback and freeze), plans which files to reuse, fetch and delete, and which
files of replaced generations stay reachable.  Nothing here touches the network
or the disk.  Each value taken from the metadata is checked by
:mod:`repotool.mirror.metadata_values`.
"""

from __future__ import annotations

import bz2
import lzma
import posixpath
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from repotool.errors import MirrorIntegrityError
from repotool.mirror.metadata_values import (
    checksum_algo,
    hex_digest,
    printable,
    safe_relpath,
    whole_number,
)

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"

#: the files a sync writes itself rather than taking from the metadata
REPOMD_FILES = frozenset(
    {"repodata/repomd.xml", "repodata/repomd.xml.asc", "repodata/repomd.xml.key"}
)


@dataclass(frozen=True, order=True)
class FileSpec:
    """One file of the repository as the signed metadata describes it."""

    path: str  #: relative to the repository base, POSIX separators
    size: int
    algo: str  #: hashlib name
    digest: str  #: lower-case hex


@dataclass(frozen=True)
class RepomdEntry:
    type: str
    file: FileSpec
    timestamp: int
    open_size: int | None


@dataclass(frozen=True)
class Repomd:
    revision: str
    entries: tuple[RepomdEntry, ...]

    @property
    def newest_timestamp(self) -> int:
        return max((e.timestamp for e in self.entries), default=0)

    def entry(self, type_: str) -> RepomdEntry | None:
        for e in self.entries:
            if e.type == type_:
                return e
        return None


@dataclass(frozen=True)
class ReplacedGeneration:
    """The files a replaced repomd.xml named, and when it was replaced.

    A host that fetched that repomd.xml just before the swap still asks for its
    primary and its packages, so they stay in the tree for a while.
    """

    revision: str
    replaced_at: float
    files: frozenset[str]


@dataclass(frozen=True)
class UnpackLimits:
    """How far compressed metadata may unpack, whatever its signed ``open-size`` says.

    The unpacked primary is held in memory and parsed, so a compressed file that
    unpacks to gigabytes (a "bomb", signed by a compromised or buggy signer) must
    stop early: at ``max_bytes``, and at ``max_ratio`` times its compressed size,
    whichever is smaller.  A positive ``open-size`` only narrows the bound.
    """

    #: absolute cap on the unpacked size (``--max-metadata-size``)
    max_bytes: int = 1024 * 1024 * 1024
    #: cap as a multiple of the compressed size (gzip/xz primary is about 5-20×)
    max_ratio: int = 100


@dataclass(frozen=True)
class SyncPlan:
    reuse: tuple[FileSpec, ...]
    fetch: tuple[FileSpec, ...]
    #: files of the held tree that the new metadata no longer references;
    #: removed only after the new tree is in place
    delete: tuple[str, ...]

    @property
    def fetch_bytes(self) -> int:
        return sum(f.size for f in self.fetch)


def parse_repomd(data: bytes, where: str) -> Repomd:
    """repomd.xml bytes (already signature-checked) → :class:`Repomd`."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise MirrorIntegrityError(f"repomd.xml is not well-formed XML: {e}", where=where) from e
    if root.tag != f"{REPO_NS}repomd":
        raise MirrorIntegrityError(f"not a repomd.xml (root element {root.tag})", where=where)
    revision = printable((root.findtext(f"{REPO_NS}revision") or "").strip(), "the revision", where)
    entries = [_data_entry(data_el, where) for data_el in root.findall(f"{REPO_NS}data")]
    if entry_named(entries, "primary") is None:
        raise MirrorIntegrityError("repomd.xml lists no primary metadata", where=where)
    return Repomd(revision=revision, entries=tuple(entries))


def _data_entry(data_el: ET.Element, where: str) -> RepomdEntry:
    """One ``<data>`` element of repomd.xml, every value checked."""
    type_ = printable(data_el.get("type", ""), "a data type", where)
    here = f"{where} <data type={type_!r}>"
    loc = data_el.find(f"{REPO_NS}location")
    cks = data_el.find(f"{REPO_NS}checksum")
    if loc is None or cks is None or not loc.get("href"):
        raise MirrorIntegrityError("a data entry lacks its location or checksum", where=here)
    if loc.get("{http://www.w3.org/XML/1998/namespace}base"):
        raise MirrorIntegrityError(
            "a data entry points to another server (xml:base)",
            where=here,
            hint="only self-contained repositories can be mirrored",
        )
    open_size = data_el.findtext(f"{REPO_NS}open-size")
    return RepomdEntry(
        type=type_,
        file=FileSpec(
            path=safe_relpath(loc.get("href", ""), here),
            size=whole_number(data_el.findtext(f"{REPO_NS}size"), "size", here),
            algo=(algo := checksum_algo(cks.get("type"), here)),
            digest=hex_digest(cks.text, algo, here),
        ),
        timestamp=whole_number(data_el.findtext(f"{REPO_NS}timestamp"), "timestamp", here),
        open_size=whole_number(open_size, "open-size", here) if open_size else None,
    )


def entry_named(entries: Iterable[RepomdEntry], type_: str) -> RepomdEntry | None:
    return next((e for e in entries if e.type == type_), None)


def unpack_bound(compressed: int, open_size: int | None, limits: UnpackLimits) -> int:
    """The most bytes metadata of ``compressed`` bytes may unpack to (see :class:`UnpackLimits`)."""
    bound = min(limits.max_bytes, limits.max_ratio * max(compressed, 1))
    return min(bound, open_size) if open_size else bound


#: bytes unpacked per step: the output grows by this much at a time, so a bomb is
#: stopped with at most its bound (plus one step) in memory
UNPACK_STEP = 1024 * 1024


def decompress(
    data: bytes, path: str, open_size: int | None, limits: UnpackLimits
) -> bytes | bytearray:
    """Decompress metadata by its file suffix, never producing more than
    :func:`unpack_bound` bytes (the signed ``open-size`` only narrows the bound)."""
    if path.endswith(".zst"):
        raise MirrorIntegrityError(
            "zstd-compressed primary metadata is not supported",
            where=path,
            hint="publish gzip or xz metadata for this target (metadata_compression)",
        )
    limit = unpack_bound(len(data), open_size, limits)
    try:
        out = _unpack(data, path, limit)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as e:
        raise MirrorIntegrityError(
            f"the metadata cannot be unpacked: {e}",
            where=path,
            hint="the upstream metadata is malformed; do not mirror it",
        ) from e
    if len(out) > limit:
        if open_size and limit == open_size:
            raise MirrorIntegrityError(
                f"the metadata unpacks to more than its declared open-size of {open_size} bytes",
                where=path,
                hint="the upstream metadata is malformed or hostile; do not mirror it",
            )
        raise MirrorIntegrityError(
            f"the metadata unpacks to more than {limit} bytes (at most {limits.max_bytes} "
            f"bytes and {limits.max_ratio} times its {len(data)} compressed bytes)",
            where=path,
            hint="a decompression bomb, or a repository larger than expected: if it is "
            "genuine, raise --max-metadata-size",
        )
    return out


def _unpack(data: bytes, path: str, limit: int) -> bytes | bytearray:
    """At most ``limit`` + one step of ``data`` unpacked (more means: over the limit)."""
    if path.endswith(".gz"):
        # a gzip file may hold several members one after the other (RFC 1952; the
        # publisher writes its metadata in blocks): each is unpacked in turn
        out = bytearray()
        rest = data
        while rest and len(out) <= limit:
            gz = zlib.decompressobj(wbits=47)
            out += gz.decompress(rest, UNPACK_STEP)
            while not gz.eof and len(out) <= limit:
                step = gz.decompress(gz.unconsumed_tail, UNPACK_STEP)
                if not step and not gz.unconsumed_tail:
                    return out  # a truncated stream: what there is
                out += step
            rest = gz.unused_data
        return out
    if path.endswith((".xz", ".bz2")):
        d = lzma.LZMADecompressor() if path.endswith(".xz") else bz2.BZ2Decompressor()
        out = bytearray(d.decompress(data, max_length=UNPACK_STEP))
        while not d.eof and len(out) <= limit:
            step = d.decompress(b"", max_length=UNPACK_STEP)
            if not step and d.needs_input:
                break
            out += step
        return out
    return data


def parse_primary(xml: bytes | bytearray, where: str) -> list[FileSpec]:
    """Uncompressed primary.xml → one :class:`FileSpec` per package."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise MirrorIntegrityError(
            f"primary metadata is not well-formed XML: {e}", where=where
        ) from e
    packages: list[FileSpec] = []
    for pkg in root.iter(f"{COMMON_NS}package"):
        name = printable(pkg.findtext(f"{COMMON_NS}name") or "?", "a package name", where)
        here = f"{where} (package {name})"
        loc = pkg.find(f"{COMMON_NS}location")
        cks = pkg.find(f"{COMMON_NS}checksum")
        size = pkg.find(f"{COMMON_NS}size")
        if loc is None or cks is None or size is None or not loc.get("href"):
            raise MirrorIntegrityError("a package lacks its location, checksum or size", where=here)
        if loc.get("{http://www.w3.org/XML/1998/namespace}base"):
            raise MirrorIntegrityError(
                "a package points to another server (xml:base)",
                where=here,
                hint="only self-contained repositories can be mirrored",
            )
        packages.append(
            FileSpec(
                path=safe_relpath(loc.get("href", ""), here),
                size=whole_number(size.get("package"), "package size", here),
                algo=(algo := checksum_algo(cks.get("type"), here)),
                digest=hex_digest(cks.text, algo, here),
            )
        )
    return packages


def check_update(
    new: Repomd, held: Repomd | None, *, now: float, max_age_seconds: int, where: str
) -> None:
    """Refuse a validly signed repomd.xml that is older than the held one
    (rollback) or older than ``max_age_seconds`` (freeze)."""
    if held is not None:
        older_revision = (
            new.revision.isdigit()
            and held.revision.isdigit()
            and int(new.revision) < int(held.revision)
        )
        if older_revision or new.newest_timestamp < held.newest_timestamp:
            raise MirrorIntegrityError(
                f"rollback refused: the upstream repomd.xml (revision {new.revision}, "
                f"newest timestamp {new.newest_timestamp}) is older than the one held "
                f"(revision {held.revision}, newest timestamp {held.newest_timestamp})",
                where=where,
                hint="the upstream serves old metadata (a stale or hostile mirror); "
                "sync from another upstream",
            )
    age = int(now) - new.newest_timestamp
    if age > max_age_seconds:
        raise MirrorIntegrityError(
            f"freeze refused: the upstream metadata is {age} seconds old "
            f"(newest timestamp {new.newest_timestamp}), more than the allowed {max_age_seconds}",
            where=where,
            hint="the upstream stopped updating; sync from a fresh upstream, or pass "
            "--max-age SECONDS if this age is expected",
        )


def check_fresh(held: Repomd, *, now: float, max_age_seconds: int, where: str) -> None:
    """Refuse to call an unchanged upstream fine when the metadata it still serves
    (the held repomd.xml) is older than ``max_age_seconds``: it stopped updating."""
    age = int(now) - held.newest_timestamp
    if age > max_age_seconds:
        raise MirrorIntegrityError(
            f"stale upstream: its repomd.xml is unchanged (revision {held.revision}) and "
            f"{age} seconds old (newest timestamp {held.newest_timestamp}), more than the "
            f"allowed {max_age_seconds}",
            where=where,
            hint="the upstream stopped updating; DEST still serves that revision; sync from "
            "a fresh upstream, or pass --max-age SECONDS if this age is expected",
        )


def wanted_files(repomd: Repomd, packages: Sequence[FileSpec], where: str) -> list[FileSpec]:
    """Every file the new tree consists of (metadata first), duplicates checked.

    The same path twice must be the same file; no path may be a folder of another
    (``X.rpm`` beside ``X.rpm/x.rpm``) or one of the files the sync writes itself.
    """
    by_path: dict[str, FileSpec] = {}
    for spec in [e.file for e in repomd.entries] + list(packages):
        if spec.path in REPOMD_FILES:
            raise MirrorIntegrityError(
                f"the metadata lists {spec.path}, the file that signs it",
                where=where,
                hint="the upstream metadata is malformed or hostile; do not mirror it",
            )
        prior = by_path.get(spec.path)
        if prior is not None and prior != spec:
            raise MirrorIntegrityError(
                f"the metadata lists {spec.path} twice with different sizes or checksums",
                where=where,
            )
        by_path[spec.path] = spec
    folders = folders_of(by_path) | {"repodata"}
    for path in sorted(by_path):
        if path in folders:
            inside = next(
                (p for p in sorted(by_path) if p.startswith(path + "/")), "repodata/repomd.xml"
            )
            raise MirrorIntegrityError(
                f"the metadata lists {path} both as a file and as the folder of {inside}",
                where=where,
                hint="the upstream metadata is malformed or hostile; do not mirror it",
            )
    return list(by_path.values())


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder (and parent folder) the relative ``paths`` are in."""
    folders: set[str] = set()
    for path in paths:
        folder = posixpath.dirname(path)
        while folder and folder not in folders:
            folders.add(folder)
            folder = posixpath.dirname(folder)
    return folders


def unique_downloads(
    specs: Sequence[FileSpec], where: str
) -> tuple[list[FileSpec], dict[str, FileSpec]]:
    """One spec per distinct content (the same RPM at two paths, the LiveUSB image that
    is the LiveCD's bytes): the specs to fetch, and every other path → the spec whose
    file it is a hard link of.  A checksum given two sizes is refused."""
    first: dict[tuple[str, str], FileSpec] = {}
    copies: dict[str, FileSpec] = {}
    for spec in specs:
        key = (spec.algo, spec.digest)
        source = first.get(key)
        if source is None:
            first[key] = spec
        elif source.size != spec.size:
            raise MirrorIntegrityError(
                f"the metadata gives the {spec.algo} checksum {spec.digest} two sizes: "
                f"{source.size} ({source.path}) and {spec.size} ({spec.path})",
                where=where,
                hint="the upstream metadata is malformed or hostile; do not mirror it",
            )
        elif spec.path != source.path:
            copies[spec.path] = source
    return list(first.values()), copies


def plan_sync(
    wanted: Sequence[FileSpec], verified: Collection[FileSpec], held_paths: Collection[str]
) -> SyncPlan:
    """Which wanted files are already present and verified, which to fetch, and
    which held files the new tree drops."""
    reuse = tuple(f for f in wanted if f in verified)
    fetch = tuple(f for f in wanted if f not in verified)
    keep = {f.path for f in wanted} | REPOMD_FILES
    delete = tuple(sorted(p for p in held_paths if p not in keep))
    return SyncPlan(reuse=reuse, fetch=fetch, delete=delete)


def live_replaced(
    replaced: Iterable[ReplacedGeneration], *, now: float, keep_seconds: float
) -> list[ReplacedGeneration]:
    """The replaced generations whose files must still be served: replaced less
    than ``keep_seconds`` ago (0 keeps none)."""
    return [g for g in replaced if now - g.replaced_at < keep_seconds]


def carried_files(replaced: Iterable[ReplacedGeneration], wanted: Collection[str]) -> set[str]:
    """Files of ``replaced`` generations that the new tree must carry besides ``wanted``
    (a path the new metadata names again takes the new file, and an old file where
    the new tree has a folder, or inside a new file's path, cannot be carried)."""
    paths: set[str] = set()
    for g in replaced:
        paths |= g.files
    new = set(wanted)
    carried = paths - new - REPOMD_FILES - folders_of(new)
    return {p for p in carried if not folders_of([p]) & new}
