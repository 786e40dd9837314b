"""repotool.toml, read once into frozen, typed objects.

Every field has its default beside it.  Relative paths are taken from the
folder that holds repotool.toml.  Unknown keys are errors, so that a typo does
not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repotool.errors import ConfigError

CONFIG_NAME = "repotool.toml"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")

#: rpmlib() features that rpm on each EL release understands.  A package that
#: requires anything else cannot be installed there.
EL6_RPMLIB = (
    "CompressedFileNames",
    "PayloadFilesHavePrefix",
    "PayloadIsBzip2",
    "PayloadIsXz",
    "PayloadIsLzma",
    "FileDigests",
    "VersionedDependencies",
    "PartialHardlinkSets",
    "ExplicitPackageProvide",
    "HeaderLoadSortsTags",
    "ScriptletInterpreterArgs",
    "BuiltinLuaScripts",
    "ConcurrentAccess",
    "FileCaps",
)
EL7_RPMLIB = (*EL6_RPMLIB, "ScriptletExpansion", "TildeInVersions")


@dataclass(frozen=True)
class TargetConfig:
    """One repository target: a family of hosts (e.g. el7) and its arches."""

    name: str = "el7"
    releasever: str = "7"
    dist: str = ".el7"
    arches: tuple[str, ...] = ("x86_64",)
    #: rpmlib(...) features the target's rpm understands.
    rpmlib_features: tuple[str, ...] = EL7_RPMLIB
    #: payload compression for packages built for this target (rpm's w<level>.<io>)
    payload: str = "w9.gzdio"
    #: repodata compression: "gz" (EL6/EL7 safe), "xz" or "zstd" (EL8+ only)
    metadata_compression: str = "gz"


@dataclass(frozen=True)
class KeyConfig:
    #: "development": a local key is created on first use (never for production)
    #: "production": the key named by fingerprint in gnupghome
    mode: str = "development"
    fingerprint: str = ""
    gnupghome: Path | None = None
    #: file holding the passphrase (never the command line); empty: gpg-agent
    passphrase_file: Path | None = None
    #: identity of the development key
    dev_uid: str = "pS-Performance Toolkit DEVELOPMENT key (not for production) <dev@localhost>"
    #: published name of the public key file
    public_key_name: str = "RPM-GPG-KEY-perfsonar"


@dataclass(frozen=True)
class BuildConfig:
    specs_dir: Path = Path("specs")
    #: parallel rpmbuild processes; 0 means the number of cores
    jobs: int = 0
    #: recorded as the build host in every package, for reproducible output
    buildhost: str = "build.perfsonar.invalid"
    packager: str = "pS-Performance Toolkit release team <release@perfsonar.invalid>"
    vendor: str = "pS-Performance Toolkit"


@dataclass(frozen=True)
class PublishConfig:
    public_dir: Path = Path("public")
    #: versions of each package name kept in the repository (older are pruned)
    keep_versions: int = 3
    #: seconds an older metadata generation stays after a newer one is published
    keep_generations_seconds: int = 7 * 24 * 3600
    repo_id: str = "perfsonar"
    repo_name: str = "pS-Performance Toolkit $releasever - $basearch"
    #: the URL hosts use to reach public/ (baseurl in the .repo file)
    base_url: str = "http://127.0.0.1:8080"
    #: add metalink= (written by 'repotool mirror list') to the published .repo file,
    #: so hosts are steered to fresh mirrors; baseurl stays as the fallback
    metalink: bool = False
    #: re-sign an unchanged repository's metadata once it is this old, so that
    #: mirrors (which refuse frozen metadata) keep accepting it
    refresh_after_seconds: int = 3 * 24 * 3600


@dataclass(frozen=True)
class SiteConfig:
    content_dir: Path = Path("web/content")
    templates_dir: Path = Path("web/templates")
    static_dir: Path = Path("web/static")
    title: str = "pS-Performance Toolkit"
    #: absolute URL of the site, used in feeds and announcements
    base_url: str = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class MediaConfig:
    #: "busybox": small base fetched from Debian (embedded default, tests);
    #: "repos": distribution base repositories listed in base_repos
    base: str = "busybox"
    base_repos: tuple[str, ...] = ()
    base_packages: tuple[str, ...] = ()
    #: toolkit packages installed into the live root
    packages: tuple[str, ...] = ("perfsonar-toolkit",)
    volume_label: str = "pS-Toolkit"
    name_prefix: str = "pS-Performance_Toolkit"
    target: str = "el7"
    arch: str = "x86_64"
    #: gpg keys (URLs) of the base repositories ("repos" base)
    base_gpgkeys: tuple[str, ...] = ()
    #: Debian packages of the "busybox" base, fetched with apt-get download into
    #: the state folder; a metapackage is resolved to the package it depends on
    kernel_package: str = "linux-image-cloud-amd64"
    busybox_package: str = "busybox-static"
    #: kernel modules loaded by the initramfs (with their dependencies), when present
    kernel_modules: tuple[str, ...] = (
        "isofs",
        "squashfs",
        "loop",
        "overlay",
        "sr_mod",
        "sd_mod",
        "ata_piix",
        "ahci",
        "virtio_pci",
        "virtio_blk",
        "virtio_scsi",
        "usb_storage",
        "uas",
        "xhci_pci",
        "ehci_pci",
    )
    #: mksquashfs compressor for the live root: "xz" (smallest) or "gzip" (fastest)
    squashfs_compression: str = "xz"
    #: boot menu timeout in tenths of a second before the live system starts
    menu_timeout: int = 50
    #: file of the live root whose content names the toolkit release
    release_file: str = "/etc/perfsonar-toolkit-release"
    #: where downloaded base packages (.deb) are kept; default: <state_dir>/media-cache
    cache_dir: Path | None = None
    #: build the live media in 'repotool release' (media of a published version
    #: are never rebuilt: a respin makes new ones)
    enabled: bool = True


@dataclass(frozen=True)
class AnnounceConfig:
    list_address: str = "perfsonar-announce@lists.perfsonar.invalid"
    list_id: str = "perfsonar-announce.lists.perfsonar.invalid"
    list_name: str = "perfsonar-announce"
    from_address: str = "pS-Performance Toolkit <release@perfsonar.invalid>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    #: file holding the SMTP password; or the environment variable below
    smtp_password_file: Path | None = None
    smtp_password_env: str = "REPOTOOL_SMTP_PASSWORD"
    #: seconds to wait for the server at each step (connect, greeting, each command)
    smtp_timeout: float = 30.0
    #: CA certificates (PEM) to trust for STARTTLS; empty: the system's CAs
    smtp_cafile: Path | None = None


@dataclass(frozen=True)
class MirrorConfig:
    mirrors_file: Path = Path("mirror/mirrors.toml")
    #: metadata older than this is "stale" (a freeze attack for sync)
    max_age_seconds: int = 7 * 24 * 3600
    #: seconds to connect, and the longest silence while reading
    timeout_seconds: float = 30.0
    #: minimum average bytes/second of a download once the grace period is over
    min_rate_bytes: int = 1024
    min_rate_grace_seconds: float = 5.0
    #: parallel downloads (sync) and parallel mirror checks
    jobs: int = 4
    #: files a replaced repomd.xml named stay on the mirror this long, so a host
    #: holding it never gets a 404 (the master keeps its own for as long)
    keep_previous_seconds: int = 7 * 24 * 3600
    #: how long a master repomd.xml stays a metalink alternate after it is replaced
    alternates_seconds: int = 3 * 24 * 3600


@dataclass(frozen=True)
class Config:
    #: folder holding repotool.toml; relative paths are resolved against it
    root: Path = Path(".")
    #: working state (dev key, build cache, locks, staging); never published
    state_dir: Path = Path(".repotool")
    product: str = "pS-Performance Toolkit"
    version: str = "3.3.2"
    targets: tuple[TargetConfig, ...] = (TargetConfig(),)
    key: KeyConfig = field(default_factory=KeyConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    announce: AnnounceConfig = field(default_factory=AnnounceConfig)
    mirror: MirrorConfig = field(default_factory=MirrorConfig)

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the config's folder."""
        return p if p.is_absolute() else (self.root / p)

    @property
    def public_dir(self) -> Path:
        return self.path(self.publish.public_dir)

    @property
    def state(self) -> Path:
        return self.path(self.state_dir)

    def target(self, name: str) -> TargetConfig:
        for t in self.targets:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.targets)
        raise ConfigError(f"unknown target '{name}'", hint=f"known targets: {known}")


# --- loading ----------------------------------------------------------------

_SECTIONS: dict[str, type[Any]] = {
    "key": KeyConfig,
    "build": BuildConfig,
    "publish": PublishConfig,
    "site": SiteConfig,
    "media": MediaConfig,
    "announce": AnnounceConfig,
    "mirror": MirrorConfig,
}


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        non_none = [a for a in args if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(value, non_none[0], where)
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError("expected a path (a string)", where=where)
        return Path(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError("expected a list", where=where)
        return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError("expected true or false", where=where)
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError("expected a whole number", where=where)
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError("expected a number", where=where)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError("expected a string", where=where)
        return value
    raise ConfigError(f"unsupported setting type {hint!r}", where=where)


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError("expected a table", where=where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown setting(s): {', '.join(unknown)}",
            where=where,
            hint=f"known settings here: {', '.join(sorted(names))}",
        )
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def parse_config(text: str, *, root: Path, source: str = CONFIG_NAME) -> Config:
    """Pure: TOML text in, validated Config out."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"not valid TOML: {e}", where=source, hint="fix the syntax at the line named"
        ) from e
    kwargs: dict[str, Any] = {"root": root}
    for key, value in data.items():
        if key in _SECTIONS:
            kwargs[key] = _build(_SECTIONS[key], value, f"{source} [{key}]")
        elif key == "targets":
            if not isinstance(value, list) or not value:
                raise ConfigError("expected at least one [[targets]] table", where=source)
            kwargs["targets"] = tuple(
                _build(TargetConfig, t, f"{source} [[targets]] #{i + 1}")
                for i, t in enumerate(value)
            )
        elif key in ("state_dir",):
            kwargs[key] = _convert(value, Path, f"{source} {key}")
        elif key in ("product", "version"):
            kwargs[key] = _convert(value, str, f"{source} {key}")
        else:
            raise ConfigError(
                f"unknown setting '{key}'",
                where=source,
                hint="top-level settings: product, version, state_dir, [[targets]], "
                + ", ".join(f"[{s}]" for s in _SECTIONS),
            )
    cfg = Config(**kwargs)
    _validate(cfg, source)
    return cfg


def _validate(cfg: Config, source: str) -> None:
    names = [t.name for t in cfg.targets]
    if len(set(names)) != len(names):
        raise ConfigError("two [[targets]] share a name", where=source)
    for t in cfg.targets:
        if t.metadata_compression not in ("gz", "xz", "zstd"):
            raise ConfigError(
                f"metadata_compression must be gz, xz or zstd, not '{t.metadata_compression}'",
                where=f"{source} [[targets]] {t.name}",
            )
    if cfg.key.mode not in ("development", "production"):
        raise ConfigError(
            f"key.mode must be 'development' or 'production', not '{cfg.key.mode}'",
            where=f"{source} [key]",
        )
    if cfg.key.mode == "production" and not cfg.key.fingerprint:
        raise ConfigError(
            "production mode needs the signing key's fingerprint",
            where=f"{source} [key]",
            hint='set fingerprint = "<40 hex digits>" and gnupghome',
        )
    if cfg.build.jobs < 0:
        raise ConfigError("build.jobs must be 0 (all cores) or more", where=f"{source} [build]")
    if cfg.publish.keep_versions < 1:
        raise ConfigError(
            "publish.keep_versions must be 1 or more (the newest build of each package)",
            where=f"{source} [publish]",
        )
    if cfg.mirror.keep_previous_seconds < 0:
        raise ConfigError(
            "mirror.keep_previous_seconds cannot be negative", where=f"{source} [mirror]"
        )
    if cfg.publish.keep_generations_seconds < 0 or cfg.publish.refresh_after_seconds < 0:
        raise ConfigError("durations in [publish] cannot be negative", where=f"{source} [publish]")
    for value, name in (
        (cfg.key.public_key_name, "[key] public_key_name"),
        (cfg.publish.repo_id, "[publish] repo_id"),
    ):
        if not _PLAIN_NAME.match(value):
            raise ConfigError(
                f"'{value}' must be a plain file name (letters, digits, '.', '_', '-')",
                where=f"{source} {name}",
            )
    media_targets = {(t.name, a) for t in cfg.targets for a in t.arches}
    if (cfg.media.target, cfg.media.arch) not in media_targets:
        raise ConfigError(
            f"the media target {cfg.media.target}/{cfg.media.arch} is not a configured target",
            where=f"{source} [media]",
            hint="known: " + ", ".join(f"{t}/{a}" for t, a in sorted(media_targets)),
        )
    public, state = cfg.public_dir.resolve(), cfg.state.resolve()
    if public == state or public in state.parents or state in public.parents:
        raise ConfigError(
            "the state folder (which holds the development key) and the publish folder "
            "must not contain each other",
            where=f"{source} state_dir / [publish] public_dir",
            hint='keep them side by side, e.g. state_dir = ".repotool", public_dir = "public"',
        )


def load_config(path: Path | None = None) -> Config:
    """Read repotool.toml (the given file, else ./repotool.toml, else the defaults)."""
    if path is None:
        candidate = Path.cwd() / CONFIG_NAME
        if not candidate.exists():
            return Config(root=Path.cwd().resolve())
        path = candidate
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"cannot read the config file: {e.strerror}",
            where=str(path),
            hint="pass --config with the path of repotool.toml",
        ) from e
    return parse_config(text, root=path.resolve().parent, source=str(path))
