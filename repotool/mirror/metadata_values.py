"""Pure checks of single values read from upstream metadata.

A location, a checksum type, a digest, a size or a timestamp from repomd.xml,
primary.xml or SHA256SUMS becomes a file name on disk or a line in a message, so
each is checked before use: no control or bidi characters, no path leaving the
repository, only known checksum types, digests of exactly the right hex length,
whole numbers that are never negative.  Every refusal is a
:class:`~repotool.errors.MirrorIntegrityError` naming where the value came from.
"""

from __future__ import annotations

import posixpath

from repotool.errors import MirrorIntegrityError

#: checksum types we accept from metadata (hashlib names)
KNOWN_ALGOS = {
    "sha256": "sha256",
    "sha512": "sha512",
    "sha384": "sha384",
    "sha224": "sha224",
    "sha1": "sha1",
    "sha": "sha1",
}
#: hex digits of a digest of each accepted algorithm
DIGEST_LENGTHS = {"sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
_HEX = frozenset("0123456789abcdef")


def printable(text: str, what: str, where: str) -> str:
    """``text`` from upstream input, refused if it holds a control or other
    non-printing character (a newline in a file name or a label, a bidi override):
    such names become files on disk and lines in messages."""
    bad = next((c for c in text if not c.isprintable()), None)
    if bad is not None:
        raise MirrorIntegrityError(
            f"{what} contains the control character U+{ord(bad):04X}: {text[:140]!r}",
            where=where,
            hint="the upstream metadata is malformed or hostile; do not mirror it",
        )
    return text


def safe_relpath(href: str, where: str) -> str:
    """A location from metadata, checked to stay inside the repository."""
    printable(href, "the location of a file", where)
    norm = posixpath.normpath(href)
    if (
        not href
        or href.startswith("/")
        or "\\" in href
        or norm.startswith("../")
        or norm == ".."
        or norm == "."
        or "\x00" in href
    ):
        raise MirrorIntegrityError(
            f"the metadata names a file outside the repository: {href!r}",
            where=where,
            hint="the upstream metadata is malformed or hostile; do not mirror it",
        )
    return norm


def checksum_algo(name: str | None, where: str) -> str:
    algo = KNOWN_ALGOS.get((name or "").lower())
    if algo is None:
        raise MirrorIntegrityError(
            f"unsupported checksum type {name!r}",
            where=where,
            hint="the repository must use sha1 or a sha2 checksum",
        )
    return algo


def hex_digest(text: str | None, algo: str, where: str) -> str:
    """A checksum from metadata, as lower-case hex of the length ``algo`` gives.

    The digest names files on disk (partial downloads), so nothing else may pass.
    """
    digest = (text or "").strip().lower()
    if len(digest) != DIGEST_LENGTHS[algo] or not set(digest) <= _HEX:
        raise MirrorIntegrityError(
            f"the {algo} checksum is not {DIGEST_LENGTHS[algo]} hex digits: {digest[:140]!r}",
            where=where,
            hint="the upstream metadata is malformed or hostile; do not mirror it",
        )
    return digest


def whole_number(text: str | None, what: str, where: str) -> int:
    """A size or timestamp from metadata: a whole number, never negative."""
    try:
        value = int((text or "").strip())
    except ValueError:
        raise MirrorIntegrityError(f"{what} is not a whole number: {text!r}", where=where) from None
    if value < 0:
        raise MirrorIntegrityError(
            f"{what} is negative: {value}",
            where=where,
            hint="the upstream metadata is malformed or hostile; do not mirror it",
        )
    return value
