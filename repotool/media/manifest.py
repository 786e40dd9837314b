"""Pure: ``public/releases/<label>/media.json`` read back, beside its writer.

:func:`repotool.media.plan.manifest_json` writes the file; the site's download
table and the release announcements read it through :func:`parse_manifest`,
so both refuse the same things.  The parser knows nothing of its callers: it
raises :class:`ManifestError` (a ``ValueError``, not a ``RepotoolError``) and
each caller wraps it once into its own area's error with its own hint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from repotool.records.respins import split_label

#: checked with ``fullmatch``: ``$`` would let a trailing newline through
_SHA256 = re.compile(r"[0-9a-f]{64}")
DEFAULT_CHECKSUMS = "SHA256SUMS"
DEFAULT_SIGNATURE = "SHA256SUMS.asc"
#: the ``kind`` of the SBOM's entry in ``images``: listed with the images (name,
#: size, sha256), every reader that mirrors or checks the images' files (mirrors
#: of older versions included) also carries and checks it; readers of this
#: version tell it from the boot images by this kind
SBOM_KIND = "SBOM"


class ManifestError(ValueError):
    """media.json is not what the media stage writes; ``what`` says how."""

    def __init__(self, what: str, *, where: str) -> None:
        super().__init__(f"{where}: {what}")
        self.what = what
        self.where = where


@dataclass(frozen=True)
class MediaImage:
    """One image of a release: a plain file name beside media.json."""

    kind: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class MediaManifest:
    """What readers use of media.json (the writer also records kernel, base, packages)."""

    version: str
    #: the boot images (LiveCD, LiveUSB), without the SBOM
    images: tuple[MediaImage, ...]
    checksums: str = DEFAULT_CHECKSUMS
    signature: str = DEFAULT_SIGNATURE
    #: ISO 8601 UTC (2014-04-10T12:00:00Z); "" when the file has none
    date: str = ""
    #: the newer respin that was already out when these media were built; "" if none
    superseded_by: str = ""
    #: the SBOM (CycloneDX JSON) listed with the images; None in media.json files
    #: written before media carried one
    sbom: MediaImage | None = None

    @property
    def files(self) -> tuple[MediaImage, ...]:
        """Every file media.json sizes and sums: the images and the SBOM."""
        return self.images + ((self.sbom,) if self.sbom else ())


def _plain_name(value: object) -> bool:
    """A file name beside media.json: never a path, never '.' or '..', and no control
    or bidi character (it becomes a file on disk, a link and a line of text)."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and "/" not in value
        and value.isprintable()
    )


def _unprintable(value: object) -> str:
    """`` (it holds the control character U+XXXX)`` when ``value`` holds one, else ''."""
    bad = next((c for c in value if not c.isprintable()), None) if isinstance(value, str) else None
    return "" if bad is None else f" (it holds the control character U+{ord(bad):04X})"


def _image(n: int, img: Any, where: str) -> MediaImage:
    if not isinstance(img, dict):
        raise ManifestError(
            f"image #{n} lacks a name, a size and a SHA-256: it is not a JSON object",
            where=where,
        )
    name, size, sha256 = img.get("name"), img.get("size"), img.get("sha256")
    if not _plain_name(name):
        raise ManifestError(
            f"image #{n} lacks a plain file name: {name!r} is not a name beside media.json"
            + _unprintable(name),
            where=where,
        )
    if not isinstance(size, int) or isinstance(size, bool):
        raise ManifestError(f"image #{n} lacks an integer size: {size!r}", where=where)
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ManifestError(
            f"image #{n} lacks a 64-digit SHA-256 (lower-case hex): {sha256!r}", where=where
        )
    assert isinstance(name, str)  # checked by _plain_name; tells mypy
    return MediaImage(kind=str(img.get("kind", "")), name=name, size=size, sha256=sha256)


def _file_name(doc: dict[str, Any], key: str, default: str, where: str) -> str:
    value = doc.get(key) or default
    if not _plain_name(value):
        raise ManifestError(
            f"'{key}' is {value!r}, not a plain file name beside media.json" + _unprintable(value),
            where=where,
        )
    assert isinstance(value, str)
    return value


def parse_manifest(data: bytes | str, where: str) -> MediaManifest:
    """media.json's bytes (or text) in, a :class:`MediaManifest` out.

    Refuses an image without a plain file name, an integer size or a 64-digit
    SHA-256 (so nobody is shown a checksum that was not computed, or a link
    that leaves the release's folder), a manifest that names no image, and one
    with more than one SBOM (an ``images`` entry of kind ``SBOM``; optional).
    ``where`` names the file in the error.
    """
    try:
        doc = json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise ManifestError(f"not valid JSON: {e}", where=where) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise ManifestError("media.json has no 'images' list", where=where)
    entries = tuple(_image(n, img, where) for n, img in enumerate(doc["images"], 1))
    images = tuple(i for i in entries if i.kind != SBOM_KIND)
    sboms = [i for i in entries if i.kind == SBOM_KIND]
    if not images:
        raise ManifestError("media.json names no images", where=where)
    if len(sboms) > 1:
        raise ManifestError(
            f"media.json names {len(sboms)} SBOMs ({', '.join(i.name for i in sboms)}); "
            "the media stage writes one",
            where=where,
        )
    version = doc.get("version")
    if not isinstance(version, str):
        raise ManifestError(f"media.json has no 'version' string: {version!r}", where=where)
    date = doc.get("date")
    return MediaManifest(
        version=version,
        images=images,
        checksums=_file_name(doc, "checksums", DEFAULT_CHECKSUMS, where),
        signature=_file_name(doc, "signature", DEFAULT_SIGNATURE, where),
        date=date if isinstance(date, str) else "",
        superseded_by=_superseded_by(doc, where),
        sbom=sboms[0] if sboms else None,
    )


def _superseded_by(doc: dict[str, Any], where: str) -> str:
    """The optional 'superseded_by': a release label (3.3.2-3), shown as a link."""
    value = doc.get("superseded_by")
    if value is None:
        return ""
    if not isinstance(value, str) or split_label(value) is None:
        raise ManifestError(
            f"'superseded_by' is {value!r}, not a release label like 3.3.2-3" + _unprintable(value),
            where=where,
        )
    return value
