"""What the repository metadata says of each package file.

``read_package`` turns an rpm into its primary/filelists/other XML chunks with
createrepo_c; the index (:mod:`repotool.repo.index`, in the state folder)
keeps each file's stat and where its chunks are (:mod:`repotool.repo.chunk_store`),
so a package already in the repository is never read again.  Also the pure rules over package sets:
retention and content digests, and the rpmlib() compatibility gate per target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key
from pathlib import Path

import createrepo_c as cr
import rpmfile

from repotool.config import TargetConfig
from repotool.errors import CompatibilityError, PublishError
from repotool.evr import EVR, NEVRA, evr_cmp
from repotool.repo.chunk_store import StoredChunks
from repotool.signing.rpm_verify import (
    PublishedKeys,
    Verdict,
    finish_check,
    layout_needs,
    read_layout,
    start_check,
)


@dataclass(frozen=True, slots=True)
class RepoPackage:
    """What the metadata says of one package file, and how to tell it changed."""

    filename: str
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    sha256: str  # of the file (the pkgid in primary.xml)
    header_range: tuple[int, int]  # where the main header lies in the file
    stat: tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
    #: primary, filelists, other XML: as read, or where the index keeps them
    chunks: tuple[str, str, str] | StoredChunks
    #: the NEVRA, made on first use (planning asks for it several times per package)
    _nevra: NEVRA | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def evr(self) -> EVR:
        return EVR(self.epoch, self.version, self.release)

    @property
    def nevra(self) -> NEVRA:
        nevra = self._nevra
        if nevra is None:
            nevra = NEVRA(self.name, self.epoch, self.version, self.release, self.arch)
            object.__setattr__(self, "_nevra", nevra)
        return nevra


def _stat_key(path: Path) -> tuple[int, int, int, int]:
    return stat_of(path.stat())


def stat_of(st: os.stat_result) -> tuple[int, int, int, int]:
    # ctime and inode change whenever a file is rewritten, even when the
    # re-signed package keeps its size and its mtime is set back.
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass(frozen=True, slots=True)
class PackageRead:
    """One package read once: its metadata record and, when keys were given, what the
    in-process signature check decided (see :mod:`repotool.signing.rpm_verify`)."""

    package: RepoPackage
    verdict: Verdict | None


def read_package(path: Path) -> RepoPackage:
    """Read one package's headers into metadata chunks (createrepo_c)."""
    return read_and_check(path, None).package


#: a file up to this size is held in memory for the one pass, so that its payload is
#: hashed only when the ledger does not know the file (a larger one: both at once)
WHOLE_READ = 4 << 20

_read_buffer: list[memoryview] = []


def _buffer(size: int) -> memoryview:
    """The read pass's buffer, one per process, grown in powers of two (up to
    :data:`WHOLE_READ`) to hold a file of ``size`` bytes and one more (a short read
    then says the file ended): reading thousands of files allocates nothing per
    file, and a publish that reads one small package does not page in 4 MiB."""
    want = min(WHOLE_READ, max(1 << 16, 1 << (size + 1).bit_length()))
    if not _read_buffer or len(_read_buffer[0]) < want:
        _read_buffer[:] = [memoryview(bytearray(want))]
    return _read_buffer[0]


def _fill(f: io.RawIOBase, view: memoryview) -> int:
    """Read into ``view`` until it is full or the file ends; how many bytes came."""
    got = 0
    while got < len(view) and (n := f.readinto(view[got:])):
        got += n
    return got


def read_and_check(
    path: Path, keys: PublishedKeys | None, verified: Container[str] = frozenset()
) -> PackageRead:
    """The one pass over a package file: the file's SHA-256, its metadata and (with
    ``keys``) its header signature and payload digest, from a single read.

    createrepo_c parses a copy of the headers alone (an in-memory file), so it
    neither reads the payload again nor checksums the file a second time; the
    file's own checksum and size are set from this pass."""
    try:
        with path.open("rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            view = _buffer(st.st_size)
            n = _fill(f, view)
            first: bytes | memoryview = view[:n]
            if layout_needs(first) > n == len(view):  # headers larger than the buffer
                first = bytes(first) + f.read(layout_needs(first) - n)
            layout = read_layout(first)
            head = bytes(first[: layout.header_end])
            file_hash = hashlib.sha256(first)
            pending = start_check(head, layout, keys) if keys is not None else None
            payload = pending.payload_hash if pending is not None else None
            if payload is not None and n < len(view):  # the whole file is in the buffer
                if file_hash.hexdigest() in verified:
                    pending = None  # its exact bytes passed before: the ledger decides
                else:
                    payload.update(first[layout.header_end :])
                payload = None
            elif payload is not None:
                payload.update(first[layout.header_end :])
            while m := f.readinto(view):
                file_hash.update(view[:m])
                if payload is not None:
                    payload.update(view[:m])
        pkg = _parse_headers(head[: layout.header_end], path.name)
    except (OSError, cr.CreaterepoCError, ValueError, KeyError) as e:
        raise PublishError(
            f"cannot read the package: {e}",
            where=str(path),
            hint="the file is not a valid rpm; remove it or rebuild it",
        ) from e
    pkg.pkgId = file_hash.hexdigest()
    pkg.size_package = st.st_size
    pkg.time_file = 0  # the metadata must not depend on when the file was copied
    chunks = cr.xml_dump(pkg)
    record = RepoPackage(
        path.name,
        pkg.name,
        int(pkg.epoch or 0),
        pkg.version,
        pkg.release,
        pkg.arch,
        pkg.pkgId,
        (layout.header_start, layout.header_end),
        stat_of(st),
        (chunks[0], chunks[1], chunks[2]),
    )
    return PackageRead(record, finish_check(pending) if pending is not None else None)


def _parse_headers(headers: bytes, filename: str) -> cr.Package:
    """createrepo_c's reading of a package's headers (lead to payload), handed over
    as an in-memory file; checksum and size are the caller's to set."""
    fd = os.memfd_create("repotool-rpm-headers")
    try:
        view = memoryview(headers)
        while view:
            view = view[os.write(fd, view) :]
        return cr.package_from_rpm(
            f"/proc/self/fd/{fd}", cr.SHA256, f"Packages/{filename}", None, 10
        )
    finally:
        os.close(fd)


def header_digest(path: Path, header_range: tuple[int, int]) -> str:
    """SHA-256 of the main header (rpm's SHA256HEADER): the same for a build however
    often it is signed, different for any other build."""
    start, end = header_range
    with path.open("rb") as f:
        f.seek(start)
        return hashlib.sha256(f.read(end - start)).hexdigest()


def rpmlib_requirements(path: Path) -> set[str]:
    """The rpmlib(...) features a package needs from the host's rpm."""
    with rpmfile.open(str(path)) as rpm:
        names = rpm.headers.get("requirename") or []
    if isinstance(names, bytes):
        names = [names]
    out = set()
    for n in names:
        s = n.decode() if isinstance(n, bytes) else str(n)
        if s.startswith("rpmlib(") and s.endswith(")"):
            out.add(s[len("rpmlib(") : -1])
    return out


def check_compatibility(path: Path, target: TargetConfig) -> None:
    """Refuse a package that needs an rpm feature the target's hosts lack."""
    missing = sorted(rpmlib_requirements(path) - set(target.rpmlib_features))
    if missing:
        raise CompatibilityError(
            "needs rpm features that "
            + target.name
            + " hosts lack: "
            + ", ".join(f"rpmlib({m})" for m in missing),
            where=str(path),
            hint=f"rebuild without them for {target.name} (e.g. gzip/xz payload, no rich "
            "dependencies), or drop the package from this target",
        )


def select_retained(packages: Sequence[RepoPackage], keep: int) -> list[RepoPackage]:
    """Pure: the newest ``keep`` versions of each (name, arch).  Most names have one
    version: those are looked up by arch, then name (no key tuple or list per
    package: 50,000 of each were megabytes at the publish's peak)."""
    first: dict[str, dict[str, RepoPackage]] = {}
    more: dict[tuple[str, str], list[RepoPackage]] = {}
    for p in packages:
        have = first.setdefault(p.arch, {}).setdefault(p.name, p)
        if have is not p:
            more.setdefault((p.arch, p.name), [have]).append(p)
    kept = [p for names in first.values() for p in names.values() if (p.arch, p.name) not in more]
    for group in more.values():
        if len(group) > keep:
            group.sort(key=cmp_to_key(lambda a, b: evr_cmp(a.evr, b.evr)), reverse=True)
            del group[keep:]
        kept += group
    return sorted(kept, key=lambda p: p.filename)


def content_digest(packages: Sequence[RepoPackage], updateinfo: bytes | None) -> str:
    h = hashlib.sha256()
    for p in sorted(packages, key=lambda p: p.filename):
        h.update(f"{p.filename}\0{p.sha256}\n".encode())
    h.update(b"updateinfo\0" + (updateinfo or b""))
    return h.hexdigest()


def restat(p: RepoPackage, path: Path) -> RepoPackage:
    """The same package record with the stat of the file at ``path``."""
    return dataclasses.replace(p, stat=_stat_key(path))
