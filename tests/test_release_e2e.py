"""The release spine end to end, with the real tools and a real dnf host."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import (
    DnfHost,
    Released,
    copy_of_release,
    free_port,
    gpgv_check,
    make_gpg_key,
    make_project,
    release_json,
    run_repotool,
    start_server,
    tree_digest,
)
from tests.release_support import bump_release, make_rpm

TOOLKIT = {
    "perfsonar-toolkit-3.3.2-1.el7",
    "perfsonar-release-3.3.2-1.el7",
    "perfsonar-toolkit-ntp-3.3.2-1.el7",
    "perfsonar-toolkit-firewall-3.3.2-1.el7",
    "perfsonar-toolkit-security-3.3.2-2.el7",
    "perfsonar-toolkit-sysctl-3.3.2-1.el7",
}


def test_host_installs_toolkit_with_signature_checks(
    released: Released, served_url: str, dnf_host: DnfHost
) -> None:
    repo_file = requests.get(f"{served_url}/repo/perfsonar.repo", timeout=10).text
    assert "gpgcheck=1" in repo_file and "repo_gpgcheck=1" in repo_file
    dnf_host.add_repo_file(repo_file)
    done = dnf_host.dnf("install", "perfsonar-toolkit", check=True)
    assert "Importing GPG key" in done.stdout + done.stderr
    assert dnf_host.installed() == TOOLKIT
    release = (dnf_host.root / "etc/perfsonar-toolkit-release").read_text()
    assert "3.3.2" in release
    ntp = (dnf_host.root / "etc/ntp/perfsonar-restrict.conf").read_text()
    assert re.search(r"^restrict default .*noquery", ntp, re.M)
    # the release package carries the very key the repository is signed with
    shipped = (dnf_host.root / "etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar").read_text()
    assert shipped == (released.public / "keys/RPM-GPG-KEY-perfsonar").read_text()


def test_el6_and_el7_repositories_carry_their_own_builds(released: Released) -> None:
    for target in ("el6", "el7"):
        pkgs = sorted(
            p.name for p in (released.public / f"repo/{target}/x86_64/Packages").iterdir()
        )
        assert pkgs and all(f".{target}." in p for p in pkgs), pkgs
        # earlier versions stay so hosts can downgrade and advisories can be tested
        assert f"perfsonar-toolkit-ntp-3.3.1-1.{target}.noarch.rpm" in pkgs
        repodata = released.public / f"repo/{target}/x86_64/repodata"
        assert repodata.is_symlink()
        assert {"repomd.xml", "repomd.xml.asc", "repomd.xml.key"} <= {
            p.name for p in repodata.iterdir()
        }


def test_repomd_signature_verifies_with_gpgv_against_published_key(
    released: Released, tmp_path: Path
) -> None:
    repodata = released.public / "repo/el7/x86_64/repodata"
    report = gpgv_check(
        released.public / "keys/RPM-GPG-KEY-perfsonar",
        repodata / "repomd.xml.asc",
        repodata / "repomd.xml",
        tmp_path,
    )
    assert "Good signature" in report


def test_noop_release_rebuilds_nothing_and_leaves_public_identical(release_copy: Path) -> None:
    # in a copy the first run rewrites the site manifest (its fingerprint covers the
    # project's path) and nothing else; from then on a release has nothing to do
    first = release_json(release_copy)
    assert first["built"] == [] and first["signed"] == 0 and first["published"] == []
    before = tree_digest(release_copy / "public")
    again = release_json(release_copy)
    assert again["built"] == [] and again["signed"] == 0 and again["published"] == []
    assert tree_digest(release_copy / "public") == before


def test_two_clean_builds_are_byte_identical(released: Released, tmp_path: Path) -> None:
    other = make_project(tmp_path / "p2", base_url=released.url, share_key_from=released.project)
    done = run_repotool(other, "build", "--json", "--quiet")
    assert done.returncode == 0, done.stderr

    def sums(project: Path) -> dict[str, str]:
        out = {}
        for rpm in (project / ".repotool/build-cache").rglob("*.rpm"):
            out[rpm.name] = subprocess.run(
                ["sha256sum", str(rpm)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        return out

    first, second = sums(released.project), sums(other)
    assert len(first) == 16 and first == second


# --- a project of its own for the tests that change things -------------------------


@pytest.fixture(scope="module")
def live(
    released: Released, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """A copy of the session release that these tests change, served on a port of its
    own (its files still name the session's URL: hosts get the served address)."""
    project = copy_of_release(released, tmp_path_factory.mktemp("live") / "project")
    server = start_server(project, free_port())
    yield project, server.url
    server.stop()


def _repo_file(url: str) -> str:
    """The .repo file as served at url, pointing at url."""
    text = requests.get(f"{url}/repo/perfsonar.repo", timeout=10).text
    return re.sub(r"http://127\.0\.0\.1:\d+", url, text)


def test_update_path_dnf_upgrade_takes_exactly_the_bumped_component(
    live: tuple[Path, str], dnf_host: DnfHost
) -> None:
    project, url = live
    dnf_host.add_repo_file(_repo_file(url))
    dnf_host.dnf("install", "perfsonar-toolkit", check=True)
    before = dnf_host.installed()
    evr = bump_release(project / "specs/perfsonar-toolkit-firewall/perfsonar-toolkit-firewall.spec")
    result = release_json(project)
    assert result["built"] == ["perfsonar-toolkit-firewall/el6", "perfsonar-toolkit-firewall/el7"]
    dnf_host.dnf("upgrade", "--refresh", check=True)
    after = dnf_host.installed()
    assert after - before == {f"perfsonar-toolkit-firewall-{evr}.el7"}
    assert before - after == {"perfsonar-toolkit-firewall-3.3.2-1.el7"}


def test_repomd_signed_by_another_key_is_refused_by_dnf(
    live: tuple[Path, str], dnf_host: DnfHost, tmp_path: Path
) -> None:
    project, _ = live
    # a copy of the published tree, served separately, with repomd.xml re-signed by a stranger
    bad = tmp_path / "bad"
    shutil.copytree(project, bad, symlinks=True, ignore=shutil.ignore_patterns(".repotool"))
    home = tmp_path / "stranger"
    make_gpg_key(home, "Mallory <m@example.invalid>")
    repodata = bad / "public/repo/el7/x86_64/repodata"
    asc = repodata / "repomd.xml.asc"
    target = asc.resolve()
    target.unlink()
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--armor",
            "--detach-sign",
            "--output",
            str(target),
            str(repodata / "repomd.xml"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = start_server(bad, port)
    try:
        dnf_host.add_repo_file(_repo_file(server.url))
        done = dnf_host.dnf("install", "perfsonar-toolkit")
    finally:
        server.stop()
    assert done.returncode != 0
    assert "perfsonar-toolkit" not in " ".join(dnf_host.installed())
    assert "repomd.xml GPG signature verification error: Bad GPG signature" in (
        done.stdout + done.stderr
    )


def test_unsigned_package_slipped_in_is_refused_and_nothing_changes(
    live: tuple[Path, str], tmp_path: Path
) -> None:
    project, _ = live
    rpm = make_rpm(tmp_path, "intruder")
    before = tree_digest(project / "public")
    done = run_repotool(project, "publish", "--add", "el7", str(rpm))
    assert done.returncode == 5, done.stderr
    assert "the package is not signed" in done.stderr
    assert str(rpm) in done.stderr
    assert tree_digest(project / "public") == before


def test_package_with_flipped_bytes_is_refused(live: tuple[Path, str], tmp_path: Path) -> None:
    project, _ = live
    rpm = make_rpm(tmp_path, "flipped")
    signed = run_repotool(project, "sign", str(rpm))
    assert signed.returncode == 0, signed.stderr
    data = bytearray(rpm.read_bytes())
    data[-100] ^= 0xFF  # inside the compressed payload
    rpm.write_bytes(bytes(data))
    before = tree_digest(project / "public")
    done = run_repotool(project, "publish", "--add", "el7", str(rpm))
    assert done.returncode != 0
    assert "flipped-1.0-1.el7.noarch.rpm" in done.stderr
    assert re.search(r"NOT OK|BAD|cannot read", done.stderr), done.stderr
    assert tree_digest(project / "public") == before


def test_signed_extra_package_is_published_and_rich_deps_refused_for_el6(
    live: tuple[Path, str], tmp_path: Path
) -> None:
    project, _ = live
    rich = make_rpm(
        tmp_path, "richdeps", extra_header="Requires: (perfsonar-toolkit or perfsonar-release)"
    )
    assert run_repotool(project, "sign", str(rich)).returncode == 0
    before = tree_digest(project / "public")
    done = run_repotool(project, "publish", "--add", "el6", str(rich))
    assert done.returncode == 6, done.stderr
    assert "rpmlib(RichDependencies)" in done.stderr and "el6" in done.stderr
    assert tree_digest(project / "public") == before
