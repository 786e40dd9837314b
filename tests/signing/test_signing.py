"""The release key's checks: what is verified, and what is not verified twice."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from repotool.errors import BadSignatureError
from repotool.signing.signer import Signer
from tests.conftest import Released
from tests.signing.signing_support import RecordingRunner


def _signer(released: Released, runner: RecordingRunner, ledger: Path | None) -> Signer:
    home = released.project / ".repotool/gnupg"
    fpr = (home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text().split()[0]
    return Signer(gnupghome=home, fingerprint=fpr, runner=runner, ledger=ledger)


def test_verified_files_are_not_checked_again_but_changed_ones_are(
    released: Released, tmp_path: Path
) -> None:
    rpm = tmp_path / "a.rpm"
    shutil.copyfile(
        released.public / "repo/el7/x86_64/Packages/perfsonar-toolkit-3.3.2-1.el7.noarch.rpm", rpm
    )
    sha = hashlib.sha256(rpm.read_bytes()).hexdigest()
    runner = RecordingRunner()
    ledger = tmp_path / "verified.sha256"
    signer = _signer(released, runner, ledger)
    signer.require_signed([rpm], [sha])
    assert runner.checksig_runs() == 1
    assert ledger.read_text().split() == [sha]
    signer.require_signed([rpm], [sha])
    assert runner.checksig_runs() == 1  # known bytes: no second check
    # a new signer reads the ledger from disk
    again = _signer(released, runner, ledger)
    again.require_signed([rpm], [sha])
    assert runner.checksig_runs() == 1
    # other bytes under the same name are checked, and refused
    data = bytearray(rpm.read_bytes())
    data[-50] ^= 0xFF
    rpm.write_bytes(bytes(data))
    with pytest.raises(BadSignatureError):
        again.require_signed([rpm], [hashlib.sha256(bytes(data)).hexdigest()])
    assert runner.checksig_runs() == 2
    assert ledger.read_text().split() == [sha]  # a refused file is never remembered


def test_without_a_ledger_every_call_checks(released: Released, tmp_path: Path) -> None:
    rpm = released.public / "repo/el7/x86_64/Packages/perfsonar-toolkit-3.3.2-1.el7.noarch.rpm"
    runner = RecordingRunner()
    signer = _signer(released, runner, None)
    sha = hashlib.sha256(rpm.read_bytes()).hexdigest()
    signer.require_signed([rpm], [sha])
    signer.require_signed([rpm], [sha])
    assert runner.checksig_runs() == 2
