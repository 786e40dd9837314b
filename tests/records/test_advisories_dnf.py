"""Errata as hosts see them: real rpmbuild, createrepo_c metadata with our
updateinfo, and real dnf in a fresh installroot.

The repository is built by tests/records/errata_repos.py (the ``repos`` and
``host`` fixtures are in tests/records/conftest.py) from the project's own specs
(the fixed and the archived vulnerable versions) plus a small unrelated package
with a newer non-security build, so that "only the fixed packages" can be told apart.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import createrepo_c as cr
import pytest

from repotool.cli import main
from tests.conftest import DnfHost
from tests.records.errata_repos import Repos

PROJECT = Path(__file__).resolve().parents[2]
CONTENT = PROJECT / "web" / "content"

pytestmark = pytest.mark.skipif(
    shutil.which("dnf") is None or shutil.which("rpmbuild") is None,
    reason="needs dnf and rpmbuild (apt-get install dnf rpm)",
)


def test_updateinfo_list_security_shows_each_advisory_with_severity(host: DnfHost) -> None:
    lines = [
        ln.split()
        for ln in host.dnf("-q", "updateinfo", "list", "--security", check=True).stdout.splitlines()
    ]
    assert lines == [
        ["PSSA-2014-0001", "Moderate/Sec.", "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch"],
        ["PSSA-2014-0002", "Critical/Sec.", "perfsonar-toolkit-security-3.3.2-2.el7.noarch"],
    ]


def test_updateinfo_info_shows_cves_severity_and_steps(host: DnfHost) -> None:
    text = host.dnf("-q", "updateinfo", "info", "PSSA-2014-0002", check=True).stdout
    assert "Update ID: PSSA-2014-0002" in text
    assert "CVEs: CVE-2014-0160" in text
    assert "Severity: Critical" in text
    assert "/usr/sbin/perfsonar-regenerate-host-cert" in text
    text = host.dnf("-q", "updateinfo", "info", "PSSA-2014-0001", check=True).stdout
    assert "CVEs: CVE-2013-5211" in text
    assert "restrict default kod nomodify notrap nopeer noquery" in text


def test_upgrade_advisory_installs_exactly_its_package(host: DnfHost) -> None:
    host.dnf("upgrade", "--advisory", "PSSA-2014-0001", check=True)
    assert host.installed(arch=True) == {
        "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch",
        "perfsonar-toolkit-security-3.3.2-1.el7.noarch",
        "perfsonar-test-unrelated-1.0-1.el7.noarch",
    }
    restrict = (host.root / "etc/ntp/perfsonar-restrict.conf").read_text(encoding="utf-8")
    assert "restrict default kod nomodify notrap nopeer noquery" in restrict


def test_upgrade_security_installs_exactly_the_fixed_packages(host: DnfHost) -> None:
    host.dnf("upgrade", "--security", check=True)
    assert host.installed(arch=True) == {
        "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch",
        "perfsonar-toolkit-security-3.3.2-2.el7.noarch",
        "perfsonar-test-unrelated-1.0-1.el7.noarch",
    }
    assert (host.root / "usr/share/perfsonar/notices/NOTICE-CVE-2014-0160").is_file()
    # nothing security-related is left to do
    assert host.dnf("-q", "updateinfo", "list", "--security", check=True).stdout.strip() == ""


def _updateinfo_of(repo: Path) -> tuple[Path, str]:
    repomd = cr.Repomd(str(repo / "repodata" / "repomd.xml"))
    (rec,) = [r for r in repomd.records if r.type == "updateinfo"]
    return repo / rec.location_href, rec.checksum


def test_each_target_lists_only_its_own_packages_and_repomd_checksum_matches(
    repos: Repos,
) -> None:
    for target, repo in repos.dirs.items():
        path, checksum = _updateinfo_of(repo)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == checksum
        info = cr.UpdateInfo(str(path))
        files = {
            (u.id, p.filename, p.sum)
            for u in info.updates
            for c in u.collections
            for p in c.packages
        }
        names = {(uid, fn) for uid, fn, _ in files}
        assert names == {
            ("PSSA-2014-0001", f"perfsonar-toolkit-ntp-3.3.2-1.{target}.noarch.rpm"),
            ("PSSA-2014-0002", f"perfsonar-toolkit-security-3.3.2-2.{target}.noarch.rpm"),
        }
        for _, filename, digest in files:
            package = repo / "Packages" / filename
            assert hashlib.sha256(package.read_bytes()).hexdigest() == digest


def _project(repos: Repos, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(PROJECT / "repotool.toml", project / "repotool.toml")
    shutil.copytree(CONTENT, project / "web" / "content")
    shutil.copytree(repos.root / "public", project / "public")
    return project


def test_advisory_check_against_the_published_repositories(
    repos: Repos, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(repos, tmp_path)
    config = str(project / "repotool.toml")
    assert main(["advisory", "check", "--config", config, "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 advisories, 1 releases and ")
    assert out.rstrip().endswith("are valid against the el6, el7 repositories")

    adv = project / "web/content/advisories/PSSA-2014-0001.md"
    adv.write_text(
        adv.read_text(encoding="utf-8").replace("evr: 3.3.2-1.el7", "evr: 3.3.3-1.el7"),
        encoding="utf-8",
    )
    assert main(["advisory", "check", "--config", config, "-q"]) == 7
    err = capsys.readouterr().err
    assert (
        f"{adv}:20: packages.el7.0: perfsonar-toolkit-ntp-3.3.3-1.el7.noarch is not in the el7 "
        "repository (it holds perfsonar-toolkit-ntp 3.3.1-1.el7, 3.3.2-1.el7)\n"
        "      fix: build the fix (update specs/perfsonar-toolkit-ntp to 3.3.3-1.el7), or "
        "correct evr if the fix is one of: 3.3.1-1.el7, 3.3.2-1.el7"
    ) in err

    text = adv.read_text(encoding="utf-8").replace("evr: 3.3.3-1.el7", "evr: 3.3.2-1.el7")
    adv.write_text(
        text.replace(
            "name: perfsonar-toolkit-ntp\n      evr: 3.3.2-1.el6",
            "name: perfsonar-ntp\n      evr: 3.3.2-1.el6",
        ),
        encoding="utf-8",
    )
    assert main(["advisory", "check", "--config", config, "-q", "--json"]) == 7
    out = capsys.readouterr().out
    assert '"field": "packages.el6.0"' in out
    assert "there is no package perfsonar-ntp (noarch) in the el6 repository" in out
    assert '"fix": "did you mean perfsonar-toolkit-ntp? correct the name"' in out

    # an evr without the dist tag is answered with the one the repository holds
    adv.write_text(
        adv.read_text(encoding="utf-8")
        .replace("name: perfsonar-ntp\n", "name: perfsonar-toolkit-ntp\n")
        .replace("evr: 3.3.2-1.el7", "evr: 3.3.2-1"),
        encoding="utf-8",
    )
    assert main(["advisory", "check", "--config", config, "-q"]) == 7
    assert (
        f"{adv}:20: packages.el7.0: perfsonar-toolkit-ntp-3.3.2-1.noarch is not in the el7 "
        "repository: its release lacks the dist tag (1.el7)\n"
        "      fix: write evr: 3.3.2-1.el7"
    ) in capsys.readouterr().err
