"""The pluggable base system under the toolkit packages.

``debian`` (embedded default): a minimal Debian 12 userland by mmdebstrap with
systemd and the services the toolkit configures (``repotool/media/debian.py``);
the booted LiveCD is a working measurement node.

``busybox`` (quick tests of the media chain): Debian's static busybox as
the whole userland and Debian's cloud kernel, fetched with ``apt-get download``
into the state folder and cached there.  It boots in seconds under qemu and
proves the image, the boot chain and the toolkit packages; it is not a host
to run measurements on.

``repos`` (production): the distribution's base repositories
(``[media] base_repos``, ``base_gpgkeys``) and a kickstart-like package list
(``base_packages``: at least a kernel and a static busybox for the initramfs,
plus what a toolkit host runs: systemd, the measurement tools' dependencies,
an installer).  dnf installs them with gpg checks on, like the toolkit.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repotool.config import Config
from repotool.errors import BaseSystemError, ToolError
from repotool.media.debian import (
    DebianRootCache,
    deb_versions,
    live_setup,
    profile_path,
    read_profile,
    unpack,
)
from repotool.media.liveroot import DnfInstaller, RepoSource
from repotool.media.plan import KERNEL_PACKAGE_CHOICE
from repotool.media.provides import build_base_provides, load_profile
from repotool.process import Runner
from repotool.report import Reporter


@dataclass(frozen=True)
class BootKit:
    """What the initramfs and the boot loader need from the base."""

    kernel: Path
    kernel_version: str
    #: lib/modules/<version> with modules.dep
    modules_dir: Path
    #: a static busybox for the initramfs
    busybox: Path
    #: for media.json: where kernel and userland came from
    description: str
    #: how to boot with another kernel (for the note on missing drivers)
    kernel_choice: str = KERNEL_PACKAGE_CHOICE


class BaseSystem(Protocol):
    name: str

    def prepare(self, root: Path) -> BootKit:
        """Put the base system into ``root`` and return its boot kit."""
        ...


def parse_apt_depends(text: str) -> list[str]:
    """``apt-cache depends`` output -> the packages named on Depends lines."""
    return [m.group(1) for m in re.finditer(r"^\s*\|?Depends: (\S+)$", text, re.M)]


def deb_version(filename: str) -> str:
    """``name_1%3a1.35.0-4_amd64.deb`` -> ``1:1.35.0-4``."""
    parts = filename.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else "?"


class DebianPackages:
    """Fetches .debs with apt-get download into a cache and unpacks them there."""

    def __init__(self, runner: Runner, cache: Path, reporter: Reporter) -> None:
        self.runner = runner
        self.cache = cache
        self.reporter = reporter

    def _resolve(self, name: str) -> str:
        """A metapackage (linux-image-cloud-amd64) -> the package holding the files."""
        if not name.startswith("linux-image-") or re.search(r"\d+\.\d+", name):
            return name
        try:
            done = self.runner.run(["apt-cache", "depends", "--important", name], check=False)
        except ToolError:
            return name
        deps = [d for d in parse_apt_depends(done.text) if d.startswith("linux-image-")]
        return deps[0] if deps else name

    def unpacked(self, name: str) -> tuple[Path, str]:
        """The unpacked tree of the package and 'package version' for the record."""
        real = self._resolve(name)
        self.cache.mkdir(parents=True, exist_ok=True)
        found = sorted(self.cache.glob(f"{real}_*.deb"))
        if not found:
            self.reporter.info(f"Fetching {real} with apt-get download ...")
            try:
                self.runner.run(
                    ["apt-get", "download", real],
                    cwd=self.cache,
                    timeout=600,
                    where=f"Debian package {real}",
                )
            except ToolError as e:
                raise BaseSystemError(
                    f"the base package {real} could not be fetched: {e.what}",
                    where=f'repotool.toml [media] (base = "busybox"), cache {self.cache}',
                    hint="run apt-get update, check the package name, or put the .deb "
                    f"into {self.cache} by hand",
                ) from e
            found = sorted(self.cache.glob(f"{real}_*.deb"))
            if not found:
                raise BaseSystemError(
                    f"apt-get download left no {real}_*.deb", where=str(self.cache)
                )
        deb = found[-1]
        tree = self.cache / deb.name.removesuffix(".deb")
        if not (tree / ".unpacked").exists():
            tmp = tree.with_name(tree.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.runner.run(["dpkg-deb", "-x", str(deb), str(tmp)], where=str(deb))
            (tmp / ".unpacked").write_text(deb.name + "\n")
            shutil.rmtree(tree, ignore_errors=True)
            os.replace(tmp, tree)
        return tree, f"{real} {deb_version(deb.name)}"


def find_kernel(tree: Path, where: str) -> tuple[Path, str]:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BaseSystemError(
            "the base has no kernel (boot/vmlinuz-*)",
            where=where,
            hint="add a kernel package to the base",
        )
    kernel = kernels[-1]
    return kernel, kernel.name.removeprefix("vmlinuz-")


def ensure_modules_dep(runner: Runner, tree: Path, kver: str) -> Path:
    mods = tree / "lib" / "modules" / kver
    if not mods.is_dir():
        mods = tree / "usr" / "lib" / "modules" / kver
    if not mods.is_dir():
        raise BaseSystemError(
            f"the base has no modules for kernel {kver}", where=str(tree / "lib/modules")
        )
    if not (mods / "modules.dep").exists():
        runner.run(["depmod", "-b", str(mods.parent.parent.parent), kver], where=str(mods))
    return mods


#: the live root's start: busybox init, then the toolkit banner, then a shell
_INITTAB = """::sysinit:/etc/init.d/rcS
::respawn:-/bin/sh
::ctrlaltdel:/bin/reboot
::shutdown:/bin/umount -a -r
"""

_RCS = """#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
hostname -F /etc/hostname
mode=live
for arg in $(cat /proc/cmdline); do
  case "$arg" in pslive.mode=*) mode="${arg#pslive.mode=}" ;; esac
done
/usr/libexec/pslive/banner
if [ "$mode" = install ]; then
  echo "pslive: install to disk needs the production base (base = \\"repos\\" with an"
  echo "pslive: installer in base_packages); this small base only runs the live system."
fi
echo "pslive: ready"
"""


class BusyboxBase:
    """Debian's static busybox and cloud kernel: small, quick to boot, no network needed
    once cached."""

    name = "busybox"

    def __init__(self, cfg: Config, runner: Runner, reporter: Reporter) -> None:
        self.cfg = cfg
        self.runner = runner
        cache = cfg.path(cfg.media.cache_dir) if cfg.media.cache_dir else cfg.state / "media-cache"
        self.debs = DebianPackages(runner, cache, reporter)

    def prepare(self, root: Path) -> BootKit:
        bb_tree, bb_desc = self.debs.unpacked(self.cfg.media.busybox_package)
        k_tree, k_desc = self.debs.unpacked(self.cfg.media.kernel_package)
        busybox = bb_tree / "bin" / "busybox"
        if not busybox.is_file():
            raise BaseSystemError(
                f"{bb_desc} holds no bin/busybox",
                where=str(bb_tree),
                hint="[media] busybox_package must be Debian's busybox-static",
            )
        kernel, kver = find_kernel(k_tree, str(k_tree))
        mods = ensure_modules_dep(self.runner, k_tree, kver)
        self._populate(root, busybox)
        return BootKit(
            kernel=kernel,
            kernel_version=kver,
            modules_dir=mods,
            busybox=busybox,
            description=f"{k_desc}; {bb_desc}",
        )

    def _populate(self, root: Path, busybox: Path) -> None:
        for d in (
            "bin",
            "sbin",
            "etc/init.d",
            "proc",
            "sys",
            "dev",
            "run",
            "tmp",
            "root",
            "var/log",
            "var/lib/rpm",
            "usr/bin",
            "usr/sbin",
            "mnt",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "tmp", 0o1777)
        shutil.copy2(busybox, root / "bin" / "busybox")
        applets = self.runner.run([str(busybox), "--list-full"]).text.split()
        for applet in sorted(set(applets)):
            link = root / applet
            if link.exists() or link.is_symlink() or applet == "bin/busybox":
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(root / "bin" / "busybox", link.parent))
        init = root / "sbin" / "init"
        if init.is_symlink() or init.exists():
            init.unlink()
        init.symlink_to("../bin/busybox")
        (root / "etc" / "inittab").write_text(_INITTAB)
        rcs = root / "etc" / "init.d" / "rcS"
        rcs.write_text(_RCS)
        rcs.chmod(0o755)
        (root / "etc" / "hostname").write_text("pslive\n")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")


class ReposBase:
    """The distribution's base repositories and a package list (production)."""

    name = "repos"

    def __init__(self, cfg: Config, installer: DnfInstaller) -> None:
        self.cfg = cfg
        self.installer = installer

    def prepare(self, root: Path) -> BootKit:
        m = self.cfg.media
        where = "repotool.toml [media] base_repos / base_packages"
        if not m.base_repos or not m.base_packages:
            raise BaseSystemError(
                'base = "repos" needs base_repos and base_packages',
                where=where,
                hint="list the distribution's base repository URLs and a kernel, busybox "
                'and the host\'s packages; or use base = "busybox" for a small test base',
            )
        repos = [RepoSource(f"base{i}", url, m.base_gpgkeys) for i, url in enumerate(m.base_repos)]
        self.installer.install(root, repos, m.base_packages, what="base system")
        # /etc/perfsonar/base.conf for the toolkit's scripts (the profile's [settings],
        # e.g. base_profile = "el7"); its Provides repeat what the EL packages provide
        install_base_provides(self.cfg, self.installer, root)
        kernel, kver = find_kernel(root, where)
        mods = ensure_modules_dep(self.installer.runner, root, kver)
        busybox = _first_file(
            root, ("bin/busybox", "sbin/busybox", "usr/sbin/busybox", "usr/bin/busybox")
        )
        if busybox is None:
            raise BaseSystemError(
                "the base has no busybox for the initramfs",
                where=where,
                hint="add a static busybox package to base_packages",
            )
        return BootKit(
            kernel=kernel,
            kernel_version=kver,
            modules_dir=mods,
            busybox=busybox,
            description=f"{kver} from {', '.join(m.base_repos)}",
        )


def install_base_provides(cfg: Config, installer: DnfInstaller, root: Path) -> None:
    """Build the base provides package of ``[media] base_profile`` (refused when a
    proving file is missing from the root) and install it into the root."""
    profile = load_profile(str(profile_path(cfg.media.base_profile, cfg.root)))
    rpm = build_base_provides(
        installer.runner,
        profile,
        installer.work / "base-provides",
        epoch=installer.epoch,
        root=root,
    )
    installer.install_local(root, [rpm], what=f"base provides package {rpm.name}")


def _first_file(root: Path, candidates: Sequence[str]) -> Path | None:
    for c in candidates:
        if (root / c).is_file():
            return root / c
    return None


class DebianBase:
    """A minimal Debian 12 userland by mmdebstrap (repotool/media/debian.py): the
    embedded default, a working measurement node."""

    name = "debian"

    def __init__(
        self, cfg: Config, runner: Runner, reporter: Reporter, installer: DnfInstaller
    ) -> None:
        self.cfg = cfg
        self.runner = runner
        self.installer = installer
        cache = cfg.path(cfg.media.cache_dir) if cfg.media.cache_dir else cfg.state / "media-cache"
        self.roots = DebianRootCache(runner, cache, reporter)

    def prepare(self, root: Path) -> BootKit:
        profile = read_profile(self.cfg.media.base_profile, self.cfg.root)
        unpack(self.runner, self.roots.tarball(profile), root)
        live_setup(root)
        # the rpmdb learns what the base provides (and /etc/perfsonar/base.conf)
        install_base_provides(self.cfg, self.installer, root)
        where = f"Debian base {profile.source}"
        kernel, kver = find_kernel(root, where)
        mods = ensure_modules_dep(self.runner, root, kver)
        busybox = _first_file(root, ("bin/busybox", "usr/bin/busybox"))
        if busybox is None:
            raise BaseSystemError(
                "the Debian base has no busybox for the initramfs",
                where=f"{profile.source}: packages",
                hint='add "busybox-static" to the packages',
            )
        versions = deb_versions(root, [f"linux-image-{kver}", "busybox-static"])
        parts = [f"{name} {versions[name]}" for name in sorted(versions)]
        return BootKit(
            kernel=kernel,
            kernel_version=kver,
            modules_dir=mods,
            busybox=busybox,
            description=f"Debian {profile.suite} ({profile.name}): " + "; ".join(parts),
            kernel_choice="list a kernel with these drivers (e.g. linux-image-amd64) instead of "
            f"the cloud kernel in the packages of {profile.source}",
        )


def open_base(
    cfg: Config, runner: Runner, reporter: Reporter, installer: DnfInstaller
) -> BaseSystem:
    if cfg.media.base == "debian":
        return DebianBase(cfg, runner, reporter, installer)
    if cfg.media.base == "busybox":
        return BusyboxBase(cfg, runner, reporter)
    if cfg.media.base == "repos":
        return ReposBase(cfg, installer)
    raise BaseSystemError(
        f"unknown live base '{cfg.media.base}'",
        where="repotool.toml [media] base",
        hint='use "debian" (the embedded default), "busybox" (small test base) or "repos" '
        "(distribution base repositories)",
    )
