"""Static export: every page and feed of the site, and its CSS, into ``public/``.

Any static server or mirror can then host the site beside the packages.  The
export renders everything into a staging folder inside ``public/`` first (same
file system), then moves each changed file into place with ``os.replace``: a
reader never sees a half-written page, and unchanged files keep their mtime so
mirrors do not fetch them again.  Pages the site no longer has are removed;
files other stages wrote (media, repositories, archives) are never touched.

When no input changed since the last export (records, templates, static files,
the public/ files the pages read), :func:`build_site` does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from repotool import __version__
from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import SiteExportError
from repotool.process import SubprocessRunner
from repotool.report import Reporter
from repotool.site.published import GpgKeyInspector, KeyInspector
from repotool.site.state import content_fingerprint, input_files, load_snapshot

STAGING_PREFIX = ".site-staging-"


@dataclass(frozen=True)
class SiteResult:
    public_dir: Path
    skipped: bool
    #: every file the export is responsible for, relative to public_dir
    files: tuple[str, ...]
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    fingerprint: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {
            "public_dir": str(self.public_dir),
            "skipped": self.skipped,
            "files": len(self.files),
            "written": list(self.written),
            "removed": list(self.removed),
        }


def output_name(url_path: str) -> str:
    """Pure: '/advisories/X/' -> 'advisories/X/index.html'; '/feeds/a.rss' -> 'feeds/a.rss'."""
    rel = url_path.lstrip("/")
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    parts = PurePosixPath(rel).parts
    if any(p in ("", ".", "..") or p.startswith(STAGING_PREFIX) for p in parts):
        raise SiteExportError(
            f"refusing to export to the unsafe path '{url_path}'",
            where=url_path,
            hint="record names must be plain (see docs/site.md)",
        )
    return rel


def _state_path(cfg: Config, public: Path) -> Path:
    key = hashlib.sha256(str(public.resolve()).encode()).hexdigest()[:16]
    return cfg.state / "site" / f"export-{key}.json"


def _read_state(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _inside(public_real: Path, target: Path) -> bool:
    try:
        target.parent.resolve().relative_to(public_real)
    except ValueError:
        return False
    return not target.is_symlink() and not target.is_dir()


def _static_files(static_dir: Path) -> Iterable[tuple[str, Path]]:
    if static_dir.is_dir():
        for p in sorted(static_dir.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                yield "static/" + p.relative_to(static_dir).as_posix(), p


def build_site(
    cfg: Config,
    reporter: Reporter,
    *,
    public_dir: Path | None = None,
    keys: KeyInspector | None = None,
    force: bool = False,
) -> SiteResult:
    """Render every page and feed into ``public_dir`` (default ``cfg.public_dir``).

    Skips the work when the inputs are unchanged since the last export (unless
    ``force``).  Raises RecordInvalidError for broken records, SiteError for
    broken templates or published files, SiteExportError when public/ cannot
    be written.
    """
    public = public_dir if public_dir is not None else cfg.public_dir
    try:
        public.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SiteExportError(
            f"cannot create the folder: {e.strerror}",
            where=str(public),
            hint="check the permissions of the publish folder",
        ) from e
    keys = keys or GpgKeyInspector(SubprocessRunner())
    state_path = _state_path(cfg, public)
    state = _read_state(state_path)
    fingerprint = content_fingerprint(input_files(cfg, public)) + ":" + __version__
    listed = state.get("files")
    previous = [str(f) for f in listed] if isinstance(listed, list) else []
    if (
        not force
        and state.get("fingerprint") == fingerprint
        and all((public / f).is_file() for f in previous)
    ):
        reporter.info(f"site unchanged, nothing to export into {public}")
        return SiteResult(public, True, tuple(previous), fingerprint=fingerprint)

    snapshot = load_snapshot(cfg, public, keys)
    outputs: dict[str, bytes] = {}
    for url_path in snapshot.paths():
        doc = snapshot.document(url_path)
        assert doc is not None
        outputs[output_name(url_path)] = doc.body
    for rel, src in _static_files(cfg.path(cfg.site.static_dir)):
        outputs[rel] = src.read_bytes()

    public_real = public.resolve()
    written: list[str] = []
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=public))
    try:
        with reporter.step("Exporting the site", len(outputs)) as step:
            staged: list[str] = []
            for rel, body in sorted(outputs.items()):
                dest = public / rel
                if dest.is_file() and not dest.is_symlink() and dest.read_bytes() == body:
                    step.advance()
                    continue
                tmp = staging / rel
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(body)
                os.chmod(tmp, 0o644)
                staged.append(rel)
            for rel in staged:
                dest = public / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not _inside(public_real, dest):
                    raise SiteExportError(
                        "the destination is a folder, a symlink, or leads outside public/",
                        where=str(dest),
                        hint="remove what is in the way, then run: repotool site build",
                    )
                os.replace(staging / rel, dest)
                written.append(rel)
                step.advance(note=rel)
    except OSError as e:
        raise SiteExportError(
            f"cannot write the site: {e.strerror}",
            where=str(getattr(e, "filename", None) or public),
            hint="check free space and permissions of the publish folder",
        ) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    removed: list[str] = []
    for rel in previous:
        if rel not in outputs:
            stale = public / rel
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
                removed.append(rel)
    files = tuple(sorted(outputs))
    write_atomic(
        state_path,
        json.dumps({"fingerprint": fingerprint, "files": list(files)}, indent=1).encode(),
    )
    reporter.info(
        f"site exported into {public}: {len(written)} file(s) written, "
        f"{len(files) - len(written)} unchanged, {len(removed)} removed"
    )
    return SiteResult(public, False, files, tuple(written), tuple(removed), fingerprint=fingerprint)
