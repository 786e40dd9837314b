"""``repotool key``: the release key's lifecycle (status, rotation); see docs/keys.md."""

from __future__ import annotations

import argparse
import datetime as dt
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repotool.cli import Context


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2027-01-31") from e


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "key",
        help="the release key: where it is trusted, when it expires, rotating it",
        description=textwrap.fill(
            "Show the release key(s) and every place hosts learn them from, or move to a new "
            "key without any host needing a key imported by hand (docs/keys.md).",
            width=78,
        ),
        epilog="examples:\n  repotool key status\n\n"
        "actions: status, rotate, retire, compromised\n"
        "(see 'repotool key ACTION --help' and docs/keys.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    status = keys.add_parser(
        "status",
        parents=[common],
        help="the key(s), algorithm, expiry, and where each is trusted",
        description=textwrap.fill(
            "For each release key: algorithm, creation and expiry, its role (signs now, old "
            "or new key of a rotation) and where hosts find it: public/keys/, the published "
            ".repo file's gpgkey= list, and the key files and .repo inside the newest "
            "release package of each repository.",
            width=78,
        ),
        epilog="examples:\n  repotool key status\n  repotool key status --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.set_defaults(handler=run_status)
    rotate = keys.add_parser(
        "rotate",
        parents=[common],
        help="start moving to a new key: the release package ships both (phase 1)",
        description=textwrap.fill(
            "Phase 1 of a key rotation: checks the new key (in the release keyring, strong, "
            "not expiring before the switch date, makes a test signature), cross-signs the "
            "two keys, bumps the release package's spec so it ships both keys, and records the "
            "rotation in the state folder. The next 'repotool release' publishes it, signed "
            "with the old key; from the switch date on, the new key signs.",
            width=78,
        ),
        epilog="examples:\n  repotool key rotate --new release-2027@example.org\n"
        "  (--new takes the fingerprint, or a user id that names one key of the keyring)\n"
        "  repotool key rotate --resign   # after the switch date: before 'key retire'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = rotate.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--new",
        metavar="KEY",
        help="the new key: its fingerprint, or a user id naming one key in the release keyring",
    )
    what.add_argument(
        "--resign",
        action="store_true",
        help="from the switch date on: publish every retained package re-signed by the new "
        "key, each under its own name (<file>.key-<ID>.rpm), in a new metadata generation",
    )
    rotate.add_argument(
        "--switch-date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="the day the new key starts signing (default: 30 days from today)",
    )
    rotate.set_defaults(handler=run_rotate)
    retire = keys.add_parser(
        "retire",
        parents=[common],
        help="end a rotation: the release package ships only the new key (phase 3)",
        description=textwrap.fill(
            "After the switch date: checks that every package the repositories publish "
            "carries the new key's signature, then bumps the release package's spec so it "
            "ships only the new key and ends the rotation. The next 'repotool release' "
            "publishes it; public/keys/ and the .repo then name only the new key.",
            width=78,
        ),
        epilog="examples:\n  repotool key retire 8C299CB0...  # the old key's fingerprint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    retire.add_argument("old", metavar="OLD", help="the old key: fingerprint or user id")
    retire.set_defaults(handler=run_retire)
    bad = keys.add_parser(
        "compromised",
        parents=[common],
        help="a release key is compromised: revoke it, re-sign everything, tell hosts",
        description=textwrap.fill(
            "OLD must be the old key of a rotation whose release package (both keys) is "
            "published. Imports and publishes OLD's revocation certificate (public/keys/, "
            "beside the key), ends the rotation at once, re-signs every retained package "
            "with the new key, refuses from then on to publish anything OLD signed, "
            "publishes a release package that removes OLD from the hosts' rpm database, "
            "writes the advisory (web/content/advisories/) and puts its announcement, signed "
            "with the new key, in the outbox (not sent).",
            width=78,
        ),
        epilog="examples:\n  repotool key compromised 8C299CB0...  # the old key's fingerprint\n"
        "  repotool key compromised OLD --revocation OLD.rev",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bad.add_argument("old", metavar="OLD", help="the compromised key: fingerprint or user id")
    bad.add_argument(
        "--revocation",
        metavar="FILE",
        help="its revocation certificate (default: the one gpg made with the key, "
        "openpgp-revocs.d/OLD.rev in the release keyring)",
    )
    bad.set_defaults(handler=run_compromised)


def run_status(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    import time

    from repotool.signing.key_status import key_status

    now = time.time()
    status = key_status(ctx.config, ctx.runner, now=now)
    for warning in status.warnings:
        ctx.reporter.warn(warning)
    return {"summary": status.summary(now), **status.to_json(now)}


def run_rotate(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.repo.repository import publish_lock
    from repotool.signing.keyring import today
    from repotool.signing.release_key import open_signer
    from repotool.signing.rotation import start_rotation

    cfg = ctx.config
    day = today()
    if args.resign:
        return _resign(ctx, day)
    switch = args.switch_date or day + dt.timedelta(days=30)
    with publish_lock(cfg):
        signer = open_signer(cfg, ctx.runner, ctx.reporter)
        started = start_rotation(cfg, signer, args.new, switch, ctx.reporter, today=day)
    rot = started.rotation
    return {
        "summary": (
            f"Rotation started: {rot.old} signs until {rot.switch_date}, then {rot.new}.\n"
            f"The release package ({started.release}) now ships both keys: publish it "
            f"with 'repotool release' well before {rot.switch_date}, and commit {started.spec}."
        ),
        "old": rot.old,
        "new": rot.new,
        "switch_date": rot.switch_date.isoformat(),
        "spec": str(started.spec),
        "release": started.release,
    }


def run_retire(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.repo.repository import publish_lock
    from repotool.signing.keyring import today
    from repotool.signing.release_key import open_signer
    from repotool.signing.rotation import retire_key

    cfg = ctx.config
    with publish_lock(cfg):
        signer = open_signer(cfg, ctx.runner, ctx.reporter)
        done = retire_key(cfg, signer, args.old, ctx.reporter, today=today())
    return {
        "summary": (
            f"Retired {done.old}: all {done.checked} published packages carry the new key's "
            f"signature. The release package ({done.release}) now ships only "
            f"{done.new}: publish it with 'repotool release', and commit {done.spec}."
        ),
        "old": done.old,
        "new": done.new,
        "spec": str(done.spec),
        "release": done.release,
    }


def _resign(ctx: Context, day: dt.date) -> dict[str, Any]:
    from repotool.signing.resign import resign_and_publish

    done = resign_and_publish(
        ctx.config, ctx.runner, ctx.reporter, where="repotool key rotate --resign", today=day
    )
    copies = done.copies
    where = ", ".join(done.release.published) or "nothing new"
    return {
        "summary": (
            f"Re-signed {copies.resigned} of the {copies.checked} packages the repositories "
            f"publish with {done.fingerprint}; published {where} "
            "(each re-signed package under its own name; the older files stay while older "
            "metadata generations live)."
        ),
        "fingerprint": done.fingerprint,
        "checked": copies.checked,
        "resigned": copies.resigned,
        **done.release.to_json(),
    }


def run_compromised(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from pathlib import Path

    from repotool.signing.compromise import compromise_key
    from repotool.signing.keyring import today

    done = compromise_key(
        ctx.config,
        ctx.runner,
        ctx.reporter,
        args.old,
        revocation=Path(args.revocation) if args.revocation else None,
        today=today(),
    )
    where = ", ".join(done.published) or "nothing new"
    return {
        "summary": (
            f"{done.old} is revoked and out of service; {done.new} signs. Re-signed "
            f"{done.resigned} packages and published {where}.\n"
            f"The advisory {done.advisory_id} is in {done.advisory}; its announcement (signed "
            f"with {done.new}) waits in {done.announcement}: send it with "
            f"'repotool announce advisory {done.advisory_id} --send'.\n"
            f"Commit {done.spec} and {done.advisory}."
        ),
        "old": done.old,
        "new": done.new,
        "advisory": str(done.advisory),
        "advisory_id": done.advisory_id,
        "announcement": str(done.announcement) if done.announcement else None,
        "published": done.published,
        "resigned": done.resigned,
        "spec": str(done.spec),
    }
