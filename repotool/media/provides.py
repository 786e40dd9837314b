"""The per-base settings file and the "base provides" package.

A base profile (``repotool/media/bases/<name>.toml``) says, besides the
packages the lead's base code installs, two things the toolkit packages need:

``[settings]``
    paths and service names of the base (``PS_WEB_SERVICE = "apache2.service"``),
    written as ``KEY="value"`` lines to ``/etc/perfsonar/base.conf``, which the
    toolkit's scripts, units and systemd generators read instead of guessing.
``[capabilities]``
    the rpm capabilities the base really carries (``httpd``, ``ntp``, ``/bin/sh``
    ...), each with the file in the root that proves it.  They become the
    ``Provides:`` of a small noarch package, ``perfsonar-base-<name>``, so the
    rpmdb of a root made by a non-rpm tool (mmdebstrap) knows what the toolkit
    specs' real ``Requires:`` are satisfied by.

:func:`load_profile` reads and checks a profile, :func:`base_conf` and
:func:`base_provides_spec` are pure renderings, :func:`build_base_provides`
runs rpmbuild (and, given the root, first refuses a capability whose proving
file is missing).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from repotool.errors import BaseSystemError, ToolFailedError
from repotool.process import Runner

#: where the package puts the settings (read by the toolkit's scripts and units)
BASE_CONF = "/etc/perfsonar/base.conf"

_SETTING_KEY = re.compile(r"[A-Z][A-Z0-9_]*\Z")
#: a value both /bin/sh and systemd's EnvironmentFile= read the same way in "..."
_SETTING_VALUE = re.compile(r'[^"\\$`\x00-\x1f\x7f]*\Z')
#: an rpm dependency name: no blanks, commas or macros
_CAPABILITY = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_.+/():-]*\Z")
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]*\Z")

CheckFn = Callable[[str, str, str], None]


@dataclass(frozen=True)
class BaseProfile:
    """A base profile as read from its .toml file."""

    name: str
    description: str
    suite: str
    packages: tuple[str, ...]
    #: KEY -> value, in the file's order
    settings: dict[str, str] = field(default_factory=dict)
    #: rpm capability -> the path in the root that proves it
    capabilities: dict[str, str] = field(default_factory=dict)
    source: Path = Path()

    @property
    def package_name(self) -> str:
        return f"perfsonar-base-{self.name}"


def profile_file(name: str) -> Path:
    """The .toml of a profile shipped in repotool/media/bases/, or a path to one."""
    if name.endswith(".toml"):
        return Path(name)
    return Path(str(resources.files("repotool.media") / "bases" / f"{name}.toml"))


def load_profile(name: str) -> BaseProfile:
    """Read and check a base profile; BaseSystemError names the file and key."""
    path = profile_file(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        shipped = sorted(p.stem for p in profile_file("x").parent.glob("*.toml"))
        raise BaseSystemError(
            f"there is no base profile '{name}'",
            where=str(path),
            hint=f"use one of the shipped profiles ({', '.join(shipped)}) or a .toml file",
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise BaseSystemError(f"the base profile cannot be read: {e}", where=str(path)) from e
    except tomllib.TOMLDecodeError as e:
        raise BaseSystemError(
            f"the base profile is not valid TOML: {e}",
            where=str(path),
            hint="fix the line named above",
        ) from e
    return profile_from_data(data, path)


def profile_from_data(data: dict[str, object], path: Path) -> BaseProfile:
    """Pure: the parsed TOML of a profile -> a checked BaseProfile."""
    pname = _string(data, "name", path)
    if not _PROFILE_NAME.match(pname):
        raise BaseSystemError(
            f"the profile name '{pname}' cannot be part of a package name",
            where=f"{path}: name",
            hint="use lower-case letters, digits, '.', '+' and '-' (e.g. debian12)",
        )
    packages = data.get("packages", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise BaseSystemError(
            "packages must be a list of package names",
            where=f"{path}: packages",
            hint='packages = ["systemd-sysv", "apache2", ...]',
        )
    return BaseProfile(
        name=pname,
        description=_string(data, "description", path),
        suite=str(data.get("suite", "")),
        packages=tuple(packages),
        settings=_table(data, "settings", path, _check_setting),
        capabilities=_table(data, "capabilities", path, _check_capability),
        source=path,
    )


def _string(data: dict[str, object], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BaseSystemError(
            f"the base profile has no {key}",
            where=f"{path}: {key}",
            hint=f'add {key} = "..." at the top of the file',
        )
    return value


def _table(data: dict[str, object], table: str, path: Path, check: CheckFn) -> dict[str, str]:
    raw = data.get(table)
    if not isinstance(raw, dict) or not raw:
        raise BaseSystemError(
            f"the base profile has no [{table}] table",
            where=f"{path}: [{table}]",
            hint="see docs/media.md, 'Per-base settings and the base provides package'",
        )
    out: dict[str, str] = {}
    for key, value in raw.items():
        where = f"{path}: [{table}] {key}"
        if not isinstance(value, str):
            raise BaseSystemError(f"{key} must be a string", where=where, hint=f'{key} = "..."')
        check(key, value, where)
        out[key] = value
    return out


def _check_setting(key: str, value: str, where: str) -> None:
    if not _SETTING_KEY.match(key):
        raise BaseSystemError(
            f"the setting name '{key}' is not a shell variable name",
            where=where,
            hint="use upper-case letters, digits and '_' (e.g. PS_WEB_SERVICE)",
        )
    if not _SETTING_VALUE.match(value):
        raise BaseSystemError(
            f"the value of {key} has a character that base.conf cannot carry "
            "(a quote, backslash, $, backtick or control character)",
            where=where,
            hint="settings are plain paths, names and option words",
        )


def _check_capability(key: str, value: str, where: str) -> None:
    if not _CAPABILITY.match(key):
        raise BaseSystemError(
            f"'{key}' is not an rpm capability name",
            where=where,
            hint="a capability is a package name (httpd) or an absolute path (/bin/sh)",
        )
    if not value.startswith("/") or "\x00" in value or "/../" in value + "/":
        raise BaseSystemError(
            f"the proving file of {key} must be an absolute path in the root, not '{value}'",
            where=where,
            hint='e.g. httpd = "/usr/sbin/apache2"',
        )


def base_conf(profile: BaseProfile) -> str:
    """Pure: the text of /etc/perfsonar/base.conf."""
    lines = [
        f"# {BASE_CONF}: the base system '{profile.name}' ({profile.description})",
        "# as the pS-Performance Toolkit's scripts and units see it: paths, service names.",
        f"# Made from {profile.source.name} [settings] by repotool; installed by",
        f"# {profile.package_name}.  Read by /bin/sh ('. {BASE_CONF}') and by",
        '# systemd (EnvironmentFile=): KEY="value", no expansions.',
    ]
    lines += [f'{key}="{value}"' for key, value in profile.settings.items()]
    return "\n".join(lines) + "\n"


def base_provides_spec(profile: BaseProfile, *, version: str, release: str) -> str:
    """Pure: the spec of perfsonar-base-<name> (Source0 is base.conf)."""
    provides = "".join(f"Provides:       {cap}\n" for cap in profile.capabilities)
    caps = ", ".join(profile.capabilities)
    return f"""\
Name:           {profile.package_name}
Version:        {version}
Release:        {release}
Summary:        What the {profile.name} base system provides to the toolkit
Group:          System Environment/Base
License:        ASL 2.0
BuildArch:      noarch
Source0:        base.conf
{provides}
%description
Tells rpm what the {profile.description} base system under the
pS-Performance Toolkit carries ({caps}), so that the toolkit
packages' real requirements are met in a root made without rpm. Each
capability was checked against a file in the root when this package was
built. Also installs {BASE_CONF}, the paths and service names of this base
that the toolkit's scripts and units read.

%prep

%build

%install
install -d -m 0755 %{{buildroot}}/etc/perfsonar
install -p -m 0644 %{{SOURCE0}} %{{buildroot}}{BASE_CONF}

%files
%dir /etc/perfsonar
# describes the base (not an admin setting): replaced with the base
%config {BASE_CONF}
"""


def missing_capabilities(profile: BaseProfile, root: Path) -> list[tuple[str, str]]:
    """(capability, proving path) of every capability whose file is not in root."""
    return [(c, p) for c, p in profile.capabilities.items() if not exists_in_root(root, p)]


def exists_in_root(root: Path, path: str, *, hops: int = 40) -> bool:
    """Does ``path`` exist as the root sees it?  Symlinks (absolute ones too:
    /usr/sbin/iptables-restore -> /etc/alternatives/...) resolve inside root,
    never on this machine."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    here: list[str] = []
    while parts:
        name = parts.pop(0)
        if name == "..":
            here = here[:-1]
            continue
        candidate = root.joinpath(*here, name)
        if candidate.is_symlink():
            hops -= 1
            if hops < 0:
                return False
            target = str(candidate.readlink())
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            if target.startswith("/"):
                here = []
            continue
        if not (candidate.exists() and (not parts or candidate.is_dir())):
            return False
        here.append(name)
    return True


def build_base_provides(
    runner: Runner,
    profile: BaseProfile,
    out_dir: Path,
    *,
    epoch: int,
    root: Path | None,
    version: str = "1",
    release: str = "1",
) -> Path:
    """rpmbuild perfsonar-base-<name> into out_dir, reproducibly; its path.

    With ``root``, every capability's proving file must be in it."""
    if root is not None:
        missing = missing_capabilities(profile, root)
        if missing:
            raise BaseSystemError(
                "the base lacks what its profile says it provides: "
                + "; ".join(f"{cap} (no {proof})" for cap, proof in missing),
                where=f"{profile.source}: [capabilities], root {root}",
                hint="add the Debian packages holding those files to the profile's packages, "
                "or fix the proving paths",
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    topdir = Path(tempfile.mkdtemp(prefix=f"{profile.package_name}-", dir=out_dir))
    try:
        for sub in ("SOURCES", "RPMS", "BUILD", "BUILDROOT"):
            (topdir / sub).mkdir()
        (topdir / "SOURCES" / "base.conf").write_text(base_conf(profile))
        spec = topdir / f"{profile.package_name}.spec"
        spec.write_text(base_provides_spec(profile, version=version, release=release))
        argv = ["rpmbuild", "-bb", "--nodeps"]
        for k, v in _defines(topdir).items():
            argv += ["--define", f"{k} {v}"]
        try:
            runner.run(
                [*argv, str(spec)],
                env={"TZ": "UTC", "SOURCE_DATE_EPOCH": str(epoch), "HOME": str(topdir)},
                where=f"{profile.source} (package {profile.package_name})",
            )
        except ToolFailedError as e:
            raise BaseSystemError(
                "rpmbuild of the base provides package failed:\n    "
                + "\n    ".join(e.stderr.strip().splitlines()[-8:]),
                where=f"{profile.source} (package {profile.package_name})",
                hint="check the profile's [capabilities] and [settings]",
            ) from e
        built = sorted((topdir / "RPMS").rglob("*.rpm"))
        if len(built) != 1:
            raise BaseSystemError(
                f"rpmbuild made {len(built)} packages, expected one", where=str(topdir / "RPMS")
            )
        dest = out_dir / built[0].name
        shutil.move(built[0], dest)
        return dest
    finally:
        shutil.rmtree(topdir, ignore_errors=True)


def _defines(topdir: Path) -> dict[str, str]:
    """Isolated and reproducible, as repotool.build.rpmbuild.build_defines."""
    return {
        "_topdir": str(topdir),
        "_sourcedir": str(topdir / "SOURCES"),
        "_buildhost": "build.perfsonar.invalid",
        "use_source_date_epoch_as_buildtime": "1",
        "clamp_mtime_to_source_date_epoch": "1",
        "_binary_payload": "w9.gzdio",
        "_binary_filedigest_algorithm": "8",
        "_build_id_links": "none",
    }
