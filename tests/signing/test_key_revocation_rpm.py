"""What a revocation does on a host, measured (why 'key compromised' removes the key).

rpm 4.18 (Debian 12, EL9) checks a package against a key in its database and does
not look at a revocation signature on that key: a host that imported the revoked
key still accepts packages signed by it.  So a compromised key is shut out by
taking it out of the host's rpm database: the release package that 'key
compromised' publishes does it (tests/signing/test_key_compromise.py), and the
repository re-signs everything (dnf's repo_gpgcheck goes through gpgme, whose
handling of a revoked key is not measured here).  If this test starts failing, rpm
learned to honour revocations (rpm with the Sequoia backend is said to).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import build_rpms, export_public_key, make_gpg_key, rpmsign

SPEC = """Name: t
Version: 1
Release: 1
Summary: t
License: MIT
BuildArch: noarch
%description
t
%files
"""


def test_rpm_here_accepts_a_package_signed_by_a_revoked_key(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    fpr = make_gpg_key(home, "Old release key <old@example.org>", algo="rsa3072")
    (rpm,) = build_rpms({"t": SPEC}, tmp_path / "top")
    rpmsign([rpm], home, fpr)
    revocation = home / "openpgp-revocs.d" / f"{fpr}.rev"
    # gpg stores the certificate with a ':' before its armor line so it is not used by mistake
    revocation.write_text(revocation.read_text().replace(":-----BEGIN", "-----BEGIN"))
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--import", str(revocation)],
        capture_output=True,
        check=True,
    )
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--list-keys", fpr],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listing.startswith("tru") and "\npub:r:" in listing  # gpg: revoked
    revoked = tmp_path / "revoked.asc"
    revoked.write_bytes(export_public_key(home, fpr))
    db = tmp_path / "rpmdb"
    db.mkdir()
    subprocess.run(["rpmkeys", "--dbpath", str(db), "--import", str(revoked)], check=True)
    done = subprocess.run(
        ["rpmkeys", "--dbpath", str(db), "--checksig", "-v", str(rpm)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"key ID {fpr[-8:].lower()}: OK" in done.stdout
