"""Pure: the order of a release's respins, and which media a newer respin supersedes.

Live media hold the packages the repository holds on the night they are
built, whatever label they are given.  So media of respin 2 built after
respin 3 would carry respin 2's label and date and respin 3's packages:
:func:`newer_respin` finds the respin that makes a request out of order, and
the release refuses it unless forced.  :func:`superseded_by` says, for every
published media label, which newer media of the same release replace it.

A label is a release version (``3.3.2``, respin 0) or a respin of it
(``3.3.2-2``).  Values in, values out; the callers read the record and the
published folders.
"""

from __future__ import annotations

from collections.abc import Iterable

from repotool.records.terms import RELEASE_VERSION_RE, RESPIN_VERSION_RE


class RespinArgumentError(ValueError):
    """``--respin`` names no respin of the configured version; the text says why."""


def respin_label(version: str, number: int) -> str:
    """``3.3.2``, 2 -> ``3.3.2-2``."""
    return f"{version}-{number}"


def split_label(label: str) -> tuple[str, int] | None:
    """``3.3.2-2`` -> ("3.3.2", 2); ``3.3.2`` -> ("3.3.2", 0); anything else -> None."""
    m = RESPIN_VERSION_RE.match(label)
    if m:
        return m.group(1), int(m.group(2))
    if RELEASE_VERSION_RE.match(label):
        return label, 0
    return None


def parse_respin(text: str, version: str) -> int:
    """``--respin N`` or ``--respin VERSION-N`` (VERSION being repotool.toml's): N.

    A respin version of another release is refused rather than taken apart:
    the media would get this release's packages under that release's name.
    """
    if text.isdigit() and int(text) >= 1:
        return int(text)
    parts = split_label(text)
    if parts is not None and parts[1] >= 1:
        named, number = parts
        if named == version:
            return number
        raise RespinArgumentError(
            f"--respin {text} is a respin of {named}, but the version being released is "
            f"{version} (repotool.toml)"
        )
    raise RespinArgumentError(
        f"--respin {text!r} is not a respin: write its number (--respin 2) or its "
        f"version ({respin_label(version, 2)})"
    )


def newer_respin(
    version: str, number: int, listed: Iterable[str], published: Iterable[str]
) -> str | None:
    """The newest respin of ``version`` newer than respin ``number``, or None.

    ``listed``: the respins in the release record; ``published``: the labels
    whose media are published.  Either kind counts: a respin the record lists
    is the one whose packages the repository holds now.
    """
    newest: tuple[int, str] | None = None
    for label in (*listed, *published):
        parts = split_label(label)
        if parts is None or parts[0] != version or parts[1] <= number:
            continue
        if newest is None or parts[1] > newest[0]:
            newest = (parts[1], label)
    return newest[1] if newest else None


def superseded_by(labels: Iterable[str]) -> dict[str, str]:
    """Every label older than the newest label of its own release -> that newest label.

    ``labels``: the published media labels (e.g. ``3.3.2``, ``3.3.2-2``,
    ``3.3.2-3``: the first two are superseded by ``3.3.2-3``).  Labels that
    are not release versions are left out.
    """
    newest: dict[str, tuple[int, str]] = {}
    parsed: list[tuple[str, str, int]] = []
    for label in labels:
        parts = split_label(label)
        if parts is None:
            continue
        release, number = parts
        parsed.append((label, release, number))
        if release not in newest or number > newest[release][0]:
            newest[release] = (number, label)
    return {
        label: newest[release][1]
        for label, release, number in parsed
        if number < newest[release][0]
    }
