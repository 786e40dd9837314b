"""The pure decisions behind --resign, retire's and compromised's key removal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from repotool.errors import KeyRotationError, SigningStateError
from repotool.repo.packages import RepoPackage
from repotool.repo.planning import one_file_per_build
from repotool.signing.compromise import check_compromise
from repotool.signing.key_checks import KeyStrength
from repotool.signing.lifecycle import KeyInfo, Rotation
from repotool.signing.resign import check_resign, resigned_name
from repotool.signing.revocation import (
    RemovedKey,
    read_removed,
    removed_bytes,
    spec_removed_keys,
    spec_with_removed_keys,
)

OLD = "A" * 32 + "8C299CB0"
NEW = "B" * 32 + "5A1C2B3D"
ROTATION = Rotation(OLD, NEW, dt.date(2027, 1, 1), dt.date(2026, 12, 1))
KEY = KeyInfo(OLD, KeyStrength(1, 3072, ""), 0, None, False, ("Old <o@x>",))


def test_resigned_names_carry_the_signing_key_once() -> None:
    name = "perfsonar-toolkit-3.3.2-1.el7.noarch.rpm"
    once = resigned_name(name, NEW)
    assert once == "perfsonar-toolkit-3.3.2-1.el7.noarch.key-5A1C2B3D.rpm"
    # re-signed again by a later key: still one key id in the name
    assert resigned_name(once, OLD) == "perfsonar-toolkit-3.3.2-1.el7.noarch.key-8C299CB0.rpm"


def test_resign_needs_a_switched_rotation_or_a_compromise() -> None:
    where = "repotool key rotate --resign"
    with pytest.raises(KeyRotationError) as none:
        check_resign(rotation=None, compromised=(), today=dt.date(2027, 1, 5), where=where)
    assert "no key rotation is under way" in none.value.what
    with pytest.raises(KeyRotationError) as early:
        check_resign(rotation=ROTATION, compromised=(), today=dt.date(2026, 12, 31), where=where)
    assert early.value.what.startswith(f"the old key {OLD} signs until 2027-01-01")
    check_resign(rotation=ROTATION, compromised=(), today=dt.date(2027, 1, 1), where=where)
    bad = RemovedKey(OLD, "compromised", dt.date(2027, 1, 2), NEW)
    check_resign(rotation=None, compromised=[bad], today=dt.date(2027, 1, 5), where=where)


GOOD: dict[str, Any] = {
    "old_fpr": OLD,
    "old": KEY,
    "rotation": ROTATION,
    "configured": OLD,
    "development": True,
    "new_published": True,
    "revocation": Path("/k/openpgp-revocs.d/x.rev"),
    "where": "repotool key compromised",
}


@pytest.mark.parametrize(
    ("change", "reason", "fix"),
    [
        ({"old": None}, f"no key {OLD} in the release keyring", "40-digit fingerprint"),
        (
            {"rotation": None},
            f"{OLD} is the only release key: hosts have no new key",
            "'repotool key rotate --new NEW --switch-date <tomorrow>'",
        ),
        (
            {"rotation": None, "configured": NEW},
            f"{OLD} neither signs now nor takes part in a key rotation",
            "retire's release package",
        ),
        (
            {"old_fpr": NEW},
            f"{NEW} is the new key of the rotation from {OLD}",
            "rotate to another new key",
        ),
        (
            {"old_fpr": "C" * 40},
            f"{'C' * 40} is not a release key",
            f"repotool key compromised {OLD}",
        ),
        (
            {"development": False},
            f"[key] fingerprint still names the compromised key {OLD}",
            f'fingerprint = "{NEW}"',
        ),
        ({"new_published": False}, "is not published yet", "'repotool release'"),
        ({"revocation": None}, f"no revocation certificate for {OLD}", "--revocation"),
    ],
)
def test_compromise_is_refused_with_the_reason_and_the_fix(
    change: dict[str, Any], reason: str, fix: str
) -> None:
    with pytest.raises(KeyRotationError) as caught:
        check_compromise(**{**GOOD, **change})
    assert reason in caught.value.what
    assert caught.value.hint is not None and fix in caught.value.hint


def test_compromise_of_the_rotations_old_key_goes_ahead() -> None:
    assert check_compromise(**GOOD) == ROTATION
    assert check_compromise(**{**GOOD, "development": False, "configured": NEW}) == ROTATION


SPEC = "%global rotation_key %{nil}\nName: perfsonar-release\n"


def test_the_release_spec_lists_removed_keys_once_sorted() -> None:
    where = "perfsonar-release.spec"
    one = spec_with_removed_keys(SPEC, ["8C299CB0"], where=where)
    assert one.splitlines()[1] == "%global removed_keys 8c299cb0"
    two = spec_with_removed_keys(
        one, [*spec_removed_keys(one), "5a1c2b3d", "8c299cb0"], where=where
    )
    assert spec_removed_keys(two) == ["5a1c2b3d", "8c299cb0"]
    assert two.count("%global removed_keys") == 1
    assert spec_removed_keys(spec_with_removed_keys(two, [], where=where)) == []


def test_a_spec_without_the_key_lines_is_refused() -> None:
    with pytest.raises(KeyRotationError) as caught:
        spec_with_removed_keys("Name: x\n", ["8c299cb0"], where="x.spec")
    assert "no '%global removed_keys'" in caught.value.what


def test_the_removed_keys_file_round_trips_and_damage_is_refused() -> None:
    keys = [RemovedKey(OLD, "retired", dt.date(2027, 2, 1), NEW)]
    assert read_removed(removed_bytes(keys), where="f") == keys
    for damaged in (b"{", b'{"format": 2, "keys": []}', b'{"format": 1, "keys": [{}]}'):
        with pytest.raises(SigningStateError) as caught:
            read_removed(damaged, where="state/removed-keys.json")
        assert caught.value.where == "state/removed-keys.json"
    bad = removed_bytes([RemovedKey("XYZ", "lost", dt.date(2027, 2, 1), NEW)])
    with pytest.raises(SigningStateError, match="bad entry"):
        read_removed(bad, where="f")


def _pkg(filename: str, release: str = "1.el7") -> RepoPackage:
    return RepoPackage(
        filename, "foo", 0, "1", release, "noarch", filename, (0, 1), (1, 1, 1, 1), ("", "", "")
    )


def test_one_file_per_build_prefers_a_resigned_copy_then_the_current_file() -> None:
    plain = _pkg("foo-1-1.el7.noarch.rpm")
    copy = _pkg(f"foo-1-1.el7.noarch.key-{NEW[-8:]}.rpm")
    older = _pkg("foo-1-0.el7.noarch.rpm", release="0.el7")
    # the --resign run: the re-signed copy it brings replaces the current file
    got = one_file_per_build(
        [plain, copy, older], current={plain.filename}, incoming={copy.filename}
    )
    assert sorted(p.filename for p in got) == sorted([copy.filename, older.filename])
    # a later release: the current generation's copy stays, even against a plain incoming file
    got = one_file_per_build([copy, plain], current={copy.filename}, incoming={plain.filename})
    assert [p.filename for p in got] == [copy.filename]
    # nothing current names either: an incoming file, else the later name
    assert one_file_per_build([plain, copy], current=(), incoming=())[0] == plain
