"""A key rotation as hosts live it: a real dnf host, gpgcheck and repo_gpgcheck on.

The host installed the toolkit when only the old key existed; it then updates
at each phase of the rotation with plain ``dnf --refresh upgrade`` and never
has a key imported by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import requests

from tests.conftest import (
    DnfHost,
    Server,
    make_gpg_key,
    release_json,
    run_repotool,
)
from tests.signing.signing_support import (
    PKGS,
    arrive_at_switch_date,
    bump_release,
    signed_by,
    use_installed_repo_file,
)


def test_host_follows_the_rotation_without_importing_a_key_by_hand(
    project: tuple[Path, Server], tmp_path: Path
) -> None:
    project_dir, server = project
    old = (project_dir / ".repotool/gnupg/DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text()[:40]
    # phase 0: the host installs the toolkit; only the old key exists
    host = DnfHost(tmp_path / "host")
    stranded = DnfHost(tmp_path / "stranded")
    for h in (host, stranded):
        h.add_repo_file(requests.get(f"{server.url}/repo/perfsonar.repo", timeout=10).text)
        h.dnf("install", "perfsonar-toolkit", check=True)
        use_installed_repo_file(h)

    # phase 1: a release package (old key) ships both keys, the .repo lists both
    new = make_gpg_key(
        project_dir / ".repotool/gnupg",
        "New release key <new@example.org>",
        algo="rsa3072",
        expire="3y",
    )
    switch = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    done = run_repotool(project_dir, "key", "rotate", "--new", new, "--switch-date", switch)
    assert done.returncode == 0, done.stderr
    assert "Rotation started" in done.stdout
    release_json(project_dir)
    public = project_dir / "public"
    names = {p.name for p in (public / "keys").iterdir()}
    assert {f"RPM-GPG-KEY-perfsonar-{old[-8:]}", f"RPM-GPG-KEY-perfsonar-{new[-8:]}"} <= names
    repo = (public / "repo/perfsonar.repo").read_text()
    assert re.search(
        rf"^gpgkey=\S+/keys/RPM-GPG-KEY-perfsonar-{old[-8:]} "
        rf"\S+/keys/RPM-GPG-KEY-perfsonar-{new[-8:]}$",
        repo,
        re.M,
    ), repo
    # cross-signed: each published rotation key carries the other's certification
    scratch = tmp_path / "scratch-gpg"
    scratch.mkdir(mode=0o700)
    for mine, other in ((new, old), (old, new)):
        packets = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(scratch),
                "--batch",
                "--list-packets",
                str(public / f"keys/RPM-GPG-KEY-perfsonar-{mine[-8:]}"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"keyid {other[-16:]}" in packets, packets

    host.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-release-3.3.2-2.el7" in host.installed()
    installed = use_installed_repo_file(host)
    assert f"file:///etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar-{new[-8:]}" in installed
    assert (host.root / f"etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar-{new[-8:]}").is_file()
    assert signed_by(host, "perfsonar-release").endswith(old[-16:].lower())

    # phase 2: from the switch date the new key signs packages and repomd.xml
    arrive_at_switch_date(project_dir)
    bump_release(project_dir, "perfsonar-toolkit-sysctl")
    result = release_json(project_dir)
    assert result["published"]
    # keys/RPM-GPG-KEY-perfsonar is the key that signs now (the site and CSAF read it)
    stable = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(scratch),
            "--batch",
            "--list-packets",
            str(public / "keys/RPM-GPG-KEY-perfsonar"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"keyid: {new[-16:]}" in stable and old[-16:] not in stable, stable
    repodata = public / "repo/el7/x86_64/repodata"
    verify = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(scratch),
            "--batch",
            "--status-fd",
            "1",
            "--verify",
            str(repodata / "repomd.xml.asc"),
            str(repodata / "repomd.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert new[-16:] in verify, verify  # made by the new key (no key there to check it)

    up = host.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-toolkit-sysctl-3.3.2-2.el7" in host.installed()
    assert signed_by(host, "perfsonar-toolkit-sysctl").endswith(new[-16:].lower())
    assert "Importing GPG key" in up.stdout + up.stderr  # from the file the package shipped
    keys = subprocess.run(
        ["rpm", "--root", str(host.root), "-q", "gpg-pubkey", "--qf", "%{VERSION}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(keys) == sorted([old[-8:].lower(), new[-8:].lower()])

    # the host that skipped phase 1 cannot read the new metadata: dnf says so, and
    # the one command in docs/keys.md (the rotation's release package) mends it
    # (this dnf skips an unavailable repository and exits 0: the host just stops
    # getting updates, which is why the docs tell the message to look for)
    fail = stranded.dnf("--refresh", "upgrade")
    said = fail.stdout + fail.stderr
    assert "repo 'perfsonar': repomd.xml GPG signature verification error" in said, said
    assert "perfsonar-toolkit-sysctl-3.3.2-1.el7" in stranded.installed()
    status = run_repotool(project_dir, "key", "status", "--json")
    fixes = json.loads(status.stdout)["stranded_host_fix"]
    (fix,) = [f for f in fixes if "/repo/el7/" in f]
    release_pkg = f"{server.url}/{PKGS}/perfsonar-release-3.3.2-2.el7.noarch.rpm"
    assert fix == (
        f"dnf install --disablerepo=perfsonar --setopt=localpkg_gpgcheck=1 {release_pkg}"
    )
    human = run_repotool(project_dir, "key", "status").stdout
    assert f"is mended by one command:\n    {fixes[0]}\n" in human
    stranded.dnf(*fix.split()[1:], check=True)  # as the host's admin types it
    use_installed_repo_file(stranded)
    stranded.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-toolkit-sysctl-3.3.2-2.el7" in stranded.installed()

    # phase 3, too early: packages signed by the old key only are still published
    spec = project_dir / "specs/perfsonar-release/perfsonar-release.spec"
    state = project_dir / ".repotool/key-rotation.json"
    before = spec.read_bytes()
    # the grace period (30 days by default) has not passed since the switch
    grace = run_repotool(project_dir, "key", "retire", old)
    assert grace.returncode == 5, grace.stderr
    assert "the grace period after the switch (30 days from " in grace.stderr
    arrive_at_switch_date(project_dir, days_ago=30)
    early = run_repotool(project_dir, "key", "retire", old)
    assert early.returncode == 5, early.stderr
    assert f"packages the repositories publish are not signed by the new key {new}" in (
        early.stderr
    )
    assert "hint: re-sign them: 'repotool key rotate --resign'" in early.stderr
    assert spec.read_bytes() == before and state.is_file()

    # every published package signed by the new key: new builds, older versions let go
    # (the other way, 'key rotate --resign', is tests/signing/test_key_resign.py): here
    # the advisories name the rebuilt fixes, so the old builds can leave the repository
    for advisory in (project_dir / "web/content/advisories").glob("*.md"):
        advisory.write_text(
            re.sub(
                r"evr: 3\.3\.2-(\d+)\.",
                lambda m: f"evr: 3.3.2-{int(m.group(1)) + 1}.",
                advisory.read_text(),
            )
        )
    toml = project_dir / "repotool.toml"
    toml.write_text(toml.read_text().replace("keep_versions = 3", "keep_versions = 1"))
    for component in sorted(p.name for p in (project_dir / "specs").iterdir() if p.is_dir()):
        bump_release(project_dir, component)
    release_json(project_dir)
    done = run_repotool(project_dir, "key", "retire", old)
    assert done.returncode == 0, done.stderr
    assert f"Retired {old}" in done.stdout and not state.exists()
    release_json(project_dir)
    assert sorted(p.name for p in (public / "keys").iterdir()) == ["RPM-GPG-KEY-perfsonar"]
    assert re.search(
        r"^gpgkey=\S+/keys/RPM-GPG-KEY-perfsonar$",
        (public / "repo/perfsonar.repo").read_text(),
        re.M,
    )

    host.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-release-3.3.2-4.el7" in host.installed()
    installed = use_installed_repo_file(host)
    assert re.search(r"^gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar$", installed, re.M)
    assert [p.name for p in (host.root / "etc/pki/rpm-gpg").iterdir()] == ["RPM-GPG-KEY-perfsonar"]
    shipped = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(scratch),
            "--batch",
            "--list-packets",
            str(host.root / "etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"keyid: {new[-16:]}" in shipped and old[-16:] not in shipped
    # and it goes on updating, from the new key alone
    bump_release(project_dir, "perfsonar-toolkit-sysctl")
    release_json(project_dir)
    host.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-toolkit-sysctl-3.3.2-4.el7" in host.installed()
    assert signed_by(host, "perfsonar-toolkit-sysctl").endswith(new[-16:].lower())
