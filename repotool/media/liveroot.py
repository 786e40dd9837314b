"""The live root: packages installed with dnf --installroot, gpg checks on.

The toolkit packages come from the just-published, signed repository; dnf
checks the repository metadata signature (repo_gpgcheck) and every package
signature (gpgcheck) against the published key.  Afterwards the root is
normalised so that two builds from the same inputs are byte-identical.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repotool.errors import LiveRootError
from repotool.media.plan import BANNER_PATH, TOOLKIT_FILES_PATH, banner_script
from repotool.process import Runner, stop_gpg_agents_in

#: Debian's rpm keeps its database in ~/.rpmdb; an EL root wants /var/lib/rpm.
RPM_MACROS = "%_dbpath /var/lib/rpm\n"


@dataclass(frozen=True)
class RepoSource:
    """One yum repository dnf may install from."""

    repo_id: str
    baseurl: str
    gpgkeys: tuple[str, ...]


def repo_file(repos: Sequence[RepoSource]) -> str:
    """A .repo file with every check on: metadata and package signatures."""
    parts = []
    for r in repos:
        keys = " ".join(r.gpgkeys)
        parts.append(
            f"[{r.repo_id}]\nname={r.repo_id}\nbaseurl={r.baseurl}\nenabled=1\n"
            f"gpgcheck=1\nrepo_gpgcheck=1\ngpgkey={keys}\nskip_if_unavailable=0\n"
        )
    return "\n".join(parts)


def dnf_conf(*, reposdir: Path) -> str:
    # The host's own dnf.conf and plugins stay out of it (Debian's "local"
    # plugin would otherwise try to copy every package into a local repo).
    return (
        "[main]\n"
        "gpgcheck=1\nrepo_gpgcheck=1\ninstall_weak_deps=False\nkeepcache=False\n"
        f"plugins=False\nreposdir={reposdir}\ncachedir=/var/cache/dnf\n"
        "tsflags=nodocs\nclean_requirements_on_remove=False\n"
    )


_NO_MATCH = re.compile(r"(?:No match for argument|Unable to find a match): (.+)$", re.M)
_BAD_SIGNATURE = re.compile(
    r"GPG check FAILED|signature verification error|Signature verification|"
    r"is not signed|Public key for .* is not installed|BAD signature|NOKEY",
    re.I,
)


def explain_dnf_failure(output: str) -> tuple[str, str]:
    """Pure: dnf's output (stdout and stderr) -> (what failed, what to do)."""
    missing = sorted({n for found in _NO_MATCH.findall(output) for n in found.split()})
    if missing:
        return (
            f"package(s) not in the repository: {', '.join(missing)}",
            "publish the package first (repotool publish) or fix [media] packages",
        )
    if _BAD_SIGNATURE.search(output):
        return (
            "a signature check failed (repository metadata or package)",
            "republish so that repomd.xml.asc and every package are signed by the published key",
        )
    if "Cannot download repomd.xml" in output or "Failed to download metadata" in output:
        return (
            "the repository metadata could not be read",
            "check that the repository was published and the path is right",
        )
    tail = "\n".join(output.strip().splitlines()[-8:])
    return (f"dnf failed:\n    {tail}", "read dnf's message above")


class DnfInstaller:
    """Installs packages into a root with dnf, hermetically (own config, no plugins)."""

    def __init__(self, runner: Runner, *, work: Path, releasever: str, epoch: int) -> None:
        self.runner = runner
        self.work = work
        self.releasever = releasever
        self.epoch = epoch

    def _env(self) -> dict[str, str]:
        home = self.work / "rpm-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / ".rpmmacros").write_text(RPM_MACROS)
        # dnf's throwaway GnuPG homes (and their agents) go here, not into /tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        # rpm takes SOURCE_DATE_EPOCH as the install time, so the rpmdb of two
        # builds is the same.
        return {"HOME": str(home), "SOURCE_DATE_EPOCH": str(self.epoch), "TMPDIR": str(self.tmp)}

    @property
    def tmp(self) -> Path:
        return self.work / "tmp"

    def install(
        self, root: Path, repos: Sequence[RepoSource], packages: Sequence[str], *, what: str
    ) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", what.lower())
        reposdir = self.work / f"repos-{slug}"
        reposdir.mkdir(parents=True, exist_ok=True)
        (reposdir / "media.repo").write_text(repo_file(repos))
        conf = self.work / f"dnf-{slug}.conf"
        conf.write_text(dnf_conf(reposdir=reposdir))
        where = ", ".join(r.baseurl for r in repos)
        done = self.runner.run(
            [
                "dnf",
                "-y",
                f"--config={conf}",
                "--noplugins",
                f"--installroot={root}",
                f"--releasever={self.releasever}",
                "--setopt=install_weak_deps=False",
                "install",
                *packages,
            ],
            env=self._env(),
            timeout=1800,
            where=where,
            check=False,
        )
        # the gpg-agents of the GnuPG homes dnf checked signatures in outlive them
        stop_gpg_agents_in(self.tmp)
        if done.returncode != 0:
            output = done.text + "\n" + done.stderr.decode("utf-8", "replace")
            what_failed, hint = explain_dnf_failure(output)
            raise LiveRootError(
                f"installing the {what} into the live root failed: {what_failed}",
                where=where,
                hint=hint,
            )

    def install_local(self, root: Path, rpms: Sequence[Path], *, what: str) -> None:
        """rpm -i of packages made on this machine (the base provides package)."""
        done = self.runner.run(
            ["rpm", f"--root={root}", "-i", *map(str, rpms)],
            env=self._env(),
            check=False,
            where=", ".join(map(str, rpms)),
        )
        if done.returncode != 0:
            raise LiveRootError(
                f"installing the {what} into the live root failed: "
                + done.stderr.decode("utf-8", "replace").strip(),
                where=", ".join(map(str, rpms)),
                hint="read rpm's message above",
            )

    def installed(self, root: Path) -> list[str]:
        """Name-version-release.arch of every package in the root's rpmdb."""
        done = self.runner.run(
            ["rpm", f"--root={root}", "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n"],
            env=self._env(),
        )
        return sorted(n for n in done.text.splitlines() if n and not n.startswith("gpg-pubkey-"))

    def files_of(self, root: Path, packages: Sequence[str]) -> list[str]:
        """Files (not directories) the packages installed, as the live system sees them."""
        if not packages:
            return []
        done = self.runner.run(
            [
                "rpm",
                f"--root={root}",
                "-q",
                "--qf",
                "[%{FILENAMES}\t%{FILEMODES:perms}\n]",
                *packages,
            ],
            env=self._env(),
        )
        files = []
        for line in done.text.splitlines():
            path, _, perms = line.partition("\t")
            if path and not perms.startswith("d"):
                files.append(path)
        return sorted(set(files))


#: what dnf leaves behind that differs from run to run and is no use on a live system
_VOLATILE = (
    "var/log/dnf.log",
    "var/log/dnf.rpm.log",
    "var/log/dnf.librepo.log",
    "var/log/hawkey.log",
    "var/lib/dnf",
    "var/cache/dnf",
    "var/lib/rpm/.rpm.lock",
    "var/lib/rpm/rpmdb.sqlite-shm",
    "var/tmp",
    "tmp",
)


def normalise_root(root: Path) -> None:
    """Drop logs, caches and history; keep the rpmdb (its install times are the epoch)."""
    for rel in _VOLATILE:
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    wal = root / "var/lib/rpm/rpmdb.sqlite-wal"
    if wal.exists() and wal.stat().st_size == 0:
        wal.unlink()
    for rel in ("tmp", "var/tmp"):
        (root / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(root / rel, 0o1777)


def write_toolkit_banner(root: Path, *, release_file: str, toolkit_files: Sequence[str]) -> None:
    banner = root / BANNER_PATH
    banner.parent.mkdir(parents=True, exist_ok=True)
    banner.write_text(banner_script(release_file=release_file))
    banner.chmod(0o755)
    listing = root / TOOLKIT_FILES_PATH
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{f}\n" for f in toolkit_files))


def read_release(root: Path, release_file: str) -> str:
    """The release string the toolkit installed, or a clear error."""
    p = root / release_file.lstrip("/")
    if not p.is_file():
        raise LiveRootError(
            f"the live root has no {release_file} after installing the toolkit",
            where=str(p),
            hint="[media] packages must include perfsonar-release (perfsonar-toolkit pulls it in)",
        )
    return p.read_text().strip()
