"""Helpers shared by the signing tests and tests/repo/test_read_once.py."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from repotool.process import Completed, SubprocessRunner


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
