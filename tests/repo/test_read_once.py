"""The read pass checks signatures in-process (issue 15): each new file is read once,
and what it accepts or refuses is what ``rpmkeys --checksig`` accepts or refuses."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import createrepo_c as cr
import pytest

from repotool.config import Config, PublishConfig, TargetConfig
from repotool.errors import BadSignatureError, UnsafePathError
from repotool.repo import packages
from repotool.repo.packages import WHOLE_READ, read_and_check, read_package, stat_of
from repotool.repo.planning import NOT_KNOWN, plan_repo, read_snapshot
from repotool.signing.signer import Signer
from tests.conftest import build_rpms, make_gpg_key, rpmsign
from tests.signing.signing_support import RecordingRunner

SPEC = """Name: readonce
Version: 1.0
Release: 1
Summary: read once
License: MIT
BuildArch: noarch
%description
read once
%install
mkdir -p %{buildroot}/usr/share/readonce
head -c 300000 /dev/urandom > %{buildroot}/usr/share/readonce/data
%files
/usr/share/readonce
"""


@pytest.fixture(scope="module")
def keys_and_rpm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    top = tmp_path_factory.mktemp("read-once")
    home = top / "gnupg"
    fprs = {
        "release": make_gpg_key(home, "release <r@localhost>", algo="rsa2048"),
        "foreign": make_gpg_key(home, "someone else <f@localhost>", algo="rsa2048"),
        "ed25519": make_gpg_key(home, "ed release <e@localhost>", algo="ed25519"),
    }
    (rpm,) = build_rpms({"readonce": SPEC}, top / "build")
    return home, fprs, rpm


def _signed(keys_and_rpm: tuple[Path, dict[str, str], Path], who: str, dest: Path) -> Path:
    home, fprs, rpm = keys_and_rpm
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / rpm.name
    shutil.copyfile(rpm, out)
    rpmsign([out], home, fprs[who])
    return out


def _signer(
    keys_and_rpm: tuple[Path, dict[str, str], Path], who: str
) -> tuple[Signer, RecordingRunner]:
    home, fprs, _ = keys_and_rpm
    runner = RecordingRunner()
    return Signer(gnupghome=home, fingerprint=fprs[who], runner=runner), runner


def _rpmkeys_accepts(signer: Signer, rpm: Path) -> bool:
    return all(r.ok for r in signer.check_rpms([rpm]))


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_good_package_is_accepted_in_one_pass_with_createrepo_c_s_metadata(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    rpm = _signed(keys_and_rpm, "release", tmp_path)
    signer, runner = _signer(keys_and_rpm, "release")
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is True
    signer.require_verdicts([rpm], [read.package.sha256], [read.verdict])
    assert runner.checksig_runs() == 0  # decided in-process
    # the same metadata createrepo_c writes when it reads the whole file itself
    pkg = cr.package_from_rpm(str(rpm), cr.SHA256, f"Packages/{rpm.name}", None, 10)
    pkg.time_file = 0
    assert read.package.chunks == tuple(cr.xml_dump(pkg))
    assert read.package.sha256 == hashlib.sha256(rpm.read_bytes()).hexdigest()
    assert read.package.header_range == (pkg.rpm_header_start, pkg.rpm_header_end)
    assert _rpmkeys_accepts(signer, rpm)


def test_a_tampered_payload_is_refused_as_rpmkeys_refuses_it(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    rpm = _signed(keys_and_rpm, "release", tmp_path)
    _flip(rpm, rpm.stat().st_size - 100)
    signer, runner = _signer(keys_and_rpm, "release")
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is False
    with pytest.raises(BadSignatureError) as e:
        signer.require_verdicts([rpm], [read.package.sha256], [read.verdict])
    assert "Payload digest: BAD" in str(e.value)
    assert str(rpm) in str(e.value)
    assert runner.checksig_runs() == 0
    assert not _rpmkeys_accepts(signer, rpm)


def test_a_tampered_header_is_refused(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    rpm = _signed(keys_and_rpm, "release", tmp_path)
    signer, _ = _signer(keys_and_rpm, "release")
    _start, end = read_and_check(rpm, None).package.header_range
    _flip(rpm, end - 40)  # inside the main header's data
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is False, read.verdict
    assert not _rpmkeys_accepts(signer, rpm)


def test_a_package_signed_by_another_key_is_refused_without_rpmkeys(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    rpm = _signed(keys_and_rpm, "foreign", tmp_path)
    signer, runner = _signer(keys_and_rpm, "release")
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is False
    foreign_id = keys_and_rpm[1]["foreign"][-16:].lower()
    assert read.verdict.detail == f"signed by key ID {foreign_id}, not by the published key"
    with pytest.raises(BadSignatureError, match="not by the published key"):
        signer.require_verdicts([rpm], [read.package.sha256], [read.verdict])
    assert runner.checksig_runs() == 0
    assert not _rpmkeys_accepts(signer, rpm)


def test_an_unsigned_package_is_refused(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    signer, _ = _signer(keys_and_rpm, "release")
    rpm = keys_and_rpm[2]
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is False
    assert read.verdict.detail == "the package is not signed"
    assert not _rpmkeys_accepts(signer, rpm)


def test_ed25519_signatures_are_checked_too(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    rpm = _signed(keys_and_rpm, "ed25519", tmp_path)
    signer, _ = _signer(keys_and_rpm, "ed25519")
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is True, read.verdict
    assert _rpmkeys_accepts(signer, rpm)
    _flip(rpm, rpm.stat().st_size - 100)
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is False
    # the release (RSA) key does not accept the Ed25519 key's signature
    rsa, _ = _signer(keys_and_rpm, "release")
    good = _signed(keys_and_rpm, "ed25519", tmp_path / "again")
    verdict = read_and_check(good, rsa.published_keys()).verdict
    assert verdict is not None and verdict.ok is False


def test_a_shape_it_cannot_decide_goes_to_rpmkeys(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """A file the read pass did not check (verdict None) is checked by rpmkeys."""
    rpm = _signed(keys_and_rpm, "foreign", tmp_path)
    signer, runner = _signer(keys_and_rpm, "release")
    sha = hashlib.sha256(rpm.read_bytes()).hexdigest()
    with pytest.raises(BadSignatureError):
        signer.require_verdicts([rpm], [sha], [None])
    assert runner.checksig_runs() == 1


def _plan_config(root: Path) -> Config:
    return Config(
        root=root,
        state_dir=Path("state"),
        targets=(TargetConfig(name="el7"),),
        publish=PublishConfig(public_dir=Path("public")),
    )


def test_the_publish_plan_refuses_tampered_and_foreign_packages_in_its_read_pass(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """plan_repo, given the Signer's require_signed as before, checks in its read
    pass: bad files are refused with their path, and rpmkeys never runs."""
    cfg = _plan_config(tmp_path / "project")
    signer, runner = _signer(keys_and_rpm, "release")
    tampered = _signed(keys_and_rpm, "release", tmp_path / "tampered")
    _flip(tampered, tampered.stat().st_size - 100)
    foreign = _signed(keys_and_rpm, "foreign", tmp_path / "foreign")
    for bad, why in ((tampered, "Payload digest: BAD"), (foreign, "not by the published key")):
        with pytest.raises(BadSignatureError) as e:
            plan_repo(cfg, cfg.targets[0], "x86_64", [bad], verify=signer.require_signed)
        assert why in str(e.value) and str(bad) in str(e.value)
    good = _signed(keys_and_rpm, "release", tmp_path / "good")
    plan = plan_repo(cfg, cfg.targets[0], "x86_64", [good], verify=signer.require_signed)
    assert [p.filename for p in plan.packages] == [good.name]
    assert runner.checksig_runs() == 0


def test_a_known_package_replaced_by_a_symlink_out_of_public_is_still_refused(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """The snapshot skips the entry check for names the index knows, never for links;
    an unchanged file keeps the index's stat tuple (the same object), a changed one
    has its own."""
    rpm = keys_and_rpm[2]
    public = tmp_path / "public"
    pkgs = public / "repo/el7/x86_64/Packages"
    pkgs.mkdir(parents=True)
    outside = tmp_path / "elsewhere.rpm"
    outside.write_bytes(b"x")
    (pkgs / "a-1-1.noarch.rpm").write_bytes(b"x")
    known = {n: read_package(rpm) for n in ("a-1-1.noarch.rpm", "b-1-1.noarch.rpm")}
    files = read_snapshot(pkgs.parent, public, known).files
    assert set(files) == {"a-1-1.noarch.rpm"}
    a_stat = stat_of((pkgs / "a-1-1.noarch.rpm").stat())
    assert files["a-1-1.noarch.rpm"] == a_stat != known["a-1-1.noarch.rpm"].stat
    known["a-1-1.noarch.rpm"] = dataclasses.replace(known["a-1-1.noarch.rpm"], stat=a_stat)
    (pkgs / "c-1-1.noarch.rpm").write_bytes(b"x")  # not in the index: read whatever its stat
    files = read_snapshot(pkgs.parent, public, known).files
    assert files["a-1-1.noarch.rpm"] is known["a-1-1.noarch.rpm"].stat
    assert files["c-1-1.noarch.rpm"] is NOT_KNOWN
    (pkgs / "c-1-1.noarch.rpm").unlink()
    (pkgs / "b-1-1.noarch.rpm").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside the publish folder"):
        read_snapshot(pkgs.parent, public, known)


def test_a_file_the_ledger_knows_is_not_checked_again_but_a_changed_one_is(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    home, fprs, _ = keys_and_rpm
    runner = RecordingRunner()
    signer = Signer(
        gnupghome=home, fingerprint=fprs["release"], runner=runner, ledger=tmp_path / "ledger"
    )
    rpm = _signed(keys_and_rpm, "release", tmp_path / "pkgs")
    first = read_and_check(rpm, signer.published_keys(), signer.verified_before())
    assert first.verdict is not None and first.verdict.ok is True
    signer.require_verdicts([rpm], [first.package.sha256], [first.verdict])
    assert first.package.sha256 in signer.verified_before()
    # the same bytes again: the ledger decides (the payload is not hashed again)
    again = read_and_check(rpm, signer.published_keys(), signer.verified_before())
    assert again.verdict is None
    signer.require_verdicts([rpm], [again.package.sha256], [again.verdict])
    assert runner.checksig_runs() == 0
    # changed bytes are new bytes: checked, and refused
    _flip(rpm, rpm.stat().st_size - 100)
    changed = read_and_check(rpm, signer.published_keys(), signer.verified_before())
    assert changed.verdict is not None and changed.verdict.ok is False


BIG_SPEC = SPEC.replace("Name: readonce", "Name: readonce-big").replace(
    "head -c 300000", "head -c 6000000"
)


def test_a_package_larger_than_the_read_buffer_streams_through_both_hashes(
    keys_and_rpm: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    home, fprs, _ = keys_and_rpm
    (rpm,) = build_rpms({"readonce-big": BIG_SPEC}, tmp_path / "build")
    rpmsign([rpm], home, fprs["release"])
    assert rpm.stat().st_size > WHOLE_READ
    signer, _ = _signer(keys_and_rpm, "release")
    read = read_and_check(rpm, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is True, read.verdict
    assert read.package.sha256 == hashlib.sha256(rpm.read_bytes()).hexdigest()
    assert _rpmkeys_accepts(signer, rpm)
    for at in (WHOLE_READ + 1000, rpm.stat().st_size - 10):  # past the first buffer
        bad = tmp_path / f"bad-{at}" / rpm.name
        bad.parent.mkdir()
        shutil.copyfile(rpm, bad)
        _flip(bad, at)
        read = read_and_check(bad, signer.published_keys())
        assert read.verdict is not None and read.verdict.ok is False
        assert read.verdict.detail == "Payload digest: BAD (the payload was changed)"
        assert read.package.sha256 == hashlib.sha256(bad.read_bytes()).hexdigest()
        assert not _rpmkeys_accepts(signer, bad)


def test_the_read_buffer_grows_with_the_files_read(
    keys_and_rpm: tuple[Path, dict[str, str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that reads one small package holds a buffer of its size, not 4 MiB;
    the buffer grows for larger files, up to WHOLE_READ, and each file is read whole
    into it or streamed past it with the same results."""
    home, fprs, unsigned = keys_and_rpm
    rpm = tmp_path / unsigned.name
    shutil.copyfile(unsigned, rpm)
    rpmsign([rpm], home, fprs["release"])
    monkeypatch.setattr(packages, "_read_buffer", [])
    signer, _ = _signer(keys_and_rpm, "release")
    small = read_and_check(rpm, signer.published_keys())
    assert small.verdict is not None and small.verdict.ok is True
    (buffer,) = packages._read_buffer
    assert rpm.stat().st_size < len(buffer) <= 2 * rpm.stat().st_size + (1 << 16)
    (big,) = build_rpms({"readonce-big": BIG_SPEC}, tmp_path / "build")
    rpmsign([big], home, fprs["release"])
    read = read_and_check(big, signer.published_keys())
    assert read.verdict is not None and read.verdict.ok is True
    assert read.package.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert len(packages._read_buffer[0]) == WHOLE_READ
    again = read_and_check(rpm, signer.published_keys())  # into the larger buffer
    assert again == small
