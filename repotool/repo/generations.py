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
        return {"packages": list(self.packages), **self.facts_json()}

    def facts_json(self) -> dict[str, Any]:
        """Everything but the package list."""
        return {
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
        facts: ListFacts | None = None,
    ) -> Generation:
        """``before``: the generations read so far (one may be given as a change to
        another); ``facts``: what is known of the package lists read so far."""
        retired = d.get("retired")
        digest = d.get("digest")
        if "base" in d and before is not None:
            packages = _changed(
                before[str(d["base"])].packages, d, ListFacts() if facts is None else facts
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


class ListFacts:
    """What is known of the generations' package lists, by the lists' identity: which
    are in order without repeats, and the change from one to another.  An index read
    from its file knows the changes it was written as, so writing it again compares
    10,000 names only for the generation this run made (a week of generations: 50 ms
    of every +1 publish before).  The lists are held here, so an id stays theirs."""

    def __init__(self) -> None:
        self._ascending: dict[int, tuple[str, ...]] = {}
        self._changes: dict[
            tuple[int, int], tuple[tuple[str, ...], tuple[str, ...], list[str], list[str]]
        ] = {}

    def ascending(self, names: tuple[str, ...]) -> bool:
        if id(names) in self._ascending:
            return True
        if not _ascending(names):
            return False
        self._ascending[id(names)] = names
        return True

    def learn(
        self, base: tuple[str, ...], result: tuple[str, ...], added: list[str], removed: list[str]
    ) -> None:
        """``result`` is ``base`` with ``added`` and without ``removed`` (both in order)."""
        self._ascending[id(result)] = result
        self._changes[(id(base), id(result))] = (base, result, added, removed)

    def change(
        self, base: tuple[str, ...], names: tuple[str, ...]
    ) -> tuple[list[str], list[str]] | None:
        """The names added to and removed from ``base`` (in order), or None when a list
        is not in order without repeats or the change is not short."""
        known = self._changes.get((id(base), id(names)))
        if known is not None:
            return known[2], known[3]
        if not (self.ascending(base) and self.ascending(names)):
            return None
        if names is base:
            return [], []
        before, now = set(base), set(names)
        added, removed = sorted(now - before), sorted(before - now)
        if len(added) + len(removed) >= len(names) // 2:
            return None
        self.learn(base, names, added, removed)
        return added, removed


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of names")
    # one string per name, however many generations list it (10,000 names each)
    return tuple(map(sys.intern, value))


def _changed(base: tuple[str, ...], d: dict[str, Any], facts: ListFacts) -> tuple[str, ...]:
    """A package list given as its changes to ``base``, which must be in ascending
    order without repeats (as the writer requires): a few names moved in a copy,
    not 10,000 sorted again."""
    added, removed = _names(d.get("added")), _names(d.get("removed"))
    if not facts.ascending(base):
        raise ValueError("a generation's base list is not in order")
    if not added and not removed:
        return base  # the same tuple: nothing more is held for it
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
    facts.learn(base, result, sorted(added), sorted(removed))
    return result


def generations_json(
    generations: dict[str, Generation], facts: ListFacts | None = None
) -> dict[str, dict[str, Any]]:
    """Pure: each generation, as a change to the one before it where both lists are
    in order without repeats and the change is short (``facts``: the changes known
    already, from reading the index)."""
    facts = ListFacts() if facts is None else facts
    out: dict[str, dict[str, Any]] = {}
    prev: tuple[str, tuple[str, ...]] | None = None
    for rev, g in generations.items():
        change = facts.change(prev[1], g.packages) if prev is not None else None
        if prev is not None and change is not None:
            out[rev] = {"base": prev[0], "added": change[0], "removed": change[1]}
            out[rev].update(g.facts_json())
        else:
            out[rev] = g.to_json()
        prev = (rev, g.packages)
    return out


def _ascending(names: tuple[str, ...]) -> bool:
    """Strictly ascending: in order, and no name twice (sorting a sorted list is one
    pass in C, several times faster than comparing the pairs in Python)."""
    return sorted(names) == list(names) and len(set(names)) == len(names)
