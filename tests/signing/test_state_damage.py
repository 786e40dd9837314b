"""Damaged signing state in the state folder (the development key's marker, the
ledger of verified packages) is an error naming the file and what to delete."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from repotool.signing.ledger import parse_ledger
from tests.conftest import make_project, run_repotool

COMPONENT = "perfsonar-toolkit-sysctl"
SPEC = f"specs/{COMPONENT}/{COMPONENT}.spec"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    path = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    yield path
    home = path / ".repotool" / "gnupg"
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "it is empty"),
        (b"\n\n", "it is empty"),
        (b"\xff\xfe garbage\n", "it does not start with a key fingerprint"),
    ],
)
def test_a_damaged_development_key_marker_is_named(
    project: Path, content: bytes, reason: str
) -> None:
    first = run_repotool(project, "build", COMPONENT, "--quiet")
    assert first.returncode == 0, first.stderr
    home = project / ".repotool" / "gnupg"
    marker = home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION"
    old = marker.read_text().split()[0]
    marker.write_bytes(content)
    done = run_repotool(project, "build", COMPONENT)
    assert done.returncode == 5, done.stderr
    assert done.stderr == (
        f"repotool: error: {marker}: the development key's marker file is damaged: {reason}\n"
        f"  hint: delete the folder {home}: the next run makes a new development key "
        "(and signs the packages again with it)\n"
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=True)
    subprocess.run(["rm", "-rf", str(home)], check=True)
    again = run_repotool(project, "build", COMPONENT, "--quiet")
    assert again.returncode == 0, again.stderr
    new = marker.read_text().split()[0]
    assert new != old and f"USING A DEVELOPMENT SIGNING KEY ({new})" in again.stderr


def test_a_damaged_ledger_of_verified_packages_is_named(project: Path) -> None:
    first = run_repotool(project, "sign", "--quiet")
    assert first.returncode == 0, first.stderr
    (ledger,) = (project / ".repotool" / "verified").glob("*.sha256")
    lines = ledger.read_bytes().splitlines()
    ledger.write_bytes(lines[0] + b"\n\xff\xfe\x00 not a digest\n")
    spec = project / SPEC
    spec.write_text(spec.read_text().replace("Release:        1%", "Release:        7%"))
    done = run_repotool(project, "sign", "--quiet")
    assert done.returncode == 5, done.stderr
    assert (
        f"repotool: error: {ledger}:2: the list of verified packages is damaged: line 2 is not "
        f"a SHA-256 digest\n  hint: delete {ledger}; every package is then checked against "
        "the key again, once\n"
    ) in done.stderr
    ledger.unlink()
    again = run_repotool(project, "sign", "--quiet")
    assert again.returncode == 0, again.stderr
    assert len(ledger.read_text().split()) == 2  # the el6 and el7 build of the new release


def test_ledger_reading() -> None:
    digest = "ab" * 32
    assert parse_ledger(f"{digest}\n".encode()) == {digest}
    assert parse_ledger(b"") == set()
    assert parse_ledger(f"{digest}\n{digest.upper()}\n".encode()) == 2
    assert parse_ledger(f"{digest}\n\n".encode()) == 2


def test_a_marker_naming_a_key_the_folder_lacks_says_what_to_delete(project: Path) -> None:
    first = run_repotool(project, "build", COMPONENT, "--quiet")
    assert first.returncode == 0, first.stderr
    home = project / ".repotool" / "gnupg"
    (home / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").write_text("AB" * 20 + "\n")
    done = run_repotool(project, "build", COMPONENT)
    assert done.returncode == 5, done.stderr
    assert done.stderr.endswith(
        f"repotool: error: GNUPGHOME {home}: no secret key with fingerprint {'AB' * 20}\n"
        f"  hint: delete the folder {home}: the next run makes a new development key\n"
    ), done.stderr
