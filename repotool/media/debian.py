"""The Debian base of the embedded default: a minimal Debian 12 userland by mmdebstrap.

``mmdebstrap`` makes the root from this machine's configured apt sources with
the package list of the base profile (``repotool/media/bases/<profile>.toml``):
systemd, Debian's cloud kernel, the services the toolkit configures (ntpsec,
apache2 with mod_ssl, iperf3, iptables, openssl) and dnf, so that the booted
host runs ``yum update`` like a CentOS toolkit host.  The root is kept as a
tarball in the media cache, keyed by everything it is made from: the profile,
mmdebstrap's version and the apt index it resolved (the ``InRelease`` files of
``apt-get update``).  A warm rebuild downloads nothing; after ``apt-get update``
brings a new index the next build makes a new root.

After unpacking, :func:`live_setup` turns the root into a live system: a host
name, root logged in on the serial console and the first screen, DHCP on every
wired interface (systemd-networkd), the rpmdb where EL hosts keep it, ``yum``,
and the banner unit that prints ``pslive: ready`` once every unit has started
(or names each one that failed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from repotool.errors import BaseSystemError, ToolError, ToolFailedError
from repotool.process import Runner
from repotool.report import Reporter

#: where apt keeps the index `apt-get update` fetched
APT_LISTS = Path("/var/lib/apt/lists")
#: the machine's configured apt sources, as mmdebstrap reads them
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))

#: documentation and translations stay out of the live root (copyright files stay)
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
)


@dataclass(frozen=True)
class DebianProfile:
    """The package side of a base profile (the settings side is media/provides.py's)."""

    name: str
    suite: str
    packages: tuple[str, ...]
    #: shell commands run by mmdebstrap's customize hook; "$1" is the root
    customize: tuple[str, ...]
    source: Path


def profile_path(name: str, project: Path | None = None) -> Path:
    """A profile shipped in repotool/media/bases/, or a .toml file of the project."""
    if name.endswith(".toml"):
        return (project or Path.cwd()) / name
    return Path(str(resources.files("repotool.media") / "bases" / f"{name}.toml"))


def read_profile(name: str, project: Path | None = None) -> DebianProfile:
    path = profile_path(name, project)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise BaseSystemError(
            f"there is no base profile '{name}'",
            where=str(path),
            hint="set [media] base_profile to a profile in repotool/media/bases/ (debian12) "
            "or to a .toml file of the project",
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise BaseSystemError(f"the base profile cannot be read: {e}", where=str(path)) from e
    packages = data.get("packages")
    if (
        not isinstance(packages, list)
        or not packages
        or not all(isinstance(p, str) and p for p in packages)
    ):
        raise BaseSystemError(
            "the base profile has no package list",
            where=f"{path}: packages",
            hint='list the Debian packages of the live root: packages = ["systemd-sysv", ...]',
        )
    customize = data.get("customize", [])
    if not isinstance(customize, list) or not all(isinstance(c, str) for c in customize):
        raise BaseSystemError(
            "customize must be a list of shell commands", where=f"{path}: customize"
        )
    return DebianProfile(
        name=str(data.get("name", name)),
        suite=str(data.get("suite", "bookworm")),
        packages=tuple(packages),
        customize=tuple(customize),
        source=path,
    )


def apt_sources() -> list[Path]:
    """The machine's apt source files (one-line .list and deb822 .sources)."""
    found: list[Path] = []
    for p in APT_SOURCES:
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(
                f for f in p.iterdir() if f.suffix in (".list", ".sources") and f.is_file()
            )
    return [f for f in found if f.read_text(errors="replace").strip()]


def apt_index_digest(lists: Path = APT_LISTS) -> str:
    """A digest of the apt index the machine resolved (its Release files)."""
    h = hashlib.sha256()
    names = sorted(p for p in lists.glob("*Release") if p.is_file()) if lists.is_dir() else []
    for p in names:
        h.update(p.name.encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def cache_key(profile: DebianProfile, *, tool_version: str, index: str) -> str:
    """Pure: what the root is made from -> a short key for its tarball."""
    spec = {
        "suite": profile.suite,
        "packages": sorted(profile.packages),
        "customize": list(profile.customize),
        "dpkg": list(DPKG_OPTIONS),
        "mmdebstrap": tool_version,
        "apt-index": index,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def mmdebstrap_argv(profile: DebianProfile, out: Path, sources: Sequence[Path]) -> list[str]:
    """Pure: the mmdebstrap command line of the root tarball."""
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(profile.packages),
        *(f"--dpkgopt={o}" for o in DPKG_OPTIONS),
        *(f"--customize-hook={c}" for c in profile.customize),
        profile.suite,
        str(out),
    ]
    return argv + [str(s) for s in sources]


class DebianRootCache:
    """The root tarballs in the media cache, made by mmdebstrap when missing."""

    def __init__(self, runner: Runner, cache: Path, reporter: Reporter) -> None:
        self.runner = runner
        self.cache = cache
        self.reporter = reporter

    def tarball(self, profile: DebianProfile) -> Path:
        version = self._mmdebstrap_version()
        key = cache_key(profile, tool_version=version, index=apt_index_digest())
        out = self.cache / f"base-{profile.name}-{key}.tar"
        if out.is_file():
            return out
        sources = apt_sources()
        if not sources:
            raise BaseSystemError(
                "this machine has no apt sources to make the Debian base from",
                where="/etc/apt/sources.list, /etc/apt/sources.list.d/",
                hint="configure a Debian 12 mirror there and run apt-get update",
            )
        self.cache.mkdir(parents=True, exist_ok=True)
        # mmdebstrap picks the format from the name: keep ".tar" at the end
        tmp = out.with_name(out.name.removesuffix(".tar") + ".part.tar")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.unlink(missing_ok=True)
        self.reporter.info(
            f"Making the Debian base '{profile.name}' with mmdebstrap "
            f"({len(profile.packages)} packages and their dependencies; about a minute) ..."
        )
        try:
            self.runner.run(
                mmdebstrap_argv(profile, tmp, sources),
                timeout=1800,
                where=f"base profile {profile.source}",
                hint="check the package names in the profile and that apt-get update works",
            )
        except ToolError as e:
            tmp.unlink(missing_ok=True)
            output = e.stderr if isinstance(e, ToolFailedError) else e.what
            missing = _missing_package(output, profile.packages)
            if missing:
                raise BaseSystemError(
                    f"the Debian base package '{missing}' is not in the apt sources",
                    where=f"{profile.source}: packages",
                    hint=f"fix or remove '{missing}' in the profile, or run apt-get update",
                ) from e
            raise
        if out.is_dir():  # not a root made by this code: made over
            shutil.rmtree(out)
        os.replace(tmp, out)
        for old in self.cache.glob(f"base-{profile.name}-*.tar"):
            if old != out:  # older roots, and parts a killed run left
                old.unlink(missing_ok=True)
        return out

    def _mmdebstrap_version(self) -> str:
        try:
            return self.runner.run(["mmdebstrap", "--version"]).text.strip()
        except ToolError as e:
            raise BaseSystemError(
                "mmdebstrap is needed to make the Debian base",
                where='repotool.toml [media] base = "debian"',
                hint="apt-get install mmdebstrap (./bootstrap.sh does it)",
            ) from e


def _missing_package(output: str, packages: Sequence[str]) -> str:
    for name in packages:
        if f"Unable to locate package {name}" in output or f"Package '{name}' has no" in output:
            return name
        if f"E: Package '{name}'" in output:
            return name
    return ""


def unpack(runner: Runner, tarball: Path, root: Path) -> None:
    runner.run(
        ["tar", "-C", str(root), "--numeric-owner", "-xpf", str(tarball)],
        timeout=600,
        where=str(tarball),
    )


_AUTOLOGIN = """[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,38400,9600 %I $TERM
"""

_NETWORK = """[Match]
Name=en* eth*

[Network]
DHCP=yes
"""

_BANNER_UNIT = """[Unit]
Description=pS-Performance Toolkit live system banner
After=basic.target

[Service]
Type=simple
ExecStart=/usr/libexec/pslive/when-up
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

_WHEN_UP = """#!/bin/sh
# Waits for the end of start-up, names every unit that failed, prints the
# toolkit banner, then "pslive: ready" (services up).
systemctl is-system-running --wait >/dev/null 2>&1
for unit in $(systemctl list-units --state=failed --plain --no-legend | cut -d' ' -f1); do
  echo "pslive: FAILED unit: $unit (journalctl -u $unit)"
done
/usr/libexec/pslive/banner
echo "pslive: ready"
"""


def live_setup(root: Path) -> None:
    """What makes the Debian root a live system (see the module docstring)."""
    etc = root / "etc"
    (etc / "hostname").write_text("pslive\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tpslive\n::1\tlocalhost\n")
    for getty in ("serial-getty@ttyS0.service.d", "getty@tty1.service.d"):
        d = etc / "systemd" / "system" / getty
        d.mkdir(parents=True, exist_ok=True)
        (d / "autologin.conf").write_text(_AUTOLOGIN)
    net = etc / "systemd" / "network"
    net.mkdir(parents=True, exist_ok=True)
    (net / "20-pslive-dhcp.network").write_text(_NETWORK)
    _enable(root, "systemd-networkd.service", "multi-user.target")
    (etc / "rpm").mkdir(exist_ok=True)
    (etc / "rpm" / "macros.pslive").write_text(
        "# the rpmdb where EL hosts keep it (Debian's rpm defaults to ~/.rpmdb)\n"
        "%_dbpath /var/lib/rpm\n"
    )
    yum = root / "usr" / "bin" / "yum"
    if not yum.exists() and not yum.is_symlink() and (root / "usr/bin/dnf").exists():
        yum.symlink_to("dnf")
    unit = etc / "systemd" / "system" / "pslive-banner.service"
    unit.write_text(_BANNER_UNIT)
    _enable(root, "pslive-banner.service", "multi-user.target", local=True)
    when_up = root / "usr" / "libexec" / "pslive" / "when-up"
    when_up.parent.mkdir(parents=True, exist_ok=True)
    when_up.write_text(_WHEN_UP)
    when_up.chmod(0o755)
    (etc / "fstab").write_text("# the live root is an overlay on the medium: nothing to mount\n")
    machine_id = etc / "machine-id"
    machine_id.write_text("")  # each boot makes its own


def _enable(root: Path, unit: str, target: str, *, local: bool = False) -> None:
    """`systemctl enable`, offline: the wants/ symlink."""
    wants = root / "etc" / "systemd" / "system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    if link.is_symlink() or link.exists():
        return
    here = "/etc/systemd/system" if local else "/lib/systemd/system"
    if (
        not local
        and not (root / "lib/systemd/system" / unit).exists()
        and (root / "usr/lib/systemd/system" / unit).exists()
    ):
        here = "/usr/lib/systemd/system"
    link.symlink_to(f"{here}/{unit}")


def deb_versions(root: Path, names: Sequence[str]) -> dict[str, str]:
    """The installed versions of the named Debian packages (from dpkg's status)."""
    status = root / "var" / "lib" / "dpkg" / "status"
    out: dict[str, str] = {}
    if not status.is_file():
        return out
    wanted = set(names)
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Package") in wanted and "installed" in fields.get("Status", ""):
            out[fields["Package"]] = fields.get("Version", "?")
    return out


def copy_out(src: Path, dest: Path) -> Path:
    """A file or tree of the root copied to the work folder (the root is squashed
    and deleted before the boot files are laid out)."""
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest)
    return dest
