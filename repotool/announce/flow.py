"""The announce flow: records → signed message in the outbox → SMTP → list archive.

A thin shell around the pure parts (:mod:`.render`, :mod:`.pgpmime`): it reads
the records and media.json, asks the release key for a signature, writes the
outbox and the archive, and hands the message to the transport it is given.
The clock and the random token come in as arguments, so callers (and tests)
decide them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from repotool.announce.archive import ArchiveEntry, read_index, write_archive
from repotool.announce.delivery import SmtpTransport
from repotool.announce.outbox import Outbox, OutboxEntry
from repotool.announce.pgpmime import sign_message
from repotool.announce.render import (
    Announcement,
    Kind,
    Links,
    find_advisory,
    find_release,
    parse_media_list,
    render_advisory,
    render_release,
)
from repotool.config import Config
from repotool.errors import AlreadySentError, DeliveryError, MediaListMissingError
from repotool.media.manifest import MediaManifest
from repotool.records.loading import load_records


class ReleaseKey(Protocol):
    """What the flow needs of ``repotool.signing.signer.Signer``."""

    @property
    def fingerprint(self) -> str: ...
    def detach_sign(self, data: bytes) -> bytes: ...
    def verify_detached(self, data: bytes, signature: bytes) -> None: ...


def links_for(cfg: Config) -> Links:
    return Links(
        site_url=cfg.site.base_url,
        download_url=cfg.publish.base_url,
        key_name=cfg.key.public_key_name,
        list_name=cfg.announce.list_name,
        product=cfg.product,
    )


def outbox_for(cfg: Config) -> Outbox:
    return Outbox(cfg.state / "outbox")


def archive_dir(cfg: Config) -> Path:
    return cfg.public_dir / "lists" / cfg.announce.list_name


def media_list_path(cfg: Config, version: str) -> Path:
    return cfg.public_dir / "releases" / version / "media.json"


def read_media_list(cfg: Config, version: str, *, without_media: bool) -> MediaManifest | None:
    """media.json of ``version``; when it is absent, refuse unless told to go without."""
    path = media_list_path(cfg, version)
    if not path.exists():
        if without_media:
            return None
        raise MediaListMissingError(
            "the live media of this release are not published, so the message cannot "
            "name them with their SHA-256 checksums",
            where=str(path),
            hint=f"build them first (repotool media build {version}), or announce without "
            "them: add --without-media and the message says they are not published yet",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MediaListMissingError(
            f"cannot read the media list: {e}",
            where=str(path),
            hint=f"rebuild the media with: repotool media build {version}",
        ) from e
    return parse_media_list(text, where=str(path), version=version)


def compose(
    cfg: Config, kind: Kind, ref: str, fingerprint: str, *, without_media: bool = False
) -> Announcement:
    """Render the announcement of advisory ``ref`` or release ``ref`` from the records."""
    content = cfg.path(cfg.site.content_dir)
    records = load_records(content)
    links = links_for(cfg)
    if kind == "advisory":
        return render_advisory(find_advisory(records, ref, where=str(content)), links, fingerprint)
    find_release(records, ref, where=str(content))
    media = read_media_list(cfg, ref, without_media=without_media)
    return render_release(records, ref, media, links, fingerprint, where=str(content))


def iso_utc(now: float, *, precise: bool = False) -> str:
    """ISO 8601 UTC; ``precise`` keeps microseconds, to order sends within a second."""
    stamp = datetime.fromtimestamp(now, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ")


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _archived(e: OutboxEntry) -> ArchiveEntry:
    """The archive's view of a sent entry: its date to the second."""
    date = iso_utc(_moment(e.sent_at or e.date_iso).timestamp())
    return ArchiveEntry(e.message_id, e.subject, date, e.kind, e.ref, e.file)


def headers_for(
    cfg: Config, ann: Announcement, message_id: str, date: str
) -> list[tuple[str, str]]:
    a = cfg.announce
    return [
        ("From", a.from_address),
        ("To", a.list_address),
        ("Subject", ann.subject),
        ("Date", date),
        ("Message-ID", message_id),
        ("List-Id", f"{cfg.product} announcements <{a.list_id}>"),
    ]


def _digest(cfg: Config, ann: Announcement) -> str:
    a = cfg.announce
    said = "\n".join([a.from_address, a.list_address, a.list_id, ann.subject, ann.text])
    return hashlib.sha256(said.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Prepared:
    entry: OutboxEntry
    path: Path
    message: bytes
    #: the outbox already held this very message (same text, same Message-ID)
    reused: bool


def prepare(
    cfg: Config, ann: Announcement, key: ReleaseKey, outbox: Outbox, *, now: float, token: str
) -> Prepared:
    """Put the signed message in the outbox (or keep the one there if it says the same).

    The signature is checked with gpgv against the published key before the
    message is stored, so a message that would not verify is never sent.
    """
    digest = _digest(cfg, ann)
    pending = outbox.pending(ann.kind, ann.ref)
    if pending is not None:
        if pending.digest == digest:
            return Prepared(pending, outbox.eml(pending), outbox.message(pending), True)
        outbox.discard(pending)  # the records changed: the old text must not go out
    stamp = datetime.fromtimestamp(now, UTC)
    stem = f"{ann.kind}-{ann.ref}-{stamp:%Y%m%dT%H%M%SZ}-{token[:8]}"
    domain = parseaddr(cfg.announce.from_address)[1].rpartition("@")[2] or "localhost"
    # short enough that the header is never folded (some tools mishandle that)
    message_id = f"<{stamp:%Y%m%d%H%M%S}.{token[:12]}.repotool@{domain}>"
    date = format_datetime(stamp)
    headers = headers_for(cfg, ann, message_id, date)
    message, part, signature = sign_message(headers, ann.text, key, f"=-repotool-{token}")
    key.verify_detached(part, signature)
    entry = OutboxEntry(
        stem=stem,
        kind=ann.kind,
        ref=ann.ref,
        subject=ann.subject,
        message_id=message_id,
        date=date,
        date_iso=iso_utc(now),
        digest=digest,
    )
    path = outbox.save(entry, message)
    return Prepared(entry, path, message, False)


def sent_before(cfg: Config, outbox: Outbox, kind: str, ref: str) -> list[ArchiveEntry]:
    """Every earlier send of this announcement, from the outbox and the public archive."""
    seen: dict[str, ArchiveEntry] = {}
    for e in outbox.sent(kind, ref):
        seen[e.message_id] = _archived(e)
    for a in read_index(archive_dir(cfg)):
        if (a.kind, a.ref) == (kind, ref):
            seen.setdefault(a.message_id, a)
    return sorted(seen.values(), key=lambda a: _moment(a.date))


def refuse_if_sent(cfg: Config, outbox: Outbox, kind: str, ref: str, command: str) -> None:
    previous = sent_before(cfg, outbox, kind, ref)
    if previous:
        last = previous[-1]
        raise AlreadySentError(
            f"the {kind} {ref} was announced already, on {last.date} as {last.message_id}",
            where=str(archive_dir(cfg) / "archive.json"),
            hint=f"to send it again anyway (a correction, say): {command} --send --force",
        )


def deliver(
    cfg: Config,
    outbox: Outbox,
    prepared: Prepared,
    transport: SmtpTransport,
    *,
    now: float,
    force: bool,
    command: str,
) -> OutboxEntry:
    """Send the prepared message once; on failure it stays unsent in the outbox."""
    entry = prepared.entry
    with outbox.lock():
        if not force:
            refuse_if_sent(cfg, outbox, entry.kind, entry.ref, command)
        sender = parseaddr(cfg.announce.from_address)[1]
        recipient = parseaddr(cfg.announce.list_address)[1]
        try:
            transport.send(sender, [recipient], prepared.message)
        except DeliveryError as e:
            outbox.failed(entry, iso_utc(now, precise=True), e.what)
            raise type(e)(
                e.what,
                where=e.where,
                hint=f"{e.hint}. The message stays unsent in the outbox ({prepared.path}); "
                f"send it later with: {command} --send",
            ) from e
        done = outbox.mark_sent(entry, iso_utc(now, precise=True))
        publish_archive(cfg, outbox)
        return done


def publish_archive(cfg: Config, outbox: Outbox) -> Path:
    """Write public/lists/<list>/ from the sent record, keeping archived messages
    the outbox no longer knows (a state folder that was lost)."""
    folder = archive_dir(cfg)
    # message id -> (when, archive entry, bytes); the outbox knows the exact moment
    messages: dict[str, tuple[datetime, ArchiveEntry, bytes]] = {}
    for a in read_index(folder):
        path = folder / a.file
        if path.exists():
            messages[a.message_id] = (_moment(a.date), a, path.read_bytes())
    for e in outbox.sent():
        messages[e.message_id] = (_moment(e.sent_at), _archived(e), outbox.message(e))
    ordered = [(a, raw) for _, a, raw in sorted(messages.values(), key=lambda m: (m[0], m[1].file))]
    write_archive(folder, ordered, parseaddr(cfg.announce.from_address)[1] or "MAILER-DAEMON")
    return folder
