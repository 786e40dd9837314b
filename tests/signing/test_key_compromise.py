"""``key compromised OLD`` as a real dnf host lives it (gpgcheck and repo_gpgcheck on).

The host installed the toolkit when only OLD existed and took the rotation's
phase-1 release package.  After the compromise it updates with plain dnf, drops
OLD from its rpm database (rpm 4.18 would still accept OLD's signatures after
importing its revocation: tests/signing/test_key_revocation_rpm.py) and refuses
a package OLD signed, while packages signed by the new key install.
"""

from __future__ import annotations

import datetime as dt
import email
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from repotool.config import load_config
from repotool.errors import CompromisedKeyError
from repotool.signing.revocation import (
    RemovedKey,
    add_removed,
    refuse_compromised,
    signature_issuers,
)
from tests.conftest import (
    DnfHost,
    Server,
    build_rpms,
    make_gpg_key,
    make_project,
    release_json,
    rpmsign,
    run_repotool,
    tree_digest,
)
from tests.signing.signing_support import (
    OLD_SIGNED_SPEC,
    checksig,
    current_names,
    give_shell_and_rpm,
    signed_by,
    use_installed_repo_file,
    wait_for_host_keys,
)


def gpg_show(path: Path, scratch: Path) -> str:
    scratch.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(
        ["gpg", "--homedir", str(scratch), "--batch", "--with-colons", "--show-keys", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def refused(project: Path, *args: str) -> str:
    public = project / "public"
    before = tree_digest(public)
    done = run_repotool(project, *args)
    assert done.returncode == 5, done.stdout + done.stderr
    assert tree_digest(public) == before, "a refused command changed public/"
    return done.stderr


def test_compromised_key_is_revoked_everything_resigned_and_hosts_drop_it(
    project: tuple[Path, Server], tmp_path: Path
) -> None:
    project_dir, server = project
    public = project_dir / "public"
    gnupg = project_dir / ".repotool/gnupg"
    spec = project_dir / "specs/perfsonar-release/perfsonar-release.spec"
    old = (gnupg / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text()[:40]
    host = DnfHost(tmp_path / "host")
    host.add_repo_file(requests.get(f"{server.url}/repo/perfsonar.repo", timeout=10).text)
    host.dnf("install", "perfsonar-release", "perfsonar-toolkit-sysctl", check=True)
    use_installed_repo_file(host)
    give_shell_and_rpm(host.root)

    # bad input, each refused before anything is published, with the reason and the fix
    said = refused(project_dir, "key", "compromised", "0123456789ABCDEF0123456789ABCDEF01234567")
    assert "no key 0123456789ABCDEF0123456789ABCDEF01234567 in the release keyring" in said
    assert "hint: name the compromised key by its 40-digit fingerprint" in said
    said = refused(project_dir, "key", "compromised", old)
    assert f"{old} is the only release key: hosts have no new key to trust instead" in said
    assert "hint: make a new key, then 'repotool key rotate --new NEW" in said
    assert spec.read_text().count("%global removed_keys %{nil}") == 1

    new = make_gpg_key(gnupg, "New release key <new@example.org>", algo="rsa3072", expire="3y")
    switch = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    started = run_repotool(project_dir, "key", "rotate", "--new", new, "--switch-date", switch)
    assert started.returncode == 0, started.stderr
    said = refused(project_dir, "key", "compromised", old)
    assert f"the release package that gives hosts the new key {new} is not published" in said
    assert "hint: publish it first with 'repotool release'" in said
    release_json(project_dir)  # phase 1: hosts get the new key's file
    host.dnf("--refresh", "upgrade", check=True)
    use_installed_repo_file(host)
    said = refused(project_dir, "key", "compromised", new)
    assert f"{new} is the new key of the rotation from {old}" in said
    said = refused(project_dir, "key", "compromised", old, "--revocation", str(tmp_path / "no"))
    assert f"no revocation certificate for {old}" in said and "--revocation" in said
    other = gnupg / "openpgp-revocs.d" / f"{new}.rev"
    said = refused(project_dir, "key", "compromised", old, "--revocation", str(other))
    assert f"the revocation certificate is not one of {old} (it revokes the key {new[-16:]})" in (
        said
    )

    # whoever holds the stolen key can still sign with it
    attacker = tmp_path / "attacker-gnupg"
    shutil.copytree(gnupg, attacker, ignore=shutil.ignore_patterns("S.*"))
    done = run_repotool(project_dir, "key", "compromised", old)
    assert done.returncode == 0, done.stderr
    assert f"{old} is revoked and out of service; {new} signs" in done.stdout, done.stdout

    # the revocation is published: the certificate, and beside it the key, revoked
    keys = public / "keys"
    names = sorted(p.name for p in keys.iterdir())
    assert names == [
        "RPM-GPG-KEY-perfsonar",
        f"RPM-GPG-KEY-perfsonar-{old[-8:]}",
        f"RPM-GPG-KEY-perfsonar-{old[-8:]}.rev",
    ], names
    assert "\npub:r:" in "\n" + gpg_show(
        keys / f"RPM-GPG-KEY-perfsonar-{old[-8:]}", tmp_path / "g1"
    )
    assert (
        "BEGIN PGP PUBLIC KEY BLOCK" in (keys / f"RPM-GPG-KEY-perfsonar-{old[-8:]}.rev").read_text()
    )
    assert f"fpr:::::::::{new}:" in gpg_show(keys / "RPM-GPG-KEY-perfsonar", tmp_path / "g2")
    repo_file = (public / "repo/perfsonar.repo").read_text()
    assert re.search(r"^gpgkey=\S+/keys/RPM-GPG-KEY-perfsonar$", repo_file, re.M), repo_file

    status = run_repotool(project_dir, "key", "status")
    assert status.returncode == 0, status.stderr
    assert f"{old}  RSA-3072" in status.stdout and ", REVOKED" in status.stdout, status.stdout
    day = dt.datetime.now(dt.UTC).date()
    assert f"role: compromised on {day}, replaced by {new} (revoked)" in status.stdout

    # every package the new metadata names is signed by the new key
    repo = public / "repo/el7/x86_64"
    named = current_names(repo)
    for name in named:
        assert signature_issuers(repo / "Packages" / name) == {new[-16:].lower()}, name
    assert any(n.endswith(f".key-{new[-8:]}.rpm") for n in named), named

    # the advisory names both fingerprints; its announcement is signed with the new key
    advisory = next(
        (project_dir / "web/content/advisories").glob(f"PSSA-{dt.date.today().year}-*.md")
    )
    text = advisory.read_text()
    assert old in text and new in text, text
    assert run_repotool(project_dir, "advisory", "check").returncode == 0
    (eml,) = (project_dir / ".repotool/outbox").glob("advisory-*.eml")
    message = email.message_from_bytes(eml.read_bytes())
    parts = [p for p in message.walk() if not p.is_multipart()]
    body = b"".join(bytes(p.get_payload(decode=True)) for p in parts[:-1]).decode()
    assert old in body and new in body, body
    sig = tmp_path / "announce.asc"
    sig.write_bytes(bytes(parts[-1].get_payload(decode=True)))
    packets = subprocess.run(
        ["gpg", "--homedir", str(tmp_path / "g2"), "--batch", "--list-packets", str(sig)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert f"keyid {new[-16:]}" in packets, packets

    # the host updates: the new release package (signed by the new key, which dnf imports
    # from the file the phase-1 package shipped) takes OLD out of its rpm database
    host.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-release-3.3.2-3.el7" in host.installed()
    assert signed_by(host, "perfsonar-release").endswith(new[-16:].lower())
    assert wait_for_host_keys(host.root, [new[-8:].lower()]) == [new[-8:].lower()]
    (intruder,) = build_rpms({"intruder": OLD_SIGNED_SPEC}, tmp_path / "intruder")
    rpmsign([intruder], attacker, old)
    assert f"key ID {old[-8:].lower()}: NOKEY" in checksig(intruder, host.root)
    attempt = host.dnf("install", "--setopt=localpkg_gpgcheck=1", str(intruder))
    assert attempt.returncode != 0 and "intruder-1-1" not in host.installed()
    assert "Error: GPG check FAILED" in attempt.stdout + attempt.stderr
    host.dnf("install", "perfsonar-toolkit-firewall", check=True)
    assert signed_by(host, "perfsonar-toolkit-firewall").endswith(new[-16:].lower())

    # OLD's signature is not published again
    said = refused(project_dir, "publish", "--add", "el7", str(intruder))
    assert "intruder-1-1.noarch.rpm" in said


def test_publish_refuses_a_package_signed_by_a_compromised_key(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    cfg = load_config(project / "repotool.toml")
    home = tmp_path / "gnupg"
    old = make_gpg_key(home, "Old <old@example.org>", algo="rsa3072")
    new = make_gpg_key(home, "New <new@example.org>", algo="rsa3072")
    (a,) = build_rpms({"intruder": OLD_SIGNED_SPEC}, tmp_path / "a")
    rpmsign([a], home, old)
    good = tmp_path / "good.rpm"
    good.write_bytes(a.read_bytes())
    rpmsign([good], home, new)
    refuse_compromised(cfg, [("el7/x86_64", a), ("el7/x86_64", good)])  # nothing recorded
    add_removed(cfg, RemovedKey(old, "compromised", dt.date(2027, 1, 2), new))
    refuse_compromised(cfg, [("el7/x86_64", good)])
    with pytest.raises(CompromisedKeyError) as caught:
        refuse_compromised(cfg, [("el7/x86_64", good), ("el7/x86_64", a)])
    e = caught.value
    assert e.what == (
        f"{a.name} is signed by the compromised key {old} (marked compromised on 2027-01-02); "
        "hosts must never be offered it again"
    )
    assert e.where == f"{a} (repository el7/x86_64)"
    assert e.hint is not None and "'repotool key rotate --resign'" in e.hint
    # a compromise is never downgraded to a retire; a retired key's packages are not refused
    add_removed(cfg, RemovedKey(old, "retired", dt.date(2027, 1, 3), new))
    with pytest.raises(CompromisedKeyError):
        refuse_compromised(cfg, [("el7/x86_64", a)])
    add_removed(cfg, RemovedKey(new, "retired", dt.date(2027, 1, 3), old))
    refuse_compromised(cfg, [("el7/x86_64", good)])
