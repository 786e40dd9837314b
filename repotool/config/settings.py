"""The settings of repotool.toml as frozen dataclasses, each rule in its type.

Every field has its default beside it and its rule in its type: ``Literal``
choices, ``Ge``/``MinLen`` bounds and a few named rules (:class:`_Rule`).
Rules that tie fields together are the ``__post_init__`` of the class holding
them, raising :class:`SettingProblem`.  pydantic enforces all of it when the
file is read (:mod:`repotool.config.reading`); the classes stay plain
dataclasses so that building the command line never imports pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from annotated_types import Ge, MinLen

from repotool.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

CONFIG_NAME = "repotool.toml"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{40}\Z")

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


# --- rules ------------------------------------------------------------------


class SettingProblem(ValueError):
    """A value the rules refuse: what is wrong, the key (within its table), the fix."""

    def __init__(self, what: str, *, key: str, hint: str) -> None:
        super().__init__(what)
        self.what = what
        self.key = key
        self.hint = hint


class _Rule:
    """Type metadata: ``check(value)`` raises :class:`SettingProblem` for a bad value.

    ``before`` runs it on the raw value first (to normalise it); otherwise it
    runs after the type check.  pydantic is imported only when a schema is built.
    """

    def __init__(self, check: Callable[[Any], Any], *, before: bool = False) -> None:
        self.check = check
        self.before = before

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        if self.before:
            return core_schema.no_info_before_validator_function(self.check, handler(source))
        return core_schema.no_info_after_validator_function(self.check, handler(source))


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


def _plain_name(value: str) -> str:
    if not _PLAIN_NAME.match(value):
        raise SettingProblem(
            f"'{value}' must be a plain file name (letters, digits, '.', '_', '-')",
            key="",
            hint="it names a published file; it cannot hold '/' or start with '.' or '-'",
        )
    return value


_S3_DESTINATION = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._~/-]*)?\Z")


def _push_destination(value: str) -> str:
    parts = value[len("s3://") :].split("/")[1:]
    if not _S3_DESTINATION.match(value) or any(p in (".", "..") for p in parts if p):
        raise SettingProblem(
            f"'{value}' is not an object store destination",
            key="",
            hint="write s3://BUCKET or s3://BUCKET/PREFIX, e.g. s3://downloads/perfsonar",
        )
    return value


#: a path; an empty string means "not set"
OptionalPath = Annotated[Path | None, _Rule(_empty_is_none, before=True)]
PlainName = Annotated[str, _Rule(_plain_name)]
PushDestination = Annotated[str, _Rule(_push_destination)]
NonNegative = Annotated[int, Ge(0)]
Seconds = Annotated[int, Ge(0)]
Duration = Annotated[float, Ge(0)]

# pydantic reads this from each class: refuse unknown keys, never coerce types
_STRICT: dict[str, Any] = {"extra": "forbid", "strict": True}


# --- the settings -----------------------------------------------------------


@dataclass(frozen=True)
class TargetConfig:
    """One repository target: a family of hosts (e.g. el7) and its arches."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    name: str = "el7"
    releasever: str = "7"
    dist: str = ".el7"
    arches: Annotated[tuple[str, ...], MinLen(1)] = ("x86_64",)
    #: rpmlib(...) features the target's rpm understands.
    rpmlib_features: tuple[str, ...] = EL7_RPMLIB
    #: payload compression for packages built for this target (rpm's w<level>.<io>)
    payload: str = "w9.gzdio"
    #: repodata compression: "gz" (EL6/EL7 safe), "xz" or "zstd" (EL8+ only)
    metadata_compression: Literal["gz", "xz", "zstd"] = "gz"


@dataclass(frozen=True)
class KeyConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    #: "development": a local key is created on first use (never for production)
    #: "production": the key named by fingerprint in gnupghome
    mode: Literal["development", "production"] = "development"
    fingerprint: str = ""
    gnupghome: OptionalPath = None
    #: file holding the passphrase (never the command line); empty: gpg-agent
    passphrase_file: OptionalPath = None
    #: "local": gpg starts its agent as usual; "forwarded": the key is on another
    #: machine (or a smartcard) and gnupghome's agent socket is its forwarded gpg-agent:
    #: gpg never starts an agent of its own and no private key file may be here
    agent: Literal["local", "forwarded"] = "local"
    #: identity of the development key
    dev_uid: str = "pS-Performance Toolkit DEVELOPMENT key (not for production) <dev@localhost>"
    #: published name of the public key file
    public_key_name: PlainName = "RPM-GPG-KEY-perfsonar"
    #: sign with a key weaker than RSA-3072 or Ed25519 (warned about on every run)
    allow_weak_key: bool = False
    #: 'repotool release' (and every command that signs) warns when the signing key
    #: expires within this many days; 0: never
    expiry_warning_days: NonNegative = 60
    #: days after a rotation's switch date before 'repotool key retire' drops the old
    #: key: hosts that update rarely still take the new key from the dual release package
    retire_grace_days: NonNegative = 30

    def __post_init__(self) -> None:
        if self.agent == "forwarded" and self.mode != "production":
            raise SettingProblem(
                'agent = "forwarded" is for a production key on another machine',
                key="agent",
                hint='set mode = "production" with fingerprint and gnupghome, or remove agent',
            )
        if self.agent == "forwarded" and self.passphrase_file is not None:
            raise SettingProblem(
                "a forwarded gpg-agent takes no passphrase file: its restricted socket "
                "refuses loopback passphrases",
                key="passphrase_file",
                hint="remove passphrase_file; the key machine's agent asks for (or caches) it",
            )
        if self.mode != "production":
            return
        if not self.fingerprint:
            raise SettingProblem(
                "production mode needs the signing key's fingerprint",
                key="fingerprint",
                hint='set fingerprint = "<40 hex digits>" and gnupghome',
            )
        if not _FINGERPRINT.match(self.fingerprint.replace(" ", "")):
            raise SettingProblem(
                f"'{self.fingerprint}' is not a 40-digit key fingerprint",
                key="fingerprint",
                hint="gpg --list-keys --with-colons shows it on the 'fpr' line",
            )


@dataclass(frozen=True)
class BuildConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    specs_dir: Path = Path("specs")
    #: parallel rpmbuild processes; 0 means the number of cores
    jobs: NonNegative = 0
    #: recorded as the build host in every package, for reproducible output
    buildhost: str = "build.perfsonar.invalid"
    packager: str = "pS-Performance Toolkit release team <release@perfsonar.invalid>"
    vendor: str = "pS-Performance Toolkit"


@dataclass(frozen=True)
class PublishConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    public_dir: Path = Path("public")
    #: versions of each package name kept in the repository (older are pruned)
    keep_versions: Annotated[int, Ge(1)] = 3
    #: seconds an older metadata generation stays after a newer one is published
    keep_generations_seconds: Seconds = 7 * 24 * 3600
    repo_id: PlainName = "perfsonar"
    repo_name: str = "pS-Performance Toolkit $releasever - $basearch"
    #: the URL hosts use to reach public/ (baseurl in the .repo file)
    base_url: str = "http://127.0.0.1:8080"
    #: add metalink= (written by 'repotool mirror list') to the published .repo file,
    #: so hosts are steered to fresh mirrors; baseurl stays as the fallback
    metalink: bool = False
    #: re-sign an unchanged repository's metadata once it is this old, so that
    #: mirrors (which refuse frozen metadata) keep accepting it
    refresh_after_seconds: Seconds = 3 * 24 * 3600
    #: object stores 'repotool release' pushes public/ to after the local swap, each
    #: "s3://BUCKET[/PREFIX]"; credentials from the AWS environment (docs/push.md)
    push_to: tuple[PushDestination, ...] = ()
    #: the S3 endpoint of push_to (empty: AWS_ENDPOINT_URL, else AWS's own)
    push_endpoint_url: str = ""


@dataclass(frozen=True)
class SiteConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    content_dir: Path = Path("web/content")
    templates_dir: Path = Path("web/templates")
    static_dir: Path = Path("web/static")
    title: str = "pS-Performance Toolkit"
    #: absolute URL of the site, used in feeds and announcements
    base_url: str = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class MediaConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    #: "debian": a minimal Debian 12 userland made by mmdebstrap with the services
    #: the toolkit configures (embedded default: a working measurement node);
    #: "busybox": a static busybox userland (quick media-chain tests);
    #: "repos": distribution base repositories listed in base_repos (production)
    base: Literal["debian", "busybox", "repos"] = "debian"
    #: the "debian" base's profile: repotool/media/bases/<name>.toml
    base_profile: str = "debian12"
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
    #: mksquashfs compressor for the live root: "zstd" (fast, small; kernels from
    #: 4.14 on), "xz" (smallest; what EL6/EL7 kernels read) or "gzip" (fastest)
    squashfs_compression: Literal["zstd", "xz", "gzip"] = "zstd"
    #: boot menu timeout in tenths of a second before the live system starts
    menu_timeout: NonNegative = 50
    #: file of the live root whose content names the toolkit release
    release_file: str = "/etc/perfsonar-toolkit-release"
    #: where downloaded base packages (.deb) are kept; default: <state_dir>/media-cache
    cache_dir: OptionalPath = None
    #: build the live media in 'repotool release' (media of a published version
    #: are never rebuilt: a respin makes new ones)
    enabled: bool = True


@dataclass(frozen=True)
class AnnounceConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    list_address: str = "perfsonar-announce@lists.perfsonar.invalid"
    list_id: str = "perfsonar-announce.lists.perfsonar.invalid"
    list_name: str = "perfsonar-announce"
    from_address: str = "pS-Performance Toolkit <release@perfsonar.invalid>"
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Ge(1)] = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    #: file holding the SMTP password; or the environment variable below
    smtp_password_file: OptionalPath = None
    smtp_password_env: str = "REPOTOOL_SMTP_PASSWORD"
    #: seconds to wait for the server at each step (connect, greeting, each command)
    smtp_timeout: Duration = 30.0
    #: CA certificates (PEM) to trust for STARTTLS; empty: the system's CAs
    smtp_cafile: OptionalPath = None


@dataclass(frozen=True)
class MirrorConfig:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    mirrors_file: Path = Path("mirror/mirrors.toml")
    #: metadata older than this is "stale" (a freeze attack for sync)
    max_age_seconds: Seconds = 7 * 24 * 3600
    #: seconds to connect, and the longest silence while reading
    timeout_seconds: Duration = 30.0
    #: minimum average bytes/second of a download once the grace period is over
    min_rate_bytes: NonNegative = 1024
    min_rate_grace_seconds: Duration = 5.0
    #: parallel downloads (sync) and parallel mirror checks
    jobs: Annotated[int, Ge(1)] = 4
    #: files a replaced repomd.xml named stay on the mirror this long, so a host
    #: holding it never gets a 404 (the master keeps its own for as long)
    keep_previous_seconds: Seconds = 7 * 24 * 3600
    #: how long a master repomd.xml stays a metalink alternate after it is replaced
    alternates_seconds: Seconds = 3 * 24 * 3600


@dataclass(frozen=True)
class Config:
    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT

    #: the project root (the folder holding repotool.toml); relative paths start there
    root: Path = Path(".")
    #: working state (dev key, build cache, locks, staging); never published
    state_dir: Path = Path(".repotool")
    product: str = "pS-Performance Toolkit"
    version: str = "3.3.2"
    targets: Annotated[tuple[TargetConfig, ...], MinLen(1)] = (TargetConfig(),)
    key: KeyConfig = field(default_factory=KeyConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    announce: AnnounceConfig = field(default_factory=AnnounceConfig)
    mirror: MirrorConfig = field(default_factory=MirrorConfig)

    def __post_init__(self) -> None:
        names = [t.name for t in self.targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SettingProblem(
                f"two [[targets]] share the name {', '.join(twice)}",
                key="[[targets]] name",
                hint="give each target its own name (e.g. el6, el7)",
            )
        media_targets = {(t.name, a) for t in self.targets for a in t.arches}
        if (self.media.target, self.media.arch) not in media_targets:
            raise SettingProblem(
                f"the media target {self.media.target}/{self.media.arch} "
                "is not a configured target",
                key="[media] target",
                hint="known: " + ", ".join(f"{t}/{a}" for t, a in sorted(media_targets)),
            )
        public, state = self.public_dir.resolve(), self.state.resolve()
        if public == state or public in state.parents or state in public.parents:
            raise SettingProblem(
                "the state folder (which holds the development key) and the publish folder "
                "must not contain each other",
                key="state_dir / [publish] public_dir",
                hint='keep them side by side, e.g. state_dir = ".repotool", public_dir = "public"',
            )

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the project root."""
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
