"""``repotool key compromised OLD``: take a compromised release key out of service.

The way out needs a key hosts trust already: the new key of a rotation whose
phase-1 release package (both keys, signed by OLD) is published.  Then, before
anything is published, every check; after them, in this order:

1. OLD's revocation certificate is imported into the release keyring and kept in
   the state folder; OLD is recorded compromised (:mod:`repotool.signing.revocation`),
   so no later publish names a package it signed;
2. the release package's spec ships only the new key and lists OLD's short id in
   ``removed_keys`` (its ``%posttrans`` removes OLD from the host's rpm database:
   rpm 4.18 accepts packages signed by a key whose revocation it imported); the
   rotation ends at once (no switch date, no grace period);
3. an advisory record naming both fingerprints is written with the authoring code;
4. every retained package is re-signed and published with the new release package,
   OLD's key (with its revocation) and the certificate in public/keys/
   (:mod:`repotool.signing.resign`);
5. the announcement of the advisory, signed with the new key, waits in the outbox.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import KeyRotationError, RecordInvalidError
from repotool.process import Runner
from repotool.report import Reporter
from repotool.signing.lifecycle import KeyInfo, Rotation, rotation_key_name, spec_for_keys
from repotool.signing.signer import GPG

RELEASE_PACKAGE = "perfsonar-release"


def check_compromise(
    *,
    old_fpr: str,
    old: KeyInfo | None,
    rotation: Rotation | None,
    configured: str,
    development: bool,
    new_published: bool,
    revocation: Path | None,
    where: str,
) -> Rotation:
    """Pure: refuse, with the reason and the fix, unless hosts can move to a new key."""
    if old is None:
        raise KeyRotationError(
            f"no key {old_fpr} in the release keyring",
            where=where,
            hint="name the compromised key by its 40-digit fingerprint ('repotool key status' "
            "lists the release keys)",
        )
    if rotation is None and old_fpr != configured:
        raise KeyRotationError(
            f"{old_fpr} neither signs now nor takes part in a key rotation",
            where=where,
            hint="name the release key that signs now ('repotool key status'); a key retired "
            "before was already removed from hosts by the retire's release package",
        )
    if rotation is None:
        raise KeyRotationError(
            f"{old_fpr} is the only release key: hosts have no new key to trust instead",
            where=where,
            hint="make a new key, then 'repotool key rotate --new NEW --switch-date <tomorrow>' "
            "and 'repotool release' (hosts get the new key from that release package), then "
            "run this again; hosts that never install it must import the new key by hand "
            "(docs/keys.md)",
        )
    if old_fpr == rotation.new:
        raise KeyRotationError(
            f"{old_fpr} is the new key of the rotation from {rotation.old}",
            where=where,
            hint="end that rotation first (delete the state file 'repotool key status' names "
            "and restore the release spec), then rotate to another new key",
        )
    if old_fpr != rotation.old:
        raise KeyRotationError(
            f"{old_fpr} is not a release key: the rotation is from {rotation.old} to "
            f"{rotation.new}",
            where=where,
            hint=f"repotool key compromised {rotation.old}",
        )
    if not development and configured != rotation.new:
        raise KeyRotationError(
            f"[key] fingerprint still names the compromised key {configured}",
            where=where,
            hint=f'set fingerprint = "{rotation.new}" in [key] of repotool.toml, then run '
            "this again",
        )
    if not new_published:
        raise KeyRotationError(
            f"the release package that gives hosts the new key {rotation.new} is not published yet",
            where=where,
            hint="publish it first with 'repotool release' (it is signed by the old key, the "
            "only one hosts trust), then run this again",
        )
    if revocation is None:
        raise KeyRotationError(
            f"no revocation certificate for {old_fpr}",
            where=where,
            hint=f"make one (gpg --gen-revoke {old_fpr} > OLD.rev, on the machine that holds "
            "the key) and pass it with --revocation OLD.rev",
        )
    return rotation


def advisory_text(
    advisory_id: str,
    *,
    today: dt.date,
    old: str,
    new: str,
    version: str,
    fixed_in: str,
    release_evrs: Mapping[str, str],
    key_url: str,
) -> str:
    """Pure: the advisory record of a key compromise, from ``advisory new``'s template."""
    from repotool.records.authoring import scaffold_advisory
    from repotool.records.screening import PLACEHOLDER, TEMPLATE_TEXT

    text = scaffold_advisory(
        advisory_id,
        today=today,
        targets=list(release_evrs),
        severity="Critical",
        title=f"Release signing key {old[-8:]} compromised; packages re-signed with {new[-8:]}",
        affected=[version],
    )
    fill = {k: f"{PLACEHOLDER}: {v}" for k, v in TEMPLATE_TEXT.items()}
    text = text.replace(
        'summary: ""',
        f'summary: "The release signing key {old} is compromised. Every package is '
        f"re-signed with the release key {new}; hosts drop the old key with the new "
        f'{RELEASE_PACKAGE} package."',
        1,
    )
    for line in text.splitlines():
        if line.startswith("cves: []"):
            text = text.replace(
                line,
                "cves: []\ncves_none_reason: a signing key compromise has no CVE\n"
                f"update_command: yum update {RELEASE_PACKAGE}",
                1,
            )
    fixed = next(ln for ln in text.splitlines() if ln.startswith("fixed_in:"))
    text = text.replace(fixed, f'fixed_in: "{fixed_in}"', 1)
    for target, evr in release_evrs.items():
        head = f"  {target}: []"
        line = next(ln for ln in text.splitlines() if ln.startswith(head))
        text = text.replace(
            line, f"  {target}:\n    - name: {RELEASE_PACKAGE}\n      evr: {evr}", 1
        )
    text = text.replace(
        fill["Description"],
        f"The private half of the release signing key\n\n    {old}\n\n"
        "is compromised: whoever holds it can sign packages and repository metadata that "
        "hosts trusting it accept. It is revoked; its revocation certificate is published "
        f"beside the key ({key_url}-{old[-8:]}.rev). Every package the repositories publish "
        f"is now signed with the release key\n\n    {new}\n\nand so is the repository "
        "metadata.",
    )
    text = text.replace(
        fill["Impact"],
        "A host that still trusts the old key accepts a package an attacker signed with it. "
        "rpm does not refuse packages signed by a revoked key it imported: the key must "
        "leave the host's rpm database.",
    )
    text = text.replace(
        fill["Remediation"],
        f"Update the {RELEASE_PACKAGE} package (dnf imports the new key from the file the "
        "previous release package installed); it removes the old key from the rpm database "
        f"(rpm -q gpg-pubkey-{old[-8:].lower()} then reports it is not installed). Check "
        f"that the new key's fingerprint is {new}:",
    )
    return text.replace(
        "```\nyum update\n```",
        f"```\nyum update {RELEASE_PACKAGE}\nrpm -q gpg-pubkey-{old[-8:].lower()}   "
        "# package gpg-pubkey-... is not installed\n```",
        1,
    )


def revocation_certificate(home: Path, fingerprint: str, given: Path | None) -> bytes | None:
    """The certificate given, or the one gpg made with the key (openpgp-revocs.d/),
    made importable (gpg stores it with a ':' before its armor line)."""
    path = given or home / "openpgp-revocs.d" / f"{fingerprint}.rev"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return text.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK", "-----BEGIN PGP PUBLIC KEY BLOCK"
    ).encode()


_REVOCATION = re.compile(
    r":signature packet: algo \d+, keyid ([0-9A-F]{16})\n\s+version \d+, "
    r"created \d+, md5len \d+, sigclass 0x20"
)


def revocation_issuer(cert: bytes, runner: Runner) -> str | None:
    """The key id (16 hex digits) a key revocation certificate revokes, as gpg reads it."""
    with tempfile.TemporaryDirectory(prefix="repotool-rev-") as home:
        done = runner.run(
            [GPG, "--homedir", home, "--batch", "--no-tty", "--list-packets"],
            input=cert,
            check=False,
        )
    m = _REVOCATION.search(done.stdout.decode("utf-8", "replace"))
    return m.group(1) if m else None


@dataclass(frozen=True)
class Compromised:
    old: str
    new: str
    advisory: Path
    advisory_id: str
    spec: Path
    published: list[str]
    resigned: int
    announcement: Path | None


def compromise_key(
    cfg: Config,
    runner: Runner,
    reporter: Reporter,
    old: str,
    *,
    revocation: Path | None,
    today: dt.date,
) -> Compromised:
    from repotool.records.authoring import next_advisory_id
    from repotool.records.parsing import parse_advisory
    from repotool.repo.publish import published_key_url
    from repotool.repo.repository import publish_lock
    from repotool.signing.key_status import configured_key
    from repotool.signing.keyring import Keyring, load_rotation, revocation_path, save_rotation
    from repotool.signing.revocation import (
        RemovedKey,
        add_removed,
        spec_removed_keys,
        spec_with_removed_keys,
    )
    from repotool.signing.rotation import release_spec, resolve_key, spec_version

    where = f"repotool key compromised {old}"
    home, configured = configured_key(cfg)
    ring = Keyring(home, runner, no_autostart=cfg.key.agent == "forwarded")
    with publish_lock(cfg):
        old_fpr = resolve_key(ring, old, where=where)
        rotation = load_rotation(cfg)
        new_name = rotation_key_name(cfg.key.public_key_name, rotation.new) if rotation else ""
        cert = revocation_certificate(home, old_fpr, revocation)
        issuer = revocation_issuer(cert, runner) if cert is not None else None
        if cert is not None and issuer != old_fpr[-16:]:
            raise KeyRotationError(
                f"the revocation certificate is not one of {old_fpr}"
                + (
                    f" (it revokes the key {issuer})"
                    if issuer
                    else " (gpg finds no key revocation in it)"
                ),
                where=str(revocation or home / "openpgp-revocs.d" / f"{old_fpr}.rev"),
                hint=f"pass the certificate of {old_fpr} with --revocation (gpg --gen-revoke "
                f"{old_fpr} where the key is)",
            )
        rotation = check_compromise(
            old_fpr=old_fpr,
            old=ring.key(old_fpr),
            rotation=rotation,
            configured=configured,
            development=cfg.key.mode == "development",
            new_published=bool(new_name) and (cfg.public_dir / "keys" / new_name).is_file(),
            revocation=(revocation or home / "openpgp-revocs.d" / f"{old_fpr}.rev")
            if cert
            else None,
            where=where,
        )
        spec = release_spec(cfg)
        text = spec.read_text()
        text = spec_with_removed_keys(
            text, [*spec_removed_keys(text), old_fpr[-8:]], where=str(spec)
        )
        new_text = spec_for_keys(
            text,
            rotation_key="",
            day=today,
            packager=cfg.build.packager,
            lines=[
                f"The release key {old_fpr} is compromised: only the release key "
                f"{rotation.new}; the old key is removed from the host's rpm database",
            ],
            where=str(spec),
        )
        folder = cfg.path(cfg.site.content_dir) / "advisories"
        taken = [p.stem for p in folder.glob("*.md")] if folder.is_dir() else []
        advisory_id = next_advisory_id(taken, today.year)
        version, release = spec_version(new_text)
        adv = advisory_text(
            advisory_id,
            today=today,
            old=old_fpr,
            new=rotation.new,
            version=cfg.version,
            fixed_in=f"{version}-{release}",
            release_evrs={t.name: f"{version}-{release}{t.dist}" for t in cfg.targets},
            key_url=published_key_url(cfg),
        )
        advisory = folder / f"{advisory_id}.md"
        try:
            parse_advisory(adv, str(advisory))
        except RecordInvalidError as e:  # a bug of this module, never the user's input
            raise KeyRotationError(
                f"the advisory drafted for the compromise does not validate: {e}",
                where=str(advisory),
                hint="report it; meanwhile write the advisory with 'repotool advisory new'",
            ) from e
        # every check passed: from here on the key is out of service
        assert cert is not None
        ring.import_keys(cert, where=where)
        write_atomic(revocation_path(cfg, old_fpr), cert)
        add_removed(cfg, RemovedKey(old_fpr, "compromised", today, rotation.new))
        write_atomic(spec, new_text.encode())
        if cfg.key.mode == "development":
            write_atomic(
                home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION",
                f"{rotation.new}\nThis key was made for local development; it replaced the "
                f"compromised key {old_fpr} ('repotool key compromised').\n".encode(),
            )
        save_rotation(cfg, None)
        write_atomic(advisory, adv.encode())
    reporter.info(
        f"{old_fpr} is out of service; re-signing and publishing with {rotation.new}. "
        "Should the publish fail, fix its cause and run 'repotool key rotate --resign', "
        f"then 'repotool announce advisory {advisory_id}'"
    )
    published, resigned = _publish(cfg, runner, reporter, where=where, today=today)
    announcement = _draft_announcement(cfg, runner, reporter, advisory_id)
    return Compromised(
        old_fpr,
        rotation.new,
        advisory,
        advisory_id,
        spec,
        published,
        resigned,
        announcement,
    )


def _publish(
    cfg: Config, runner: Runner, reporter: Reporter, *, where: str, today: dt.date
) -> tuple[list[str], int]:
    from repotool.signing.resign import resign_and_publish

    done = resign_and_publish(cfg, runner, reporter, where=where, today=today)
    return done.release.published, done.copies.resigned


def _draft_announcement(
    cfg: Config, runner: Runner, reporter: Reporter, advisory_id: str
) -> Path | None:
    """The advisory's announcement, signed with the new key, in the outbox (not sent)."""
    import secrets
    import time

    from repotool.announce.flow import compose, outbox_for, prepare
    from repotool.report import SilentReporter
    from repotool.signing.release_key import open_signer

    signer = open_signer(cfg, runner, SilentReporter())
    ann = compose(cfg, "advisory", advisory_id, signer.fingerprint)
    prepared = prepare(
        cfg, ann, signer, outbox_for(cfg), now=time.time(), token=secrets.token_hex(8)
    )
    reporter.info(f"The announcement waits in the outbox: {prepared.path}")
    return prepared.path
