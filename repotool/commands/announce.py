"""``repotool announce release | advisory | outbox | archive``: the announce list."""

from __future__ import annotations

import argparse
import os
import textwrap
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.announce.outbox import OutboxEntry
    from repotool.announce.render import Kind
    from repotool.cli import Context

HOW = """\
The message is rendered from the same records as the site and the errata
(web/content/), signed with the release key (PGP/MIME, RFC 3156) and put in
the outbox (<state_dir>/outbox/) as an .eml file; it is shown, not sent.
Read it, then run the same command with --send: the very message shown is
delivered to [announce] list_address over SMTP ([announce] smtp_host,
smtp_port, smtp_starttls, smtp_user; the password comes from
smtp_password_file or the environment variable named by smtp_password_env,
never from the command line).

Each announcement is sent once: a second --send is refused unless --force.
If the server cannot be reached, refuses the login or the recipient, or does
not answer within smtp_timeout, the message stays unsent in the outbox and a
later --send delivers it. Sent messages go to the public list archive
(public/lists/<list_name>/: archive.json, .eml files, archive.mbox).
"""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "announce",
        help="send signed release and advisory announcements to the list",
        description="Announce a release or a security advisory on the mailing list.\n\n" + HOW,
        epilog="examples:\n"
        "  repotool announce advisory PSSA-2014-0002          show it, keep it in the outbox\n"
        "  repotool announce advisory PSSA-2014-0002 --send   send it to the list\n"
        "  repotool announce release 3.3.2-2 --send           a respin, with its media\n"
        "  repotool announce outbox                           what is waiting, what was sent",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ann_sub = p.add_subparsers(dest="announce_command", metavar="ACTION", required=True)

    def sending_options(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--send",
            action="store_true",
            help="deliver the message over SMTP (default: only show it and keep it in the outbox)",
        )
        q.add_argument(
            "--force",
            action="store_true",
            help="send even though this announcement was sent before (a correction); "
            "the new message gets a new Message-ID",
        )

    rel = ann_sub.add_parser(
        "release",
        parents=[common],
        help="announce a release (3.3.2) or a respin of its media (3.3.2-2)",
        description=textwrap.fill(
            "Announce a release from web/content/releases/<version>.md: its notes, "
            "the advisories it includes and its live media with their SHA-256 checksums (read "
            "from public/releases/<version>/media.json). A respin version (3.3.2-2) announces "
            "the new media of that respin.",
            width=78,
        )
        + "\n\n"
        + HOW,
        epilog="examples:\n  repotool announce release 3.3.2\n"
        "  repotool announce release 3.3.2 --send\n"
        "  repotool announce release 3.3.2 --without-media   media not built yet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rel.add_argument(
        "version",
        metavar="VERSION",
        type=_version_arg,
        help="release or respin version, e.g. 3.3.2",
    )
    rel.add_argument(
        "--without-media",
        action="store_true",
        help="announce although media.json is missing: the message then says the media "
        "are not published yet instead of listing names and checksums",
    )
    sending_options(rel)
    rel.set_defaults(handler=release_command)

    adv = ann_sub.add_parser(
        "advisory",
        parents=[common],
        help="announce a security advisory (PSSA-YYYY-NNNN)",
        description=textwrap.fill(
            "Announce the advisory web/content/advisories/<ID>.md: what changed, who "
            "is affected, the exact steps (yum update, certificate regeneration, configuration "
            "lines), the fixed packages and a link to its page on the site.",
            width=78,
        )
        + "\n\n"
        + HOW,
        epilog="examples:\n  repotool announce advisory PSSA-2014-0001\n"
        "  repotool announce advisory PSSA-2014-0001 --send --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    adv.add_argument(
        "advisory_id", metavar="ID", type=_advisory_id_arg, help="advisory id, e.g. PSSA-2014-0001"
    )
    sending_options(adv)
    adv.set_defaults(handler=advisory_command)

    box = ann_sub.add_parser(
        "outbox",
        parents=[common],
        help="list the announcements in the outbox: unsent, sent, failed attempts",
        description=textwrap.fill(
            "List every announcement in the outbox (<state_dir>/outbox/), one line "
            "each: unsent or sent (and when), what it announces, its subject, and the last "
            "error of any failed --send.",
            width=78,
        ),
        epilog="examples:\n  repotool announce outbox\n  repotool announce outbox --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    box.set_defaults(handler=outbox_command)

    arc = ann_sub.add_parser(
        "archive",
        parents=[common],
        help="write the public list archive again from the sent record",
        description=textwrap.fill(
            "Write public/lists/<list_name>/ (archive.json, the .eml files, "
            "archive.mbox) from the messages the outbox records as sent, e.g. after public/ "
            "was rebuilt. Messages already in the archive are kept.",
            width=78,
        ),
        epilog="examples:\n  repotool announce archive",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arc.set_defaults(handler=archive_command)


def _version_arg(text: str) -> str:
    """Checked at once: the version names files (outbox, archive) and the subject."""
    from repotool.records.terms import RELEASE_VERSION_RE, RESPIN_VERSION_RE

    if not (RELEASE_VERSION_RE.match(text) or RESPIN_VERSION_RE.match(text)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a release or respin version: write e.g. 3.3.2 or 3.3.2-2"
        )
    return text


def _advisory_id_arg(text: str) -> str:
    from repotool.records.terms import ADVISORY_ID_RE

    if not ADVISORY_ID_RE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an advisory id: write PSSA-<year>-<number>, e.g. PSSA-2014-0001"
        )
    return text


def release_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    return _announce(args, ctx, "release", args.version)


def advisory_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    return _announce(args, ctx, "advisory", args.advisory_id)


def _entry_json(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "ref": entry.ref,
        "subject": entry.subject,
        "message_id": entry.message_id,
        "date": entry.date,
        "status": entry.status,
        "sent_at": entry.sent_at,
        "attempts": [{"time": a.time, "error": a.error} for a in entry.attempts],
        "file": entry.file,
    }


def _announce(args: argparse.Namespace, ctx: Context, kind: Kind, ref: str) -> dict[str, Any]:
    import secrets

    from repotool.announce.delivery import SmtplibTransport, smtp_settings
    from repotool.announce.flow import (
        archive_dir,
        compose,
        deliver,
        headers_for,
        outbox_for,
        prepare,
        refuse_if_sent,
        sent_before,
    )
    from repotool.signing.release_key import open_signer

    cfg = ctx.config
    outbox = outbox_for(cfg)
    command = f"repotool announce {kind} {ref}"
    if args.send and not args.force:
        refuse_if_sent(cfg, outbox, kind, ref, command)  # before any signing work
    # a missing password is found before the message is signed, not after
    settings = smtp_settings(cfg, os.environ) if args.send else None
    signer = open_signer(cfg, ctx.runner, ctx.reporter)
    ann = compose(
        cfg,
        kind,
        ref,
        signer.fingerprint,
        without_media=getattr(args, "without_media", False),
    )
    previous = sent_before(cfg, outbox, kind, ref)
    if previous and not args.send:
        last = previous[-1]
        return {
            "kind": kind,
            "ref": ref,
            "subject": ann.subject,
            "status": "sent",
            "message_id": last.message_id,
            "sent": False,
            "already_sent": last.date,
            "text": ann.text,
            "summary": f"Subject: {ann.subject}\n\n{ann.text}\n"
            f"This {kind} was announced already on {last.date} ({last.message_id}); "
            f"nothing was written. To send it again: {command} --send --force",
        }
    prepared = prepare(cfg, ann, signer, outbox, now=time.time(), token=secrets.token_hex(8))
    entry = prepared.entry
    shown = "".join(
        f"{name}: {value}\n" for name, value in headers_for(cfg, ann, entry.message_id, entry.date)
    )
    result: dict[str, Any] = {
        **_entry_json(entry),
        "from": cfg.announce.from_address,
        "to": cfg.announce.list_address,
        "outbox": str(prepared.path),
        "reused": prepared.reused,
        "sent": False,
        "text": ann.text,
    }
    if settings is None:
        kept = "kept (unchanged) in" if prepared.reused else "saved to"
        result["summary"] = (
            f"{shown}\n{ann.text}\nSigned with {signer.fingerprint}; {kept} the outbox as "
            f"{prepared.path} (not sent).\nSend it with: {command} --send"
        )
        return result
    ctx.reporter.info(
        f"Sending {entry.message_id} to {cfg.announce.list_address} via "
        f"{settings.host}:{settings.port} ..."
    )
    done = deliver(
        cfg,
        outbox,
        prepared,
        SmtplibTransport(settings),
        now=time.time(),
        force=args.force,
        command=command,
    )
    result.update(_entry_json(done))
    result["sent"] = True
    result["archive"] = str(archive_dir(cfg))
    if (cfg.public_dir / "index.html").is_file():
        # the exported site carries the list archive pages: bring them up to date
        from repotool.site.export import build_site
        from repotool.site.key_inspection import GpgKeyInspector

        keys = GpgKeyInspector(ctx.runner)
        result["site"] = build_site(cfg, ctx.reporter, keys=keys).to_json()
    result["summary"] = (
        f"Sent '{done.subject}' to {cfg.announce.list_address} as {done.message_id}; "
        f"archived in {archive_dir(cfg)}"
    )
    return result


def outbox_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.announce.flow import outbox_for

    outbox = outbox_for(ctx.config)
    entries = outbox.entries()
    lines = []
    for e in entries:
        note = f" ({len(e.attempts)} failed: {e.attempts[-1].error})" if e.attempts else ""
        when = e.sent_at if e.status == "sent" else e.date_iso
        lines.append(f"{e.status:7} {when}  {e.kind} {e.ref}  {e.subject}{note}")
    summary = "\n".join(lines) if lines else f"The outbox ({outbox.folder}) is empty."
    return {
        "outbox": str(outbox.folder),
        "entries": [_entry_json(e) for e in entries],
        "summary": summary,
    }


def archive_command(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.announce.archive import read_index
    from repotool.announce.flow import outbox_for, publish_archive

    folder = publish_archive(ctx.config, outbox_for(ctx.config))
    n = len(read_index(folder))
    return {
        "archive": str(folder),
        "messages": n,
        "summary": f"Wrote the list archive {folder} ({n} message{'s' if n != 1 else ''})",
    }
