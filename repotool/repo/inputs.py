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
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repotool.repo.input_digest import (
    STAMP_FORMAT,
    STAMP_NAME,
    ProjectFiles,
    inputs_digest,
    read_project,
)

if TYPE_CHECKING:
    from repotool.config import Config
    from repotool.report import Reporter

#: a stamp this close to its expiry is not trusted (the full path decides)
EXPIRY_MARGIN_SECONDS = 300.0
#: flags of ``repotool release`` that do not change what it does
_PLAIN_FLAGS = frozenset({"command", "config", "json", "quiet", "handler", "no_media"})


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
