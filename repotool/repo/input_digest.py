"""What a release is made from, read with the stdlib only: the project's files and their digest.

:func:`read_project` finds repotool.toml (as the config reader does, without
pydantic) and the folders it names; :func:`inputs_digest` hashes everything a
release is made from and what it left in public/ (see :mod:`repotool.repo.inputs`
for what the digest decides).  Imported on the no-op fast path: stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import repotool

CONFIG_NAME = "repotool.toml"
STAMP_NAME = "release-stamp.json"
#: bump when what the digest covers or the stamp holds changes
STAMP_FORMAT = 1

#: the outside tools whose binaries a release runs
TOOLS = (
    *("rpm", "rpmbuild", "rpmspec", "rpmsign", "rpmkeys", "createrepo_c"),
    *("gpg", "gpgv", "gpg-agent", "xorriso", "mksquashfs"),
)
#: Python packages whose code shapes what a release writes
PACKAGES = (
    *("createrepo_c", "gnupg", "cryptography", "rpmfile", "jinja2", "markdown"),
    *("markdown_it", "nh3", "yaml", "pydantic", "pydantic_core"),
)
ENVIRONMENT = ("PATH", "HOME", "GNUPGHOME", "SOURCE_DATE_EPOCH", "TZ", "LANG", "LC_ALL", "TMPDIR")
#: state folders a run fills and empties again, and the media cache (read only
#: when media are built, which a no-op never does)
_STATE_SKIPPED = frozenset({"build-work", "media-work", "media-cache", "gnupg"})
#: GNUPGHOME files gpg rewrites on its own (random seed, locks, sockets)
_GNUPG_SKIPPED = ("random_seed", ".#lk", "S.", "pubring.kbx~", ".gpg-v21-migrated")


@dataclass(frozen=True)
class ProjectFiles:
    """Where a project's release inputs are, read from repotool.toml with tomllib."""

    config_path: Path
    config_bytes: bytes
    root: Path
    state: Path
    public: Path
    #: specs, site content, templates, static: hashed by content
    source_dirs: tuple[Path, ...]
    mirrors_file: Path
    gnupghome: Path
    passphrase_file: Path | None
    version: str
    media_enabled: bool


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ValueError(f"[{name}] is not a table")
    return table


def _text(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def project_files(
    data: Mapping[str, Any], config_path: Path, config_bytes: bytes, *, home: Path
) -> ProjectFiles:
    """Pure: the parsed repotool.toml in, the places the digest reads out (the
    defaults are :mod:`repotool.config.settings`'s).  ValueError for a value the
    full path must judge."""
    root = config_path.resolve().parent

    def at(text: str) -> Path:
        p = Path(text)
        return p if p.is_absolute() else root / p

    build, site, publish = _table(data, "build"), _table(data, "site"), _table(data, "publish")
    key, media, mirror = _table(data, "key"), _table(data, "media"), _table(data, "mirror")
    state = at(_text(data, "state_dir", ".repotool"))
    if _text(key, "mode", "development") == "development":
        gnupghome = state / "gnupg"
    else:
        configured = _text(key, "gnupghome", "")
        gnupghome = at(configured) if configured else home / ".gnupg"
    passphrase = _text(key, "passphrase_file", "")
    enabled = media.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError("[media] enabled is not true or false")
    return ProjectFiles(
        config_path=config_path,
        config_bytes=config_bytes,
        root=root,
        state=state,
        public=at(_text(publish, "public_dir", "public")),
        source_dirs=(
            at(_text(build, "specs_dir", "specs")),
            at(_text(site, "content_dir", "web/content")),
            at(_text(site, "templates_dir", "web/templates")),
            at(_text(site, "static_dir", "web/static")),
        ),
        mirrors_file=at(_text(mirror, "mirrors_file", "mirror/mirrors.toml")),
        gnupghome=gnupghome,
        passphrase_file=at(passphrase) if passphrase else None,
        version=_text(data, "version", "3.3.2"),
        media_enabled=enabled,
    )


def find_config(config_path: Path | None, start: Path) -> Path | None:
    """repotool.toml as the CLI finds it: the given file, else the nearest one at or
    above ``start`` (as :func:`repotool.config.find_project_root` does)."""
    if config_path is not None:
        return config_path
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    return None


def read_project(config_path: Path | None, start: Path) -> ProjectFiles | None:
    """The project's files, or None when the full path must judge the config."""
    path = find_config(config_path, start)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
        return project_files(data, path, raw, home=Path.home())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RuntimeError):
        return None


# --- the digest ---------------------------------------------------------------


def _entries(
    root: Path, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under root (not following links), relative path first, sorted."""
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                found = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in found:
            rel = prefix + entry.name
            if not prefix and entry.name in skip:
                continue
            yield rel, entry
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), rel + "/"))


def _stat_line(rel: str, entry: os.DirEntry[str]) -> bytes:
    st = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        return f"L {rel} -> {os.readlink(entry.path)}\n".encode()
    if stat.S_ISDIR(st.st_mode):
        return f"D {rel}\n".encode()
    # ctime and inode too: a file re-signed in place may keep its size and mtime
    return (
        f"F {rel} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} "
        f"{stat.S_IMODE(st.st_mode):o}\n"
    ).encode()


def _file_stat(path: Path) -> bytes:
    try:
        st = path.stat()
    except OSError:
        return f"{path} absent\n".encode()
    return f"{path} {st.st_size} {st.st_mtime_ns}\n".encode()


def _tree_stats(h: Any, label: str, root: Path, skip: frozenset[str] = frozenset()) -> None:
    h.update(f"== {label} {root}\n".encode())
    for rel, entry in _entries(root, skip):
        h.update(_stat_line(rel, entry))


def _tree_bytes(h: Any, root: Path) -> None:
    h.update(f"== bytes {root}\n".encode())
    for rel, entry in _entries(root):
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as f:
                h.update(f"F {rel} ".encode() + hashlib.sha256(f.read()).digest() + b"\n")
        else:
            h.update(_stat_line(rel, entry))


def _gnupg(h: Any, home: Path) -> None:
    h.update(f"== gnupg {home}\n".encode())
    for rel, entry in _entries(home):
        if entry.name.startswith(_GNUPG_SKIPPED):
            continue
        if stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
            continue
        h.update(_stat_line(rel, entry))


def _runtime(h: Any) -> None:
    """Python, repotool's own code, the tools and packages a release uses."""
    import importlib.util

    h.update(f"== python {sys.executable} {sys.version}\n".encode())
    h.update(f"repotool {repotool.__version__}\n".encode())
    own = Path(repotool.__file__).resolve().parent
    h.update(f"== code {own}\n".encode())
    for rel, entry in _entries(own):
        if entry.name.endswith(".py"):
            h.update(_stat_line(rel, entry))
    for tool in TOOLS:
        found = shutil.which(tool)
        h.update(
            _file_stat(Path(os.path.realpath(found))) if found else f"{tool} absent\n".encode()
        )
    for name in PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        h.update(f"{name}: ".encode() + (_file_stat(Path(origin)) if origin else b"absent\n"))
    for folder in sys.path:  # a package installed or upgraded changes its folder
        if folder.endswith(("site-packages", "dist-packages")):
            h.update(_file_stat(Path(folder)))
    for var in ENVIRONMENT:
        h.update(f"{var}={os.environ.get(var)}\n".encode())


def inputs_digest(files: ProjectFiles) -> str:
    """The digest of everything a release reads and what it left in public/.

    Raises OSError when a file cannot be read (the caller takes the full path)."""
    h = hashlib.sha256(f"repotool release stamp {STAMP_FORMAT}\n".encode())
    h.update(f"== config {files.config_path.resolve()}\n".encode())
    h.update(hashlib.sha256(files.config_bytes).digest())
    for folder in files.source_dirs:
        _tree_bytes(h, folder)
    try:
        h.update(b"== mirrors " + hashlib.sha256(files.mirrors_file.read_bytes()).digest())
    except FileNotFoundError:
        h.update(b"== mirrors absent")
    _tree_stats(h, "state", files.state, _STATE_SKIPPED | {STAMP_NAME})
    _gnupg(h, files.gnupghome)
    if files.passphrase_file is not None:
        h.update(_file_stat(files.passphrase_file))
    _tree_stats(h, "public", files.public)
    _runtime(h)
    return h.hexdigest()
