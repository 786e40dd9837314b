"""Checks made before a publish writes anything: names from input, and the tree's links.

Names that come from input (package file names, target and arch names, media
labels) become file and folder names under ``public/`` and appear in messages:
a control character, a ``/`` or a leading ``.`` is refused
(:func:`unsafe_name_reason` is pure).  A symlink that leads a path the publish
writes to outside ``public/`` is refused too: ``repotool serve`` would refuse
to serve it, so the release would fail at the site export after the
repositories went live (:func:`check_inside_public` reads the disk).
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from repotool.config import Config
from repotool.errors import UnsafePathError


def unsafe_name_reason(name: str) -> str | None:
    """Pure: why ``name`` cannot be a published file or folder name, or None."""
    if not name:
        return "it is empty"
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if bad:
        return f"it holds the control character {bad[0]!r}"
    if "/" in name or "\\" in name:
        return "it holds a '/' or '\\'"
    if name.startswith(".") or name.startswith("-"):
        return "it starts with '.' or '-'"
    return None


def check_name(kind: str, name: str, *, where: str, hint: str) -> None:
    """Refuse ``name`` (a ``kind``: "package file name", "target name", ...)."""
    reason = unsafe_name_reason(name)
    if reason is not None:
        raise UnsafePathError(
            f"the {kind} {name!r} cannot be published: {reason}", where=where, hint=hint
        )


def check_config_names(cfg: Config) -> None:
    """Target and arch names become folders under public/repo/."""
    for target in cfg.targets:
        check_name(
            "target name",
            target.name,
            where=f"{cfg.root / 'repotool.toml'} [[targets]]",
            hint="name targets like el7 (letters, digits, '.', '_', '-')",
        )
        for arch in target.arches:
            check_name(
                "arch",
                arch,
                where=f"{cfg.root / 'repotool.toml'} [[targets]] {target.name!r} arches",
                hint="name arches as rpm does, e.g. x86_64",
            )


def publish_paths(cfg: Config, labels: Iterable[str] = ()) -> list[Path]:
    """Every path under public/ the publish writes into (folders and links)."""
    public = cfg.public_dir
    paths = [public / "repo", public / "keys", public / "mirrors", public / "releases"]
    for target in cfg.targets:
        paths.append(public / "repo" / target.name)
        for arch in target.arches:
            repo = public / "repo" / target.name / arch
            paths += [repo, repo / "Packages", repo / "repodata"]
    paths += [public / "releases" / label for label in labels]
    return paths


def check_inside_public(cfg: Config, labels: Iterable[str] = ()) -> None:
    """Refuse a symlink that leads a path the publish writes to outside public/."""
    public = Path(os.path.realpath(cfg.public_dir))
    for path in publish_paths(cfg, labels):
        if not os.path.lexists(path):
            continue
        real = Path(os.path.realpath(path))
        if real != public and public not in real.parents:
            raise UnsafePathError(
                f"a symlink leads this path outside the publish folder, to {real}",
                where=str(path),
                hint=f"replace the link by a folder inside {cfg.public_dir} (mount the "
                "volume there instead); 'repotool serve' does not serve files outside it",
            )


def check_package_entry(path: Path, public: Path) -> None:
    """A file found in (or brought into) Packages/: a plain name, and no link out of public/."""
    check_name(
        "package file name",
        path.name,
        where=repr(str(path))[1:-1],  # shown escaped, as the message shows the name
        hint="rename the file (rpm names are name-version-release.arch.rpm)",
    )
    if path.is_symlink():
        real = Path(os.path.realpath(path))
        root = Path(os.path.realpath(public))
        if root not in real.parents:
            raise UnsafePathError(
                f"the package is a symlink to {real}, outside the publish folder",
                where=str(path),
                hint="copy the file in instead of linking it",
            )
