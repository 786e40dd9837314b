"""Errata as hosts see them: real rpmbuild, createrepo_c metadata with our
updateinfo, and real dnf in a fresh installroot.

The repository is built here from the project's own specs (the fixed and the
archived vulnerable versions) plus a small unrelated package with a newer
non-security build, so that "only the fixed packages" can be told apart.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import createrepo_c as cr
import pytest

from repotool.cli import main
from repotool.evr import NEVRA
from repotool.records.advisories import check_advisories
from repotool.records.loading import load_advisories
from repotool.records.updateinfo import render_updateinfo
from tests.conftest import DnfHost

PROJECT = Path(__file__).resolve().parents[2]
SPECS = PROJECT / "specs"
CONTENT = PROJECT / "web" / "content"
TARGETS = {"el6": "6", "el7": "7"}

pytestmark = pytest.mark.skipif(
    shutil.which("dnf") is None or shutil.which("rpmbuild") is None,
    reason="needs dnf and rpmbuild (apt-get install dnf rpm)",
)

UNRELATED_SPEC = """\
Name:           perfsonar-test-unrelated
Version:        1.0
Release:        {release}%{{?dist}}
Summary:        A package with a newer build that no advisory covers
License:        MIT
BuildArch:      noarch

%description
Test package.

%install
install -d %{{buildroot}}/usr/share/perfsonar-test
echo {release} > %{{buildroot}}/usr/share/perfsonar-test/build

%files
/usr/share/perfsonar-test
"""


def run(argv: Sequence[str | Path], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"LC_ALL": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"},
    )


def rpmbuild(spec: Path, sources: Path, out: Path, work: Path, dist: str) -> None:
    done = run(
        [
            "rpmbuild",
            "-bb",
            "--define", f"_topdir {work}",
            "--define", f"_sourcedir {sources}",
            "--define", f"_rpmdir {out}",
            "--define", f"dist {dist}",
            "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            spec,
        ]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def make_repo(repo: Path, rpms: Sequence[Path], updateinfo: bytes) -> None:
    """createrepo_c metadata with updateinfo as one more record, like the publish does."""
    (repo / "Packages").mkdir(parents=True)
    rd = repo / "repodata"
    rd.mkdir()
    pkgs = []
    for r in rpms:
        dest = repo / "Packages" / r.name
        shutil.copy2(r, dest)
        pkgs.append(cr.package_from_rpm(str(dest), cr.SHA256, f"Packages/{r.name}", None, 5))
    files: dict[str, Path] = {}
    writers = {"primary": cr.PrimaryXmlFile, "filelists": cr.FilelistsXmlFile}
    writers["other"] = cr.OtherXmlFile
    for kind, cls in writers.items():
        path = rd / f"{kind}.xml.gz"
        f = cls(str(path), cr.GZ_COMPRESSION)
        f.set_num_of_pkgs(len(pkgs))
        for p in pkgs:
            f.add_pkg(p)
        f.close()
        files[kind] = path
    path = rd / "updateinfo.xml.gz"
    out = cr.CrFile(str(path), cr.MODE_WRITE, cr.GZ_COMPRESSION)
    out.write(updateinfo.decode())
    out.close()
    files["updateinfo"] = path
    repomd = cr.Repomd()
    for kind, p in files.items():
        rec = cr.RepomdRecord(kind, str(p))
        rec.fill(cr.SHA256)
        repomd.set_record(rec)
    (rd / "repomd.xml").write_text(repomd.xml_dump(), encoding="utf-8")


@dataclass(frozen=True)
class Repos:
    root: Path
    #: target -> public/repo/<target>/x86_64 style folder
    dirs: dict[str, Path]
    packages: dict[str, set[NEVRA]]


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    base = tmp_path_factory.mktemp("errata")
    unrelated = base / "unrelated"
    unrelated.mkdir()
    specs: list[tuple[Path, Path]] = []
    for component in ("perfsonar-toolkit-ntp", "perfsonar-toolkit-security"):
        folder = SPECS / component
        specs.append((folder / f"{component}.spec", folder))
        specs += [(s, folder) for s in sorted((folder / "archive").glob("*.spec"))]
    for release in ("1", "2"):
        spec = unrelated / f"unrelated-{release}.spec"
        spec.write_text(UNRELATED_SPEC.format(release=release), encoding="utf-8")
        specs.append((spec, unrelated))
    advisories = load_advisories(CONTENT)
    dirs: dict[str, Path] = {}
    packages: dict[str, set[NEVRA]] = {}
    for target in TARGETS:
        out = base / "rpms" / target
        for spec, sources in specs:
            rpmbuild(spec, sources, out, base / "work" / target, f".{target}")
        rpms = sorted(out.rglob("*.rpm"))
        sums: dict[NEVRA, str] = {}
        for r in rpms:
            h = cr.package_from_rpm(str(r), cr.SHA256, r.name, None, 5)
            sums[NEVRA(h.name, int(h.epoch or 0), h.version, h.release, h.arch)] = h.pkgId
        packages[target] = set(sums)
        repo = base / "public" / "repo" / target / "x86_64"
        make_repo(repo, rpms, render_updateinfo(advisories, target, set(sums), sums=sums))
        dirs[target] = repo
    # the shipped advisories agree with what the specs build
    check_advisories(advisories, packages)
    return Repos(base, dirs, packages)


OLD = {
    "perfsonar-toolkit-ntp-3.3.1-1.el7.noarch",
    "perfsonar-toolkit-security-3.3.2-1.el7.noarch",
    "perfsonar-test-unrelated-1.0-1.el7.noarch",
}


@pytest.fixture
def host(repos: Repos, dnf_host: DnfHost) -> DnfHost:
    """A host with the vulnerable builds installed from the el7 repository."""
    dnf_host.add_local_repo(repos.dirs["el7"])
    dnf_host.dnf("install", *(n.removesuffix(".noarch") for n in OLD), check=True)
    assert dnf_host.installed(arch=True) == OLD
    return dnf_host


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
