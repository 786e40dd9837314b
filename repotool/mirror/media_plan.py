"""Pure decisions of a media mirror: bytes in, values out.

Which release labels to mirror (``/api/releases``), what a label's signed
SHA256SUMS says, and the files of a label's folder: SHA256SUMS is the signed
truth for names and checksums; media.json (not signed) only adds the exact sizes
(for truncation checks and resumes), so the two must agree on every name and
checksum, and no size may exceed the operator's bound (``--max-image-size``):
an unsigned file never decides how much is written to disk.
"""

from __future__ import annotations

import json
import re

from repotool.errors import MirrorIntegrityError
from repotool.media.manifest import ManifestError, MediaManifest, parse_manifest
from repotool.mirror.metadata_values import printable
from repotool.mirror.sync_plan import FileSpec

#: the largest image a media sync accepts (``--max-image-size``): media.json is not
#: signed, so its sizes may only narrow this bound
MAX_IMAGE_BYTES = 16 * 1024 * 1024 * 1024

CHECKSUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.asc"
MANIFEST = "media.json"
#: the files of a label's folder a media sync writes itself (not downloaded as images)
LABEL_FILES = (CHECKSUMS, SIGNATURE, MANIFEST)

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*\Z")
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)\Z")


def check_label(label: str, where: str) -> str:
    """A release label used as a folder name: never a path, never hidden, no control
    character (``fullmatch``: ``$`` would let a trailing newline through)."""
    if not _LABEL.fullmatch(label) or ".." in label:
        raise MirrorIntegrityError(
            f"not a release label: {label!r}",
            where=where,
            hint="a label is a version such as 3.3.2 or 3.3.2-2",
        )
    return label


def parse_release_labels(data: bytes, where: str) -> list[str]:
    """``/api/releases`` (a list of releases, each with a ``media`` list of
    ``{"label": ...}``) → every media label, in the order served, without repeats."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise MirrorIntegrityError(
            f"not valid JSON: {e}", where=where, hint="pass the labels with --label"
        ) from e
    if not isinstance(doc, list):
        raise MirrorIntegrityError(
            "not a list of releases", where=where, hint="pass the labels with --label"
        )
    labels: list[str] = []
    for release in doc:
        media = release.get("media") if isinstance(release, dict) else None
        if not isinstance(media, list):
            raise MirrorIntegrityError(
                "a release has no 'media' list", where=where, hint="pass the labels with --label"
            )
        for m in media:
            label = m.get("label") if isinstance(m, dict) else None
            if not isinstance(label, str):
                raise MirrorIntegrityError(
                    f"a media entry has no label: {m!r:.80}",
                    where=where,
                    hint="pass the labels with --label",
                )
            if check_label(label, where) not in labels:
                labels.append(label)
    return labels


def parse_sha256sums(data: bytes, where: str) -> dict[str, str]:
    """A signed SHA256SUMS (``sha256sum`` format) → file name → sha256.

    Names must be plain file names (they become files in the label's folder)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MirrorIntegrityError(f"{CHECKSUMS} is not UTF-8 text", where=where) from e
    sums: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _SUM_LINE.match(line)
        if not m:
            raise MirrorIntegrityError(
                f"line {n} of {CHECKSUMS} is not a sha256sum line", where=where
            )
        digest, name = m.groups()
        printable(name, f"line {n} of {CHECKSUMS} names a file that", where)
        if "/" in name or name in (".", "..") or name in LABEL_FILES:
            raise MirrorIntegrityError(
                f"{CHECKSUMS} names {name!r}, not an image file beside it",
                where=where,
                hint="the upstream release folder is malformed or hostile; do not mirror it",
            )
        if sums.get(name, digest) != digest:
            raise MirrorIntegrityError(f"{CHECKSUMS} lists {name} twice", where=where)
        sums[name] = digest
    if not sums:
        raise MirrorIntegrityError(f"{CHECKSUMS} lists no file", where=where)
    return sums


def parse_media_manifest(data: bytes, where: str) -> MediaManifest:
    try:
        return parse_manifest(data, where)
    except ManifestError as e:
        raise MirrorIntegrityError(
            e.what,
            where=where,
            hint="the upstream media.json is malformed; run again later or mirror another upstream",
        ) from e


def label_images(
    label: str,
    sums: dict[str, str],
    manifest: MediaManifest,
    where: str,
    *,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> list[FileSpec]:
    """The images of ``label`` and their SBOM (paths ``<label>/<name>``), each with the
    size media.json gives and the sha256 the signed SHA256SUMS gives; any disagreement
    is refused, and so is a size above ``max_image_bytes``."""
    hint = (
        "the release's media.json and its signed SHA256SUMS disagree; the upstream is "
        "mid-update or tampered with; DEST was left unchanged; run again later"
    )
    if manifest.version != label:
        raise MirrorIntegrityError(
            f"media.json is for release {manifest.version!r}, not {label!r}",
            where=where,
            hint=hint,
        )
    if (manifest.checksums, manifest.signature) != (CHECKSUMS, SIGNATURE):
        raise MirrorIntegrityError(
            f"media.json names its checksums {manifest.checksums!r} and signature "
            f"{manifest.signature!r}, not {CHECKSUMS} and {SIGNATURE}",
            where=where,
            hint=hint,
        )
    specs: list[FileSpec] = []
    files = manifest.files  # the images and their SBOM
    for image in files:
        signed = sums.get(image.name)
        if signed is None:
            raise MirrorIntegrityError(
                f"{image.name} is in media.json but not in {CHECKSUMS}", where=where, hint=hint
            )
        if signed != image.sha256:
            raise MirrorIntegrityError(
                f"the sha256 of {image.name} is {image.sha256} in media.json but {signed} in "
                f"the signed {CHECKSUMS}",
                where=where,
                hint=hint,
            )
        if image.size < 0:
            raise MirrorIntegrityError(
                f"media.json gives {image.name} a negative size", where=where, hint=hint
            )
        if image.size > max_image_bytes:
            raise MirrorIntegrityError(
                f"media.json gives {image.name} a size of {image.size} bytes, more than the "
                f"limit of {max_image_bytes} bytes for one image",
                where=where,
                hint="media.json is not signed, so its sizes cannot raise the limit; if the "
                "image is really this large, pass --max-image-size BYTES",
            )
        spec = FileSpec(path=f"{label}/{image.name}", size=image.size, algo="sha256", digest=signed)
        if spec not in specs:
            specs.append(spec)
    named = {i.name for i in files}
    unsized = sorted(set(sums) - named)
    if unsized:
        raise MirrorIntegrityError(
            f"{', '.join(unsized)} in the signed {CHECKSUMS} but not in media.json (no size "
            "to bound the download)",
            where=where,
            hint=hint,
        )
    if len(named) != len(files):
        raise MirrorIntegrityError("media.json lists an image twice", where=where, hint=hint)
    return specs
