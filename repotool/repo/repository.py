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

The work is split in three so that a release can be all-or-nothing across
targets: :func:`plan_repo` (decide the package set; reads only new packages),
:func:`stage_repo` (copy packages, write and sign metadata in a staging folder,
verify), then :func:`prepare_swap` / :func:`flip` / :func:`finish_repo` (driven for
every target together by :mod:`repotool.repo.publish`) or :func:`abort_repo`.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import createrepo_c as cr

from repotool.atomic import write_atomic
from repotool.config import Config, TargetConfig
from repotool.errors import BadSignatureError, LockHeldError, PublishError
from repotool.evr import NEVRA
from repotool.repo.index import Generation, RepoIndex, journal_bytes, journal_path
from repotool.repo.packages import (
    RepoPackage,
    check_compatibility,
    content_digest,
    header_digest,
    read_package,
    restat,
    select_retained,
    stat_of,
)
from repotool.repo.recovery import (
    current_generation,
    point_link,
    reconcile,
    recover,
)
from repotool.repo.tree_checks import check_package_entry
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


# --- one repository -------------------------------------------------------------------


@dataclass
class RepoPlan:
    target: TargetConfig
    arch: str
    repo_dir: Path
    index_path: Path
    index: RepoIndex
    packages: list[RepoPackage]  # the final set, sorted by filename
    incoming: dict[str, Path]  # filename → source path of packages to copy in
    current_revision: str | None
    current_digest: str | None
    keep_generations: float
    refresh_after: float
    #: files in Packages/ were read again (changed on disk or unknown to the index)
    reread: bool = False

    @property
    def nevras(self) -> set[NEVRA]:
        return {p.nevra for p in self.packages}


@dataclass
class StagedRepo:
    plan: RepoPlan
    revision: str
    staging: Path  # the new generation folder, not yet in place
    unchanged: bool
    #: new packages wait in a hidden folder until the swap (never adopted by accident)
    incoming_dir: Path | None = None
    #: new packages already moved into Packages/ by prepare_swap
    landed: list[Path] = field(default_factory=list)
    #: what the repodata link named before flip (to undo a swap)
    previous_link: str | None = None
    swapped: bool = False
    view: Path | None = None  # a folder that looks like the new repository (for dnf)

    @property
    def journal(self) -> Path:
        return journal_path(self.plan.index_path)


def _read_all(paths: Sequence[Path]) -> list[RepoPackage]:
    """Read many packages; a large cold repository is split over forked processes
    (the createrepo_c bindings hold the GIL while they parse a header)."""
    workers = min(os.cpu_count() or 1, len(paths) // 256)
    # fork only a single-threaded process: a lock held by another thread (a
    # progress display, say) at fork time would stay locked in the child
    if workers < 2 or threading.active_count() > 1:
        return [read_package(p) for p in paths]
    chunks = [list(paths[i::workers]) for i in range(workers)]
    ctx = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            parts = list(pool.map(_read_chunk, chunks))
    except BrokenProcessPool as e:
        raise PublishError(
            "a process reading package headers died",
            where=str(paths[0].parent),
            hint="a package file may be damaged; run again to find which",
        ) from e
    out: list[RepoPackage | None] = [None] * len(paths)
    for i, part in enumerate(parts):
        out[i::workers] = part
    return [p for p in out if p is not None]


def _read_chunk(paths: list[Path]) -> list[RepoPackage]:
    return [read_package(p) for p in paths]


def plan_repo(
    cfg: Config,
    target: TargetConfig,
    arch: str,
    incoming: Sequence[Path],
    *,
    verify: Callable[[list[Path], list[str]], None] | None = None,
) -> RepoPlan:
    """Decide the package set; ``verify`` (e.g. Signer.require_signed) gets every file
    that is new or was changed on disk, and must raise to refuse them."""
    repo_dir = cfg.public_dir / "repo" / target.name / arch
    index_path = cfg.state / "repo-index" / f"{target.name}-{arch}.json"
    recover(repo_dir)
    index = RepoIndex.load(index_path)
    # the pickled index of repotool before 2026-11 (its packages are read again once)
    index_path.with_suffix(".pickle").unlink(missing_ok=True)
    reconcile(repo_dir, index, current_generation(repo_dir), time.time())
    journal = journal_path(index_path)
    if journal.exists():  # a killed run's journal is in the index now: make that durable
        index.save(index_path)
        journal.unlink()
    pkg_dir = repo_dir / "Packages"
    on_disk: dict[str, RepoPackage] = {}
    reread: list[Path] = []
    for path in incoming:
        check_package_entry(path, cfg.public_dir)
    if pkg_dir.is_dir():
        for entry in os.scandir(pkg_dir):
            if not entry.name.endswith(".rpm") or entry.name.startswith("."):
                continue
            check_package_entry(Path(entry.path), cfg.public_dir)
            known = index.packages.get(entry.name)
            if known is not None and known.stat == stat_of(entry.stat()):
                on_disk[entry.name] = known
            else:
                reread.append(Path(entry.path))
    for pkg in _read_all(reread):
        on_disk[pkg.filename] = pkg
    incoming_pkgs = _read_all(list(incoming))
    if verify is not None:
        # by their SHA-256, so that files verified before are not checked again
        checked = [*reread, *incoming]
        verify(
            checked, [on_disk[p.name].sha256 for p in reread] + [p.sha256 for p in incoming_pkgs]
        )

    new: dict[str, Path] = {}
    new_pkgs: list[RepoPackage] = []
    for path, pkg in zip(incoming, incoming_pkgs, strict=True):
        if pkg.arch not in (arch, "noarch"):
            continue  # a package of another arch belongs to that arch's repository
        check_compatibility(path, target)
        have = on_disk.get(pkg.filename)
        if have is not None:
            if header_digest(pkg_dir / have.filename, have.header_range) != header_digest(
                path, pkg.header_range
            ):
                raise PublishError(
                    f"{pkg.filename} is already published with different content",
                    where=f"{pkg_dir / pkg.filename} (target {target.name})",
                    hint="a published version is never replaced: bump the Release in the spec",
                )
            continue  # the same build is already there (perhaps signed at another time)
        new[pkg.filename] = path
        new_pkgs.append(pkg)

    final = select_retained([*on_disk.values(), *new_pkgs], cfg.publish.keep_versions)
    current = current_generation(repo_dir)
    index.packages.update(on_disk)
    current_gen = index.generations.get(current or "")
    digest = current_gen.digest if current_gen is not None else None
    kept = {p.filename for p in final}
    incoming_kept = {f: p for f, p in new.items() if f in kept}
    return RepoPlan(
        target,
        arch,
        repo_dir,
        index_path,
        index,
        final,
        incoming_kept,
        current,
        digest,
        float(cfg.publish.keep_generations_seconds),
        float(cfg.publish.refresh_after_seconds),
        bool(reread),
    )


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
    paths = {
        "primary": staging / f"primary.xml{suffix}",
        "filelists": staging / f"filelists.xml{suffix}",
        "other": staging / f"other.xml{suffix}",
    }
    pri = cr.PrimaryXmlFile(str(paths["primary"]), comp)
    fil = cr.FilelistsXmlFile(str(paths["filelists"]), comp)
    oth = cr.OtherXmlFile(str(paths["other"]), comp)
    for f in (pri, fil, oth):
        f.set_num_of_pkgs(len(plan.packages))
    for p in plan.packages:
        pri.add_chunk(p.chunks[0])
        fil.add_chunk(p.chunks[1])
        oth.add_chunk(p.chunks[2])
    for f in (pri, fil, oth):
        f.close()
    if updateinfo is not None:
        raw = staging / "updateinfo.xml"
        raw.write_bytes(updateinfo)
        paths["updateinfo"] = staging / f"updateinfo.xml{suffix}"
        cr.compress_file(str(raw), str(paths["updateinfo"]), comp)
        raw.unlink()
    repomd = cr.Repomd()
    names = []
    for kind, path in paths.items():
        rec = cr.RepomdRecord(kind, str(path))
        rec.fill(cr.SHA256)
        rec.rename_file()
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
) -> StagedRepo:
    """Copy new packages in and write the next generation beside the current one."""
    now = time.time() if now is None else now
    digest = content_digest(plan.packages, updateinfo)
    current = plan.current_revision
    fresh = current is not None and current.isdigit() and now - int(current) < plan.refresh_after
    if fresh and current is not None and digest == plan.current_digest and not plan.incoming:
        current_dir = plan.repo_dir / f".repodata-{current}"
        # a generation whose signature or key went missing is written (and signed) again
        if generation_signed(current_dir, signer):
            return StagedRepo(plan, current, current_dir, True)
    pkg_dir = plan.repo_dir / "Packages"
    pkg_dir.mkdir(parents=True, exist_ok=True)
    known = [*plan.index.generations, *([current] if current else [])]
    staged = StagedRepo(plan, _next_revision(known, now), Path(), False)
    try:
        if plan.incoming:
            staged.incoming_dir = plan.repo_dir / f".incoming-{staged.revision}"
            staged.incoming_dir.mkdir()
            for filename, src in sorted(plan.incoming.items()):
                _copy_in(src, staged.incoming_dir / filename)
        staging = plan.repo_dir / f".repodata-{staged.revision}.tmp"
        staging.mkdir(parents=True)
        staged.staging = staging
        names = _write_metadata(plan, staging, staged.revision, updateinfo)
        repomd = (staging / "repomd.xml").read_bytes()
        sig = signer.detach_sign(repomd)
        signer.verify_detached(repomd, sig)
        (staging / "repomd.xml.asc").write_bytes(sig)
        (staging / "repomd.xml.key").write_text(signer.public_key_armored())
        for f in staging.iterdir():  # durable before any link can name them
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        # files of older generations that are still live stay reachable
        for rev, gen in plan.index.generations.items():
            if gen.live(now, plan.keep_generations):
                old = plan.repo_dir / f".repodata-{rev}"
                for name in gen.files:
                    src, dst = old / name, staging / name
                    if src.exists() and not dst.exists():
                        os.link(src, dst)
        plan.index.generations[staged.revision] = Generation(
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


def staged_view(staged: StagedRepo) -> Path:
    """A folder that looks like the new repository, for clients (dnf) before the swap."""
    if staged.unchanged:
        return staged.plan.repo_dir
    if staged.view is None:
        view = staged.plan.repo_dir / f".view-{staged.revision}"
        (view / "Packages").mkdir(parents=True)
        for p in staged.plan.packages:
            src = (
                staged.incoming_dir / p.filename
                if staged.incoming_dir is not None and p.filename in staged.plan.incoming
                else staged.plan.repo_dir / "Packages" / p.filename
            )
            # symlinks, not hard links: a link would change the file's ctime and
            # make the next run read every package again
            os.symlink(src.resolve(), view / "Packages" / p.filename)
        os.symlink(f"../{staged.staging.name}", view / "repodata")
        staged.view = view
    return staged.view


def abort_repo(staged: StagedRepo) -> None:
    """Undo a staged (not yet swapped) generation: nothing of it stays."""
    if staged.unchanged:
        return
    if staged.view is not None:
        shutil.rmtree(staged.view, ignore_errors=True)
    if staged.staging != Path() and staged.staging.exists():
        shutil.rmtree(staged.staging, ignore_errors=True)
    if staged.incoming_dir is not None:
        shutil.rmtree(staged.incoming_dir, ignore_errors=True)
    for path in staged.landed:
        path.unlink(missing_ok=True)
    staged.plan.index.generations.pop(staged.revision, None)
    staged.journal.unlink(missing_ok=True)


def prepare_swap(staged: StagedRepo) -> None:
    """Everything of a swap that can fail, for one repository, before any link moves:
    the generation gets its final name, the journal is written, packages land."""
    plan = staged.plan
    if staged.unchanged:
        return
    final = plan.repo_dir / f".repodata-{staged.revision}"
    os.replace(staged.staging, final)
    staged.staging = final
    # the index must know the new generation before the swap makes it current:
    # a small journal now, the whole index once after the swap
    write_atomic(
        staged.journal,
        journal_bytes(staged.revision, plan.index.generations[staged.revision]),
    )
    pkg_dir = plan.repo_dir / "Packages"
    if staged.incoming_dir is not None:
        for filename in sorted(plan.incoming):
            dest = pkg_dir / filename
            os.replace(staged.incoming_dir / filename, dest)
            staged.landed.append(dest)
            # the index records the file as it is in the repository
            plan.index.packages[filename] = restat(plan.index.packages[filename], dest)
    _fsync_dir(pkg_dir)
    _fsync_dir(plan.repo_dir)


def flip(staged: StagedRepo) -> None:
    """Make the prepared generation current: one rename of the repodata link."""
    if staged.unchanged:
        return
    link = staged.plan.repo_dir / "repodata"
    staged.previous_link = os.readlink(link) if link.is_symlink() else None
    point_link(link, staged.staging.name)
    staged.swapped = True


def unswap_repo(staged: StagedRepo) -> None:
    """Undo a prepared or flipped swap: the previous generation is back."""
    if staged.swapped:
        link = staged.plan.repo_dir / "repodata"
        if staged.previous_link is not None:
            point_link(link, staged.previous_link)
        else:
            link.unlink(missing_ok=True)
        staged.swapped = False
    abort_repo(staged)


def _fsync_dir(path: Path) -> None:
    """Make renames in ``path`` durable before a link names what they created."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finish_repo(staged: StagedRepo, *, now: float | None = None) -> None:
    """After every swap: retire the previous generation, prune, save the index."""
    plan = staged.plan
    if staged.unchanged:
        if plan.reread:  # remember re-read files so they are not read again
            plan.index.save(plan.index_path)
        return
    now = time.time() if now is None else now
    if staged.view is not None:
        shutil.rmtree(staged.view, ignore_errors=True)
    if staged.incoming_dir is not None:
        shutil.rmtree(staged.incoming_dir, ignore_errors=True)
    if plan.current_revision:
        plan.index.retire(plan.current_revision, now)
    prune(plan, now)
    plan.index.save(plan.index_path)
    staged.journal.unlink(missing_ok=True)


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
