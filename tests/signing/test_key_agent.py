"""The production key on another machine: a release signs through a forwarded gpg-agent.

The "release machine" GNUPGHOME holds only the public key and no private key file;
its agent socket is the key machine's restricted (extra) socket, as
``ssh -R <release agent-socket>:<key machine agent-extra-socket>`` makes it (here a
symlink).  The key machine is a separate GNUPGHOME whose agent is reached only
through that socket.  ``[key] agent = "forwarded"`` makes repotool run every gpg
with --no-autostart (no gpg.conf on the release side says so) and check the socket
before any work.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repotool.errors import KeyAgentError, SigningError, ToolFailedError
from repotool.process import SubprocessRunner
from repotool.signing.keyring import keyring_of
from repotool.signing.signer import Signer
from tests.conftest import (
    Released,
    export_public_key,
    gpg_agents_under,
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


def _kill_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30
    )


@dataclass(frozen=True)
class Forwarded:
    release_home: Path  # the release machine: public key only
    key_home: Path  # the key machine: its gpg-agent holds the private key
    fingerprint: str

    @property
    def socket(self) -> Path:
        """Where gpg on the release machine looks for its agent (the forward's end)."""
        return _dir(self.release_home, "agent-socket")

    def forward_to(self, home: Path) -> None:
        self.socket.unlink(missing_ok=True)
        os.symlink(_dir(home, "agent-extra-socket"), self.socket)


def _private_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "private-keys-v1.d").rglob("*") if p.is_file())


@pytest.fixture
def forwarded(tmp_path: Path) -> Iterator[Forwarded]:
    keys = tmp_path / "key-machine"
    release = tmp_path / "release-machine"
    fpr = make_gpg_key(keys, "Release key <release@example.org>", algo="rsa3072", expire="2y")
    release.mkdir(mode=0o700)
    subprocess.run(
        ["gpg", "--homedir", str(release), "--batch", "--no-autostart", "--import"],
        input=export_public_key(keys, fpr),
        capture_output=True,
        check=True,
    )
    _kill_agent(release)  # the release side never had an agent: nothing to reuse
    subprocess.run(
        ["gpgconf", "--homedir", str(keys), "--launch", "gpg-agent"], check=True, timeout=30
    )
    subprocess.run(
        ["gpgconf", "--homedir", str(release), "--create-socketdir"],
        capture_output=True,
        check=False,
    )
    fwd = Forwarded(release, keys, fpr)
    try:
        fwd.socket.parent.mkdir(parents=True, exist_ok=True)
        fwd.forward_to(keys)
        yield fwd
    finally:
        _kill_agent(keys)
        fwd.socket.unlink(missing_ok=True)
        _kill_agent(release)
        subprocess.run(
            ["gpgconf", "--homedir", str(release), "--remove-socketdir"],
            capture_output=True,
            check=False,
        )


def _use_forwarded(project: Path, fwd: Forwarded) -> None:
    use_production_key(project, fwd.fingerprint, fwd.release_home)
    toml = project / "repotool.toml"
    toml.write_text(
        toml.read_text().replace(
            'mode = "production"\n', 'mode = "production"\nagent = "forwarded"\n', 1
        )
    )


def test_release_signs_through_a_forwarded_agent_with_no_private_key_here(
    released: Released, forwarded: Forwarded, tmp_path: Path
) -> None:
    fpr = forwarded.fingerprint
    assert _private_files(forwarded.release_home) == []
    project = make_project(
        tmp_path / "project", base_url=released.url, share_builds_from=released.project
    )
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text().replace("[media]\n", "[media]\nenabled = false\n", 1))
    _use_forwarded(project, forwarded)
    done = run_repotool(project, "release", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    public = project / "public"
    published_key = public / "keys/RPM-GPG-KEY-perfsonar"
    # every published package verifies with rpmkeys against the published key alone
    rpmdb = tmp_path / "rpmdb"
    rpmdb.mkdir()
    subprocess.run(["rpmkeys", "--dbpath", str(rpmdb), "--import", str(published_key)], check=True)
    rpms = sorted((public / "repo").rglob("*.rpm"))
    assert len(rpms) >= 5
    checked = subprocess.run(
        ["rpmkeys", "--dbpath", str(rpmdb), "--checksig", "-v", *map(str, rpms)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(f"key ID {fpr[-8:].lower()}: OK") >= len(rpms), checked.stdout
    # and the repository metadata's signature verifies with gpgv
    repomds = sorted((public / "repo").rglob("repodata/repomd.xml"))
    assert repomds
    for i, repomd in enumerate(repomds):
        scratch = tmp_path / f"gpgv-{i}"
        scratch.mkdir(mode=0o700)
        report = gpgv_check(published_key, repomd.with_name("repomd.xml.asc"), repomd, scratch)
        assert fpr in report.replace(" ", ""), report
    # no private key file on the release machine, and it never ran an agent of its own;
    # the key machine's agent did the signing
    assert _private_files(forwarded.release_home) == []
    assert _private_files(forwarded.key_home) != []
    assert gpg_agents_under(forwarded.release_home) == {}
    assert forwarded.socket.is_symlink()


def test_without_the_forward_the_run_stops_before_any_work_and_says_how(
    release_copy: Path, forwarded: Forwarded
) -> None:
    fpr = forwarded.fingerprint
    forwarded.socket.unlink()  # the ssh connection is gone
    _use_forwarded(release_copy, forwarded)
    done = run_repotool(release_copy, "sign", "--quiet")
    assert done.returncode == 5, done.stderr
    assert f"there is nothing at the gpg-agent socket {forwarded.socket}" in done.stderr
    assert f"ssh -R {forwarded.socket}:<its agent-extra-socket>" in done.stderr
    assert not (release_copy / ".repotool/signed" / fpr).exists()
    # gpg did not start a local agent (without the key) in the forward's place
    assert not forwarded.socket.exists()
    assert gpg_agents_under(forwarded.release_home) == {}


def test_an_agent_without_the_key_is_named(
    release_copy: Path, forwarded: Forwarded, tmp_path: Path
) -> None:
    other = tmp_path / "other-machine"
    other.mkdir(mode=0o700)
    subprocess.run(
        ["gpgconf", "--homedir", str(other), "--launch", "gpg-agent"], check=True, timeout=30
    )
    try:
        forwarded.forward_to(other)  # forwarded to a machine whose agent lacks the key
        _use_forwarded(release_copy, forwarded)
        done = run_repotool(release_copy, "sign", "--quiet")
    finally:
        _kill_agent(other)
    assert done.returncode == 5, done.stderr
    assert (
        f"the gpg-agent reached through {forwarded.socket} does not hold the secret key "
        f"{forwarded.fingerprint}" in done.stderr
    )
    assert not (release_copy / ".repotool/signed" / forwarded.fingerprint).exists()


def test_a_private_key_file_on_the_release_machine_is_refused(
    release_copy: Path, forwarded: Forwarded
) -> None:
    key_file = _private_files(forwarded.key_home)[0]
    copy = forwarded.release_home / "private-keys-v1.d" / key_file.name
    copy.parent.mkdir(mode=0o700, exist_ok=True)
    copy.write_bytes(key_file.read_bytes())
    _use_forwarded(release_copy, forwarded)
    done = run_repotool(release_copy, "sign", "--quiet")
    assert done.returncode == 5, done.stderr
    assert f"a private key file of the release key {forwarded.fingerprint}" in done.stderr
    assert str(copy) in done.stderr


def test_a_forwarded_agent_takes_no_passphrase_file(
    release_copy: Path, forwarded: Forwarded
) -> None:
    _use_forwarded(release_copy, forwarded)
    toml = release_copy / "repotool.toml"
    toml.write_text(
        toml.read_text().replace(
            'agent = "forwarded"\n', 'agent = "forwarded"\npassphrase_file = "pass.txt"\n', 1
        )
    )
    done = run_repotool(release_copy, "sign", "--quiet")
    assert done.returncode != 0
    assert "a forwarded gpg-agent takes no passphrase file" in done.stderr


def test_a_forward_lost_mid_run_never_starts_a_local_agent(
    released: Released, forwarded: Forwarded, tmp_path: Path
) -> None:
    """After the check before work, the forward goes away: gpg, python-gnupg and
    rpmsign's gpg all fail instead of starting an agent (without the key) here."""
    signer = Signer(
        gnupghome=forwarded.release_home,
        fingerprint=forwarded.fingerprint,
        runner=SubprocessRunner(),
        agent_socket=forwarded.socket,
    )
    forwarded.socket.unlink()
    with pytest.raises(KeyAgentError, match="does not hold the secret key"):
        signer.check_usable()
    with pytest.raises(ToolFailedError):
        signer.detach_sign(b"data\n")
    ring = keyring_of(signer)
    assert not ring.has_secret(forwarded.fingerprint)  # 'key rotate' checks the new key
    with pytest.raises(ToolFailedError):  # a rotation's cross-signature
        ring.cross_sign(forwarded.fingerprint, forwarded.fingerprint)
    rpm = tmp_path / "a.rpm"
    rpm.write_bytes(next(released.public.rglob("perfsonar-toolkit-sysctl-*.rpm")).read_bytes())
    before = rpm.read_bytes()
    with pytest.raises(SigningError):
        signer.sign_rpms([rpm], jobs=1)
    assert rpm.read_bytes() == before
    assert not forwarded.socket.exists()
    assert gpg_agents_under(forwarded.release_home) == {}


def test_a_key_rotation_cross_signs_through_the_forwarded_agent(
    release_copy: Path, forwarded: Forwarded
) -> None:
    old = forwarded.fingerprint
    new = make_gpg_key(
        forwarded.key_home, "New release key <new@example.org>", algo="rsa3072", expire="3y"
    )
    subprocess.run(
        ["gpg", "--homedir", str(forwarded.release_home), "--batch", "--no-autostart", "--import"],
        input=export_public_key(forwarded.key_home, new),
        capture_output=True,
        check=True,
    )
    _use_forwarded(release_copy, forwarded)
    switch = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    done = run_repotool(release_copy, "key", "rotate", "--new", new, "--switch-date", switch)
    assert done.returncode == 0, done.stderr
    sigs = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(forwarded.release_home),
            "--batch",
            "--no-autostart",
            "--with-colons",
            "--check-sigs",
            new,
        ],
        capture_output=True,
        text=True,
    ).stdout
    # the old key's certification of the new one, made by the key machine's agent
    assert any(
        line.startswith("sig:!:") and line.split(":")[4] == old[-16:] for line in sigs.splitlines()
    ), sigs
    assert _private_files(forwarded.release_home) == []
    assert gpg_agents_under(forwarded.release_home) == {}
