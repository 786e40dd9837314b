"""The image's SBOM: every package of the live root, as CycloneDX JSON.

Beside the images, ``<prefix>-<label>-<arch>.cdx.json`` lists every package the
live root holds, base and toolkit, with its version: the Debian packages dpkg
installed (``var/lib/dpkg/status``), the RPMs of the root's rpmdb
(``var/lib/rpm``; ``gpg-pubkey`` entries are keys, not packages) and the kernel.
A base without a dpkg database (``busybox``) has its .debs named in the boot
kit's description (``name version; name version``): those are listed, with
the architecture their cached .deb file names give.

Pure parts (status text, rpm lines, description -> :class:`Package`;
packages -> JSON bytes) and a thin shell (:func:`read_packages`) that reads
the root before it is squashed.  The same inputs give the same bytes: the
time stamp is SOURCE_DATE_EPOCH, components are sorted, every bom-ref is the
package URL, and the serial number is a UUID5 of the image's SHA-256.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from repotool.config import Config
from repotool.digests import file_digest
from repotool.errors import MediaError
from repotool.media.manifest import SBOM_KIND
from repotool.media.plan import ImageRecord, MediaNames
from repotool.process import Runner

if TYPE_CHECKING:  # cyclonedx is imported when an SBOM is written, not with the CLI
    from cyclonedx.model.component import Component

#: the CycloneDX version written (widely read by SBOM tools)
SPEC_VERSION = "1.6"
#: what the image's SHA-256 is hashed under for the serial number
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:repotool:media-sbom")
DPKG_STATUS = "var/lib/dpkg/status"
RPM_DBPATH = "/var/lib/rpm"
#: one line per rpmdb entry, tab-separated (%{EPOCH} is "(none)" when unset)
RPM_QUERYFORMAT = (
    "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{VENDOR}\\n"
)
_FIELD = re.compile(r"^([A-Za-z0-9-]+):[ \t]*(.*)$")
#: ``name version`` at the end of an item of the boot kit's description
_DEB_ITEM = re.compile(r"(?:^|\s)([a-z0-9][a-z0-9+.-]+) ([0-9][A-Za-z0-9.+~:-]*)$")
_NOT_NAMESPACE = re.compile(r"[^a-z0-9.]+")


@dataclass(frozen=True, order=True)
class Package:
    """One package of the image: ``kind`` is ``deb`` or ``rpm``."""

    kind: str
    name: str
    #: deb: the full version (``1:1.35.0-4``); rpm: ``[EPOCH:]VERSION-RELEASE``
    version: str
    arch: str = ""
    #: deb: the source package; rpm: the source RPM ("" when unknown)
    source: str = ""
    #: rpm: the vendor as a purl namespace (``ps-performance-toolkit``), "" when unset
    vendor: str = ""
    #: "toolkit" for the toolkit's RPMs, "base" for the rest
    part: str = "base"

    @property
    def nevra(self) -> str:
        """rpm's ``NAME-VERSION-RELEASE.ARCH`` (no epoch), as the media stage lists them."""
        return f"{self.name}-{self.version.partition(':')[2] or self.version}.{self.arch}"


def _paragraphs(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    """deb822 paragraphs with the line each starts on; continuation lines are dropped."""
    fields: dict[str, str] = {}
    start = 1
    for n, line in enumerate([*text.splitlines(), ""], 1):
        if not line.strip():
            if fields:
                yield start, fields
            fields = {}
            start = n + 1
            continue
        m = _FIELD.match(line)
        if m and not line[0].isspace():
            fields[m.group(1).lower()] = m.group(2).strip()


def parse_dpkg_status(text: str, where: str) -> list[Package]:
    """dpkg's status file -> the installed packages (``Status: ... installed``)."""
    out: list[Package] = []
    for line, fields in _paragraphs(text):
        if fields.get("status", "").split()[-1:] != ["installed"]:
            continue  # removed with its configuration kept, half-installed, ...
        name, version = fields.get("package", ""), fields.get("version", "")
        if not name or not version:
            raise MediaError(
                f"the installed package at line {line} has no Package or Version field",
                where=where,
                hint="the base's dpkg database is damaged: rebuild the base",
            )
        source = fields.get("source", "").split(" ", 1)[0] or name
        out.append(Package("deb", name, version, fields.get("architecture", ""), source))
    return sorted(out)


def parse_rpm_lines(text: str, toolkit: Iterable[str] = ()) -> list[Package]:
    """``rpm -qa --qf RPM_QUERYFORMAT`` -> packages; ``toolkit``: NEVRAs of the toolkit."""
    marked = set(toolkit)
    out: list[Package] = []
    for line in text.splitlines():
        cells = [*line.split("\t"), "", "", "", "", "", "", ""][:7]
        name, epoch, version, release, arch, srpm, vendor = (
            "" if c == "(none)" else c for c in cells
        )
        if not name or name == "gpg-pubkey":
            continue
        evr = f"{epoch}:{version}-{release}" if epoch else f"{version}-{release}"
        namespace = _NOT_NAMESPACE.sub("-", vendor.lower()).strip("-")
        pkg = Package("rpm", name, evr, arch, srpm, namespace)
        part = "toolkit" if pkg.nevra in marked else "base"
        out.append(Package("rpm", name, evr, arch, srpm, namespace, part))
    return sorted(out)


def parse_kit_debs(description: str, deb_names: Iterable[str] = ()) -> list[Package]:
    """The boot kit's ``name version; name version`` -> Debian packages.

    ``deb_names``: the cached .deb files (``name_version_arch.deb``) that give the
    architecture.  Each ``;``-separated item that ends in ``name version`` is a
    package (a leading note such as ``Debian bookworm:`` is allowed); others (a
    production base's ``KVER from URL``) are skipped."""
    arches: dict[tuple[str, str], str] = {}
    for deb in deb_names:
        parts = deb.removesuffix(".deb").split("_")
        if len(parts) == 3:
            arches[(parts[0], parts[1].replace("%3a", ":"))] = parts[2]
    out = []
    for item in description.split(";"):
        m = _DEB_ITEM.search(item.strip())
        if m:
            name, version = m.groups()
            out.append(Package("deb", name, version, arches.get((name, version), ""), name))
    return sorted(out)


def distro_of(os_release: str) -> str:
    """/etc/os-release -> ``debian-12`` (the purl ``distro``), "" when it says nothing."""
    values = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    name, version = values.get("ID", ""), values.get("VERSION_ID", "")
    return f"{name}-{version}" if name and version else name


@dataclass(frozen=True)
class ImageInfo:
    """The image the SBOM describes (its metadata component)."""

    product: str
    version_label: str
    #: the LiveCD's file name and SHA-256 (the LiveUSB image is the same bytes)
    name: str
    sha256: str
    also_named: Sequence[str] = ()


def sbom_json(
    image: ImageInfo, packages: Sequence[Package], *, source_date_epoch: int, distro: str
) -> bytes:
    """The CycloneDX JSON document: ``packages`` as components of ``image``."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6

    root = Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=image.product,
        version=image.version_label,
        bom_ref=image.name,
        description=f"{image.product} {image.version_label} live image {image.name}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=image.sha256)],
        properties=[
            Property(name="repotool:image", value=n) for n in (image.name, *image.also_named)
        ],
    )
    components = [_component(p, distro) for p in sorted(set(packages))]
    bom = Bom(
        serial_number=uuid.uuid5(SERIAL_NAMESPACE, image.sha256),
        metadata=BomMetaData(
            component=root,
            timestamp=datetime.fromtimestamp(source_date_epoch, UTC),
            tools=ToolRepository(components=[_this_tool()]),
        ),
        components=components,
    )
    bom.register_dependency(root, components)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    return text.encode() + b"\n"


def _this_tool() -> Component:
    from importlib.metadata import PackageNotFoundError, version

    from cyclonedx.model.component import Component, ComponentType

    try:
        ours: str | None = version("repotool")
    except PackageNotFoundError:
        ours = None
    return Component(type=ComponentType.APPLICATION, name="repotool", version=ours)


def purl_of(p: Package, distro: str) -> str:
    from packageurl import PackageURL

    quals = {"arch": p.arch} if p.arch else {}
    if p.kind == "deb":
        if distro:
            quals["distro"] = distro
        return str(PackageURL("deb", "debian", p.name, p.version, quals))
    epoch, _, evr = p.version.rpartition(":")
    if epoch:
        quals["epoch"] = epoch
    return str(PackageURL("rpm", p.vendor or None, p.name, evr, quals))


def _component(p: Package, distro: str) -> Component:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    purl = purl_of(p, distro)
    props = [Property(name="repotool:part", value=p.part)]
    if p.source:
        props.append(Property(name=f"repotool:{p.kind}:source", value=p.source))
    return Component(
        type=ComponentType.LIBRARY,
        name=p.name,
        version=p.version,
        bom_ref=purl,
        purl=PackageURL.from_string(purl),
        properties=props,
    )


# --- the shell: the live root before it is squashed ----------------------------------


def media_cache(cfg: Config) -> Path:
    """Where the busybox base keeps its .debs (as repotool.media.base decides)."""
    return cfg.path(cfg.media.cache_dir) if cfg.media.cache_dir else cfg.state / "media-cache"


def read_packages(
    cfg: Config, runner: Runner, root: Path, *, kit_description: str, toolkit: Sequence[str]
) -> tuple[list[Package], str]:
    """Every package of ``root`` and the Debian distro of its .debs (``debian-12``)."""
    status = root / DPKG_STATUS
    debs = parse_dpkg_status(status.read_text(), str(status)) if status.is_file() else []
    cached = [p.name for p in media_cache(cfg).glob("*.deb")]
    known = {p.name for p in debs}
    debs += [p for p in parse_kit_debs(kit_description, cached) if p.name not in known]
    done = runner.run(
        ["rpm", f"--root={root}", f"--dbpath={RPM_DBPATH}", "-qa", "--qf", RPM_QUERYFORMAT],
        where=f"the live root's rpmdb ({root / RPM_DBPATH.lstrip('/')})",
    )
    rpms = parse_rpm_lines(done.text, toolkit)
    # the busybox base's .debs come from this machine's apt sources
    os_release = next(
        (p for p in (root / "etc/os-release", root / "usr/lib/os-release") if p.is_file()),
        Path("/etc/os-release"),
    )
    distro = distro_of(os_release.read_text()) if os_release.is_file() else ""
    return [*debs, *rpms], distro


def write_sbom(
    stage: Path,
    names: MediaNames,
    *,
    product: str,
    livecd: ImageRecord,
    packages: Sequence[Package],
    distro: str,
    source_date_epoch: int,
) -> ImageRecord:
    """The SBOM of the LiveCD (and the LiveUSB image, the same bytes) beside it in ``stage``."""
    image = ImageInfo(product, names.version_label, livecd.name, livecd.sha256, (names.liveusb,))
    path = stage / names.sbom
    path.write_bytes(sbom_json(image, packages, source_date_epoch=source_date_epoch, distro=distro))
    return ImageRecord(SBOM_KIND, names.sbom, path.stat().st_size, file_digest(path))
