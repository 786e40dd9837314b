"""The pure decisions of the key lifecycle, on real gpg listings and the real spec."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from repotool.errors import KeyRotationError, SigningStateError
from repotool.signing.key_checks import KeyStrength
from repotool.signing.lifecycle import (
    KeyInfo,
    Rotation,
    check_retire,
    check_rotation_start,
    expiry_warning,
    package_key_files,
    published_key_files,
    read_key_listing,
    read_rotation,
    repo_gpgkey_names,
    signing_fingerprint,
    spec_for_keys,
    spec_rotation_key,
    stale_key_files,
)
from tests.conftest import REPO_ROOT, make_gpg_key

OLD = "A" * 32 + "11111111"
NEW = "B" * 32 + "22222222"
TODAY = dt.date(2026, 11, 29)
DAY = 86400


def _key(fpr: str, *, bits: int = 4096, expires: dt.date | None = None) -> KeyInfo:
    end = None
    if expires is not None:
        end = int(dt.datetime.combine(expires, dt.time(), dt.UTC).timestamp())
    return KeyInfo(fpr, KeyStrength(1, bits), 1_700_000_000, end, False, ("x <x@y>",))


def test_listing_of_a_real_key_gives_algorithm_expiry_and_uid(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    fpr = make_gpg_key(home, "Release key <r@example.org>", algo="rsa3072", expire="30d")
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--fixed-list-mode", "--list-keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (key,) = read_key_listing(listing)
    assert key.fingerprint == fpr
    assert key.algorithm == "RSA-3072"
    assert key.uids == ("Release key <r@example.org>",)
    assert key.days_left(key.created) in (29, 30)
    warning = expiry_warning(key, key.created, 60)
    assert warning is not None and f"the signing key {fpr} expires on" in warning
    assert "repotool key rotate --new FPR" in warning
    assert expiry_warning(key, key.created, 10) is None
    assert expiry_warning(key, key.created, 0) is None


def test_a_key_that_never_expires_gets_no_warning() -> None:
    assert expiry_warning(_key(OLD), 1_800_000_000, 60) is None


def test_rotation_state_round_trips_and_damage_is_refused() -> None:
    rot = Rotation(OLD, NEW, dt.date(2027, 1, 1), TODAY)
    assert read_rotation(rot.to_json(), where="f") == rot
    with pytest.raises(SigningStateError, match="format 2, this repotool reads format 1"):
        read_rotation(b'{"format": 2}', where="f")
    with pytest.raises(SigningStateError, match="not JSON"):
        read_rotation(b"{", where="f")
    with pytest.raises(SigningStateError, match="lacks or garbles 'switch_date'"):
        read_rotation(b'{"format": 1, "phase": "dual", "old": "x", "new": "y"}', where="f")


def test_the_new_key_signs_from_the_switch_date_on() -> None:
    rot = Rotation(OLD, NEW, dt.date(2027, 1, 1), TODAY)
    assert signing_fingerprint(OLD.lower(), None, TODAY) == OLD
    assert signing_fingerprint(OLD, rot, dt.date(2026, 12, 31)) == OLD
    assert signing_fingerprint(OLD, rot, dt.date(2027, 1, 1)) == NEW


def test_key_files_do_not_depend_on_the_date() -> None:
    rot = Rotation(OLD, NEW, dt.date(2027, 1, 1), TODAY)
    base = "RPM-GPG-KEY-perfsonar"
    assert [(f.name, f.fingerprint) for f in package_key_files(base, OLD, rot)] == [
        (base, OLD),
        (f"{base}-22222222", NEW),
    ]
    assert [f.name for f in published_key_files(base, NEW, rot)] == [
        base,
        f"{base}-11111111",
        f"{base}-22222222",
    ]
    assert published_key_files(base, NEW, rot)[0].fingerprint == NEW
    assert repo_gpgkey_names(base, rot) == [f"{base}-11111111", f"{base}-22222222"]
    assert repo_gpgkey_names(base, None) == [base]


def _start(**kw: object) -> None:
    args: dict[str, object] = {
        "current": _key(OLD),
        "new": _key(NEW, expires=dt.date(2029, 1, 1)),
        "new_fpr": NEW,
        "has_secret": True,
        "existing": None,
        "switch_date": dt.date(2027, 1, 1),
        "today": TODAY,
        "where": "repotool key rotate",
    }
    args.update(kw)
    check_rotation_start(**args)  # type: ignore[arg-type]


def test_a_good_rotation_start_passes() -> None:
    _start()


@pytest.mark.parametrize(
    ("change", "reason", "fix"),
    [
        (
            {"new": _key(NEW, expires=dt.date(2026, 12, 15))},
            f"the new key {NEW} expires on 2026-12-15, before the switch date 2027-01-01",
            f"gpg --quick-set-expire {NEW} 3y",
        ),
        (
            {"existing": Rotation(OLD, NEW, dt.date(2027, 1, 1), TODAY)},
            f"a rotation from {OLD} to {NEW} is already under way",
            "'repotool key status' shows where it stands",
        ),
        ({"new": None}, f"no key {NEW} in the release keyring", "gpg --quick-gen-key"),
        ({"new": _key(NEW, bits=2048)}, "too weak: RSA-2048", "rsa4096"),
        ({"has_secret": False}, "has no secret part", "import its secret key"),
        ({"switch_date": TODAY}, "is not after today", "pick a later --switch-date"),
        ({"new": _key(OLD)}, "is the key that signs now", "--new"),
        (
            {"current": _key(OLD, expires=dt.date(2026, 12, 20))},
            f"the signing key {OLD} expires on 2026-12-20, before the switch date",
            "pick a switch date before 2026-12-20",
        ),
    ],
)
def test_rotation_starts_that_would_strand_hosts_are_refused(
    change: dict[str, object], reason: str, fix: str
) -> None:
    with pytest.raises(KeyRotationError) as e:
        _start(**change)
    assert reason in e.value.what
    assert e.value.hint is not None and fix in e.value.hint


def test_the_spec_ships_the_new_key_with_a_higher_release(tmp_path: Path) -> None:
    spec = REPO_ROOT / "specs/perfsonar-release/perfsonar-release.spec"
    text = spec.read_text()
    assert spec_rotation_key(text) == ""
    out = spec_for_keys(
        text,
        rotation_key="RPM-GPG-KEY-perfsonar-22222222",
        day=TODAY,
        packager="Release team <r@example.org>",
        lines=["Ship the new release key"],
        where=str(spec),
    )
    assert spec_rotation_key(out) == "RPM-GPG-KEY-perfsonar-22222222"
    assert "\nRelease:        2%{?dist}\n" in out
    assert (
        "%changelog\n* Sun Nov 29 2026 Release team <r@example.org> - 3.3.2-2\n"
        "- Ship the new release key\n\n* Tue Jan 28 2014" in out
    )
    # rpm itself reads the result: the second key is a source and a packaged file
    (tmp_path / "r.spec").write_text(out)
    parsed = subprocess.run(
        ["rpmspec", "-P", str(tmp_path / "r.spec")], capture_output=True, text=True, check=True
    ).stdout
    assert "Source2:        RPM-GPG-KEY-perfsonar-22222222" in parsed
    assert "\n/etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar-22222222\n" in parsed
    back = spec_for_keys(
        out, rotation_key="", day=TODAY, packager="p", lines=["only the new key"], where="s"
    )
    assert spec_rotation_key(back) == "" and "\nRelease:        3%{?dist}\n" in back


def test_a_spec_without_the_key_line_is_refused() -> None:
    with pytest.raises(KeyRotationError, match="has no '%global rotation_key'"):
        spec_for_keys(
            "Name: x\nVersion: 1\nRelease: 1\n",
            rotation_key="k",
            day=TODAY,
            packager="p",
            lines=[],
            where="x.spec",
        )


def _retire(**kw: object) -> Rotation:
    args: dict[str, object] = {
        "rotation": Rotation(OLD, NEW, dt.date(2026, 11, 1), dt.date(2026, 10, 1)),
        "old_fpr": OLD,
        "today": TODAY,
        "configured": OLD,
        "development": True,
        "not_new": [],
        "total": 40,
        "where": "repotool key retire",
    }
    args.update(kw)
    return check_retire(**args)  # type: ignore[arg-type]


def test_a_retire_after_the_switch_with_everything_resigned_passes() -> None:
    assert _retire().new == NEW
    assert _retire(development=False, configured=NEW).old == OLD


@pytest.mark.parametrize(
    ("change", "reason", "fix"),
    [
        (
            {"not_new": ["public/repo/el7/x86_64/Packages/a.rpm", "b.rpm"]},
            f"2 of the 40 packages the repositories publish are not signed by the new key {NEW}: "
            "public/repo/el7/x86_64/Packages/a.rpm (and 1 more)",
            "re-sign them: 'repotool key rotate --resign'",
        ),
        ({"rotation": None}, "no key rotation is under way", "repotool key rotate --new KEY"),
        ({"old_fpr": NEW}, f"the rotation's old key is {OLD}, not {NEW}", f"retire {OLD}"),
        (
            {"today": dt.date(2026, 10, 31)},
            f"the old key {OLD} still signs until 2026-11-01",
            "after the switch date",
        ),
        (
            {"today": dt.date(2026, 11, 20), "grace_days": 30},
            "the grace period after the switch (30 days from 2026-11-01) lasts until 2026-12-01",
            "retire it on or after 2026-12-01 ([key] retire_grace_days",
        ),
        (
            {"development": False},
            f"[key] fingerprint still names the old key {OLD}",
            f'set fingerprint = "{NEW}"',
        ),
    ],
)
def test_retires_that_would_strand_packages_are_refused(
    change: dict[str, object], reason: str, fix: str
) -> None:
    with pytest.raises(KeyRotationError) as e:
        _retire(**change)
    assert reason in e.value.what
    assert e.value.hint is not None and fix in e.value.hint


def test_only_a_finished_rotation_s_key_files_are_stale() -> None:
    base = "RPM-GPG-KEY-perfsonar"
    present = [base, f"{base}-11111111", f"{base}-22222222", f"{base}-extra", "other-11111111"]
    assert stale_key_files(base, present, [base]) == [f"{base}-11111111", f"{base}-22222222"]
    assert stale_key_files(base, present, [base, f"{base}-11111111", f"{base}-22222222"]) == []
