"""Static export: every page and feed of the site, and its CSS, into ``public/``.

Any static server or mirror can then host the site beside the packages.  The
export renders everything into a staging folder inside ``public/`` first (same
file system), then moves each changed file into place with ``os.replace``: a
reader never sees a half-written page, and unchanged files keep their mtime so
mirrors do not fetch them again.  The manifest (``public/.site-export.json``,
see :mod:`repotool.site.released`) is written last; ``repotool serve``
switches to the new site only then, all at once.

Pages the site no longer has are removed, but only when the previous manifest
lists them, they are the site's kind of file (pages, feeds, CSS) inside
public/, and they still hold exactly the bytes it wrote.  Files other stages
wrote (keys, repositories, signatures, media, archives) are never touched,
whatever a manifest says.

When no input changed since the last export (records, templates, static files,
the public/ files the pages read) and its files are intact, :func:`build_site`
does nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from repotool import __version__
from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.csaf.writer import publish_csaf
from repotool.errors import PublishedFileError, SiteExportError
from repotool.report import Reporter
from repotool.site.api_models import api_data
from repotool.site.files import public_media_type
from repotool.site.key_inspection import KeyInspector
from repotool.site.released import (
    MANIFEST_NAME,
    ExportedFile,
    ExportManifest,
    file_for_url,
    read_exported,
    read_manifest,
    removable,
    sha256_hex,
    site_owned,
)
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
            "notes": list(self.notes),
        }


def output_name(url_path: str) -> str:
    """Pure: '/advisories/X/' -> 'advisories/X/index.html'; '/feeds/a.rss' -> 'feeds/a.rss'.

    Only names the site owns (see :func:`repotool.site.released.site_owned`)."""
    rel = file_for_url(url_path)
    if not site_owned(rel):
        raise SiteExportError(
            f"refusing to export to the unsafe path '{url_path}'",
            where=url_path,
            hint="record names must be plain (see docs/site.md)",
        )
    return rel


def _inside(public_real: Path, target: Path) -> bool:
    try:
        target.parent.resolve().relative_to(public_real)
    except ValueError:
        return False
    return not target.is_symlink() and not target.is_dir()


def _intact(public: Path, manifest: ExportManifest) -> bool:
    """Every file of the last export is there with the bytes it wrote."""
    for rel, entry in manifest.files.items():
        data = read_exported(public, rel)
        if data is None or sha256_hex(data) != entry.sha256:
            return False
    return True


def _static_files(static_dir: Path) -> Iterable[tuple[str, Path]]:
    if static_dir.is_dir():
        for p in sorted(static_dir.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                yield "static/" + p.relative_to(static_dir).as_posix(), p


def _contained(public_real: Path, folder: Path) -> bool:
    """The nearest existing ancestor of ``folder`` resolves inside public/ (so mkdir
    cannot create anything outside through a symlink)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        probe.resolve().relative_to(public_real)
    except ValueError:
        return False
    return True


def _previous_manifest(public: Path, reporter: Reporter) -> ExportManifest | None:
    try:
        return read_manifest(public)
    except PublishedFileError as e:
        # nothing of an unreadable manifest is trusted: no file it lists is removed
        reporter.warn(f"{e.where}: {e.what}; ignoring it (no old page is removed)")
        return None


def build_site(
    cfg: Config,
    reporter: Reporter,
    *,
    keys: KeyInspector,
    public_dir: Path | None = None,
    force: bool = False,
) -> SiteResult:
    """Render every page and feed into ``public_dir`` (default ``cfg.public_dir``).

    ``keys`` answers the release key's fingerprint (``GpgKeyInspector`` in
    production).  Skips the work when the inputs are unchanged since the last
    export and its files are intact (unless ``force``).  The manifest is
    written last: ``repotool serve`` switches to the new site only then.
    Raises RecordInvalidError for broken records, SiteError for broken
    templates or published files, SiteExportError when public/ cannot be written.
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
    # CSAF 2.0 advisories in public/.well-known/csaf/ (own skip check); refused first
    publish_csaf(cfg, reporter, public)
    previous = _previous_manifest(public, reporter)
    # the settings too: a new [site] title or base_url must re-render every page
    settings = hashlib.sha256(repr(cfg).encode()).hexdigest()
    fingerprint = f"{content_fingerprint(input_files(cfg, public))}:{settings}:{__version__}"
    if (
        not force
        and previous is not None
        and previous.fingerprint == fingerprint
        and _intact(public, previous)
    ):
        reporter.info(f"site unchanged, nothing to export into {public}")
        return SiteResult(public, True, tuple(sorted(previous.files)), fingerprint=fingerprint)

    snapshot = load_snapshot(cfg, public, keys)
    outputs: dict[str, tuple[str, str, bytes]] = {}  # path -> (URL, media type, bytes)
    for url_path in snapshot.paths():
        doc = snapshot.document(url_path)
        assert doc is not None
        outputs[output_name(url_path)] = (url_path, doc.media_type, doc.body)
    for rel, src in _static_files(cfg.path(cfg.site.static_dir)):
        outputs[rel] = ("/" + rel, public_media_type(rel), src.read_bytes())
    manifest = ExportManifest(
        fingerprint=fingerprint,
        last_modified=snapshot.last_modified,
        files={
            rel: ExportedFile(url, sha256_hex(body), media_type)
            for rel, (url, media_type, body) in outputs.items()
        },
        api=api_data(snapshot.records, snapshot.published, snapshot.site.base_url),
    )

    written = _place(public, {rel: body for rel, (_, _, body) in outputs.items()}, reporter)
    try:
        write_atomic(public / MANIFEST_NAME, manifest.to_bytes())
    except OSError as e:
        raise SiteExportError(
            f"cannot write the export's manifest: {e.strerror}",
            where=str(public / MANIFEST_NAME),
            hint="the site being served did not change; fix the folder, then: repotool site build",
        ) from e

    removed: list[str] = []
    kept: list[str] = []
    for rel, entry in sorted((previous.files if previous else {}).items()):
        if rel in outputs:
            continue
        if removable(public, rel, entry):
            (public / rel).unlink()
            removed.append(rel)
        else:
            kept.append(rel)
            reporter.warn(
                f"left {public / rel} in place: it is not a file the site wrote, or it "
                "changed since (remove it by hand if it should go)"
            )
    files = tuple(sorted(outputs))
    reporter.info(
        f"site exported into {public}: {len(written)} file(s) written, "
        f"{len(files) - len(written)} unchanged, {len(removed)} removed"
    )
    return SiteResult(
        public,
        False,
        files,
        tuple(written),
        tuple(removed),
        fingerprint=fingerprint,
        notes=tuple(f"left in place: {rel}" for rel in kept),
    )


def _place(public: Path, outputs: dict[str, bytes], reporter: Reporter) -> list[str]:
    """Stage the changed files beside public/, then move each into place."""
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
                if not _contained(public_real, dest.parent):
                    raise SiteExportError(
                        "the destination's folder leads outside public/",
                        where=str(dest),
                        hint="remove the symlink in the way, then run: repotool site build",
                    )
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
    return written
