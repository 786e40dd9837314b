"""The generation folders behind a mirrored DEST: lock, staging, atomic swap.

Shared by the repository sync (:mod:`repotool.mirror.sync`) and the media sync
(:mod:`repotool.mirror.media`)::

    DEST -> .DEST.repotool/gen-<n>/     what hosts see (always whole)
    .DEST.repotool/staging/             the next generation being assembled
    .DEST.repotool/lock                 one sync of a DEST at a time

:func:`sync_lock` holds the lock; :func:`published_generation` is the folder
DEST points to (refusing a DEST some other tool made); :func:`link_held_files`
hard-links files of that generation into staging; :func:`swap_in_staging` turns
staging into a new generation and repoints DEST with one rename;
:func:`remove_replaced_generations` then deletes the older folders.
"""

from __future__ import annotations

import fcntl
import json
import os
import posixpath
import shutil
import stat
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repotool.errors import MirrorError
from repotool.report import Reporter


def workdir_for(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.repotool"


@contextmanager
def sync_lock(workdir: Path, dest: Path) -> Iterator[None]:
    """Hold ``workdir/lock`` for the block; another sync of ``dest`` running → MirrorError."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "lock"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if os.path.islink(path):
            raise _planted(path, "a symbolic link") from e
        raise MirrorError(
            f"cannot open the lock file: {e.strerror}",
            where=str(path),
            hint="check the permissions of the folder beside DEST",
        ) from e
    with open(fd, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MirrorError(
                "another sync of this mirror is running",
                where=str(dest),
                hint="wait for it to finish",
            ) from None
        yield


def published_generation(dest: Path, workdir: Path) -> Path | None:
    """The generation folder ``dest`` points to; None before the first sync."""
    if not dest.exists() and not dest.is_symlink():
        return None
    if not dest.is_symlink():
        raise MirrorError(
            "DEST exists and was not made by repotool mirror sync",
            where=str(dest),
            hint="choose a new DEST, or move this folder away (the first sync creates DEST "
            "as a symlink to a verified generation)",
        )
    target = (dest.parent / os.readlink(dest)).resolve()
    if target.parent != workdir.resolve() or not target.is_dir():
        raise MirrorError(
            f"DEST points to {target}, not to a generation under {workdir}",
            where=str(dest),
            hint="move DEST away and sync again",
        )
    return target


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON object in ``state_file``; an empty one if it is missing or unreadable."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _planted(path: Path, kind: str) -> MirrorError:
    return MirrorError(
        f"{kind} in a mirror's working folders, which only repotool writes: refusing to "
        "follow or publish it",
        where=str(path),
        hint="someone or something else wrote there; check it, delete it (or the whole "
        "staging folder), then sync again",
    )


def real_folder(path: Path) -> Path:
    """``path`` as a folder of its own (made if missing), never a symbolic link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise _planted(path, "a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise _planted(path, "a file where a folder belongs")
    return path


def files_under(root: Path) -> set[str]:
    """Relative paths of the files under ``root`` (see :func:`tree_under`)."""
    return tree_under(root)[0]


def tree_under(root: Path) -> tuple[set[str], set[str]]:
    """Relative paths of the files and of the folders under ``root``: one directory
    walk, no stat per file.

    Only regular files and folders are expected (repotool writes nothing else): a
    symbolic link or a special file is refused with :class:`MirrorError`, since
    verifying, hard-linking or publishing it would follow it out of the tree.
    """
    found: set[str] = set()
    folders: set[str] = set()
    todo = [""]
    while todo:
        rel = todo.pop()
        with os.scandir(root / rel) as entries:
            for entry in entries:
                path = rel + entry.name
                if entry.is_symlink():
                    raise _planted(root / path, "a symbolic link")
                if entry.is_dir(follow_symlinks=False):
                    folders.add(path)
                    todo.append(path + "/")
                elif entry.is_file(follow_symlinks=False):
                    found.add(path)
                else:
                    raise _planted(root / path, "a special file (not a regular file)")
    return found, folders


def link_held_files(current: Path, paths: Collection[str], staging: Path) -> None:
    """Hard-link ``paths`` of the held generation into staging (they were verified
    when they arrived, and the held tree is only ever written by a sync)."""
    for folder in sorted({posixpath.dirname(p) for p in paths} - {""}):
        (staging / folder).mkdir(parents=True, exist_ok=True)
    for path in paths:
        staged = staging / path
        staged.unlink(missing_ok=True)
        os.link(current / path, staged, follow_symlinks=False)


def swap_in_staging(workdir: Path, staging: Path, dest: Path) -> Path:
    """Rename staging to a new ``gen-<n>`` folder and point ``dest`` at it in one
    rename (fsync'd); returns the new generation."""
    gen = workdir / f"gen-{time.time_ns()}"
    os.rename(staging, gen)
    link = dest.parent / f".{dest.name}.swap"
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(gen, dest.parent), link)
    os.replace(link, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return gen


def remove_replaced_generations(workdir: Path, gen: Path, reporter: Reporter) -> None:
    """Delete every generation folder but ``gen``; a failure only warns, since the
    new tree is already in place (the next sync tries again)."""
    for old in workdir.glob("gen-*"):
        if old.name == gen.name:
            continue
        shutil.rmtree(old, ignore_errors=True)
        if old.exists():
            reporter.warn(
                f"could not delete the replaced generation {old}; the next sync tries again"
            )
