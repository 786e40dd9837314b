"""The seam between a push and the object store, and the in-memory fake beside it.

:class:`ObjectStore` is what a push needs from a bucket under one prefix: read a
small object, ask what an object holds, put one, delete one.  Keys are relative
to the destination prefix.  :class:`repotool.push.s3.S3Store` is the boto3 one;
:class:`MemoryStore` is the fake unit tests pass in (it can also stop a push
before its N-th change, as a kill would).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    """What the store says of one object."""

    size: int
    #: the SHA-256 a push recorded in the object's metadata (None: not put by a push)
    sha256: str | None


class ObjectStore(Protocol):
    """A bucket under one prefix; every key is relative to that prefix."""

    #: how the destination is named in messages (``s3://bucket/prefix``)
    where: str

    def get(self, key: str, *, max_bytes: int) -> bytes | None:
        """The object's bytes; None when there is no such object."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """What the object holds; None when there is no such object."""
        ...

    def put(
        self,
        key: str,
        source: Path | bytes,
        *,
        sha256: str,
        content_type: str,
        cache_control: str | None = None,
    ) -> None:
        """Create or replace the object (readers see the old or the new bytes, whole)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""
        ...


class SimulatedKill(BaseException):
    """Raised by :class:`MemoryStore` in place of its N-th change (a kill at that moment).

    A BaseException, like KeyboardInterrupt: nothing in the push may catch it.
    """


@dataclass
class MemoryObject:
    data: bytes
    sha256: str
    content_type: str
    cache_control: str | None


@dataclass
class MemoryStore:
    """The fake store: a dict of objects, a log of operations, and an optional kill."""

    where: str = "memory://bucket/prefix"
    objects: dict[str, MemoryObject] = field(default_factory=dict)
    #: every request in order: ("get" | "head" | "put" | "delete", key)
    log: list[tuple[str, str]] = field(default_factory=list)
    #: raise SimulatedKill instead of making the change with this number (0-based)
    kill_before_change: int | None = None
    changes: int = 0

    def get(self, key: str, *, max_bytes: int) -> bytes | None:
        self.log.append(("get", key))
        obj = self.objects.get(key)
        return obj.data[: max_bytes + 1] if obj is not None else None

    def head(self, key: str) -> StoredObject | None:
        self.log.append(("head", key))
        obj = self.objects.get(key)
        return StoredObject(len(obj.data), obj.sha256) if obj is not None else None

    def put(
        self,
        key: str,
        source: Path | bytes,
        *,
        sha256: str,
        content_type: str,
        cache_control: str | None = None,
    ) -> None:
        self._change()
        self.log.append(("put", key))
        data = source.read_bytes() if isinstance(source, Path) else source
        self.objects[key] = MemoryObject(data, sha256, content_type, cache_control)

    def delete(self, key: str) -> None:
        self._change()
        self.log.append(("delete", key))
        self.objects.pop(key, None)

    def _change(self) -> None:
        if self.kill_before_change is not None and self.changes >= self.kill_before_change:
            raise SimulatedKill(f"killed before change {self.changes}")
        self.changes += 1

    def read(self, key: str) -> bytes:
        """A reader's GET (not logged)."""
        return self.objects[key].data
