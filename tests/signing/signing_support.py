"""Helpers shared by the signing tests and tests/repo/test_read_once.py: a project
without media, what a dnf host trusts and holds, the rotation's clock."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from repotool.process import Completed, SubprocessRunner
from tests.conftest import DnfHost


class RecordingRunner(SubprocessRunner):
    """The real runner, noting which programs ran."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str | os.PathLike[str]], **kw: object) -> Completed:
        self.calls.append([os.fspath(a) for a in argv])
        return super().run(argv, **kw)  # type: ignore[arg-type]

    def checksig_runs(self) -> int:
        return sum(1 for c in self.calls if "--checksig" in c)


def give_shell_and_rpm(root: Path) -> None:
    """What a real host has and a bare dnf installroot lacks, for scriptlets that run
    programs: /bin/sh and sleep (busybox), bash (Debian's rpm macros call it to find the
    database), rpm with its libraries and macros, and /dev/null.  The release
    package's %posttrans (removing retired keys) runs these inside the root."""
    for d in ("bin", "usr/bin", "usr/lib", "lib64", "dev", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/usr/bin/busybox", root / "usr/bin/busybox")
    shutil.copy2("/usr/bin/busybox", root / "bin/sh")
    for applet in ("sleep",):
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("/usr/bin/busybox")
    for program in ("/bin/bash", "/usr/bin/rpm"):
        dest = root / program.lstrip("/")
        shutil.copy2(program, dest)
        libs = subprocess.run(["ldd", program], capture_output=True, text=True, check=True)
        for line in libs.stdout.splitlines():
            parts = line.split("=>")
            lib = parts[1].split()[0] if len(parts) == 2 and parts[1].split() else ""
            if lib.startswith("/"):
                target = root / lib.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(lib, target)
    shutil.copy2("/lib64/ld-linux-x86-64.so.2", root / "lib64/ld-linux-x86-64.so.2")
    if not (root / "usr/lib/rpm").exists():
        shutil.copytree("/usr/lib/rpm", root / "usr/lib/rpm", symlinks=True)
    if not (root / "dev/null").exists():
        os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def host_keys(root: Path) -> list[str]:
    """The short ids of the keys in a host's rpm database (gpg-pubkey-<id>)."""
    done = subprocess.run(
        ["rpm", "--root", str(root), "-q", "gpg-pubkey", "--qf", "%{VERSION}\n"],
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(done.stdout.split())


def wait_for_host_keys(root: Path, want: list[str], seconds: float = 60) -> list[str]:
    """The host's keys once they are ``want`` (the release package removes keys in
    the background, after dnf's transaction), or as they are after ``seconds``."""
    deadline = time.monotonic() + seconds
    keys = host_keys(root)
    while keys != sorted(want) and time.monotonic() < deadline:
        time.sleep(0.5)
        keys = host_keys(root)
    return keys


PKGS = "repo/el7/x86_64/Packages"


def without_media(project: Path) -> None:
    toml = project / "repotool.toml"
    toml.write_text(toml.read_text().replace("[media]\n", "[media]\nenabled = false\n", 1))


def use_installed_repo_file(host: DnfHost) -> str:
    """The host reads the .repo file its release package installed.  (An installroot
    stands in for the host's /: its file:///etc/... keys are found under the root.)"""
    text = (host.root / "etc/yum.repos.d/perfsonar.repo").read_text()
    host.add_repo_file(text.replace("file:///etc/", f"file://{host.root}/etc/"))
    return text


def signed_by(host: DnfHost, name: str) -> str:
    """The key id of the signature on an installed package, as rpm shows it."""
    return subprocess.run(
        ["rpm", "--root", str(host.root), "-q", "--qf", "%{RSAHEADER:pgpsig}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def bump_release(project: Path, component: str) -> None:
    spec = project / "specs" / component / f"{component}.spec"
    text = spec.read_text()
    spec.write_text(
        re.sub(
            r"^(Release:\s*)(\d+)%",
            lambda m: f"{m.group(1)}{int(m.group(2)) + 1}%",
            text,
            count=1,
            flags=re.M,
        )
    )


def arrive_at_switch_date(project: Path, *, days_ago: int = 0) -> None:
    """The days pass: the rotation's switch date is today (or days_ago days back)."""
    state = project / ".repotool/key-rotation.json"
    data = json.loads(state.read_text())
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days_ago)
    data["switch_date"] = day.isoformat()
    state.write_text(json.dumps(data))


OLD_SIGNED_SPEC = """Name: intruder
Version: 1
Release: 1
Summary: signed by a key the host no longer trusts
License: MIT
BuildArch: noarch
%description
t
%files
"""


def checksig(rpm: Path, root: Path) -> str:
    done = subprocess.run(
        ["rpmkeys", "--root", str(root), "--checksig", "-v", str(rpm)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


def current_names(repo: Path) -> set[str]:
    """The package files the current repomd.xml names (its primary.xml)."""
    import createrepo_c as cr

    names: set[str] = set()
    repomd = cr.Repomd(str(repo / "repodata/repomd.xml"))
    primary = next(r for r in repomd.records if r.type == "primary")
    cr.xml_parse_primary(
        str(repo / primary.location_href),
        pkgcb=lambda p: names.add(p.location_href.removeprefix("Packages/")),
        do_files=False,
    )
    return names
