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
the verified, bounded, resumed downloads into staging are
:mod:`repotool.mirror.staging` (shared with the media sync, :mod:`repotool.mirror.media`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repotool.atomic import write_atomic
from repotool.errors import MirrorError
from repotool.mirror.fetch import Fetcher
from repotool.mirror.generations import (
    files_under,
    link_held_files,
    published_generation,
    read_state,
    remove_replaced_generations,
    swap_in_staging,
    sync_lock,
    workdir_for,
)
from repotool.mirror.signature import GpgvVerifier
from repotool.mirror.staging import StagingDownloader
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
    live_replaced,
    parse_primary,
    parse_repomd,
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


@dataclass(frozen=True)
class _Held:
    """What DEST serves now, and what state.json recorded when it was made."""

    generation: Path | None
    repomd_bytes: bytes | None
    repomd: Repomd | None
    state: dict[str, Any]

    def conditional_headers(self, url: str) -> dict[str, str]:
        """If-None-Match/If-Modified-Since of the held repomd.xml, when fetched from ``url``."""
        headers: dict[str, str] = {}
        if self.repomd is not None and self.state.get("url") == url:
            if self.state.get("etag"):
                headers["If-None-Match"] = self.state["etag"]
            if self.state.get("last_modified"):
                headers["If-Modified-Since"] = self.state["last_modified"]
        return headers


def _still_served(
    held: _Held, held_files: set[str], moment: float, keep_seconds: float
) -> list[ReplacedGeneration]:
    """The replaced generations (the held one among them) whose files stay in the tree."""
    replaced = _replaced_in(held.state)
    if held.generation is not None and held.repomd is not None:
        names = _held_names(held.state, held.generation, held_files)
        replaced.append(ReplacedGeneration(held.repomd.revision, moment, names))
    return live_replaced(replaced, now=moment, keep_seconds=keep_seconds)


def _state_record(
    fetched: dict[str, Any], gen: Path, names: set[str], replaced: list[ReplacedGeneration]
) -> dict[str, Any]:
    """state.json after a new generation ``gen`` made of ``names`` went live."""
    return {
        **fetched,
        "generation": gen.name,
        "files": sorted(names),
        "replaced": [
            {"revision": g.revision, "replaced_at": g.replaced_at, "files": sorted(g.files)}
            for g in replaced
        ],
    }


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
        self.state_file = self.workdir / "state.json"
        self.downloads = StagingDownloader(self.url, self.workdir, fetcher, reporter, jobs)
        self.staging = self.downloads.staging

    def run(self, max_age_seconds: int, now: Callable[[], float]) -> SyncResult:
        with sync_lock(self.workdir, self.dest):
            return self._run(max_age_seconds, now)

    def _held(self) -> _Held:
        current = published_generation(self.dest, self.workdir)
        path = current / REPOMD if current is not None else None
        data = path.read_bytes() if path is not None and path.exists() else None
        repomd = parse_repomd(data, str(self.dest / REPOMD)) if data else None
        return _Held(current, data, repomd, read_state(self.state_file))

    def _run(self, max_age_seconds: int, now: Callable[[], float]) -> SyncResult:
        held = self._held()
        headers = held.conditional_headers(self.url)
        repomd_url = self.url + REPOMD
        got = self.fetcher.get_small(
            repomd_url,
            max_bytes=REPOMD_LIMIT,
            headers=headers,
            allow=(200, 304) if headers else (200,),
        )
        if got.status == 304 and held.repomd is not None:
            check_fresh(held.repomd, now=now(), max_age_seconds=max_age_seconds, where=repomd_url)
            return SyncResult(changed=False, revision=held.repomd.revision)
        sig = self.fetcher.get_small(repomd_url + ".asc", max_bytes=SIGNATURE_LIMIT)
        self.verifier.verify(got.body, sig.body, repomd_url)
        fetched: dict[str, Any] = {
            "url": self.url,
            "etag": got.etag or "",
            "last_modified": got.last_modified or "",
        }
        if held.repomd is not None and got.body == held.repomd_bytes:
            write_atomic(self.state_file, json.dumps({**held.state, **fetched}).encode())
            check_fresh(held.repomd, now=now(), max_age_seconds=max_age_seconds, where=repomd_url)
            return SyncResult(changed=False, revision=held.repomd.revision)
        new = parse_repomd(got.body, repomd_url)
        check_update(new, held.repomd, now=now(), max_age_seconds=max_age_seconds, where=repomd_url)
        return self._update(new, got.body, sig.body, held, fetched, now)

    def _stage(
        self, new: Repomd, current: Path | None, held_files: set[str]
    ) -> tuple[list[FileSpec], int, int]:
        """Every file ``new`` names, verified in staging: the primary first, then what it
        lists; returns them, and how many files and bytes were downloaded."""
        primary = new.entry("primary")
        assert primary is not None  # parse_repomd guarantees it
        _, f1, b1 = self.downloads.stage_verified([primary.file], current, held_files)
        xml = decompress(
            (self.staging / primary.file.path).read_bytes(),
            self.url + primary.file.path,
            primary.open_size,
            self.unpack,
        )
        packages = parse_primary(xml, self.url + primary.file.path)
        wanted = wanted_files(new, packages, self.url + REPOMD)
        _, f2, b2 = self.downloads.stage_verified(wanted, current, held_files)
        return wanted, f1 + f2, b1 + b2

    def _update(
        self,
        new: Repomd,
        repomd: bytes,
        signature: bytes,
        held: _Held,
        fetched_state: dict[str, Any],
        now: Callable[[], float],
    ) -> SyncResult:
        """Assemble the tree ``new`` names in staging and swap it in."""
        current = held.generation
        held_files = files_under(current) if current is not None else set()
        wanted, fetched, fetched_bytes = self._stage(new, current, held_files)
        repodata = self.staging / "repodata"
        write_atomic(repodata / "repomd.xml", repomd)
        write_atomic(repodata / "repomd.xml.asc", signature)
        write_atomic(repodata / "repomd.xml.key", self.verifier.key_file.read_bytes())
        names = {f.path for f in wanted}
        replaced = _still_served(held, held_files, now(), self.keep_seconds)
        carried = carried_files(replaced, names) & held_files
        if current is not None:
            link_held_files(current, carried, self.staging)
        keep = names | REPOMD_FILES | carried
        for stray in files_under(self.staging) - keep:
            (self.staging / stray).unlink()
        gen = swap_in_staging(self.workdir, self.staging, self.dest)
        remove_replaced_generations(self.workdir, gen, self.reporter)
        self.downloads.forget_partial()
        record = _state_record(fetched_state, gen, names, replaced)
        write_atomic(self.state_file, json.dumps(record).encode())
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
