"""What a killed or failed publish leaves behind, and how the next run mends it.

- ``recover``: staging folders, half-copied files and views go.
- ``roll_forward``: a run killed among the link flips had prepared every
  target (the intent file is written only then): the remaining flips are made.
- ``reconcile``: the index is made to agree with the generation folders on
  disk; a generation newer than the current one was never swapped in and goes
  with the packages only its run brought; folders the index does not know (a
  lost or damaged index) are adopted, so nothing a host may still need is
  deleted early.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import createrepo_c as cr

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import PublishError
from repotool.repo.generations import Generation
from repotool.repo.index import RepoIndex


def current_generation(repo_dir: Path) -> str | None:
    link = repo_dir / "repodata"
    if link.is_symlink():
        return os.readlink(link).removeprefix(".repodata-")
    return None


def point_link(link: Path, target: str) -> None:
    tmp = link.with_name(f".repodata-link-{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def recover(repo_dir: Path) -> None:
    """Remove what a killed run left: staging folders and half-copied files."""
    if not repo_dir.is_dir():
        return
    for p in repo_dir.glob(".repodata-*.tmp"):
        shutil.rmtree(p, ignore_errors=True)
    for p in repo_dir.glob(".view-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in repo_dir.glob(".incoming-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in repo_dir.glob(".repodata-link-*.tmp"):
        p.unlink(missing_ok=True)
    pkgs = repo_dir / "Packages"
    if pkgs.is_dir():  # 10,000 names: plain string tests, not a glob's pattern per name
        with os.scandir(pkgs) as entries:
            tmp = [e.path for e in entries if e.name.startswith(".") and e.name.endswith(".tmp")]
        for path in tmp:
            Path(path).unlink(missing_ok=True)
    if (repo_dir / "repodata").exists() and not (repo_dir / "repodata").is_symlink():
        raise PublishError(
            "repodata/ is a plain folder, not a generation managed by repotool",
            where=str(repo_dir / "repodata"),
            hint="move it away (e.g. to repodata.old) and publish again",
        )


def intent_path(cfg: Config) -> Path:
    """Written once every target is prepared, just before the links flip."""
    return cfg.state / "publish-intent.json"


def write_intent(cfg: Config, flips: Mapping[str, str]) -> None:
    """``flips``: repository folder → the generation its repodata link is to name."""
    write_atomic(intent_path(cfg), json.dumps(dict(flips)).encode())


def roll_forward(cfg: Config) -> list[str]:
    """Finish the link flips of a run killed among them: every target was prepared
    (the intent is written only then), so the release completes rather than half-stays."""
    path = intent_path(cfg)
    try:
        flips = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    done = []
    if isinstance(flips, dict):
        for repo_dir, generation in flips.items():
            link = Path(repo_dir) / "repodata"
            target = Path(repo_dir) / str(generation)
            if target.is_dir() and (not link.is_symlink() or os.readlink(link) != generation):
                point_link(link, str(generation))
                done.append(repo_dir)
    path.unlink(missing_ok=True)
    return done


def reconcile(repo_dir: Path, index: RepoIndex, current: str | None, now: float) -> None:
    """Make the index agree with the generations on disk.

    After a kill: a generation newer than the current one was never swapped in;
    it goes, with the packages only it named.  After a lost index: each
    generation folder on disk is adopted (its files listed, its packages read
    from its primary.xml), the older ones as retired now, so they stay for
    ``keep_generations_seconds`` like any other; nothing a host may hold an
    older repomd.xml for is deleted early.
    """
    cur = int(current) if current and current.isdigit() else None
    on_disk = {
        d.name.removeprefix(".repodata-")
        for d in repo_dir.glob(".repodata-*")
        if d.is_dir() and not d.name.endswith(".tmp")
    }
    orphans: set[str] = set()
    for rev in sorted(set(index.generations) | on_disk):
        if rev == current:
            if rev not in index.generations:
                index.generations[rev] = _adopt(repo_dir, rev, retired=None)
            continue
        never_current = cur is None or not rev.isdigit() or int(rev) > cur
        if never_current:
            gen = index.generations.pop(rev, None)
            shutil.rmtree(repo_dir / f".repodata-{rev}", ignore_errors=True)
            if gen is not None:
                orphans.update(gen.incoming)
        elif rev not in index.generations:
            index.generations[rev] = _adopt(repo_dir, rev, retired=now)
        else:
            index.retire(rev, now)
    named: set[str] = set()
    for gen in index.generations.values():
        named.update(gen.packages)
    for name in orphans - named:
        (repo_dir / "Packages" / name).unlink(missing_ok=True)
        index.packages.pop(name, None)


def _adopt(repo_dir: Path, rev: str, *, retired: float | None) -> Generation:
    """Index entry of a generation folder found on disk (read from its own repomd.xml)."""
    folder = repo_dir / f".repodata-{rev}"
    files = sorted(n for n in os.listdir(folder) if not n.startswith("repomd.xml"))
    packages: list[str] = []
    try:
        repomd = cr.Repomd(str(folder / "repomd.xml"))
        primary = next(r for r in repomd.records if r.type == "primary")
        cr.xml_parse_primary(
            str(folder / os.path.basename(primary.location_href)),
            pkgcb=lambda pkg: packages.append(os.path.basename(pkg.location_href)),
            do_files=False,
        )
    except (OSError, StopIteration, cr.CreaterepoCError) as e:
        raise PublishError(
            f"cannot read the metadata generation {rev}: {e}",
            where=str(folder),
            hint="remove the damaged generation folder (not the current one) and publish again",
        ) from e
    return Generation(tuple(packages), files=tuple(files), retired=retired)
