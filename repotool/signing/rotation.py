"""``repotool key rotate``: start the dual-key transition (phase 1, docs/keys.md).

Checks everything first (the decisions are in
:func:`repotool.signing.lifecycle.check_rotation_start`), makes a test signature
with the new key, cross-signs the two keys, bumps the release package's spec so
that it ships both keys, and records the rotation in the state folder.  The
next ``repotool release`` publishes the release package (signed with the old
key), both keys in public/keys/ and the ``.repo`` listing both.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from repotool.atomic import write_atomic
from repotool.config import Config
from repotool.errors import KeyRotationError
from repotool.report import Reporter
from repotool.signing.keyring import (
    Keyring,
    keyring_of,
    load_rotation,
    rotation_path,
    save_rotation,
)
from repotool.signing.lifecycle import (
    Rotation,
    check_rotation_start,
    rotation_key_name,
    spec_for_keys,
    spec_rotation_key,
)
from repotool.signing.revocation import (
    RemovedKey,
    add_removed,
    spec_removed_keys,
    spec_with_removed_keys,
)
from repotool.signing.signer import Signer

_FPR = re.compile(r"^[0-9A-F]{40}\Z")
RELEASE_SPEC = Path("perfsonar-release") / "perfsonar-release.spec"


def release_spec(cfg: Config) -> Path:
    return cfg.path(cfg.build.specs_dir) / RELEASE_SPEC


def resolve_key(ring: Keyring, who: str, *, where: str) -> str:
    """A fingerprint as given, or the one key a user id names in the keyring."""
    compact = who.replace(" ", "").upper()
    if _FPR.match(compact):
        return compact
    found = ring.keys([who])
    if len(found) != 1:
        raise KeyRotationError(
            f"'{who}' names {len(found) or 'no'} key{'' if len(found) == 1 else 's'} in the "
            "release keyring" + (": " + ", ".join(k.fingerprint for k in found) if found else ""),
            where=where,
            hint="pass the new key's 40-digit fingerprint (gpg --list-keys shows it)",
        )
    return found[0].fingerprint


@dataclass(frozen=True)
class RotationStarted:
    rotation: Rotation
    spec: Path
    release: str


def start_rotation(
    cfg: Config,
    signer: Signer,
    new_fpr: str,
    switch_date: dt.date,
    reporter: Reporter,
    *,
    today: dt.date,
) -> RotationStarted:
    """Phase 1 of a rotation; refused with the reason before anything changes."""
    where = f"repotool key rotate --new {new_fpr}"
    ring = keyring_of(signer)
    new_fpr = resolve_key(ring, new_fpr, where=where)
    current = ring.key(signer.fingerprint)
    if current is None:  # open_signer checked it a moment ago
        raise KeyRotationError(f"the signing key {signer.fingerprint} vanished", where=where)
    check_rotation_start(
        current=current,
        new=ring.key(new_fpr),
        new_fpr=new_fpr,
        has_secret=ring.has_secret(new_fpr),
        existing=load_rotation(cfg),
        switch_date=switch_date,
        today=today,
        where=where,
    )
    spec = release_spec(cfg)
    try:
        text = spec.read_text()
    except OSError as e:
        raise KeyRotationError(
            f"cannot read the release package's spec: {e.strerror or e}",
            where=str(spec),
            hint="the rotation ships the new key in this package; restore the spec",
        ) from e
    if spec_rotation_key(text):
        raise KeyRotationError(
            f"the release package already ships the extra key {spec_rotation_key(text)}",
            where=str(spec),
            hint="set '%global rotation_key %{nil}' if no rotation is under way "
            "('repotool key status' shows the state)",
        )
    # the new key signs exactly as the release will sign with it, before any change
    Signer(
        gnupghome=signer.gnupghome,
        fingerprint=new_fpr,
        runner=signer.runner,
        passphrase_file=signer.passphrase_file,
        development=signer.development,
        agent_socket=signer.agent_socket,
    ).test_signature()
    ring.cross_sign(signer.fingerprint, new_fpr)
    ring.cross_sign(new_fpr, signer.fingerprint)
    name = rotation_key_name(cfg.key.public_key_name, new_fpr)
    new_text = spec_for_keys(
        text,
        rotation_key=name,
        day=today,
        packager=cfg.build.packager,
        lines=[
            f"Ship the new release key {new_fpr} ({name}) beside the current one "
            f"{signer.fingerprint}; the repository lists both. Packages are signed with the "
            f"new key from {switch_date} on",
        ],
        where=str(spec),
    )
    rotation = Rotation(old=signer.fingerprint, new=new_fpr, switch_date=switch_date, started=today)
    write_atomic(spec, new_text.encode())
    save_rotation(cfg, rotation)
    reporter.info(f"Rotation recorded in {rotation_path(cfg)}; the spec {spec} now ships {name}")
    release = _version_release(new_text)
    return RotationStarted(rotation, spec, release)


@dataclass(frozen=True)
class Retired:
    old: str
    new: str
    spec: Path
    release: str
    checked: int


def published_packages(cfg: Config) -> list[Path]:
    """Every package a current repository generation names (what hosts can install)."""
    from repotool.signing.resign import current_packages

    return [path for _, path in current_packages(cfg)]


def retire_key(
    cfg: Config, signer: Signer, old: str, reporter: Reporter, *, today: dt.date
) -> Retired:
    """Phase 3: the release package ships only the new key; the rotation ends.

    Refused unless the switch date passed and every package the repositories
    publish carries the new key's signature."""
    from repotool.signing.lifecycle import check_retire

    where = f"repotool key retire {old}"
    ring = keyring_of(signer)
    rotation = load_rotation(cfg)
    old_fpr = resolve_key(ring, old, where=where)
    packages = published_packages(cfg) if rotation is not None else []
    not_new = [str(r.path) for r in signer.check_rpms(packages) if not r.ok] if packages else []
    rotation = check_retire(
        rotation=rotation,
        old_fpr=old_fpr,
        today=today,
        configured=cfg.key.fingerprint.replace(" ", "").upper(),
        development=cfg.key.mode == "development",
        not_new=not_new,
        total=len(packages),
        where=where,
        grace_days=cfg.key.retire_grace_days,
    )
    spec = release_spec(cfg)
    text = spec.read_text()
    # hosts drop the old key from their rpm database (the package's %posttrans)
    text = spec_with_removed_keys(
        text, [*spec_removed_keys(text), rotation.old[-8:]], where=str(spec)
    )
    new_text = spec_for_keys(
        text,
        rotation_key="",
        day=today,
        packager=cfg.build.packager,
        lines=[
            f"Only the release key {rotation.new}; the old key {rotation.old} is retired "
            "and removed from the host's rpm database",
        ],
        where=str(spec),
    )
    write_atomic(spec, new_text.encode())
    add_removed(cfg, RemovedKey(rotation.old, "retired", today, rotation.new))
    if cfg.key.mode == "development":
        marker = cfg.state / "gnupg" / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
        write_atomic(
            marker,
            f"{rotation.new}\nThis key was made for local development; it replaced "
            f"{rotation.old} by 'repotool key retire'.\n".encode(),
        )
    save_rotation(cfg, None)
    reporter.info(f"The rotation ended; {spec} now ships only {rotation.new}")
    release = _version_release(new_text)
    return Retired(rotation.old, rotation.new, spec, release, len(packages))


def spec_version(spec_text: str) -> tuple[str, str]:
    """Version and Release of a spec (Release without the dist tag)."""
    version, _, release = _version_release(spec_text).partition("-")
    return version, release


def _version_release(spec_text: str) -> str:
    """VERSION-RELEASE of a spec as people name it (3.3.2-2), without the dist tag."""
    fields = {}
    for line in spec_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Version", "Release") and key not in fields:
            fields[key] = value.strip().split("%", 1)[0]
    return f"{fields.get('Version', '?')}-{fields.get('Release', '?')}"
