"""The one adapter through which repotool runs outside programs.

It captures output and turns "not installed" and "exited non-zero" into typed
errors that name the Debian package to install or the program's own last words.
Code that needs a program takes a :class:`Runner`; tests may pass their own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repotool.errors import ToolError, ToolFailedError, ToolMissingError

#: Which Debian 12 package provides each program repotool calls.
DEBIAN_PACKAGES: dict[str, str] = {
    "rpmbuild": "rpm",
    "rpmsign": "rpm",
    "rpmkeys": "rpm",
    "rpmspec": "rpm",
    "rpm": "rpm",
    "gpg": "gnupg",
    "gpgv": "gpgv",
    "gpgconf": "gnupg",
    "dnf": "dnf",
    "createrepo_c": "createrepo-c",
    "xorriso": "xorriso",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "implantisomd5": "isomd5sum",
    "checkisomd5": "isomd5sum",
    "isohybrid": "syslinux-utils",
    "grub-mkimage": "grub-common",
    "mkfs.fat": "dosfstools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "cpio": "cpio",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "nginx": "nginx",
    "chromium": "chromium",
    "wrk": "wrk",
}


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        input: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> Completed: ...


class SubprocessRunner:
    """Runs programs with :mod:`subprocess`; ``env`` entries are added to os.environ."""

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        input: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> Completed:
        args = [os.fspath(a) for a in argv]
        full_env = dict(os.environ)
        # Outside tools must speak one language so that their errors can be read.
        full_env["LC_ALL"] = "C.UTF-8"
        # a None value removes the variable from the program's environment
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        try:
            proc = subprocess.run(
                args,
                cwd=cwd,
                env=full_env,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as e:
            if cwd is not None and not Path(cwd).is_dir():
                raise ToolError(
                    f"cannot run '{args[0]}': its working folder does not exist",
                    where=str(cwd),
                    hint=hint or "run again; if it persists, report it",
                ) from e
            tool = os.path.basename(args[0])
            raise ToolMissingError(tool, DEBIAN_PACKAGES.get(tool)) from e
        except OSError as e:
            raise ToolError(
                f"cannot run '{args[0]}': {e.strerror or e}",
                where=where or args[0],
                hint=hint or "check that the program is executable and the folder readable",
            ) from e
        except subprocess.TimeoutExpired as e:
            raise ToolError(
                f"'{args[0]}' did not finish within {timeout} seconds",
                where=where,
                hint=hint or "see whether the machine is overloaded, then run again",
            ) from e
        done = Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace")
            if not stderr.strip():
                stderr = proc.stdout.decode("utf-8", "replace")
            raise ToolFailedError(args, proc.returncode, stderr, where=where, hint=hint)
        return done


def require_tools(tools: Sequence[str]) -> None:
    """Fail early, before any work, when a needed program is missing."""
    from shutil import which

    for tool in tools:
        if which(tool) is None:
            raise ToolMissingError(tool, DEBIAN_PACKAGES.get(tool))


def stop_gpg_agents_in(root: Path, *, wait: float = 5.0) -> int:
    """Stop every gpg-agent whose home lies under ``root``; how many there were.

    dnf (through librepo and gpgme) checks signatures in throwaway GnuPG homes
    and the gpg-agent each one starts outlives the home.  Some homes follow
    TMPDIR, others are made in /tmp whatever TMPDIR says (``/tmp/tmpdir.XXXXXX``,
    seen with Debian's dnf 4.14): run dnf with TMPDIR in a work folder, then call
    this on that folder; it stops the agents whose home lies under it and those
    that inherited a TMPDIR under it (dnf's, wherever their home is).
    """
    root = root.resolve()
    pids: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if not argv or Path(os.fsdecode(argv[0])).name != "gpg-agent":
            continue
        if _home_under(argv, root) or started_with_tmpdir_under(proc, root):
            pids.append(int(proc.name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.05)
    return len(pids)


def _home_under(argv: list[bytes], root: Path) -> bool:
    return any(
        arg == b"--homedir" and Path(os.fsdecode(argv[i + 1])).is_relative_to(root)
        for i, arg in enumerate(argv[:-1])
    )


def started_with_tmpdir_under(proc: Path, root: Path) -> bool:
    """Whether the process /proc/PID ``proc`` got a TMPDIR under ``root``."""
    try:
        environ = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(
        e.startswith(b"TMPDIR=") and Path(os.fsdecode(e[7:])).is_relative_to(root) for e in environ
    )
