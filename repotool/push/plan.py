"""Pure decisions of a push to object storage: values in, values out.

A push copies ``public/`` to a bucket that readers (dnf, browsers, mirrors)
fetch from while it changes.  An object store has no rename and no multi-object
transaction, so safety comes from the order of the uploads alone:

1. ``content``  packages, live media images, the published key: new names, or
   bytes no metadata yet served points at;
2. ``metadata`` the new repodata generation (checksum-named files), which only
   the new ``repomd.xml`` names;
3. ``index``    per repository ``repomd.xml.key``, ``repomd.xml``, then
   ``repomd.xml.asc``; per media label ``SHA256SUMS``, ``SHA256SUMS.asc``, then
   ``media.json``: the small files that switch readers to what 1-2 put there.
   A package or image whose bytes change under the same name (the old metadata
   names its old checksum) goes up here too, right before its group's switch;
4. ``pages``    the ``.repo`` file, site pages, feeds, mirror lists: they point
   at what 1-3 made reachable.

Files the tree no longer holds stay in the bucket for ``keep_seconds`` after the
push that first saw them gone (hosts holding an older ``repomd.xml`` still
fetch them), then are deleted.  What the bucket holds is recorded in a manifest
object written last, so an unchanged tree costs one GET of it.  Before its first
change a push writes the manifest with every object it is about to put marked
pending: a push that was stopped leaves that behind, and the next one (of this
tree or of another) puts those objects again instead of trusting their old
checksums.

Nothing here touches the disk or the network.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from repotool.errors import PushManifestError

Phase = Literal["content", "metadata", "index", "pages"]
#: the upload phases, in the order they run; each finishes before the next starts
PHASES: tuple[Phase, ...] = ("content", "metadata", "index", "pages")
#: the manifest's name under the destination prefix
MANIFEST_NAME = ".repotool-push.json"
MANIFEST_FORMAT = "repotool-push/1"
#: a manifest larger than this is not ours (about 100 bytes per file)
MANIFEST_MAX_BYTES = 64 * 1024 * 1024

#: the small files that switch readers to a new repository generation, in upload order
REPOMD_ORDER = ("repomd.xml.key", "repomd.xml", "repomd.xml.asc")
#: the same for a media label
MEDIA_INDEX_ORDER = ("SHA256SUMS", "SHA256SUMS.asc", "media.json")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class LocalFile:
    """One file of the tree to push, as the snapshot read it."""

    path: str  #: relative to public/, POSIX separators
    sha256: str
    size: int


@dataclass(frozen=True)
class ManifestEntry:
    sha256: str
    size: int
    #: when a push first found the file gone from the tree (None: still in it)
    gone_since: float | None = None
    #: a push began putting this object and may have stopped: its bytes are unknown
    pending: bool = False


@dataclass(frozen=True)
class Manifest:
    """What the bucket holds under the prefix, as the last finished push left it."""

    entries: Mapping[str, ManifestEntry]
    pushed_at: float = 0.0


@dataclass(frozen=True)
class Upload:
    path: str
    sha256: str
    size: int
    phase: Phase
    #: the upload runs in one piece with the uploads of the same non-empty group
    #: (a repository's repomd.xml and its signature)
    group: str = ""


@dataclass(frozen=True)
class PushPlan:
    #: in the order they must be made visible
    uploads: tuple[Upload, ...]
    #: paths gone from the tree longer than the keep window: deleted after the uploads
    deletes: tuple[str, ...]
    #: paths gone from the tree, still kept for hosts holding older metadata
    kept: tuple[str, ...]
    unchanged: int
    #: what the bucket holds once the uploads and deletes are done
    manifest: Manifest = field(repr=False)
    #: written before the first change: the bucket as it was, every object about
    #: to be put or deleted marked pending (a stopped push leaves this behind)
    intent: Manifest = field(repr=False)
    #: the manifest differs from the bucket's even with nothing to upload or delete
    #: (a file newly gone starts its keep window)
    manifest_changed: bool = False

    @property
    def upload_bytes(self) -> int:
        return sum(u.size for u in self.uploads)

    @property
    def changed(self) -> bool:
        return bool(self.uploads or self.deletes) or self.manifest_changed

    def phase(self, phase: Phase) -> tuple[Upload, ...]:
        return tuple(u for u in self.uploads if u.phase == phase)


def classify(path: str) -> tuple[Phase, str, int]:
    """The phase of ``path``, its group (files switched together) and its rank there."""
    parts = path.split("/")
    name = parts[-1]
    folder = posixpath.dirname(path)
    if len(parts) >= 2 and parts[-2] == "repodata":
        if name in REPOMD_ORDER:
            return "index", folder, REPOMD_ORDER.index(name)
        return "metadata", "", 0
    if parts[0] == "releases" and len(parts) == 3:
        if name in MEDIA_INDEX_ORDER:
            return "index", folder, MEDIA_INDEX_ORDER.index(name)
        # the images and their SBOM (.cdx.json): SHA256SUMS names them all
        if name.endswith((".iso", ".img", ".raw", ".qcow2", ".cdx.json")):
            return "content", "", 0
        return "pages", "", 0
    if name.endswith(".rpm") or parts[0] == "keys":
        return "content", "", 0
    return "pages", "", 0


def switched_with(path: str) -> str | None:
    """The index group that names ``path``'s bytes: a package's repository
    (``repo/el7/x86_64/repodata``), a live image's label (``releases/3.3.2``)."""
    phase, _, _ = classify(path)
    if phase != "content":
        return None
    if path.endswith(".rpm"):
        root, sep, _ = path.rpartition("/Packages/")
        return f"{root if sep else posixpath.dirname(path)}/repodata".lstrip("/")
    if path.startswith("releases/"):
        return posixpath.dirname(path)
    return None


def order_uploads(files: list[LocalFile], rewritten: Collection[str] = ()) -> tuple[Upload, ...]:
    """The uploads in visibility order: phase by phase, index files group by group
    (every repository's, then every media label's).

    A package or image in ``rewritten`` (new bytes under a name the served
    metadata already names with the old checksum: a release package rebuilt for a
    new base_url, a re-signed package) cannot go up first without breaking hosts
    holding the old metadata: it goes up inside its repository's (label's) switch,
    right before repomd.xml (SHA256SUMS).
    """
    keyed = []
    for f in files:
        phase, group, rank = classify(f.path)
        index_group = switched_with(f.path) if f.path in rewritten else None
        if index_group is not None:
            phase, group, rank = "index", index_group, -1
        keyed.append(
            (
                # repositories switch before media labels: media name their packages
                (PHASES.index(phase), not group.endswith("/repodata"), group, rank, f.path),
                Upload(f.path, f.sha256, f.size, phase, group),
            )
        )
    keyed.sort(key=lambda kv: kv[0])
    return tuple(u for _, u in keyed)


def plan_push(
    tree: Mapping[str, LocalFile],
    remote: Manifest | None,
    *,
    now: float,
    keep_seconds: float,
) -> PushPlan:
    """What to upload (in order) and delete so that the bucket holds ``tree``.

    ``remote`` is the bucket's manifest (None: nothing pushed there yet).  A file
    whose manifest entry has the same SHA-256 is not uploaded again (unless a
    stopped push left it pending); a file gone from the tree is kept until
    ``keep_seconds`` after the first push that saw it gone, then deleted.
    """
    held: Mapping[str, ManifestEntry] = remote.entries if remote is not None else {}
    changed = [f for p, f in sorted(tree.items()) if _differs(held.get(p), f)]
    entries: dict[str, ManifestEntry] = {
        p: ManifestEntry(f.sha256, f.size) for p, f in sorted(tree.items())
    }
    deletes: list[str] = []
    kept: list[str] = []
    for path, entry in sorted(held.items()):
        if path in tree:
            continue
        since = entry.gone_since if entry.gone_since is not None else now
        if now - since >= keep_seconds:
            deletes.append(path)
        else:
            kept.append(path)
            entries[path] = ManifestEntry(entry.sha256, entry.size, since, entry.pending)
    manifest_changed = remote is None or dict(remote.entries) != entries
    rewritten = {
        f.path for f in changed if (e := held.get(f.path)) is not None and e.gone_since is None
    }
    intent = dict(held)
    for f in changed:
        intent[f.path] = ManifestEntry(f.sha256, f.size, pending=True)
    for path in deletes:
        intent[path] = dataclasses.replace(held[path], pending=True)
    return PushPlan(
        uploads=order_uploads(changed, rewritten),
        deletes=tuple(deletes),
        kept=tuple(kept),
        unchanged=len(tree) - len(changed),
        manifest=Manifest(entries=entries, pushed_at=now),
        intent=Manifest(entries=intent, pushed_at=remote.pushed_at if remote else 0.0),
        manifest_changed=manifest_changed,
    )


def _differs(entry: ManifestEntry | None, f: LocalFile) -> bool:
    # a file back in the tree after it was gone may have been deleted by a push
    # stopped before it wrote the manifest: put it again
    return (
        entry is None
        or entry.pending
        or entry.gone_since is not None
        or entry.sha256 != f.sha256
        or entry.size != f.size
    )


def render_manifest(manifest: Manifest) -> bytes:
    """The manifest object's bytes (stable: sorted keys, one entry a line)."""
    lines = [
        "{",
        f'  "format": {json.dumps(MANIFEST_FORMAT)},',
        f'  "pushed_at": {manifest.pushed_at!r},',
        '  "files": {',
    ]
    items = sorted(manifest.entries.items())
    for i, (path, e) in enumerate(items):
        value: dict[str, Any] = {"sha256": e.sha256, "size": e.size}
        if e.gone_since is not None:
            value["gone_since"] = e.gone_since
        if e.pending:
            value["pending"] = True
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"    {json.dumps(path)}: {json.dumps(value, sort_keys=True)}{comma}")
    lines += ["  }", "}", ""]
    return "\n".join(lines).encode()


def parse_manifest(data: bytes, where: str) -> Manifest:
    """The manifest object's bytes → :class:`Manifest`; anything else is refused."""
    hint = (
        "the object is not a repotool push manifest: push to an empty prefix, or delete "
        "the object if it is left from something else (every file is then uploaded again)"
    )
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PushManifestError(
            f"the push manifest is not JSON: {e}", where=where, hint=hint
        ) from e
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise PushManifestError(
            f"the push manifest's format is not {MANIFEST_FORMAT!r}", where=where, hint=hint
        )
    files = doc.get("files")
    pushed_at = doc.get("pushed_at", 0.0)
    if not isinstance(files, dict) or not isinstance(pushed_at, int | float):
        raise PushManifestError("the push manifest lacks its file list", where=where, hint=hint)
    entries: dict[str, ManifestEntry] = {}
    for path, value in files.items():
        entries[path] = _entry(path, value, where, hint)
    return Manifest(entries=entries, pushed_at=float(pushed_at))


def _entry(path: str, value: object, where: str, hint: str) -> ManifestEntry:
    if not isinstance(value, dict):
        raise PushManifestError(f"the entry of {path!r} is not an object", where=where, hint=hint)
    sha, size, gone = value.get("sha256"), value.get("size"), value.get("gone_since")
    pending = value.get("pending", False)
    ok = (
        isinstance(sha, str)
        and _SHA256.fullmatch(sha) is not None
        and isinstance(size, int)
        and size >= 0
        and (gone is None or isinstance(gone, int | float))
        and isinstance(pending, bool)
        and _safe_key(path)
    )
    if not ok:
        raise PushManifestError(
            f"the entry of {path!r} is malformed (sha256, size, gone_since)", where=where, hint=hint
        )
    assert isinstance(sha, str) and isinstance(size, int)
    return ManifestEntry(sha, size, float(gone) if gone is not None else None, pending)


def _safe_key(path: str) -> bool:
    """A relative key that stays under the prefix (the manifest may have been edited)."""
    return (
        bool(path)
        and not path.startswith("/")
        and posixpath.normpath(path) == path
        and not path.startswith("../")
        and path != MANIFEST_NAME
        and all(c.isprintable() for c in path)
    )
