"""Pure decisions of the release key's lifecycle: status, expiry, rotation.

Values in, values out: gpg's ``--with-colons`` listings, the rotation state
file's bytes, the release package's spec text.  Running gpg, reading public/
and writing the state folder is :mod:`repotool.signing.keyring`'s job.

A rotation (docs/keys.md) goes through these states::

    none ──rotate──▶ dual (before the switch date) ──date──▶ dual (switched) ──retire──▶ none

* dual, before the switch: the OLD key signs; the release package and
  public/keys/ carry both keys, the ``.repo`` lists both.
* dual, switched: the NEW key signs; everything else as before.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from repotool.errors import KeyRotationError, SigningStateError
from repotool.signing.key_checks import KeyStrength, weak_key_problem

#: the state file's format; a file of another format is refused, never guessed at
ROTATION_FORMAT = 1
ROTATION_FILE = "key-rotation.json"
_FPR = re.compile(r"^[0-9A-F]{40}\Z")


# --- keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """One primary key as gpg lists it."""

    fingerprint: str
    strength: KeyStrength
    created: int
    #: seconds since the epoch; None: never expires
    expires: int | None
    revoked: bool
    uids: tuple[str, ...]

    @property
    def algorithm(self) -> str:
        return self.strength.name

    def expires_day(self) -> str:
        return "never" if self.expires is None else _day(self.expires)

    def days_left(self, now: float) -> int | None:
        return None if self.expires is None else int((self.expires - now) // 86400)


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d")


def read_key_listing(colons: str) -> list[KeyInfo]:
    """Pure: the primary keys of a ``gpg --with-colons --fixed-list-mode`` listing."""
    keys: list[KeyInfo] = []
    pub: list[str] | None = None
    fpr = ""
    uids: list[str] = []

    def close() -> None:
        if pub is not None and fpr:
            curve = pub[16] if len(pub) > 16 else ""
            keys.append(
                KeyInfo(
                    fingerprint=fpr,
                    strength=KeyStrength(int(pub[3] or 0), int(pub[2] or 0), curve),
                    created=int(pub[5] or 0),
                    expires=int(pub[6]) if pub[6] else None,
                    revoked=pub[1] == "r",
                    uids=tuple(uids),
                )
            )

    for line in colons.splitlines():
        fields = line.split(":")
        kind = fields[0]
        if kind in ("pub", "sec"):
            close()
            pub, fpr, uids = fields, "", []
        elif kind in ("sub", "ssb"):
            close()
            pub = None
        elif kind == "fpr" and pub is not None and not fpr and len(fields) > 9:
            fpr = fields[9].upper()
        elif kind == "uid" and pub is not None and len(fields) > 9:
            uids.append(fields[9])
    close()
    return keys


def expiry_warning(key: KeyInfo, now: float, days: int) -> str | None:
    """Pure: the warning a release prints when the signing key expires within ``days``."""
    left = key.days_left(now)
    if days <= 0 or left is None or left > days:
        return None
    return (
        f"the signing key {key.fingerprint} expires on {key.expires_day()} (in {max(left, 0)} "
        f"days): hosts refuse its signatures after that. Extend it (gpg --quick-set-expire "
        f"{key.fingerprint} 2y; hosts get the extended key in a new release package: raise "
        "Release in specs/perfsonar-release/perfsonar-release.spec, then 'repotool release') "
        "or rotate to a new key ('repotool key rotate --new FPR', docs/keys.md); "
        "[key] expiry_warning_days sets how early this warning comes"
    )


# --- the rotation state -----------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """A key rotation under way: who signs when, recorded in the state folder."""

    old: str
    new: str
    switch_date: dt.date
    started: dt.date

    def switched(self, today: dt.date) -> bool:
        return today >= self.switch_date

    def to_json(self) -> bytes:
        data = {
            "format": ROTATION_FORMAT,
            "phase": "dual",
            "old": self.old,
            "new": self.new,
            "switch_date": self.switch_date.isoformat(),
            "started": self.started.isoformat(),
        }
        return (json.dumps(data, indent=2) + "\n").encode()


def read_rotation(data: bytes, *, where: str) -> Rotation:
    """Pure: the rotation state file's bytes → its value; anything else is refused."""
    hint = (
        "the file is written by 'repotool key rotate'; restore it from a backup, or delete "
        "it to end the rotation (then the configured key signs again)"
    )
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SigningStateError(
            f"the key rotation state is not JSON: {e}", where=where, hint=hint
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != ROTATION_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise SigningStateError(
            f"the key rotation state has format {found!r}, this repotool reads "
            f"format {ROTATION_FORMAT}",
            where=where,
            hint=hint,
        )
    try:
        old, new = str(raw["old"]).upper(), str(raw["new"]).upper()
        rotation = Rotation(
            old=old,
            new=new,
            switch_date=dt.date.fromisoformat(str(raw["switch_date"])),
            started=dt.date.fromisoformat(str(raw["started"])),
        )
    except (KeyError, ValueError) as e:
        raise SigningStateError(
            f"the key rotation state lacks or garbles {e}", where=where, hint=hint
        ) from e
    if raw.get("phase") != "dual" or not _FPR.match(old) or not _FPR.match(new):
        raise SigningStateError(
            "the key rotation state names no phase 'dual' with two 40-digit fingerprints",
            where=where,
            hint=hint,
        )
    return rotation


def signing_fingerprint(configured: str, rotation: Rotation | None, today: dt.date) -> str:
    """Pure: the key that signs today: the new one from the switch date on."""
    if rotation is not None and rotation.switched(today):
        return rotation.new
    return configured.upper()


def check_rotation_start(
    *,
    current: KeyInfo,
    new: KeyInfo | None,
    new_fpr: str,
    has_secret: bool,
    existing: Rotation | None,
    switch_date: dt.date,
    today: dt.date,
    where: str,
) -> None:
    """Pure: refuse a rotation that would strand hosts, with the reason and the fix."""
    if existing is not None:
        raise KeyRotationError(
            f"a rotation from {existing.old} to {existing.new} is already under way "
            f"(started {existing.started}, switch on {existing.switch_date})",
            where=where,
            hint="finish it first ('repotool key status' shows where it stands; "
            "'repotool key retire OLD' ends it after the grace period)",
        )
    if new is None:
        raise KeyRotationError(
            f"no key {new_fpr} in the release keyring",
            where=where,
            hint="make it there first, e.g. gpg --quick-gen-key '<uid>' rsa4096 sign 3y, "
            "and pass its 40-digit fingerprint",
        )
    if new.fingerprint == current.fingerprint:
        raise KeyRotationError(
            f"{new_fpr} is the key that signs now",
            where=where,
            hint="name the new key's fingerprint with --new",
        )
    if not has_secret:
        raise KeyRotationError(
            f"the key {new_fpr} has no secret part in the release keyring",
            where=where,
            hint="import its secret key there (or reach its gpg-agent) so it can sign after "
            "the switch",
        )
    if new.revoked:
        raise KeyRotationError(f"the key {new_fpr} is revoked", where=where, hint="make a new key")
    problem = weak_key_problem(new.strength)
    if problem is not None:
        raise KeyRotationError(
            f"the new key {new_fpr} is too weak: {problem}",
            where=where,
            hint="make an RSA-4096 key (EL6/EL7 rpm cannot check Ed25519): "
            "gpg --quick-gen-key '<uid>' rsa4096 sign 3y",
        )
    if switch_date <= today:
        raise KeyRotationError(
            f"the switch date {switch_date} is not after today ({today}): hosts need the "
            "release package with both keys before anything is signed with the new one",
            where=where,
            hint="pick a later --switch-date (default: 30 days from today)",
        )
    end = dt.datetime.combine(switch_date, dt.time(), dt.UTC).timestamp()
    if new.expires is not None and new.expires <= end:
        raise KeyRotationError(
            f"the new key {new_fpr} expires on {new.expires_day()}, before the switch date "
            f"{switch_date}",
            where=where,
            hint=f"extend it first: gpg --quick-set-expire {new_fpr} 3y",
        )
    if current.expires is not None and current.expires <= end:
        raise KeyRotationError(
            f"the signing key {current.fingerprint} expires on {current.expires_day()}, "
            f"before the switch date {switch_date}: hosts would refuse its signatures meanwhile",
            where=where,
            hint=f"pick a switch date before {current.expires_day()}, or extend the old key "
            f"(gpg --quick-set-expire {current.fingerprint} 6m)",
        )


def check_retire(
    *,
    rotation: Rotation | None,
    old_fpr: str,
    today: dt.date,
    configured: str,
    development: bool,
    not_new: Sequence[str],
    total: int,
    where: str,
    grace_days: int = 0,
) -> Rotation:
    """Pure: refuse a retire that would leave hosts unable to check a published package."""
    if rotation is None:
        raise KeyRotationError(
            "no key rotation is under way",
            where=where,
            hint="'repotool key status' shows the keys; 'repotool key rotate --new KEY' starts one",
        )
    if old_fpr != rotation.old:
        raise KeyRotationError(
            f"the rotation's old key is {rotation.old}, not {old_fpr}",
            where=where,
            hint=f"repotool key retire {rotation.old}",
        )
    if not rotation.switched(today):
        raise KeyRotationError(
            f"the old key {rotation.old} still signs until {rotation.switch_date}",
            where=where,
            hint="retire it after the switch date, once hosts had time to take the new key",
        )
    ends = rotation.switch_date + dt.timedelta(days=grace_days)
    if today < ends:
        raise KeyRotationError(
            f"the grace period after the switch ({grace_days} days from "
            f"{rotation.switch_date}) lasts until {ends}: hosts that update rarely may not "
            "have taken the new key yet",
            where=where,
            hint=f"retire it on or after {ends} ([key] retire_grace_days sets the period)",
        )
    if not development and configured != rotation.new:
        raise KeyRotationError(
            f"[key] fingerprint still names the old key {configured}",
            where=where,
            hint=f'set fingerprint = "{rotation.new}" in [key] of repotool.toml, then run '
            "this again",
        )
    if not_new:
        more = f" (and {len(not_new) - 1} more)" if len(not_new) > 1 else ""
        raise KeyRotationError(
            f"{len(not_new)} of the {total} packages the repositories publish are not signed "
            f"by the new key {rotation.new}: {not_new[0]}{more}; hosts that drop the old key "
            "could no longer install them",
            where=where,
            hint="re-sign them: 'repotool key rotate --resign' publishes a copy of each "
            "signed by the new key; or rebuild with a higher Release, or let older versions "
            "go ([publish] keep_versions)",
        )
    return rotation


# --- which key files go where -----------------------------------------------------


def rotation_key_name(base: str, fingerprint: str) -> str:
    """The file name of one key of a rotation: the base name and the key's short id."""
    return f"{base}-{fingerprint[-8:].upper()}"


@dataclass(frozen=True)
class KeyFile:
    name: str
    fingerprint: str
    #: exported with the other rotation key's certification (else minimal)
    cross_signed: bool


def package_key_files(base: str, configured: str, rotation: Rotation | None) -> list[KeyFile]:
    """Pure: the key files of the release package, the first named ``base``.

    They do not depend on the date: the package built before the switch is
    the same build after it.
    """
    if rotation is None:
        return [KeyFile(base, configured.upper(), False)]
    return [
        KeyFile(base, rotation.old, False),
        KeyFile(rotation_key_name(base, rotation.new), rotation.new, True),
    ]


def published_key_files(base: str, signing: str, rotation: Rotation | None) -> list[KeyFile]:
    """Pure: public/keys/: ``base`` is always the key that signs now (the site, the
    CSAF signatures and mirror checks read it); during a rotation both keys are
    there too, each cross-signed by the other, under their own names."""
    files = [KeyFile(base, signing.upper(), False)]
    if rotation is not None:
        files += [
            KeyFile(rotation_key_name(base, rotation.old), rotation.old, True),
            KeyFile(rotation_key_name(base, rotation.new), rotation.new, True),
        ]
    return files


def repo_gpgkey_names(base: str, rotation: Rotation | None) -> list[str]:
    """Pure: the key files the published ``.repo`` lists (under keys/)."""
    if rotation is None:
        return [base]
    return [rotation_key_name(base, rotation.old), rotation_key_name(base, rotation.new)]


# --- the release package's spec ---------------------------------------------------

_GLOBAL = re.compile(r"^%global\s+rotation_key\s+(\S+)\s*$", re.M)
_RELEASE = re.compile(r"^(Release:\s*)(\d+)(\S*)\s*$", re.M)
_VERSION = re.compile(r"^Version:\s*(\S+)\s*$", re.M)


def spec_rotation_key(text: str) -> str:
    """Pure: the extra key file the spec ships ('' when none)."""
    m = _GLOBAL.search(text)
    return "" if m is None or m.group(1) == "%{nil}" else m.group(1)


def spec_for_keys(
    text: str,
    *,
    rotation_key: str,
    day: dt.date,
    packager: str,
    lines: Sequence[str],
    where: str,
) -> str:
    """Pure: the release package's spec shipping ``rotation_key`` ('' for none), its
    Release one higher and a changelog entry saying why (hosts update to it)."""
    release = _RELEASE.search(text)
    version = _VERSION.search(text)
    if _GLOBAL.search(text) is None or release is None or version is None:
        raise KeyRotationError(
            "the release package's spec has no '%global rotation_key', 'Release: N' "
            "or 'Version:' line",
            where=where,
            hint="restore the spec from the repotool repository (its key lines are kept by "
            "'repotool key')",
        )
    number = int(release.group(2)) + 1
    text = _GLOBAL.sub(f"%global rotation_key {rotation_key or '%{nil}'}", text, count=1)
    text = _RELEASE.sub(rf"\g<1>{number}\g<3>", text, count=1)
    entry = (
        f"* {day.strftime('%a %b %d %Y')} {packager} - {version.group(1)}-{number}\n"
        + "".join(f"- {line}\n" for line in lines)
        + "\n"
    )
    head, sep, tail = text.partition("%changelog\n")
    if not sep:
        return text.rstrip("\n") + "\n\n%changelog\n" + entry.rstrip("\n") + "\n"
    return head + sep + entry + tail


_ROTATION_NAME = re.compile(r"-[0-9A-F]{8}\Z")


def stale_key_files(base: str, present: Sequence[str], published: Sequence[str]) -> list[str]:
    """Pure: rotation key files in public/keys/ that this release no longer publishes."""
    return sorted(
        name
        for name in present
        if name not in published
        and name.startswith(base + "-")
        and _ROTATION_NAME.search(name[len(base) :])
    )
