"""Shared set-up of the media tests: a small signed toolkit repository made with
the real tools (rpmbuild, rpmsign, createrepo_c, gpg), and a qemu boot that
reads the serial console.

The media stage's own tests install three tiny packages (built with conftest's
``build_rpms``, signed by the project's signer) into the live root, laid out as
``repotool publish`` writes them (public/repo/<target>/<arch>/, public/keys/);
the media of the real release are tested on the session's ``released``
(tests/test_release_media.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from repotool.config import Config
from repotool.process import Runner
from repotool.signing.signer import Signer
from tests.conftest import build_rpms

HELLO_FILE = "/usr/share/perfsonar-toolkit-hello/hello.txt"

SPECS = {
    "perfsonar-release": """\
Name: perfsonar-release
Version: {version}
Release: 1
Summary: release file
License: ASL 2.0
BuildArch: noarch
%description
Records the toolkit release.
%install
mkdir -p %{{buildroot}}/etc
echo "pS-Performance Toolkit release {version}" > %{{buildroot}}/etc/perfsonar-toolkit-release
%files
/etc/perfsonar-toolkit-release
""",
    "perfsonar-toolkit-hello": """\
Name: perfsonar-toolkit-hello
Version: {version}
Release: 1
Summary: a file a toolkit package installs
License: ASL 2.0
BuildArch: noarch
%description
One data file.
%install
mkdir -p %{{buildroot}}/usr/share/perfsonar-toolkit-hello
echo "hello from the toolkit {version}" > %{{buildroot}}{hello}
%files
/usr/share/perfsonar-toolkit-hello
""",
    "perfsonar-toolkit": """\
Name: perfsonar-toolkit
Version: {version}
Release: 1
Summary: the toolkit
License: ASL 2.0
BuildArch: noarch
Requires: perfsonar-release = {version}
Requires: perfsonar-toolkit-hello
%description
Meta package.
%files
""",
}


def write_config(root: Path, *, media_extra: str = "") -> Path:
    """A repotool.toml for a temp project: quick boot menu, gzip squashfs."""
    (root / "repotool.toml").write_text(
        'version = "3.3.2"\n'
        "[media]\n"
        "menu_timeout = 5\n"
        'squashfs_compression = "gzip"\n'
        # the media chain's own tests: the small busybox base boots in seconds
        # (the Debian base of the embedded default is tested on the release)
        'base = "busybox"\n' + media_extra
    )
    return root / "repotool.toml"


def publish_signed_repo(
    cfg: Config,
    signer: Signer,
    runner: Runner,
    *,
    version: str = "3.3.2",
    packages: tuple[str, ...] = tuple(SPECS),
) -> Path:
    """rpmbuild the tiny specs, rpmsign them, createrepo_c, sign repomd.xml."""
    repo = cfg.public_dir / "repo" / cfg.media.target / cfg.media.arch
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "Packages").mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="media-rpmbuild-") as top:
        rpms = build_rpms(
            {n: SPECS[n].format(version=version, hello=HELLO_FILE) for n in packages},
            Path(top),
            env={"SOURCE_DATE_EPOCH": "1390000000"},
        )
        signer.sign_rpms(rpms)
        for rpm in rpms:
            shutil.copy2(rpm, repo / "Packages" / rpm.name)
    runner.run(["createrepo_c", "--simple-md-filenames", "--no-database", str(repo)])
    repomd = repo / "repodata" / "repomd.xml"
    key = signer.public_key_armored()
    (repo / "repodata" / "repomd.xml.asc").write_bytes(signer.detach_sign(repomd.read_bytes()))
    (repo / "repodata" / "repomd.xml.key").write_text(key)
    keys = cfg.public_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / cfg.key.public_key_name).write_text(key)
    return repo


class SerialBoot:
    """qemu-system-x86_64 with the console on stdout, read by a thread."""

    def __init__(self, drive_args: list[str]) -> None:
        self.lines: list[str] = []
        self._proc = subprocess.Popen(
            [
                "qemu-system-x86_64",
                "-accel",
                "tcg",
                "-m",
                "512",
                "-nographic",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
                *drive_args,
            ],
            # an open pipe nobody writes to, not /dev/null: with /dev/null as stdin
            # and a gpg-agent running (any test that signed starts one), the boot
            # menu received stray input (the agent's "ERR ... Unknown IPC command"
            # among it) and booted the wrong entry; seen in the suite, reproduced
            # alone with one agent started before the boot
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def wait_for(self, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(marker in ln for ln in self.lines):
                return True
            if self._proc.poll() is not None and not self._reader.is_alive():
                return False
            time.sleep(0.2)
        return False

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=30)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._reader.join(timeout=5)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def qemu_available() -> bool:
    return shutil.which("qemu-system-x86_64") is not None and os.path.exists("/usr/lib/ISOLINUX")


OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")


def ovmf_available() -> bool:
    return qemu_available() and OVMF_CODE.is_file() and OVMF_VARS.is_file()


def uefi_firmware_args(work: Path) -> list[str]:
    """OVMF as the machine's firmware, with a private copy of its variable store."""
    variables = work / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, variables)
    return [
        "-drive",
        f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive",
        f"if=pflash,format=raw,file={variables}",
    ]
