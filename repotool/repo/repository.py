"""The signed yum repository: createrepo_c metadata in atomic generations.

Layout of one repository (``public/repo/<target>/<arch>/``)::

    Packages/*.rpm              signed packages (earlier versions kept)
    .repodata-<revision>/       one metadata generation: repomd.xml(.asc,.key),
                                <sha256>-primary.xml.gz, ... and hard links to
                                the files of still-live older generations
    repodata -> .repodata-<revision>   swapped with one rename()

A client that fetched an older repomd.xml still finds every file it names,
because the current generation carries the older generations' files for
``keep_generations_seconds``.  Packages land before the metadata that names
them and leave only when no live generation names them.

After :func:`repotool.repo.planning.plan_repo` decided the package set, each
state of a repository is its own type, and each step returns the next one::

    stage_repo   → UnchangedRepo | StagedRepo   (written and signed in .tmp)
    prepare_swap → PreparedRepo                 (final name, journal, packages landed)
    flip         → FlippedRepo                  (the repodata link names it)
    finish_repo                                 (retire, prune, save the index)

and each has its undo (:func:`abort_repo`, :func:`undo_prepared`,
:func:`unflip`).  :mod:`repotool.repo.publish` drives every target together,
so that a release is all-or-nothing across targets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import createrepo_c as cr

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import BadSignatureError, LockHeldError
from repotool.repo.generations import Generation
from repotool.repo.index import journal_bytes, journal_path
from repotool.repo.metadata import blocks_path, write_metadata
from repotool.repo.packages import content_digest, restat
from repotool.repo.planning import RepoPlan
from repotool.repo.recovery import current_generation, point_link
from repotool.signing.signer import Signer

_COMPRESSION = {"gz": cr.GZ_COMPRESSION, "xz": cr.XZ_COMPRESSION, "zstd": cr.ZSTD_COMPRESSION}


@contextlib.contextmanager
def publish_lock(cfg: Config) -> Iterator[None]:
    """One publish at a time.  flock dies with its process: no stale lock survives a kill."""
    path = cfg.state / "publish.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise LockHeldError(
                f"another publish is running (pid {holder}): release, publish, build and "
                "sign take turns on the state folder",
                where=str(path),
                hint="wait for it to finish; the lock goes away by itself when it ends",
            ) from e
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


# --- the states of one repository ----------------------------------------------------


@dataclass(frozen=True)
class UnchangedRepo:
    """The current generation stays as it is: nothing to swap."""

    plan: RepoPlan
    revision: str
    unchanged = True


@dataclass(frozen=True)
class StagedRepo:
    """A new generation, written, signed and verified in ``staging``
    (``.repodata-<revision>.tmp``); new packages wait in ``incoming_dir``
    (hidden, so never adopted by accident)."""

    plan: RepoPlan
    revision: str
    staging: Path
    incoming_dir: Path | None
    unchanged = False

    @property
    def view_dir(self) -> Path:
        return self.plan.repo_dir / f".view-{self.revision}"


@dataclass(frozen=True)
class PreparedRepo:
    """Everything of the swap that can fail is done: the generation has its final
    name, the journal is written, the new packages are in Packages/."""

    staged: StagedRepo
    generation: Path
    landed: tuple[Path, ...]
    unchanged = False

    @property
    def plan(self) -> RepoPlan:
        return self.staged.plan


@dataclass(frozen=True)
class FlippedRepo:
    """The repodata link names the new generation; ``previous`` is what it named."""

    prepared: PreparedRepo
    previous: str | None
    unchanged = False

    @property
    def plan(self) -> RepoPlan:
        return self.prepared.plan


Staged = UnchangedRepo | StagedRepo
Prepared = UnchangedRepo | PreparedRepo
Flipped = UnchangedRepo | FlippedRepo


def _next_revision(known: Sequence[str], now: float) -> str:
    """Revisions only grow: mirrors refuse an older one as a rollback."""
    rev = int(now)
    for k in known:
        if k.isdigit():
            rev = max(rev, int(k) + 1)
    return str(rev)


def _copy_in(src: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_metadata(
    plan: RepoPlan, staging: Path, revision: str, updateinfo: bytes | None
) -> list[str]:
    """primary/filelists/other (+updateinfo) and repomd.xml into staging; returns file names."""
    comp = _COMPRESSION[plan.target.metadata_compression]
    suffix = cr.compression_suffix(comp)
    records = write_metadata(
        plan.packages,
        staging,
        plan.target.metadata_compression,
        blocks_path(plan.index_path),
        plan.repo_dir,
    )
    if updateinfo is not None:
        raw = staging / "updateinfo.xml"
        raw.write_bytes(updateinfo)
        path = staging / f"updateinfo.xml{suffix}"
        cr.compress_file(str(raw), str(path), comp)
        raw.unlink()
        rec = cr.RepomdRecord("updateinfo", str(path))
        rec.fill(cr.SHA256)
        rec.rename_file()
        records.append(rec)
    repomd = cr.Repomd()
    names = []
    for rec in records:
        repomd.set_record(rec)
        names.append(Path(rec.location_href).name)
    repomd.set_revision(revision)
    (staging / "repomd.xml").write_text(repomd.xml_dump(), encoding="utf-8")
    return names


def generation_signed(gen_dir: Path, signer: Signer) -> bool:
    """repomd.xml, repomd.xml.asc and repomd.xml.key are there and the signature holds
    (hosts cannot check a repository that lacks them)."""
    try:
        repomd = (gen_dir / "repomd.xml").read_bytes()
        sig = (gen_dir / "repomd.xml.asc").read_bytes()
        if not (gen_dir / "repomd.xml.key").is_file():
            return False
        signer.verify_detached(repomd, sig)
    except (OSError, BadSignatureError):
        return False
    return True


def stage_repo(
    plan: RepoPlan, signer: Signer, updateinfo: bytes | None, *, now: float | None = None
) -> Staged:
    """Copy new packages in and write the next generation beside the current one
    (unless the current one already holds this content, signed and fresh)."""
    now = time.time() if now is None else now
    digest = content_digest(plan.packages, updateinfo)
    current = plan.current_revision
    if current is not None and _current_holds(plan, current, digest, now, signer):
        return UnchangedRepo(plan, current)
    (plan.repo_dir / "Packages").mkdir(parents=True, exist_ok=True)
    known = [*plan.index.generations, *([current] if current else [])]
    revision = _next_revision(known, now)
    incoming_dir = plan.repo_dir / f".incoming-{revision}" if plan.incoming else None
    staging = plan.repo_dir / f".repodata-{revision}.tmp"
    staged = StagedRepo(plan, revision, staging, incoming_dir)
    try:
        if incoming_dir is not None:
            incoming_dir.mkdir()
            for filename, src in sorted(plan.incoming.items()):
                _copy_in(src, incoming_dir / filename)
        staging.mkdir(parents=True)
        names = _write_metadata(plan, staging, revision, updateinfo)
        _sign_generation(staging, signer)
        _link_live_files(plan, staging, now)
        plan.index.generations[revision] = Generation(
            packages=tuple(p.filename for p in plan.packages),
            # the files this run brings; if it never becomes current, only these go
            incoming=tuple(sorted(plan.incoming)),
            files=tuple(names),
            digest=digest,
        )
        for p in plan.packages:  # the new ones; prepare_swap records their final stat
            plan.index.packages.setdefault(p.filename, p)
    except BaseException:
        abort_repo(staged)
        raise
    return staged


def _current_holds(plan: RepoPlan, current: str, digest: str, now: float, signer: Signer) -> bool:
    """The current generation is fresh, holds this content and is signed."""
    fresh = current.isdigit() and now - int(current) < plan.refresh_after
    if not fresh or digest != plan.current_digest or plan.incoming:
        return False
    # a generation whose signature or key went missing is written (and signed) again
    return generation_signed(plan.repo_dir / f".repodata-{current}", signer)


def _sign_generation(staging: Path, signer: Signer) -> None:
    repomd = (staging / "repomd.xml").read_bytes()
    sig = signer.detach_sign(repomd)
    signer.verify_detached(repomd, sig)
    (staging / "repomd.xml.asc").write_bytes(sig)
    (staging / "repomd.xml.key").write_text(signer.public_key_armored())
    for f in staging.iterdir():  # durable before any link can name them
        with f.open("rb") as fh:
            os.fsync(fh.fileno())


def _link_live_files(plan: RepoPlan, staging: Path, now: float) -> None:
    """Files of older generations that are still live stay reachable."""
    for rev, gen in plan.index.generations.items():
        if gen.live(now, plan.keep_generations):
            old = plan.repo_dir / f".repodata-{rev}"
            for name in gen.files:
                src, dst = old / name, staging / name
                if src.exists() and not dst.exists():
                    os.link(src, dst)


def staged_view(staged: Staged) -> Path:
    """A folder that looks like the new repository, for clients (dnf) before the swap."""
    if isinstance(staged, UnchangedRepo):
        return staged.plan.repo_dir
    view = staged.view_dir
    if view.exists():
        return view
    plan = staged.plan
    (view / "Packages").mkdir(parents=True)
    for p in plan.packages:
        src = (
            staged.incoming_dir / p.filename
            if staged.incoming_dir is not None and p.filename in plan.incoming
            else plan.repo_dir / "Packages" / p.filename
        )
        # symlinks, not hard links: a link would change the file's ctime and
        # make the next run read every package again
        os.symlink(src.resolve(), view / "Packages" / p.filename)
    os.symlink(f"../{staged.staging.name}", view / "repodata")
    return view


def abort_repo(staged: Staged) -> None:
    """Undo a staged (not yet swapped) generation: nothing of it stays."""
    if isinstance(staged, UnchangedRepo):
        return
    shutil.rmtree(staged.view_dir, ignore_errors=True)
    shutil.rmtree(staged.staging, ignore_errors=True)
    if staged.incoming_dir is not None:
        shutil.rmtree(staged.incoming_dir, ignore_errors=True)
    staged.plan.index.generations.pop(staged.revision, None)
    journal_path(staged.plan.index_path).unlink(missing_ok=True)


def prepare_swap(staged: Staged) -> Prepared:
    """Everything of a swap that can fail, for one repository, before any link moves:
    the generation gets its final name, the journal is written, packages land.
    If any of it fails, what was done of it is undone."""
    if isinstance(staged, UnchangedRepo):
        return staged
    plan = staged.plan
    final = plan.repo_dir / f".repodata-{staged.revision}"
    landed: list[Path] = []
    try:
        os.replace(staged.staging, final)
        # the index must know the new generation before the swap makes it current:
        # a small journal now, the whole index once after the swap
        write_atomic(
            journal_path(plan.index_path),
            journal_bytes(staged.revision, plan.index.generations[staged.revision]),
        )
        pkg_dir = plan.repo_dir / "Packages"
        if staged.incoming_dir is not None:
            for filename in sorted(plan.incoming):
                dest = pkg_dir / filename
                os.replace(staged.incoming_dir / filename, dest)
                landed.append(dest)
                # the index records the file as it is in the repository
                plan.index.packages[filename] = restat(plan.index.packages[filename], dest)
        _fsync_dir(pkg_dir)
        _fsync_dir(plan.repo_dir)
    except BaseException:
        undo_prepared(PreparedRepo(staged, final, tuple(landed)))
        raise
    return PreparedRepo(staged, final, tuple(landed))


def undo_prepared(prepared: Prepared) -> None:
    """The prepared generation and the packages it landed go; the staged rest too."""
    if isinstance(prepared, UnchangedRepo):
        return
    for path in prepared.landed:
        path.unlink(missing_ok=True)
    shutil.rmtree(prepared.generation, ignore_errors=True)
    abort_repo(prepared.staged)


def flip(prepared: Prepared) -> Flipped:
    """Make the prepared generation current: one rename of the repodata link."""
    if isinstance(prepared, UnchangedRepo):
        return prepared
    link = prepared.plan.repo_dir / "repodata"
    previous = os.readlink(link) if link.is_symlink() else None
    point_link(link, prepared.generation.name)
    return FlippedRepo(prepared, previous)


def unflip(flipped: Flipped) -> None:
    """Undo a flip: the previous generation is current again, the new one goes."""
    if isinstance(flipped, UnchangedRepo):
        return
    link = flipped.plan.repo_dir / "repodata"
    if flipped.previous is not None:
        point_link(link, flipped.previous)
    else:
        link.unlink(missing_ok=True)
    undo_prepared(flipped.prepared)


def _fsync_dir(path: Path) -> None:
    """Make renames in ``path`` durable before a link names what they created."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finish_repo(flipped: Flipped, *, now: float | None = None) -> None:
    """After every swap: retire the previous generation, prune, save the index."""
    plan = flipped.plan
    if isinstance(flipped, UnchangedRepo):
        if plan.reread:  # remember re-read files so they are not read again
            plan.index.save(plan.index_path)
        return
    now = time.time() if now is None else now
    staged = flipped.prepared.staged
    shutil.rmtree(staged.view_dir, ignore_errors=True)
    if staged.incoming_dir is not None:
        shutil.rmtree(staged.incoming_dir, ignore_errors=True)
    if plan.current_revision:
        plan.index.retire(plan.current_revision, now)
    prune(plan, now)
    plan.index.save(plan.index_path)
    journal_path(plan.index_path).unlink(missing_ok=True)


def prune(plan: RepoPlan, now: float) -> None:
    """Delete expired generations and packages that no live generation names."""
    keep = plan.keep_generations
    live_pkgs: set[str] = set()
    current = current_generation(plan.repo_dir)
    for rev, gen in list(plan.index.generations.items()):
        if rev == current or gen.live(now, keep):
            live_pkgs.update(gen.packages)
        else:
            folder = plan.repo_dir / f".repodata-{rev}"
            shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():  # could not be removed now (busy?): try again next time
                live_pkgs.update(gen.packages)
            else:
                del plan.index.generations[rev]
    pkg_dir = plan.repo_dir / "Packages"
    for name in list(plan.index.packages):
        if name not in live_pkgs:
            (pkg_dir / name).unlink(missing_ok=True)
            del plan.index.packages[name]
