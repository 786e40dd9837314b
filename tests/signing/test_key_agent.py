"""The production key on another machine: a release signs through a forwarded gpg-agent.

The "release machine" keyring holds only the public key and no private key file;
its agent socket is the other machine's restricted (extra) socket, as
``ssh -R <local socket>:<remote extra socket>`` makes it.  Here the other machine
is a separate GNUPGHOME whose agent is reached only through that socket.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    Released,
    export_public_key,
    gpgv_check,
    make_gpg_key,
    make_project,
    run_repotool,
    use_production_key,
)


def _dir(home: Path, what: str) -> Path:
    out = subprocess.run(
        ["gpgconf", "--homedir", str(home), "--list-dirs", what],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out)


@pytest.fixture
def forwarded_key(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """(release machine's GNUPGHOME, key machine's GNUPGHOME, fingerprint)."""
    keys = tmp_path / "key-machine"
    release = tmp_path / "release-machine"
    fpr = make_gpg_key(keys, "Release key <release@example.org>", algo="rsa3072", expire="2y")
    release.mkdir(mode=0o700)
    (release / "gpg.conf").write_text("no-autostart\n")  # never an agent of its own
    subprocess.run(
        ["gpg", "--homedir", str(release), "--batch", "--import"],
        input=export_public_key(keys, fpr),
        capture_output=True,
        check=True,
    )
    subprocess.run(
        ["gpgconf", "--homedir", str(keys), "--launch", "gpg-agent"], check=True, timeout=30
    )
    try:
        subprocess.run(
            ["gpgconf", "--homedir", str(release), "--create-socketdir"],
            capture_output=True,
            check=False,
        )
        socket = _dir(release, "agent-socket")
        socket.parent.mkdir(parents=True, exist_ok=True)
        socket.unlink(missing_ok=True)
        os.symlink(_dir(keys, "agent-extra-socket"), socket)
        yield release, keys, fpr
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(keys), "--kill", "all"], capture_output=True, timeout=30
        )
        subprocess.run(
            ["gpgconf", "--homedir", str(release), "--remove-socketdir"],
            capture_output=True,
            check=False,
        )


def test_release_signs_through_a_forwarded_agent_with_no_private_key_here(
    released: Released, forwarded_key: tuple[Path, Path, str], tmp_path: Path
) -> None:
    release_home, key_home, fpr = forwarded_key
    assert not any((release_home / "private-keys-v1.d").glob("*.key"))
    project = make_project(
        tmp_path / "project", base_url=released.url, share_builds_from=released.project
    )
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text().replace("[media]\n", "[media]\nenabled = false\n", 1))
    use_production_key(project, fpr, release_home)
    done = run_repotool(project, "release", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    # packages and repository metadata are signed by the key on the other machine
    public = project / "public"
    rpm = next((public / "repo/el7/x86_64/Packages").glob("perfsonar-toolkit-3.3.2-*.rpm"))
    sig = subprocess.run(
        ["rpm", "-qp", "--qf", "%{RSAHEADER:pgpsig}", str(rpm)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sig.endswith(fpr[-16:].lower()), sig
    repodata = public / "repo/el7/x86_64/repodata"
    report = gpgv_check(
        public / "keys/RPM-GPG-KEY-perfsonar",
        repodata / "repomd.xml.asc",
        repodata / "repomd.xml",
        tmp_path,
    )
    assert fpr in report.replace(" ", "") or fpr[-16:] in report
    # still no private key file on the release machine; the key machine has it
    assert not any((release_home / "private-keys-v1.d").glob("*.key"))
    assert any((key_home / "private-keys-v1.d").glob("*.key"))


def test_without_the_forwarded_socket_the_key_is_refused_before_any_work(
    release_copy: Path, forwarded_key: tuple[Path, Path, str]
) -> None:
    release_home, _, fpr = forwarded_key
    _dir(release_home, "agent-socket").unlink()  # the ssh connection is gone
    use_production_key(release_copy, fpr, release_home)
    done = run_repotool(release_copy, "sign", "--quiet")
    assert done.returncode == 5
    assert f"no secret key with fingerprint {fpr}" in done.stderr
