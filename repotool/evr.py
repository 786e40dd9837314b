"""Package versions as rpm compares them (rpmvercmp), in pure Python.

Debian's Python has no rpm bindings in a virtualenv, and the rule is small and
stable: split into runs of digits and letters, compare digit runs numerically,
letter runs as strings, '~' sorts before anything, '^' after the base.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NamedTuple

_SEGMENT = re.compile(r"(\d+|[a-zA-Z]+|~|\^)")


def vercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as rpm's rpmvercmp."""
    if a == b:
        return 0
    sa = _SEGMENT.findall(a)
    sb = _SEGMENT.findall(b)
    while sa or sb:
        step = _step(sa, sb)
        if step is None:
            break
        if step:
            return step
    if not sa and not sb:
        return 0
    return 1 if sa else -1


def _starts(segments: list[str], mark: str) -> bool:
    return bool(segments) and segments[0] == mark


def _step(sa: list[str], sb: list[str]) -> int | None:
    """Compare (and consume) the next segment of each: non-zero decides, 0 goes on,
    None when one side has run out of ordinary segments."""
    # tilde sorts before everything, even the end of the string
    if _starts(sa, "~") or _starts(sb, "~"):
        return _marker(sa, sb, "~")
    # caret sorts after the end of the string but before anything else
    if _starts(sa, "^") or _starts(sb, "^"):
        if not sa:
            return -1
        if not sb:
            return 1
        return _marker(sa, sb, "^")
    if not sa or not sb:
        return None
    return _segment_cmp(sa.pop(0), sb.pop(0))


def _marker(sa: list[str], sb: list[str], mark: str) -> int:
    """The side without ``mark`` is the newer one; with it on both, both go on."""
    if not _starts(sa, mark):
        return 1
    if not _starts(sb, mark):
        return -1
    del sa[0], sb[0]
    return 0


def _segment_cmp(x: str, y: str) -> int:
    """A digit run is newer than a letter run; digits compare as numbers."""
    if x.isdigit() != y.isdigit():
        return 1 if x.isdigit() else -1
    if x.isdigit():
        xi, yi = int(x), int(y)
        return (xi > yi) - (xi < yi)
    return (x > y) - (x < y)


class EVR(NamedTuple):
    epoch: int
    version: str
    release: str

    def __str__(self) -> str:
        prefix = f"{self.epoch}:" if self.epoch else ""
        return f"{prefix}{self.version}-{self.release}"


def evr_cmp(a: EVR, b: EVR) -> int:
    if a.epoch != b.epoch:
        return 1 if a.epoch > b.epoch else -1
    c = vercmp(a.version, b.version)
    return c if c else vercmp(a.release, b.release)


#: sort key over EVRs: oldest first, as rpm orders versions
evr_key = functools.cmp_to_key(evr_cmp)


def parse_evr(text: str) -> EVR:
    """'1:3.3.2-1.el7' or '3.3.2-1.el7' → EVR."""
    epoch = 0
    if ":" in text:
        e, text = text.split(":", 1)
        epoch = int(e)
    version, _, release = text.rpartition("-")
    if not version:
        raise ValueError(f"'{text}' is not VERSION-RELEASE")
    return EVR(epoch, version, release)


@dataclass(frozen=True, slots=True)
class NEVRA:
    """A package's identity as a repository holds it: the one shape of it.

    ``epoch`` is a number (0 when the package has none); an epoch given as
    text (as createrepo_c and front matter give it, "" or "0" for none) is
    turned into one.
    """

    name: str
    epoch: int
    version: str
    release: str
    arch: str

    def __post_init__(self) -> None:
        if not isinstance(self.epoch, int):
            object.__setattr__(self, "epoch", int(self.epoch or 0))

    @property
    def evr(self) -> EVR:
        return EVR(self.epoch, self.version, self.release)

    @property
    def filename(self) -> str:
        """The package file name as it sits under ``Packages/``."""
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"

    def __str__(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"
