"""``key rotate --resign`` and ``key retire`` as a real dnf host lives them.

gpgcheck and repo_gpgcheck on; the host installed the toolkit when only the old
key existed.  A re-signed package gets its own file name, so a host that still
holds the previous repomd.xml keeps installing until it refreshes; after the retire
release the host's rpm database no longer holds the old key.
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
    build_rpms,
    make_gpg_key,
    release_json,
    rpmsign,
    run_repotool,
    tree_digest,
)
from tests.signing.signing_support import (
    OLD_SIGNED_SPEC,
    PKGS,
    arrive_at_switch_date,
    checksig,
    current_names,
    give_shell_and_rpm,
    signed_by,
    use_installed_repo_file,
    wait_for_host_keys,
)


def test_resign_keeps_stale_hosts_working_and_lets_the_old_key_go(
    project: tuple[Path, Server], tmp_path: Path
) -> None:
    project_dir, server = project
    public = project_dir / "public"
    gnupg = project_dir / ".repotool/gnupg"
    old = (gnupg / "DEVELOPMENT-KEY-NOT-FOR-PRODUCTION").read_text()[:40]
    host = DnfHost(tmp_path / "host")
    host.add_repo_file(requests.get(f"{server.url}/repo/perfsonar.repo", timeout=10).text)
    host.dnf("install", "perfsonar-release", "perfsonar-toolkit-sysctl", check=True)
    use_installed_repo_file(host)
    give_shell_and_rpm(host.root)

    # no rotation: nothing to re-sign with; refused before anything is published
    before = tree_digest(public)
    refused = run_repotool(project_dir, "key", "rotate", "--resign")
    assert refused.returncode == 5, refused.stderr
    assert "no key rotation is under way: there is no new key to re-sign" in refused.stderr
    assert "hint: start one first: 'repotool key rotate --new KEY'" in refused.stderr
    assert tree_digest(public) == before

    new = make_gpg_key(gnupg, "New release key <new@example.org>", algo="rsa3072", expire="3y")
    switch = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    started = run_repotool(project_dir, "key", "rotate", "--new", new, "--switch-date", switch)
    assert started.returncode == 0, started.stderr
    release_json(project_dir)
    host.dnf("--refresh", "upgrade", check=True)
    use_installed_repo_file(host)

    # before the switch date the old key signs: re-signing now is refused
    before = tree_digest(public)
    early = run_repotool(project_dir, "key", "rotate", "--resign")
    assert early.returncode == 5, early.stderr
    assert f"the old key {old} signs until {switch}" in early.stderr
    assert tree_digest(public) == before

    arrive_at_switch_date(project_dir, days_ago=30)
    not_yet = run_repotool(project_dir, "key", "retire", old)
    assert not_yet.returncode == 5, not_yet.stderr
    assert "are not signed by the new key" in not_yet.stderr
    assert "hint: re-sign them: 'repotool key rotate --resign'" in not_yet.stderr

    # a host that fetched the metadata before the re-signing, and does not refresh
    stale = DnfHost(tmp_path / "stale")
    stale.add_repo_file(requests.get(f"{server.url}/repo/perfsonar.repo", timeout=10).text)
    stale.dnf("install", "perfsonar-release", check=True)
    use_installed_repo_file(stale)
    stale.dnf("makecache", check=True)

    repo = public / "repo/el7/x86_64"
    files_before = {p.name for p in (repo / "Packages").iterdir()}
    done = run_repotool(project_dir, "key", "rotate", "--resign")
    assert done.returncode == 0, done.stderr
    assert "Re-signed " in done.stdout, done.stdout
    named = current_names(repo)
    resigned = sorted(n for n in named if n.endswith(f".key-{new[-8:]}.rpm"))
    assert resigned, named
    # every file the new metadata names carries the new key's signature
    db = tmp_path / "new-only"
    db.mkdir()
    (tmp_path / "new.asc").write_bytes(
        subprocess.run(
            ["gpg", "--homedir", str(gnupg), "--armor", "--export", new],
            capture_output=True,
            check=True,
        ).stdout
    )
    subprocess.run(
        ["rpmkeys", "--root", str(db), "--import", str(tmp_path / "new.asc")], check=True
    )
    for name in named:
        assert f"key ID {new[-8:].lower()}: OK" in checksig(repo / "Packages" / name, db), name
    # the older files stay (a host holding the previous repomd.xml fetches them)
    assert files_before <= {p.name for p in (repo / "Packages").iterdir()}
    for name in resigned:
        assert name.replace(f".key-{new[-8:]}", "") in files_before

    # the exported site links the files the metadata names (with their checksums)
    page = (public / "advisories/PSSA-2014-0001/index.html").read_text()
    ntp = f"perfsonar-toolkit-ntp-3.3.2-1.el7.noarch.key-{new[-8:]}.rpm"
    assert f"/{PKGS}/{ntp}" in page, page
    assert f"/{PKGS}/perfsonar-toolkit-ntp-3.3.2-1.el7.noarch.rpm" not in page

    # a host that missed the rotation's first phase is still mended by the release
    # package as first published (signed by the old key), while that file lives
    fixes = json.loads(run_repotool(project_dir, "key", "status", "--json").stdout)
    (fix,) = [f for f in fixes["stranded_host_fix"] if "/repo/el7/" in f]
    assert fix.endswith(f"/{PKGS}/perfsonar-release-3.3.2-2.el7.noarch.rpm"), fix

    # the stale host installs from the metadata it holds: the old file, the old key
    stale.dnf("install", "perfsonar-toolkit-ntp", check=True)
    assert "perfsonar-toolkit-ntp-3.3.2-1.el7" in stale.installed()
    assert signed_by(stale, "perfsonar-toolkit-ntp").endswith(old[-16:].lower())
    # after a refresh it gets the re-signed files (dnf imports the new key by itself)
    stale.dnf("--refresh", "install", "perfsonar-toolkit-firewall", check=True)
    assert signed_by(stale, "perfsonar-toolkit-firewall").endswith(new[-16:].lower())
    stale.dnf("reinstall", "perfsonar-toolkit-ntp", check=True)
    assert signed_by(stale, "perfsonar-toolkit-ntp").endswith(new[-16:].lower())

    # now every package the repositories publish is signed by the new key
    retired = run_repotool(project_dir, "key", "retire", old)
    assert retired.returncode == 0, retired.stderr
    spec = (project_dir / "specs/perfsonar-release/perfsonar-release.spec").read_text()
    assert f"%global removed_keys {old[-8:].lower()}\n" in spec
    release_json(project_dir)
    assert sorted(p.name for p in (public / "keys").iterdir()) == ["RPM-GPG-KEY-perfsonar"]

    # the host updates to the retire-phase release package: the old key leaves its rpm db
    host.dnf("--refresh", "upgrade", check=True)
    assert "perfsonar-release-3.3.2-3.el7" in host.installed()
    assert wait_for_host_keys(host.root, [new[-8:].lower()]) == [new[-8:].lower()]
    # ... so a package signed by the old key is refused, one by the new key installs
    (intruder,) = build_rpms({"intruder": OLD_SIGNED_SPEC}, tmp_path / "intruder")
    rpmsign([intruder], gnupg, old)
    said = checksig(intruder, host.root)
    assert f"key ID {old[-8:].lower()}: NOKEY" in said, said
    refused_install = host.dnf(
        "install", "--setopt=localpkg_gpgcheck=1", str(intruder), releasever="7"
    )
    assert refused_install.returncode != 0
    assert "Error: GPG check FAILED" in refused_install.stdout + refused_install.stderr
    assert "intruder-1-1" not in host.installed()
    host.dnf("reinstall", "perfsonar-toolkit-sysctl", check=True)
    assert signed_by(host, "perfsonar-toolkit-sysctl").endswith(new[-16:].lower())
    # the updated release package is idempotent: a second upgrade changes nothing
    again = host.dnf("--refresh", "upgrade", check=True)
    assert re.search(r"Nothing to do|Dependencies resolved", again.stdout), again.stdout

    # one file per build: the same NEVRA under another name must be the same build
    spec = OLD_SIGNED_SPEC.replace("Name: intruder", "Name: extra")
    (first,) = build_rpms({"extra": spec}, tmp_path / "extra-1")
    rpmsign([first], gnupg, new)
    added = run_repotool(project_dir, "publish", "--add", "el7", str(first))
    assert added.returncode == 0, added.stderr
    (other,) = build_rpms({"extra": spec.replace("\nt\n", "\nanother build\n")}, tmp_path / "x2")
    renamed = other.with_name(f"extra-1-1.noarch.key-{new[-8:]}.rpm")
    other.rename(renamed)
    rpmsign([renamed], gnupg, new)
    clash = run_repotool(project_dir, "publish", "--add", "el7", str(renamed))
    assert clash.returncode != 0, clash.stdout
    assert f"{renamed.name} is already published with different content" in clash.stderr
