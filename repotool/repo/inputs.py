"""Is this ``repotool release`` a no-op?  Decided from a digest, before any heavy import.

A successful ``repotool release`` ends by recording a stamp in the state folder
(:func:`record_release`): a digest of everything a release is made from and of
what it left in public/, until when the stamp holds, and what a release that
finds nothing to do prints.  The next ``repotool release``
(:func:`unchanged_release`) reads repotool.toml with tomllib, digests the same
things with hashlib and os.scandir only, and when the digest is the stamp's it
prints that no-op result without importing pydantic, createrepo_c, gnupg or the
site.  Any doubt (no stamp, a flag, a file that cannot be read, an expired
stamp) and the full release runs, which decides for itself.

What the digest covers (:func:`inputs_digest`):

- repotool.toml's path and bytes, the mirrors file and every file under the
  specs folder and the site's content, templates and static folders (bytes);
- the state folder (names, sizes, mtimes; the build and media work folders
  left out) and the signing key's GNUPGHOME keyrings and passphrase file;
- public/: every file and link (name, size, mtime, link target), so a deleted
  signature or a changed page is no no-op;
- repotool's own source files, the Python running it, the outside tools and
  the Python packages a release uses (path, size, mtime); a few environment
  variables.

The stamp expires when the oldest repository metadata comes due for signing
again (``[publish] refresh_after_seconds``) or when the signing key expires.
Stdlib only: this module is imported on the fast path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import repotool

if TYPE_CHECKING:
    from repotool.config import Config
    from repotool.report import Reporter

CONFIG_NAME = "repotool.toml"
STAMP_NAME = "release-stamp.json"
#: bump when what the digest covers or the stamp holds changes
STAMP_FORMAT = 1
#: a stamp this close to its expiry is not trusted (the full path decides)
EXPIRY_MARGIN_SECONDS = 300.0

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
#: flags of ``repotool release`` that do not change what it does
_PLAIN_FLAGS = frozenset({"command", "config", "json", "quiet", "handler", "no_media"})
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


# --- the fast path ------------------------------------------------------------


def stamp_path(files: ProjectFiles) -> Path:
    return files.state / STAMP_NAME


def unchanged_release(
    config_path: Path | None,
    flags: Mapping[str, object],
    reporter: Reporter,
    *,
    start: Path | None = None,
) -> dict[str, Any] | None:
    """What ``repotool release`` prints when nothing changed since the stamp, or None
    (then the full release runs).  ``flags``: the parsed command line's values."""
    started = time.monotonic()
    if any(v not in (None, False) for k, v in flags.items() if k not in _PLAIN_FLAGS):
        return None  # --respin, --force, ...: the full path does what they ask
    files = read_project(config_path, start or Path.cwd())
    if files is None:
        return None
    try:
        stamp = json.loads(stamp_path(files).read_bytes())
        digest = inputs_digest(files)
    except (OSError, ValueError):
        return None
    if not _stamp_holds(stamp, digest, time.time()):
        return None
    body, media = stamp["noop"], stamp["media"]
    if flags.get("no_media") or not files.media_enabled:
        media = None  # the full path does not mention media then
    elif media is None:
        return None  # media of this version are not published yet: they are built now
    try:
        out: dict[str, Any] = {
            k: body[k] for k in ("summary", "built", "cached", "signed", "published", "unchanged")
        }
    except KeyError:
        return None
    if media is not None:
        out["media"] = media
    out["site"] = body.get("site")
    for warning in stamp["warnings"]:
        reporter.warn(warning)
    reporter.info("nothing changed since the last release: no stage had anything to do")
    out["seconds"] = round(time.monotonic() - started, 3)
    return out


def _stamp_holds(stamp: object, digest: str, now: float) -> bool:
    """Pure: the stamp is well formed, of this digest, and not (nearly) expired."""
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT:
        return False
    written, until = stamp.get("written"), stamp.get("valid_until")
    if not isinstance(written, int | float) or not isinstance(until, int | float):
        return False
    if not written <= now < until - EXPIRY_MARGIN_SECONDS:
        return False
    body = stamp.get("noop")
    return (
        stamp.get("digest") == digest
        and isinstance(body, dict)
        and isinstance(stamp.get("warnings"), list)
        and all(isinstance(w, str) for w in stamp["warnings"])
        and "media" in stamp
    )


# --- recording the stamp ------------------------------------------------------


def noop_result(
    cfg: Config, result: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str] | None] | None:
    """Pure: what a release right after this one prints (the fields of
    :meth:`repotool.release.ReleaseResult.to_json`), and its media entry; None
    when that cannot be told from this run's result."""
    built, cached = result.get("built"), result.get("cached")
    site = result.get("site")
    if not isinstance(built, list) or not isinstance(cached, list) or not isinstance(site, dict):
        return None
    if built and cached:
        return None  # the build's order of the two lists together is not known here
    unchanged = [f"{t.name}/{a}" for t in cfg.targets for a in t.arches]
    body = {
        "summary": f"Nothing changed: {len(unchanged)} repositories already current.",
        "built": [],
        "cached": [*built, *cached],
        "signed": 0,
        "published": [],
        "unchanged": unchanged,
        "site": {
            "public_dir": site.get("public_dir"),
            "skipped": True,
            "files": site.get("files"),
            "written": [],
            "removed": [],
            "notes": [],
        },
    }
    published = (cfg.public_dir / "releases" / cfg.version / "media.json").is_file()
    media = {"version": cfg.version, "skipped": "already published"} if published else None
    return body, media


def _repodata_revisions(public: Path) -> list[int] | None:
    """The revision (a Unix time) of every published repository's current metadata."""
    revisions = []
    for link in sorted(public.glob("repo/*/*/repodata")):
        name = os.readlink(link) if link.is_symlink() else ""
        rev = name.removeprefix(".repodata-")
        if not rev.isdigit():
            return None
        revisions.append(int(rev))
    return revisions


def _key_expiry(home: Path, fingerprint: str) -> float | None:
    """The earliest expiry of the key and its subkeys (inf: never), None when gpg
    cannot say."""
    try:
        done = subprocess.run(
            [
                *("gpg", "--batch", "--homedir", str(home), "--with-colons"),
                *("--fixed-list-mode", "--list-keys", fingerprint),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    expiries = [
        float(fields[6])
        for fields in (line.split(":") for line in done.stdout.splitlines())
        if fields[0] in ("pub", "sub") and len(fields) > 6 and fields[6].isdigit()
    ]
    return min(expiries, default=float("inf"))


def record_release(
    config_path: Path | None, cfg: Config, result: Mapping[str, Any], *, start: Path | None = None
) -> bool:
    """After a successful ``repotool release``: write the stamp the next one checks.
    False (and no stamp left) when this run leaves nothing to trust or the stamp
    cannot be written: the release itself succeeded either way."""
    files = read_project(config_path, start or Path.cwd())
    if files is None:
        return False
    path = stamp_path(files)
    try:
        path.unlink(missing_ok=True)
        stamp = _stamp(files, cfg, result)
        if stamp is None:
            return False
        from repotool.atomic import write_atomic

        # under the state folder's lock: no other release changes what is digested
        with _lock(files.state / "publish.lock") as held:
            if not held:
                return False
            stamp["digest"] = inputs_digest(files)
            write_atomic(path, json.dumps(stamp, indent=1).encode())
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return False
    return True


def _stamp(files: ProjectFiles, cfg: Config, result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stamp's fields but the digest, or None when no stamp is to be trusted."""
    planned = noop_result(cfg, result)
    revisions = _repodata_revisions(cfg.public_dir)
    if planned is None or not revisions or cfg.key.allow_weak_key:
        return None  # the weak-key warning's text is the full path's to print
    from repotool.signing.release_key import DEV_KEY_BANNER

    if cfg.key.mode == "development":
        marker = files.gnupghome / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
        words = marker.read_text(errors="replace").split()
        fingerprint = words[0] if words else ""
        warnings = [DEV_KEY_BANNER.format(fpr=fingerprint, home=cfg.state / "gnupg")]
    else:
        fingerprint, warnings = cfg.key.fingerprint.replace(" ", ""), []
    expiry = _key_expiry(files.gnupghome, fingerprint) if fingerprint else None
    if expiry is None:
        return None
    body, media = planned
    return {
        "format": STAMP_FORMAT,
        "written": time.time(),
        "valid_until": min(min(revisions) + cfg.publish.refresh_after_seconds, expiry),
        "warnings": warnings,
        "noop": body,
        "media": media,
    }


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[bool]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
