"""The shell of a push: read ``public/`` into a snapshot, plan, then act on the store.

:func:`snapshot_tree` hashes the tree as readers see it (``repodata`` through its
link, the hidden generation folders skipped); :func:`push_tree` plans with
:func:`repotool.push.plan.plan_push` and runs the plan: the uploads phase by phase
(in parallel inside a phase), each repository's ``repomd.xml`` with its signature
as one step that SIGTERM and Ctrl-C wait for, then the deletes of files past the
keep window, then the manifest (also written before the first change, with the
objects about to change marked pending).  A push stopped anywhere leaves the bucket as
the last finished push left it, plus files no served index names yet (the one
exception: a SIGKILL between a ``repomd.xml`` and its ``.asc``, see docs/push.md);
the next push does the rest.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import signal
import stat
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repotool.digests import file_digest
from repotool.errors import PushError
from repotool.push.plan import (
    MANIFEST_MAX_BYTES,
    MANIFEST_NAME,
    LocalFile,
    Manifest,
    PushPlan,
    Upload,
    parse_manifest,
    plan_push,
    render_manifest,
)
from repotool.push.store import ObjectStore
from repotool.report import Reporter

#: an upload this large is first asked about (HEAD): a killed push's next run
#: then skips what already went up
RESUME_CHECK_BYTES = 1024 * 1024
_TYPES = {
    ".rpm": "application/x-rpm",
    ".asc": "text/plain",
    ".key": "text/plain",
    ".repo": "text/plain",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".iso": "application/x-iso9660-image",
    ".img": "application/octet-stream",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".json": "application/json",
}


@dataclass
class PushResult:
    destination: str
    uploaded: int
    uploaded_bytes: int
    #: uploads found already in the bucket (left by a push that was stopped)
    resumed: int
    unchanged: int
    deleted: int
    kept: int
    requests: int
    seconds: float

    @property
    def changed(self) -> bool:
        return bool(self.uploaded or self.deleted or self.resumed)

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "changed": self.changed,
            "uploaded": self.uploaded,
            "uploaded_bytes": self.uploaded_bytes,
            "resumed": self.resumed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "kept": self.kept,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


def snapshot_tree(public_dir: Path) -> dict[str, LocalFile]:
    """Every file readers can fetch under ``public_dir``: relative path → SHA-256 and size.

    Names starting with a dot are skipped (the ``.repodata-<rev>`` generations and
    temp files); a linked folder (``repodata``) is read through the link, resolved
    once, so a release flipping it meanwhile cannot mix two generations.
    """
    if not public_dir.is_dir():
        raise PushError(
            "there is no published tree to push",
            where=str(public_dir),
            hint="run 'repotool release' first",
        )
    files: dict[str, LocalFile] = {}
    _walk(public_dir.resolve(), "", files, seen=set())
    return files


def _walk(real: Path, rel: str, out: dict[str, LocalFile], seen: set[tuple[int, int]]) -> None:
    st = real.stat()
    if (st.st_dev, st.st_ino) in seen:
        return
    seen = seen | {(st.st_dev, st.st_ino)}
    for entry in sorted(os.scandir(real), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        path = f"{rel}/{entry.name}" if rel else entry.name
        target = Path(os.path.realpath(entry.path))
        try:
            info = target.stat()
        except FileNotFoundError:
            continue  # a dangling link serves nothing
        if stat.S_ISDIR(info.st_mode):
            _walk(target, path, out, seen)
        elif stat.S_ISREG(info.st_mode):
            out[path] = LocalFile(path, file_digest(target), info.st_size)


def read_manifest(store: ObjectStore) -> Manifest | None:
    data = store.get(MANIFEST_NAME, max_bytes=MANIFEST_MAX_BYTES)
    if data is None:
        return None
    where = f"{store.where}/{MANIFEST_NAME}"
    if len(data) > MANIFEST_MAX_BYTES:
        raise PushError(
            f"the push manifest is larger than {MANIFEST_MAX_BYTES} bytes",
            where=where,
            hint="the object is not a repotool push manifest; push to an empty prefix",
        )
    return parse_manifest(data, where)


def content_type(path: str) -> str:
    suffix = Path(path).suffix
    return _TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def cache_control(upload: Upload) -> str | None:
    """Readers must ask again for names whose bytes change (repomd.xml, pages)."""
    return "no-cache" if upload.phase in ("index", "pages") else None


def push_tree(
    public_dir: Path,
    store: ObjectStore,
    *,
    keep_seconds: float,
    reporter: Reporter,
    jobs: int = 4,
    now: float | None = None,
) -> PushResult:
    """Make the store hold ``public_dir`` (see the module docstring for the order)."""
    started = time.monotonic()
    tree = snapshot_tree(public_dir)
    remote = read_manifest(store)
    plan = plan_push(
        tree, remote, now=time.time() if now is None else now, keep_seconds=keep_seconds
    )
    resumed: list[Upload] = []
    if plan.uploads or plan.deletes:
        _put_manifest(store, plan.intent)
    if plan.uploads:
        resumed = _upload(public_dir, store, plan, reporter, jobs)
    if plan.deletes:
        with reporter.step(f"deleting {len(plan.deletes)} file(s) past the keep window", None):
            _parallel(store.delete, plan.deletes, jobs)
    if plan.changed:
        _put_manifest(store, plan.manifest)
    return PushResult(
        destination=store.where,
        uploaded=len(plan.uploads) - len(resumed),
        uploaded_bytes=plan.upload_bytes - sum(u.size for u in resumed),
        resumed=len(resumed),
        unchanged=plan.unchanged,
        deleted=len(plan.deletes),
        kept=len(plan.kept),
        requests=int(getattr(store, "requests", 0)),
        seconds=time.monotonic() - started,
    )


def _put_manifest(store: ObjectStore, manifest: Manifest) -> None:
    data = render_manifest(manifest)
    store.put(
        MANIFEST_NAME,
        data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="application/json",
        cache_control="no-cache",
    )


def _upload(
    public_dir: Path, store: ObjectStore, plan: PushPlan, reporter: Reporter, jobs: int
) -> list[Upload]:
    """Carry out the uploads; returns those found already there (a stopped push's work)."""
    resumed: list[Upload] = []

    def one(upload: Upload) -> Upload | None:
        """Put one file; the upload back when it was already there."""
        if upload.size >= RESUME_CHECK_BYTES:
            held = store.head(upload.path)
            if held is not None and held.sha256 == upload.sha256 and held.size == upload.size:
                return upload
        store.put(
            upload.path,
            public_dir / upload.path,
            sha256=upload.sha256,
            content_type=content_type(upload.path),
            cache_control=cache_control(upload),
        )
        return None

    with reporter.step(
        f"uploading {len(plan.uploads)} file(s), {plan.upload_bytes} bytes", len(plan.uploads)
    ) as step:
        for phase in ("content", "metadata"):
            for there in _parallel(one, plan.phase(phase), jobs):
                resumed += [there] if there else []
                step.advance(note=phase)
        # each repository switches with two PUTs in a row: a TERM or Ctrl-C waits for both
        for group in _groups(plan.phase("index")):
            with _signals_deferred():
                for upload in group:
                    there = one(upload)
                    resumed += [there] if there else []
                    step.advance(note=upload.path)
        for there in _parallel(one, plan.phase("pages"), jobs):
            resumed += [there] if there else []
            step.advance(note="pages")
    return resumed


def _groups(uploads: Sequence[Upload]) -> Iterator[list[Upload]]:
    group: list[Upload] = []
    for u in uploads:
        if group and (u.group != group[0].group or not u.group):
            yield group
            group = []
        group.append(u)
    if group:
        yield group


def _parallel(fn: Any, items: Sequence[Any], jobs: int) -> list[Any]:
    """``fn`` over ``items`` with up to ``jobs`` threads; the first error is raised
    after the running calls end (nothing is left uploading behind the caller)."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(fn, i) for i in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGTERM and SIGINT held back for the block, then delivered (main thread only)."""
    blocked = {signal.SIGTERM, signal.SIGINT}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    except (ValueError, OSError):  # pragma: no cover - not on the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
