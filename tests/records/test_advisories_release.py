"""Errata in the real release: signed repositories served over HTTP, real dnf."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import createrepo_c as cr
import requests

from tests.conftest import DnfHost, Released, run_repotool, tree_digest


def test_host_gets_security_errata_from_the_signed_repository(
    released: Released, served_url: str, dnf_host: DnfHost
) -> None:
    repo_file = requests.get(f"{served_url}/repo/perfsonar.repo", timeout=10).text
    assert "repo_gpgcheck=1" in repo_file
    dnf_host.add_repo_file(repo_file)
    dnf_host.dnf(
        "install",
        "perfsonar-toolkit-ntp-3.3.1-1.el7",
        "perfsonar-toolkit-security-3.3.2-1.el7",
        check=True,
    )
    listed = dnf_host.dnf("-q", "updateinfo", "list", "--security", check=True).stdout
    assert [ln.split() for ln in listed.splitlines()] == [
        ["PSSA-2014-0001", "Moderate/Sec.", "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch"],
        ["PSSA-2014-0002", "Critical/Sec.", "perfsonar-toolkit-security-3.3.2-2.el7.noarch"],
    ]
    info = dnf_host.dnf("-q", "updateinfo", "info", "PSSA-2014-0001", check=True).stdout
    assert "CVEs: CVE-2013-5211" in info
    dnf_host.dnf("upgrade", "--advisory", "PSSA-2014-0002", check=True)
    assert dnf_host.installed() == {
        "perfsonar-toolkit-ntp-3.3.1-1.el7",
        "perfsonar-toolkit-security-3.3.2-2.el7",
    }
    dnf_host.dnf("upgrade", "--security", check=True)
    assert dnf_host.installed() == {
        "perfsonar-toolkit-ntp-3.3.2-1.el7",
        "perfsonar-toolkit-security-3.3.2-2.el7",
    }


def test_each_published_target_lists_only_its_packages(released: Released) -> None:
    for target in ("el6", "el7"):
        repo = released.public / f"repo/{target}/x86_64"
        repomd = cr.Repomd(str(repo / "repodata/repomd.xml"))
        (rec,) = [r for r in repomd.records if r.type == "updateinfo"]
        path = repo / rec.location_href
        assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.checksum
        plain = path.with_suffix("")
        cr.decompress_file(str(path), str(plain), cr.AUTO_DETECT_COMPRESSION)
        listed = {
            (u.id, p.filename, p.sum)
            for u in cr.UpdateInfo(str(plain)).updates
            for c in u.collections
            for p in c.packages
        }
        plain.unlink()
        assert {(i, f) for i, f, _ in listed} == {
            ("PSSA-2014-0001", f"perfsonar-toolkit-ntp-3.3.2-1.{target}.noarch.rpm"),
            ("PSSA-2014-0002", f"perfsonar-toolkit-security-3.3.2-2.{target}.noarch.rpm"),
        }
        for _, filename, digest in listed:
            data = (repo / "Packages" / filename).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest


def test_bad_advisory_fails_release_and_nothing_is_published(
    released: Released, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(released.project, project, symlinks=True)
    before = tree_digest(project / "public")
    adv = project / "web/content/advisories/PSSA-2014-0002.md"
    adv.write_text(
        adv.read_text(encoding="utf-8").replace("evr: 3.3.2-2.el6", "evr: 3.3.2-3.el6"),
        encoding="utf-8",
    )
    done = run_repotool(project, "release", "--json", "--quiet")
    assert done.returncode == 7, done.stderr
    assert (
        f"{adv}:21: packages.el6.0: perfsonar-toolkit-security-3.3.2-3.el6.noarch is not in "
        "the el6 repository (it holds perfsonar-toolkit-security 3.3.2-1.el6, 3.3.2-2.el6)"
    ) in done.stderr
    problems = json.loads(done.stdout)["problems"]
    assert [(p["field"], p["line"]) for p in problems] == [("packages.el6.0", 21)]
    assert tree_digest(project / "public") == before

    adv.write_text("---\nid: PSSA-2014-0002\nseverity: [\n---\n", encoding="utf-8")
    done = run_repotool(project, "release", "--quiet")
    assert done.returncode == 7
    assert f"{adv}:4: the front matter is not valid YAML" in done.stderr
    assert tree_digest(project / "public") == before


def test_advisory_check_reads_the_published_repositories(released: Released) -> None:
    done = run_repotool(released.project, "advisory", "check", "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["advisories"] == ["PSSA-2014-0001", "PSSA-2014-0002"]
    assert result["releases"] == ["3.3.2"]
    assert (result["checked_targets"], result["unchecked_targets"]) == (["el6", "el7"], [])
    assert result["summary"].endswith("are valid against the el6, el7 repositories")
