"""The ledger of verified files: the SHA-256 of every file whose signature by one key
was verified, one per line, so the same bytes are not checked twice.

Append-only: a lost line costs one re-check.  A damaged ledger is an error
naming the file to delete, never half-trusted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from repotool.errors import SigningStateError


class VerifiedLedger:
    """The ledger at ``path`` (None: remember nothing), read once, appended to."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: set[str] | None = None

    def known(self) -> set[str]:
        if self._known is None:
            self._known = read_ledger(self.path) if self.path else set()
        return self._known

    def remember(self, digests: Sequence[str]) -> None:
        """Record files just verified against the key."""
        known = self.known()
        new = [d for d in digests if d not in known]
        if not new or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write("".join(d + "\n" for d in new))
        except OSError as e:
            raise SigningStateError(
                f"cannot record the verified packages: {e.strerror or e}",
                where=str(self.path),
                hint=f"free space in {self.path.parent} (or fix its permissions), then run "
                "again; if the file is now damaged, delete it (packages are then checked again)",
            ) from e
        known.update(new)


_SHA256_LINE = re.compile(rb"^[0-9a-f]{64}\Z")


def parse_ledger(data: bytes) -> set[str] | int:
    """Pure: the SHA-256 digests of a ledger, or the number of its first bad line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, line in enumerate(lines, start=1):
        if not _SHA256_LINE.match(line):
            return n
    return {line.decode() for line in lines}


def read_ledger(path: Path) -> set[str]:
    """The files verified before against a key; a damaged ledger is an error, never
    half-trusted (it names the file to delete: the packages are then checked again)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    except OSError as e:
        raise SigningStateError(
            f"cannot read the list of verified packages: {e.strerror or e}",
            where=str(path),
            hint="fix its permissions, or delete it (every package is then checked again)",
        ) from e
    parsed = parse_ledger(data)
    if isinstance(parsed, int):
        raise SigningStateError(
            f"the list of verified packages is damaged: line {parsed} is not a SHA-256 digest",
            where=f"{path}:{parsed}",
            hint=f"delete {path}; every package is then checked against the key again, once",
        )
    return parsed
