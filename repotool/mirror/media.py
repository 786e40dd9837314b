"""The shell of ``repotool mirror media``: the release media, verified and atomic.

Same layout and guarantees as the repository sync (:mod:`repotool.mirror.sync`):
the same lock, generation folders and swap (:mod:`repotool.mirror.generations`)
and the same verified downloads into staging (:mod:`repotool.mirror.staging`)::

    DEST -> .DEST.repotool/gen-<n>/         what hosts see: <label>/ folders, always whole
    .DEST.repotool/staging/                 the next generation being assembled
    .DEST.repotool/partial/sha256-<digest>  interrupted downloads, resumed with Range
    .DEST.repotool/media-state.json         ETag/Last-Modified of each label's SHA256SUMS

For each label, SHA256SUMS and SHA256SUMS.asc are fetched and checked with gpgv
against the pinned key before anything else of the label is fetched; media.json
then gives the sizes that bound the downloads and must agree with SHA256SUMS on
every name and checksum (its sizes, unsigned, may not exceed ``--max-image-size``);
images already held with the right checksum are hard links, the rest are
downloaded and checked.  Only when every label is complete
does DEST move to the new generation, in one rename: a failure changes nothing
a host sees, and the next run resumes.

Nothing unsigned deletes: a held label that ``/api/releases`` (not signed) no
longer lists is kept and reported as withdrawn; only the operator removes a
label (``--remove LABEL``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
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
from repotool.mirror.media_plan import (
    CHECKSUMS,
    MANIFEST,
    MAX_IMAGE_BYTES,
    SIGNATURE,
    check_label,
    label_images,
    parse_media_manifest,
    parse_release_labels,
    parse_sha256sums,
)
from repotool.mirror.signature import GpgvVerifier
from repotool.mirror.staging import StagingDownloader
from repotool.mirror.sync_plan import FileSpec
from repotool.report import Reporter

SUMS_LIMIT = 64 * 1024
MANIFEST_LIMIT = 1024 * 1024
API_LIMIT = 16 * 1024 * 1024
STATE = "media-state.json"


@dataclass(frozen=True)
class MediaSyncResult:
    changed: bool
    #: the labels DEST holds after the run
    labels: tuple[str, ...]
    #: the labels whose folder was (re)assembled
    updated: tuple[str, ...] = ()
    #: held labels deleted because the operator asked (``--remove``)
    removed: tuple[str, ...] = ()
    #: held labels the master's /api/releases no longer lists: kept, since that list
    #: is not signed (remove them with ``--remove``)
    withdrawn: tuple[str, ...] = ()
    fetched: int = 0
    fetched_bytes: int = 0
    resumed: int = 0
    reused: int = 0
    requests: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "labels": list(self.labels),
            "updated": list(self.updated),
            "removed": list(self.removed),
            "withdrawn": list(self.withdrawn),
        }


@dataclass(frozen=True)
class _Choices:
    remove: frozenset[str]
    max_image_bytes: int


@dataclass(frozen=True)
class _NewLabel:
    sums: bytes
    signature: bytes
    manifest: bytes
    images: list[FileSpec]


def _labels_held(current: Path | None) -> set[str]:
    if current is None:
        return set()
    return {p.name for p in current.iterdir() if p.is_dir() and not p.is_symlink()}


def sync_media(
    base_url: str,
    dest: Path,
    *,
    labels: Sequence[str] | None,
    fetcher: Fetcher,
    verifier: GpgvVerifier,
    reporter: Reporter,
    jobs: int = 4,
    remove: Sequence[str] = (),
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> MediaSyncResult:
    """Mirror ``<base_url>/releases/<label>/`` for each label into ``dest/<label>/``.

    ``labels`` None: the labels the master's ``/api/releases`` lists (a held label it
    no longer lists stays, reported as withdrawn).  Otherwise only the named labels
    are synced.  Held labels are deleted only when named in ``remove``.  No image may
    be larger than ``max_image_bytes``.
    """
    if not base_url.startswith(("http://", "https://")):
        raise MirrorError(
            f"not an http(s) URL: {base_url}",
            where=base_url,
            hint="pass the base URL of the published tree, e.g. https://host/",
        )
    base = base_url if base_url.endswith("/") else base_url + "/"
    for label in labels or ():
        check_label(label, "--label")
    for label in remove:
        check_label(label, "--remove")
    both = sorted(set(labels or ()) & set(remove))
    if both:
        raise MirrorError(
            f"{', '.join(both)} named both with --label and with --remove",
            where=str(dest),
            hint="name each label once",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    workdir = workdir_for(dest)
    downloads = StagingDownloader(base + "releases/", workdir, fetcher, reporter, jobs)
    syncer = _MediaSyncer(base, dest, downloads, fetcher, verifier, reporter)
    with sync_lock(workdir, dest):
        result = syncer.run(labels, _Choices(frozenset(remove), max_image_bytes))
    counts = getattr(fetcher, "requests", 0), getattr(fetcher, "bytes", 0)
    return MediaSyncResult(**{**asdict(result), "requests": counts[0], "bytes": counts[1]})


def _conditional_headers(was: object, url: str) -> dict[str, str]:
    """If-None-Match/If-Modified-Since of a held label's SHA256SUMS, when fetched from ``url``."""
    headers: dict[str, str] = {}
    if isinstance(was, dict) and was.get("url") == url:
        if was.get("etag"):
            headers["If-None-Match"] = str(was["etag"])
        if was.get("last_modified"):
            headers["If-Modified-Since"] = str(was["last_modified"])
    return headers


def _kept_paths(new: dict[str, _NewLabel], carried: list[str]) -> set[str]:
    """Every file of the new generation: the carried labels' and the updated labels'."""
    return {
        *carried,
        *(s.path for n in new.values() for s in n.images),
        *(f"{label}/{name}" for label in new for name in (CHECKSUMS, SIGNATURE, MANIFEST)),
    }


def _clear_staging(staging: Path, final: set[str], keep: set[str]) -> None:
    """Remove from staging what an earlier failed run left there and the new tree lacks."""
    for entry in staging.iterdir():
        if entry.name in final:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for stray in files_under(staging) - keep:
        (staging / stray).unlink()


class _MediaSyncer:
    def __init__(
        self,
        base: str,
        dest: Path,
        downloads: StagingDownloader,
        fetcher: Fetcher,
        verifier: GpgvVerifier,
        reporter: Reporter,
    ) -> None:
        self.base = base
        self.dest = dest
        self.workdir = workdir_for(dest)
        self.state_file = self.workdir / STATE
        self.downloads = downloads
        self.fetcher = fetcher
        self.verifier = verifier
        self.reporter = reporter

    def run(self, wanted: Sequence[str] | None, choices: _Choices) -> MediaSyncResult:
        if (self.workdir / "state.json").exists():
            raise MirrorError(
                "DEST is a repository mirror (made by repotool mirror sync)",
                where=str(self.dest),
                hint="mirror the media into a DEST of their own",
            )
        current = published_generation(self.dest, self.workdir)
        held = _labels_held(current)
        state = read_state(self.state_file)
        old_state = state.get("labels") if isinstance(state.get("labels"), dict) else {}
        assert isinstance(old_state, dict)
        labels, withdrawn = self._labels(wanted, held, choices.remove)
        keep_others = held - set(labels) - choices.remove
        new_state: dict[str, Any] = {k: v for k, v in old_state.items() if k in keep_others}
        new: dict[str, _NewLabel] = {}
        for label in labels:
            assert current is not None or label not in held
            held_label = current / label if current is not None and label in held else None
            entry, got = self._fetch_label(label, old_state.get(label), held_label, choices)
            new_state[label] = entry
            if got is not None:
                new[label] = got
        final = set(labels) | keep_others
        removed = tuple(sorted(held - final))
        if current is not None and not new and not removed:
            write_atomic(self.state_file, json.dumps({**state, "labels": new_state}).encode())
            return MediaSyncResult(changed=False, labels=tuple(sorted(final)), withdrawn=withdrawn)
        reused, fetched, fetched_bytes = self._swap_in(current, new, final, new_state)
        return MediaSyncResult(
            changed=True,
            labels=tuple(sorted(final)),
            updated=tuple(sorted(new)),
            removed=removed,
            withdrawn=withdrawn,
            fetched=fetched,
            fetched_bytes=fetched_bytes,
            resumed=self.downloads.resumed,
            reused=reused,
        )

    def _labels(
        self, wanted: Sequence[str] | None, held: set[str], remove: frozenset[str]
    ) -> tuple[list[str], tuple[str, ...]]:
        """The labels to sync, and the held ones the master no longer lists (``wanted``
        None: the labels of ``/api/releases``; a withdrawn label is kept and reported)."""
        if wanted is not None:
            return list(dict.fromkeys(wanted)), ()
        api = self.base + "api/releases"
        listed = parse_release_labels(self.fetcher.get_small(api, max_bytes=API_LIMIT).body, api)
        withdrawn = tuple(sorted(held - set(listed) - remove))
        for label in withdrawn:
            self.reporter.warn(
                f"{api} no longer lists {label}; kept, since that list is not signed "
                f"(delete it with --remove {label})"
            )
        return [label for label in listed if label not in remove], withdrawn

    def _fetch_label(
        self, label: str, was: object, held: Path | None, choices: _Choices
    ) -> tuple[object, _NewLabel | None]:
        """The state entry of ``label`` and, unless DEST already holds its signed
        SHA256SUMS (``held``: its folder there), what its new folder is made of."""
        url = self.downloads.url + label + "/"
        sums_url = url + CHECKSUMS
        headers = _conditional_headers(was, url) if held is not None else {}
        got = self.fetcher.get_small(
            sums_url, max_bytes=SUMS_LIMIT, headers=headers, allow=(200, 304) if headers else (200,)
        )
        if got.status == 304:
            return was, None
        sig = self.fetcher.get_small(url + SIGNATURE, max_bytes=SUMS_LIMIT)
        self.verifier.verify(got.body, sig.body, sums_url, name=SIGNATURE)
        entry = {"url": url, "etag": got.etag or "", "last_modified": got.last_modified or ""}
        if held is not None and _same_bytes(held / CHECKSUMS, got.body):
            return entry, None
        sums = parse_sha256sums(got.body, sums_url)
        manifest_url = url + MANIFEST
        manifest = self.fetcher.get_small(manifest_url, max_bytes=MANIFEST_LIMIT).body
        images = label_images(
            label,
            sums,
            parse_media_manifest(manifest, manifest_url),
            manifest_url,
            max_image_bytes=choices.max_image_bytes,
        )
        return entry, _NewLabel(got.body, sig.body, manifest, images)

    def _swap_in(
        self,
        current: Path | None,
        new: dict[str, _NewLabel],
        final: set[str],
        new_state: dict[str, Any],
    ) -> tuple[int, int, int]:
        """Assemble the labels ``final`` in staging (the ``new`` ones from their downloads,
        the others from ``current``) and make it DEST; returns (reused, fetched, bytes)."""
        held_files = files_under(current) if current is not None else set()
        specs = [s for n in new.values() for s in n.images]
        counts = self.downloads.stage_verified(specs, current, held_files)
        staging = self.downloads.staging
        for label, n in new.items():
            write_atomic(staging / label / CHECKSUMS, n.sums)
            write_atomic(staging / label / SIGNATURE, n.signature)
            write_atomic(staging / label / MANIFEST, n.manifest)
        kept = final - set(new)
        carried = [p for p in held_files if p.split("/", 1)[0] in kept]
        if current is not None:
            link_held_files(current, carried, staging)
        _clear_staging(staging, final, _kept_paths(new, carried))
        gen = swap_in_staging(self.workdir, staging, self.dest)
        remove_replaced_generations(self.workdir, gen, self.reporter)
        self.downloads.forget_partial()
        record = {"generation": gen.name, "labels": new_state}
        write_atomic(self.state_file, json.dumps(record).encode())
        return counts


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False
