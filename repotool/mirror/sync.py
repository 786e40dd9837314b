"""The shell of ``repotool mirror sync``: network and disk around the pure plan.

DEST is a symlink to a complete, verified generation folder beside it::

    DEST -> .DEST.repotool/gen-<n>/     what hosts see (always whole)
    .DEST.repotool/staging/             the next generation being assembled
    .DEST.repotool/partial/<digest>     interrupted downloads, resumed with Range
    .DEST.repotool/state.json           ETag/Last-Modified of the held repomd.xml, the
                                        files it names, the replaced generations' files

A sync verifies repomd.xml's signature before trusting anything, assembles the
new tree in staging (hard links for files already held and verified, parallel
bounded downloads for the rest, each checked against size and checksum), swaps
the symlink with one rename, and only then deletes the old generation folder.
A failed sync leaves DEST untouched and keeps staging and partial files so the
next run resumes.

A host that fetched the old repomd.xml just before the swap still asks for the
primary and packages it names, so the new generation also carries (hard links)
the files of every generation replaced less than ``keep_seconds`` ago; a later
sync drops them once they are older.

The lock, the generation folders and the swap are :mod:`repotool.mirror.generations`;
:class:`StagingDownloader` (verified, bounded, resumed downloads into staging) is
shared with the media sync (:mod:`repotool.mirror.media`).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repotool.atomic import write_atomic
from repotool.digests import file_digest
from repotool.errors import MirrorError, MirrorIntegrityError
from repotool.mirror.fetch import Fetcher
from repotool.mirror.generations import (
    files_under,
    link_held_files,
    published_generation,
    read_state,
    real_folder,
    remove_replaced_generations,
    swap_in_staging,
    sync_lock,
    tree_under,
    workdir_for,
)
from repotool.mirror.signature import GpgvVerifier
from repotool.mirror.sync_plan import (
    REPOMD_FILES,
    FileSpec,
    ReplacedGeneration,
    Repomd,
    UnpackLimits,
    carried_files,
    check_fresh,
    check_update,
    decompress,
    folders_of,
    live_replaced,
    parse_primary,
    parse_repomd,
    plan_sync,
    unique_downloads,
    wanted_files,
)
from repotool.report import Reporter

REPOMD = "repodata/repomd.xml"
REPOMD_LIMIT = 4 * 1024 * 1024
SIGNATURE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    revision: str
    fetched: int = 0
    fetched_bytes: int = 0
    resumed: int = 0
    reused: int = 0
    deleted: int = 0
    #: files no longer in the metadata, kept for hosts holding an older repomd.xml
    kept: int = 0
    requests: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _matches(path: Path, spec: FileSpec) -> bool:
    try:
        if path.stat().st_size != spec.size:
            return False
        return file_digest(path, spec.algo) == spec.digest
    except OSError:
        return False


def _replaced_in(state: dict[str, Any]) -> list[ReplacedGeneration]:
    """The replaced generations state.json records (an unreadable entry is skipped)."""
    found: list[ReplacedGeneration] = []
    entries = state.get("replaced")
    for e in entries if isinstance(entries, list) else ():
        try:
            found.append(
                ReplacedGeneration(
                    revision=str(e["revision"]),
                    replaced_at=float(e["replaced_at"]),
                    files=frozenset(str(p) for p in e["files"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _held_names(state: dict[str, Any], current: Path, held_files: set[str]) -> frozenset[str]:
    """The files the held repomd.xml names, as recorded when its generation was made;
    without that record (older repotool, or a crash right after the swap), every file held."""
    files = state.get("files")
    if state.get("generation") == current.name and isinstance(files, list):
        return frozenset(str(p) for p in files) & held_files
    return frozenset(held_files - REPOMD_FILES)


class StagingDownloader:
    """Files of a signed listing, each verified, into ``workdir/staging``.

    Paths are relative to ``url`` (which ends in ``/``); interrupted downloads wait
    in ``workdir/partial`` and are resumed.  ``resumed`` counts the resumed ones.
    """

    def __init__(
        self, url: str, workdir: Path, fetcher: Fetcher, reporter: Reporter, jobs: int
    ) -> None:
        self.url = url
        self.fetcher = fetcher
        self.reporter = reporter
        self.jobs = max(1, jobs)
        self.staging = workdir / "staging"
        self.partial = workdir / "partial"
        self.resumed = 0
        self._count_lock = threading.Lock()

    def _fetch_one(self, spec: FileSpec) -> None:
        url = self.url + spec.path
        part = self.partial / f"{spec.algo}-{spec.digest}"
        for attempt in (1, 2):
            try:
                got = self.fetcher.download(url, part, size=spec.size, algo=spec.algo)
            except MirrorIntegrityError:
                part.unlink(missing_ok=True)  # what arrived is wrong: never resume from it
                raise
            if got.resumed_from:
                with self._count_lock:
                    self.resumed += 1
            # the fetcher hashes while it writes; re-read only if it could not
            actual = got.digest or file_digest(part, spec.algo)
            if actual == spec.digest:
                break
            part.unlink(missing_ok=True)
            if got.resumed_from and attempt == 1:
                continue  # the kept head may be what was wrong: once more from the start
            raise MirrorIntegrityError(
                f"checksum mismatch: {spec.algo} of the download is {actual}, the signed "
                f"metadata says {spec.digest}",
                where=url,
                hint="the upstream file is corrupt or tampered with; DEST was left unchanged; "
                "run again later or sync from another upstream",
            )
        os.replace(part, f"{self.staging}/{spec.path}")  # its folder was made by stage_verified

    def stage_verified(
        self, specs: Sequence[FileSpec], current: Path | None, held: Collection[str]
    ) -> tuple[int, int, int]:
        """Make every spec present and verified in staging; returns (reused, fetched, bytes).

        ``held`` lists the files of ``current``.  Only specs that exist in staging or
        there are checksummed; the rest are known to be missing from two directory walks.
        Content listed at several paths is fetched once and hard-linked to the others.
        A symbolic link in staging or the partial folder is refused before anything is
        written (:func:`~repotool.mirror.generations.files_under`).
        """
        real_folder(self.staging)
        real_folder(self.partial)
        in_staging, staged_folders = tree_under(self.staging)
        files_under(self.partial)
        unique, copies = unique_downloads(specs, self.url)
        folders = folders_of(s.path for s in specs)
        # what an earlier failed run left where this tree has a folder, or a file
        for path in sorted({s.path for s in specs} & staged_folders):
            shutil.rmtree(self.staging / path)
            in_staging = {p for p in in_staging if not p.startswith(path + "/")}
        for path in sorted(folders & in_staging):
            (self.staging / path).unlink()
            in_staging.discard(path)
        for folder in sorted(folders):
            (self.staging / folder).mkdir(parents=True, exist_ok=True)

        def verified(spec: FileSpec) -> FileSpec | None:
            staged = self.staging / spec.path
            if spec.path in in_staging and _matches(staged, spec):
                return spec
            if current is not None and spec.path in held and _matches(current / spec.path, spec):
                staged.unlink(missing_ok=True)
                os.link(current / spec.path, staged, follow_symlinks=False)
                return spec
            return None

        present = [s for s in unique if s.path in in_staging or s.path in held]
        ok: set[FileSpec] = set()
        if present:
            with ThreadPoolExecutor(self.jobs) as pool:
                ok = {s for s in pool.map(verified, present) if s is not None}
        plan = plan_sync(unique, ok, ())
        if plan.fetch:
            self._download(plan.fetch)
        for path, source in copies.items():
            (self.staging / path).unlink(missing_ok=True)
            os.link(self.staging / source.path, self.staging / path)
        return len(plan.reuse), len(plan.fetch), plan.fetch_bytes

    def forget_partial(self) -> None:
        """After a complete sync, nothing is left to resume."""
        shutil.rmtree(self.partial, ignore_errors=True)

    def _download(self, specs: Sequence[FileSpec]) -> None:
        """Fetch ``specs`` with ``jobs`` threads; the first failure stops the others.

        Each worker takes the next file from a shared iterator rather than a future
        per file, and this thread updates the progress a few times a second rather
        than waking up for every file: with thousands of small files, those per-file
        hand-overs of the GIL cost more than the downloads themselves.
        """
        todo = iter(specs)
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[MirrorError] = []
        done = 0

        def work() -> None:
            nonlocal done
            finished = False
            while True:
                with lock:
                    done += finished
                    spec = None if stop.is_set() else next(todo, None)
                if spec is None:
                    return
                try:
                    self._fetch_one(spec)
                except MirrorError as e:
                    errors.append(e)
                    stop.set()
                    return
                except BaseException:
                    stop.set()
                    raise
                finished = True

        workers = min(self.jobs, len(specs))
        with (
            self.reporter.step("downloading", len(specs)) as step,
            ThreadPoolExecutor(workers) as pool,
        ):
            futures = [pool.submit(work) for _ in range(workers)]
            running = set(futures)
            shown = 0
            try:
                while running:
                    _, running = wait(running, timeout=0.25)
                    with lock:
                        now_done = done
                    if now_done > shown:
                        step.advance(now_done - shown)
                        shown = now_done
            finally:
                stop.set()  # on Ctrl-C, workers finish their current file and take no more
            for f in futures:
                f.result()  # an unexpected error in a worker ends the sync here
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.what += f" (and {len(errors) - 1} more file(s) failed)"
            raise first


class _Syncer:
    def __init__(
        self,
        url: str,
        dest: Path,
        fetcher: Fetcher,
        verifier: GpgvVerifier,
        reporter: Reporter,
        jobs: int,
        keep_seconds: float,
        unpack: UnpackLimits,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.unpack = unpack
        self.dest = dest
        self.fetcher = fetcher
        self.verifier = verifier
        self.reporter = reporter
        self.keep_seconds = keep_seconds
        self.workdir = workdir_for(dest)
        self.downloads = StagingDownloader(self.url, self.workdir, fetcher, reporter, jobs)
        self.staging = self.downloads.staging

    def run(self, max_age_seconds: int, now: Callable[[], float]) -> SyncResult:
        with sync_lock(self.workdir, self.dest):
            return self._run(max_age_seconds, now)

    def _run(self, max_age_seconds: int, now: Callable[[], float]) -> SyncResult:
        current = published_generation(self.dest, self.workdir)
        held_bytes = (
            (current / REPOMD).read_bytes() if current and (current / REPOMD).exists() else None
        )
        held: Repomd | None = (
            parse_repomd(held_bytes, str(self.dest / REPOMD)) if held_bytes else None
        )
        state_file = self.workdir / "state.json"
        state = read_state(state_file)
        headers: dict[str, str] = {}
        if held is not None and state.get("url") == self.url:
            if state.get("etag"):
                headers["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                headers["If-Modified-Since"] = state["last_modified"]
        repomd_url = self.url + REPOMD
        got = self.fetcher.get_small(
            repomd_url,
            max_bytes=REPOMD_LIMIT,
            headers=headers,
            allow=(200, 304) if headers else (200,),
        )
        if got.status == 304 and held is not None:
            check_fresh(held, now=now(), max_age_seconds=max_age_seconds, where=repomd_url)
            return SyncResult(changed=False, revision=held.revision)
        sig = self.fetcher.get_small(repomd_url + ".asc", max_bytes=SIGNATURE_LIMIT)
        self.verifier.verify(got.body, sig.body, repomd_url)
        new_state: dict[str, Any] = {
            "url": self.url,
            "etag": got.etag or "",
            "last_modified": got.last_modified or "",
        }
        if held is not None and got.body == held_bytes:
            write_atomic(state_file, json.dumps({**state, **new_state}).encode())
            check_fresh(held, now=now(), max_age_seconds=max_age_seconds, where=repomd_url)
            return SyncResult(changed=False, revision=held.revision)
        new = parse_repomd(got.body, repomd_url)
        check_update(new, held, now=now(), max_age_seconds=max_age_seconds, where=repomd_url)

        primary = new.entry("primary")
        assert primary is not None  # parse_repomd guarantees it
        held_files = files_under(current) if current is not None else set()
        _, f1, b1 = self.downloads.stage_verified([primary.file], current, held_files)
        xml = decompress(
            (self.staging / primary.file.path).read_bytes(),
            self.url + primary.file.path,
            primary.open_size,
            self.unpack,
        )
        packages = parse_primary(xml, self.url + primary.file.path)
        wanted = wanted_files(new, packages, repomd_url)
        _, f2, b2 = self.downloads.stage_verified(wanted, current, held_files)
        fetched, fetched_bytes = f1 + f2, b1 + b2
        repodata = self.staging / "repodata"
        write_atomic(repodata / "repomd.xml", got.body)
        write_atomic(repodata / "repomd.xml.asc", sig.body)
        write_atomic(repodata / "repomd.xml.key", self.verifier.key_file.read_bytes())
        names = {f.path for f in wanted}
        moment = now()
        replaced = _replaced_in(state)
        if current is not None and held is not None:
            replaced.append(
                ReplacedGeneration(held.revision, moment, _held_names(state, current, held_files))
            )
        replaced = live_replaced(replaced, now=moment, keep_seconds=self.keep_seconds)
        carried = carried_files(replaced, names) & held_files
        if current is not None:
            link_held_files(current, carried, self.staging)
        keep = names | REPOMD_FILES | carried
        for stray in files_under(self.staging) - keep:
            (self.staging / stray).unlink()
        gen = swap_in_staging(self.workdir, self.staging, self.dest)
        remove_replaced_generations(self.workdir, gen, self.reporter)
        self.downloads.forget_partial()
        write_atomic(
            state_file,
            json.dumps(
                {
                    **new_state,
                    "generation": gen.name,
                    "files": sorted(names),
                    "replaced": [
                        {
                            "revision": g.revision,
                            "replaced_at": g.replaced_at,
                            "files": sorted(g.files),
                        }
                        for g in replaced
                    ],
                }
            ).encode(),
        )
        return SyncResult(
            changed=True,
            revision=new.revision,
            fetched=fetched,
            fetched_bytes=fetched_bytes,
            resumed=self.downloads.resumed,
            reused=len(wanted) - fetched,
            deleted=len(held_files - keep),
            kept=len(carried),
        )


def sync_repository(
    url: str,
    dest: Path,
    *,
    fetcher: Fetcher,
    verifier: GpgvVerifier,
    reporter: Reporter,
    max_age_seconds: int,
    keep_seconds: float,
    jobs: int = 4,
    now: Callable[[], float] = time.time,
    unpack: UnpackLimits | None = None,
) -> SyncResult:
    """Mirror the repository at ``url`` into ``dest`` (see the module docstring).

    Files that a repomd.xml replaced less than ``keep_seconds`` ago names stay in
    the tree, for hosts that still hold it.  Metadata older than ``max_age_seconds``
    is refused, also when it is unchanged since the last run (the upstream stopped
    updating); the primary unpacks to at most what ``unpack`` allows.
    """
    if not url.startswith(("http://", "https://")):
        raise MirrorError(
            f"not an http(s) URL: {url}",
            where=url,
            hint="pass the base URL of one repository, e.g. …/repo/el7/x86_64/",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    limits = unpack or UnpackLimits()
    syncer = _Syncer(url, dest, fetcher, verifier, reporter, jobs, keep_seconds, limits)
    result = syncer.run(max_age_seconds, now)
    counts = getattr(fetcher, "requests", 0), getattr(fetcher, "bytes", 0)
    return SyncResult(**{**asdict(result), "requests": counts[0], "bytes": counts[1]})
