"""The metadata generations an index knows (``.repodata-<revision>/``), and how the
index file writes their package lists: in full, or as the change to the generation
written before (see :mod:`repotool.repo.index`).  Pure."""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Generation:
    """One metadata generation (``.repodata-<revision>/``) as the index knows it."""

    #: package file names its primary.xml lists
    packages: tuple[str, ...]
    #: the files its run brought into Packages/ (only these go if it never became current)
    incoming: tuple[str, ...] = ()
    #: the metadata files it wrote (hard-linked into later generations while it lives)
    files: tuple[str, ...] = ()
    #: when a newer generation replaced it (None: current, or never swapped in)
    retired: float | None = None
    #: content digest of its packages and updateinfo (None: adopted from disk)
    digest: str | None = None

    def live(self, now: float, keep: float) -> bool:
        return self.retired is None or now - self.retired < keep

    def to_json(self) -> dict[str, Any]:
        return {
            "packages": list(self.packages),
            "incoming": list(self.incoming),
            "files": list(self.files),
            "retired": self.retired,
            "digest": self.digest,
        }

    @classmethod
    def from_json(
        cls,
        d: dict[str, Any],
        before: dict[str, Generation] | None = None,
        ascending: set[int] | None = None,
    ) -> Generation:
        """``before``: the generations read so far (one may be given as a change to
        another); ``ascending``: ids of the package lists known to be in order."""
        retired = d.get("retired")
        digest = d.get("digest")
        if "base" in d and before is not None:
            packages = _changed(
                before[str(d["base"])].packages, d, set() if ascending is None else ascending
            )
        else:
            packages = _names(d.get("packages"))
        return cls(
            packages=packages,
            incoming=_names(d.get("incoming", [])),
            files=_names(d.get("files", [])),
            retired=float(retired) if retired is not None else None,
            digest=str(digest) if digest is not None else None,
        )


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of names")
    # one string per name, however many generations list it (10,000 names each)
    return tuple(map(sys.intern, value))


def _changed(base: tuple[str, ...], d: dict[str, Any], ascending: set[int]) -> tuple[str, ...]:
    """A package list given as its changes to ``base``, which must be in ascending
    order without repeats (as the writer requires; ``ascending``: ids of the lists
    known to be): a few names moved in a copy, not 10,000 sorted again."""
    added, removed = _names(d.get("added")), _names(d.get("removed"))
    if not added and not removed:
        return base  # the same tuple: nothing more is held for it
    if id(base) not in ascending:
        if not _ascending(base):
            raise ValueError("a generation's base list is not in order")
        ascending.add(id(base))
    out = list(base)
    for name in removed:
        i = bisect.bisect_left(out, name)
        if i == len(out) or out[i] != name:
            raise ValueError("a generation removes a name its base does not list")
        del out[i]
    for name in added:
        i = bisect.bisect_left(out, name)
        if i < len(out) and out[i] == name:
            raise ValueError("a generation adds a name its base lists")
        out.insert(i, name)
    result = tuple(out)
    ascending.add(id(result))
    return result


def generations_json(generations: dict[str, Generation]) -> dict[str, dict[str, Any]]:
    """Pure: each generation, as a change to the one before it where that one's list
    is in order without repeats, this one's too, and the change is short."""
    out: dict[str, dict[str, Any]] = {}
    prev: tuple[str, tuple[str, ...], set[str] | None] | None = None
    for rev, g in generations.items():
        d = g.to_json()
        names = g.packages
        if prev is not None and prev[2] is not None and names is prev[1]:
            del d["packages"]
            out[rev] = {"base": prev[0], "added": [], "removed": [], **d}
            prev = (rev, names, prev[2])
            continue
        now = set(names)
        usable = _ascending(names)
        if prev is not None and prev[2] is not None and usable:
            added, removed = sorted(now - prev[2]), sorted(prev[2] - now)
            if len(added) + len(removed) < len(names) // 2:
                del d["packages"]
                d = {"base": prev[0], "added": added, "removed": removed, **d}
        out[rev] = d
        prev = (rev, names, now if usable else None)
    return out


def _ascending(names: tuple[str, ...]) -> bool:
    """Strictly ascending: in order, and no name twice (sorting a sorted list is one
    pass in C, several times faster than comparing the pairs in Python)."""
    return sorted(names) == list(names) and len(set(names)) == len(names)
