"""The outbox: every announcement message, and whether it was sent.

``<state>/outbox/`` holds one ``<stem>.eml`` (the exact bytes that are or
will be sent) and one ``<stem>.json`` beside it::

    {"stem", "kind", "ref", "subject", "message_id", "date", "digest",
     "status": "unsent" | "sent", "sent_at", "attempts": [{"time", "error"}]}

This folder is the **sent record**: an entry with status ``sent`` makes the
next ``--send`` of the same kind and ref refuse (unless ``--force``).  The
public list archive is written from it and can be written again from it
(``repotool announce archive``).  There is at most one unsent entry per
announcement; rendering again replaces it only if the text changed, so the
message that was shown is the message that is sent.

All writes are temp-then-rename; a lock file serialises sends.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from repotool.atomic import write_atomic
from repotool.errors import AnnounceError


@dataclass(frozen=True)
class Attempt:
    time: str
    error: str


@dataclass(frozen=True)
class OutboxEntry:
    stem: str
    kind: str
    ref: str
    subject: str
    message_id: str
    #: the message's Date header (RFC 5322) and the same moment in ISO 8601 UTC
    date: str
    date_iso: str
    #: SHA-256 of what the message says (subject and text), to spot changed records
    digest: str
    status: str = "unsent"
    sent_at: str = ""
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)

    @property
    def file(self) -> str:
        return f"{self.stem}.eml"

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboxEntry:
        attempts = tuple(Attempt(**a) for a in data.get("attempts", ()))
        return cls(**{**data, "attempts": attempts})


class Outbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def eml(self, entry: OutboxEntry) -> Path:
        return self.folder / entry.file

    def entries(self) -> list[OutboxEntry]:
        """Every entry, oldest first."""
        out: list[OutboxEntry] = []
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob("*.json")):
            try:
                out.append(OutboxEntry.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError, AttributeError) as e:
                # AttributeError, TypeError: valid JSON that is not an entry's object
                raise AnnounceError(
                    f"the outbox entry cannot be read: {e}",
                    where=str(path),
                    hint="remove it and its .eml if it is not needed, or restore it from a copy",
                ) from e
        return sorted(out, key=lambda e: (e.date_iso, e.stem))

    def pending(self, kind: str, ref: str) -> OutboxEntry | None:
        return next(
            (e for e in self.entries() if (e.kind, e.ref, e.status) == (kind, ref, "unsent")),
            None,
        )

    def sent(self, kind: str | None = None, ref: str | None = None) -> list[OutboxEntry]:
        return [
            e
            for e in self.entries()
            if e.status == "sent" and (kind is None or (e.kind, e.ref) == (kind, ref))
        ]

    def message(self, entry: OutboxEntry) -> bytes:
        path = self.eml(entry)
        try:
            return path.read_bytes()
        except OSError as e:
            raise AnnounceError(
                f"the message file is missing: {e.strerror}",
                where=str(path),
                hint="render the announcement again (without --send) to rebuild it",
            ) from e

    def save(self, entry: OutboxEntry, message: bytes) -> Path:
        """The message first, then its entry: an entry always has its message."""
        write_atomic(self.eml(entry), message)
        self.update(entry)
        return self.eml(entry)

    def update(self, entry: OutboxEntry) -> None:
        write_atomic(self.folder / f"{entry.stem}.json", entry.to_json())

    def discard(self, entry: OutboxEntry) -> None:
        (self.folder / f"{entry.stem}.json").unlink(missing_ok=True)
        self.eml(entry).unlink(missing_ok=True)

    def failed(self, entry: OutboxEntry, when: str, error: str) -> OutboxEntry:
        done = replace(entry, attempts=(*entry.attempts, Attempt(when, error)))
        self.update(done)
        return done

    def mark_sent(self, entry: OutboxEntry, when: str) -> OutboxEntry:
        done = replace(entry, status="sent", sent_at=when)
        self.update(done)
        return done

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One sender at a time, so an announcement cannot go out twice in a race."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / ".lock"
        with path.open("a") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                raise AnnounceError(
                    "another 'repotool announce --send' is running",
                    where=str(path),
                    hint="wait for it to finish, then check 'repotool announce outbox'",
                ) from e
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
