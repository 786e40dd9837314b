"""The dnf errata set-up shared by tests/records/test_advisories_dnf.py and
tests/site/test_site_pages_host.py (their conftest.py make the ``repos`` and
``host`` fixtures of it): el6/el7 repositories built with real rpmbuild from the
project's own specs (the fixed and the archived vulnerable versions) plus a small
unrelated package with a newer non-security build, createrepo_c metadata with our
updateinfo, and a dnf installroot with the vulnerable builds installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import createrepo_c as cr

from repotool.evr import NEVRA
from repotool.records.advisories import check_advisories
from repotool.records.loading import load_advisories
from repotool.records.updateinfo import render_updateinfo
from tests.conftest import DnfHost

PROJECT = Path(__file__).resolve().parents[2]
SPECS = PROJECT / "specs"
CONTENT = PROJECT / "web" / "content"
TARGETS = {"el6": "6", "el7": "7"}

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
        env={
            "LC_ALL": "C.UTF-8",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            # dnf's throwaway GnuPG homes (and the agents they leave) go where the
            # session's clean-up finds them (tests/conftest.py)
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        },
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


def build_repos(base: Path) -> Repos:
    """el6 and el7 repositories built from the specs, with our updateinfo."""
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


def install_vulnerable(repos: Repos, dnf_host: DnfHost) -> DnfHost:
    """A host with the vulnerable builds installed from the el7 repository."""
    dnf_host.add_local_repo(repos.dirs["el7"])
    dnf_host.dnf("install", *(n.removesuffix(".noarch") for n in OLD), check=True)
    assert dnf_host.installed(arch=True) == OLD
    return dnf_host
