"""The read pass over many package files: each file read once, in a pool of forked
workers when there are many (:func:`repotool.repo.packages.read_and_check` per file).

A worker writes the metadata chunks of what it read straight to the index's
chunk store (:mod:`repotool.repo.chunk_store`) and hands back only the small
records, so the publishing process neither unpickles nor holds the metadata
of thousands of packages.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Callable, Container, Sequence
from pathlib import Path

from repotool.errors import PublishError
from repotool.repo.chunk_store import SegmentWriter, StoredChunks
from repotool.repo.packages import PackageRead, RepoPackage, read_and_check
from repotool.signing.rpm_verify import PublishedKeys, Verdict

#: files per task: small batches keep the workers busy to the end when sizes vary
BATCH = 16


#: how far a read pass is: (files read, files in all), called in the reading process
Progress = Callable[[int, int], None]


def read_all(
    paths: Sequence[Path],
    keys: PublishedKeys | None,
    verified: frozenset[str],
    store: Path | None = None,
    progress: Progress | None = None,
) -> list[PackageRead]:
    """Read (and, with ``keys``, check) many packages, each file once; a large cold
    repository is split over forked processes (the createrepo_c bindings hold the
    GIL while they parse a header; the checksums are the bulk of the work).
    ``verified``: SHA-256s whose files passed before (their payload need not be hashed).
    ``store``: the chunk store the chunks are written to (None: kept in the records).
    ``progress``: told after every batch of files (and after the last)."""
    workers = min(os.cpu_count() or 1, len(paths) // 64)
    # fork only a single-threaded process: a lock held by another thread (a
    # progress display, say) at fork time would stay locked in the child
    if workers < 2 or threading.active_count() > 1:
        writer = SegmentWriter(store) if store is not None else None
        out: list[PackageRead] = []
        try:
            for p in paths:
                out.append(_stored(read_and_check(p, keys, verified), writer))
                if progress is not None and (len(out) % BATCH == 0 or len(out) == len(paths)):
                    progress(len(out), len(paths))
            return out
        finally:
            if writer is not None:
                writer.close()
    # imported here: a publish that reads a few files (the usual +1) needs no pool
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    batches = [list(paths[i : i + BATCH]) for i in range(0, len(paths), BATCH)]
    ctx = multiprocessing.get_context("fork")
    # two rounds of the workers ahead: on a cold page cache the disk stays ahead of
    # the hashing (one round: 1.07x createrepo_c's cold time at 10,000; two: 1.05x)
    for batch in batches[: 2 * workers]:
        prefetch(batch)
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_worker_setup,
            initargs=(keys, verified, store, batches, 2 * workers),
        ) as pool:
            # each batch's records made compact as it arrives, before the next one
            parts: list[list[PackageRead]] = []
            done = 0
            for part in pool.map(_read_batch, range(len(batches))):
                parts.append([_shared(r) for r in part])
                done += len(part)
                if progress is not None:
                    progress(done, len(paths))
    except BrokenProcessPool as e:
        raise PublishError(
            "a process reading package headers died",
            where=str(paths[0].parent),
            hint="a package file may be damaged; run again to find which",
        ) from e
    return [r for part in parts for r in part]


def _shared(read: PackageRead) -> PackageRead:
    """A record as it came from a worker, its repeated strings shared (the publishing
    process holds thousands of them)."""
    p, intern = read.package, sys.intern
    c = p.chunks
    if isinstance(c, StoredChunks):
        c = StoredChunks(intern(c.segment), c.offset, c.sizes)
    package = RepoPackage(
        intern(p.filename),
        intern(p.name),
        p.epoch,
        intern(p.version),
        intern(p.release),
        intern(p.arch),
        p.sha256,
        p.header_range,
        p.stat,
        c,
    )
    return PackageRead(package, _OK if read.verdict == _OK else read.verdict)


_OK = Verdict(True, "")


def _stored(read: PackageRead, writer: SegmentWriter | None) -> PackageRead:
    if writer is None or not isinstance(read.package.chunks, tuple):
        return read
    package = dataclasses.replace(read.package, chunks=writer.add(read.package.chunks))
    return PackageRead(package, read.verdict)


def prefetch(paths: Sequence[Path]) -> None:
    """Ask the kernel to start reading files that will be read soon
    (``POSIX_FADV_WILLNEED``): on a cold page cache the disk works while the
    workers hash what came before.  Only a hint: a file that cannot be opened
    here is reported by the read itself."""
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


@dataclasses.dataclass
class _Worker:
    """What a reading worker checks against, writes to and reads (set once per worker
    process; inherited through fork, not pickled)."""

    keys: PublishedKeys | None = None
    verified: Container[str] = ()
    writer: SegmentWriter | None = None
    batches: Sequence[list[Path]] = ()
    ahead: int = 1


_worker = _Worker()


def _worker_setup(
    keys: PublishedKeys | None,
    verified: frozenset[str],
    store: Path | None,
    batches: Sequence[list[Path]],
    ahead: int,
) -> None:
    global _worker
    writer = SegmentWriter(store) if store is not None else None
    _worker = _Worker(keys, verified, writer, batches, ahead)


def _read_batch(i: int) -> list[PackageRead]:
    """Batch ``i``; the batch ``ahead`` batches on is prefetched first (the
    batches before it were, by whoever read the ones before them)."""
    w = _worker
    if i + w.ahead < len(w.batches):
        prefetch(w.batches[i + w.ahead])
    return [_stored(read_and_check(p, w.keys, w.verified), w.writer) for p in w.batches[i]]
