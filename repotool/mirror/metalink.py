"""Pure rendering of the yum ``mirrorlist`` and ``metalink`` (MirrorManager's
metalink 3.0 dialect that yum and dnf/librepo read).

librepo downloads repomd.xml from the listed mirrors in order of preference
and accepts a mirror only if its repomd.xml matches the size and hashes given
here (or one of the recent alternates): a stale or tampered mirror is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

HASHES = ("md5", "sha1", "sha256", "sha512")


@dataclass(frozen=True)
class RepomdDigest:
    """One repomd.xml generation as a metalink describes it."""

    timestamp: int
    size: int
    hashes: tuple[tuple[str, str], ...]  #: (name, hex) in HASHES order
    #: when a newer repomd.xml replaced this one (None: it is current)
    superseded_at: int | None = None

    @property
    def sha256(self) -> str:
        return dict(self.hashes)["sha256"]

    def to_json(self) -> dict[str, object]:
        return {
            "timestamp": self.timestamp,
            "size": self.size,
            "hashes": dict(self.hashes),
            "superseded_at": self.superseded_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RepomdDigest:
        hashes = data["hashes"]
        assert isinstance(hashes, dict)
        sup = data.get("superseded_at")
        return cls(
            timestamp=int(str(data["timestamp"])),
            size=int(str(data["size"])),
            hashes=tuple((h, str(hashes[h])) for h in HASHES),
            superseded_at=int(str(sup)) if sup is not None else None,
        )


@dataclass(frozen=True)
class Resource:
    url: str  #: the mirror's repomd.xml URL
    location: str  #: ISO country code
    preference: int  #: 1..100, higher first


def digest_repomd(data: bytes, timestamp: int) -> RepomdDigest:
    return RepomdDigest(
        timestamp=timestamp,
        size=len(data),
        hashes=tuple((h, hashlib.new(h, data).hexdigest()) for h in HASHES),
    )


def update_history(
    history: Sequence[RepomdDigest], current: RepomdDigest, *, now: int, keep_seconds: int
) -> tuple[list[RepomdDigest], list[RepomdDigest]]:
    """Record ``current``; return (new history, alternates still within ``keep_seconds``
    of being superseded, newest first)."""
    older: list[RepomdDigest] = []
    for d in history:
        if d.sha256 == current.sha256:
            continue
        sup = d.superseded_at if d.superseded_at is not None else now
        if now - sup <= keep_seconds:
            older.append(RepomdDigest(d.timestamp, d.size, d.hashes, sup))
    older.sort(key=lambda d: (d.superseded_at or 0, d.timestamp), reverse=True)
    return [current, *older], older


def render_mirrorlist(base_urls: Sequence[str]) -> str:
    """yum's mirrorlist: one repository base URL a line, best first."""
    return "".join(f"{u}\n" for u in base_urls)


def _file_block(d: RepomdDigest, indent: str) -> str:
    hashes = "".join(f'{indent}  <hash type="{h}">{v}</hash>\n' for h, v in d.hashes)
    return (
        f"{indent}<mm0:timestamp>{d.timestamp}</mm0:timestamp>\n"
        f"{indent}<size>{d.size}</size>\n"
        f"{indent}<verification>\n{hashes}{indent}</verification>\n"
    )


def render_metalink(
    current: RepomdDigest,
    alternates: Sequence[RepomdDigest],
    resources: Sequence[Resource],
    *,
    generated: int,
) -> str:
    pubdate = format_datetime(datetime.fromtimestamp(generated, UTC), usegmt=True)
    alt = ""
    if alternates:
        alt = (
            "    <mm0:alternates>\n"
            + "".join(
                "      <mm0:alternate>\n" + _file_block(a, "        ") + "      </mm0:alternate>\n"
                for a in alternates
            )
            + "    </mm0:alternates>\n"
        )
    urls = "".join(
        f'      <url protocol="{r.url.split(":", 1)[0]}" type="{r.url.split(":", 1)[0]}" '
        + (f'location="{escape(r.location)}" ' if r.location else "")
        + f'preference="{r.preference}">{escape(r.url)}</url>\n'
        for r in resources
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" '
        f'pubdate="{pubdate}" generator="repotool" '
        'xmlns:mm0="http://fedorahosted.org/mirrormanager">\n'
        "  <files>\n"
        '    <file name="repomd.xml">\n'
        + _file_block(current, "      ")
        + alt
        + f'      <resources maxconnections="1">\n{urls}      </resources>\n'
        "    </file>\n"
        "  </files>\n"
        "</metalink>\n"
    )
