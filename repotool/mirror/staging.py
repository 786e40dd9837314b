"""Verified, bounded, resumed downloads of a signed listing into staging.

Shared by the repository sync (:mod:`repotool.mirror.sync`) and the media sync
(:mod:`repotool.mirror.media`): every file of the new tree is made present in
``.DEST.repotool/staging`` and checked against the size and checksum the signed
metadata gives, hard-linked from the held generation when it already has it,
otherwise downloaded (in parallel, each bounded by its size) into
``.DEST.repotool/partial/<algo>-<digest>`` and renamed into place once it checks
out.  An interrupted download is resumed by the next run.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from repotool.digests import file_digest
from repotool.errors import MirrorError, MirrorIntegrityError
from repotool.mirror.fetch import Fetcher
from repotool.mirror.generations import files_under, real_folder, tree_under
from repotool.mirror.sync_plan import FileSpec, folders_of, plan_sync, unique_downloads
from repotool.report import Reporter


def _matches(path: Path, spec: FileSpec) -> bool:
    try:
        if path.stat().st_size != spec.size:
            return False
        return file_digest(path, spec.algo) == spec.digest
    except OSError:
        return False


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
