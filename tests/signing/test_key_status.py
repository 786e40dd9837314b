"""``repotool key status`` and the expiry warning of ``repotool release``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import make_gpg_key, run_repotool


def _dev_fpr(project: Path) -> str:
    return (project / ".repotool/gnupg/DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text()[:40]


def test_status_names_the_key_and_every_place_hosts_trust_it(release_copy: Path) -> None:
    fpr = _dev_fpr(release_copy)
    done = run_repotool(release_copy, "key", "status", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["signing"] == fpr and data["rotation"] is None
    (key,) = data["keys"]
    assert key["fingerprint"] == fpr
    assert key["algorithm"] == "RSA-3072" and key["expires"] == "never"
    assert key["roles"] == ["signs now"]
    assert key["trusted_in"] == [
        "public/keys/RPM-GPG-KEY-perfsonar",
        "public/repo/perfsonar.repo gpgkey= (RPM-GPG-KEY-perfsonar)",
        "release package perfsonar-release-3.3.2-1.el6.noarch.rpm "
        "(/etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar)",
        "release package perfsonar-release-3.3.2-1.el6.noarch.rpm (perfsonar.repo gpgkey=)",
        "release package perfsonar-release-3.3.2-1.el7.noarch.rpm "
        "(/etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar)",
        "release package perfsonar-release-3.3.2-1.el7.noarch.rpm (perfsonar.repo gpgkey=)",
    ]
    human = run_repotool(release_copy, "key", "status")
    assert human.stdout.startswith(f"{fpr}  RSA-3072, created ")
    assert "    trusted in: public/keys/RPM-GPG-KEY-perfsonar\n" in human.stdout


def test_status_says_what_a_foreign_published_key_is(release_copy: Path, tmp_path: Path) -> None:
    # a key file someone left in public/keys/ that the release keyring does not hold
    other_home = tmp_path / "other"
    other = make_gpg_key(other_home, "Someone else <x@example.org>", algo="rsa3072")
    exported = run_export(other_home, other)
    (release_copy / "public/keys/RPM-GPG-KEY-other").write_bytes(exported)
    done = run_repotool(release_copy, "key", "status")
    assert done.returncode == 0, done.stderr
    assert (
        f"{other}  not in the release keyring\n    trusted in: public/keys/RPM-GPG-KEY-other"
        in (done.stdout)
    )


def run_export(home: Path, fpr: str) -> bytes:
    from tests.conftest import export_public_key

    return export_public_key(home, fpr)


def test_release_warns_when_the_signing_key_expires_soon(release_copy: Path) -> None:
    fpr = _dev_fpr(release_copy)
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(release_copy / ".repotool/gnupg"),
            "--batch",
            "--quick-set-expire",
            fpr,
            "30d",
        ],
        check=True,
        capture_output=True,
    )
    # the extended key reaches hosts in a new release package, as the warning says
    spec = release_copy / "specs/perfsonar-release/perfsonar-release.spec"
    spec.write_text(spec.read_text().replace("Release:        1%", "Release:        2%", 1))
    done = run_repotool(release_copy, "release", "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"the signing key {fpr} expires on " in done.stderr
    assert "(in 29 days)" in done.stderr or "(in 30 days)" in done.stderr
    assert "repotool key rotate --new FPR" in done.stderr
    assert "raise Release in specs/perfsonar-release/perfsonar-release.spec" in done.stderr
    status = run_repotool(release_copy, "key", "status")
    assert "WARNING: the signing key" in status.stdout
    # the warning comes as early as configured: 10 days is not yet
    toml = release_copy / "repotool.toml"
    toml.write_text(toml.read_text().replace("[key]\n", "[key]\nexpiry_warning_days = 10\n", 1))
    quiet = run_repotool(release_copy, "release", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "expires on" not in quiet.stderr


def test_rotate_refuses_bad_input_before_anything_changes(release_copy: Path) -> None:
    home = release_copy / ".repotool/gnupg"
    spec = release_copy / "specs/perfsonar-release/perfsonar-release.spec"
    before = spec.read_bytes()
    short = make_gpg_key(home, "Short-lived <s@example.org>", algo="rsa3072", expire="10d")
    done = run_repotool(
        release_copy, "key", "rotate", "--new", short, "--switch-date", "2099-01-01"
    )
    assert done.returncode == 5
    assert f"the new key {short} expires on " in done.stderr
    assert "before the switch date 2099-01-01" in done.stderr
    assert f"hint: extend it first: gpg --quick-set-expire {short} 3y" in done.stderr
    assert spec.read_bytes() == before
    assert not (release_copy / ".repotool/key-rotation.json").exists()

    good = make_gpg_key(home, "Next <n@example.org>", algo="rsa3072", expire="5y")
    first = run_repotool(release_copy, "key", "rotate", "--new", good)
    assert first.returncode == 0, first.stderr
    assert "The release package (3.3.2-2) now ships both keys" in first.stdout
    bumped = spec.read_bytes()
    again = run_repotool(release_copy, "key", "rotate", "--new", good)
    assert again.returncode == 5
    assert "is already under way" in again.stderr
    assert "'repotool key status' shows where it stands" in again.stderr
    assert spec.read_bytes() == bumped

    # the spec change was lost (not committed, say): refused before anything is built
    spec.write_bytes(before)
    lost = run_repotool(release_copy, "sign", "--quiet")
    assert lost.returncode == 5
    assert (
        f"a key rotation to {good} is under way, but the release package's spec ships no "
        f"second key instead of RPM-GPG-KEY-perfsonar-{good[-8:]}"
    ) in lost.stderr
    assert "hint: restore the spec as 'repotool key rotate' left it" in lost.stderr
