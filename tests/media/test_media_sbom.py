"""The image SBOM (CycloneDX JSON): pure parsers and writer, then the session's release.

The release tests read the image back as a user would (xorriso, unsquashfs, rpm,
dpkg-query, sha256sum, gpgv), serve it with ``repotool serve`` and mirror it with
``repotool mirror media``'s code over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from repotool.errors import MediaError
from repotool.media.manifest import ManifestError, parse_manifest
from repotool.media.plan import ImageRecord, manifest_json, media_names
from repotool.media.sbom import (
    SERIAL_NAMESPACE,
    ImageInfo,
    Package,
    distro_of,
    parse_dpkg_status,
    parse_kit_debs,
    parse_rpm_lines,
    sbom_json,
)
from repotool.mirror.fetch import FetchLimits, HttpFetcher
from repotool.mirror.media import sync_media
from repotool.mirror.media_plan import label_images, parse_sha256sums
from repotool.mirror.signature import GpgvVerifier
from repotool.process import SubprocessRunner
from repotool.push.plan import LocalFile, classify, order_uploads
from repotool.report import SilentReporter
from tests.conftest import Released, gpgv_check

STATUS = """\
Package: busybox-static
Status: install ok installed
Priority: optional
Architecture: amd64
Source: busybox (1:1.35.0-4)
Version: 1:1.35.0-4+b3
Description: Standalone rescue shell with tons of builtin utilities
 BusyBox combines tiny versions of many common UNIX utilities into a single
 Package: not-a-package
 .
 more text

Package: ntpsec
Status: install ok installed
Architecture: amd64
Version: 1.2.2+dfsg1-1+deb12u1

Package: oldconf
Status: deinstall ok config-files
Architecture: all
Version: 1.0-1
"""

RPMS = (
    "perfsonar-toolkit\t(none)\t3.3.2\t1.el7\tnoarch\tperfsonar-toolkit-3.3.2-1.el7.src.rpm\t"
    "pS-Performance Toolkit\n"
    "gpg-pubkey\t(none)\t3e1f5ba1\t53444a47\t(none)\t(none)\t(none)\n"
    "openssl\t1\t1.0.1e\t34.el7\tx86_64\topenssl-1.0.1e-34.el7.src.rpm\tCentOS\n"
)
SHA = "ab" * 32
IMAGE = ImageInfo(
    "pS-Performance Toolkit", "3.3.2-2", "x-LiveCD-x86_64.iso", SHA, ("x-LiveUSB-x86_64.img",)
)


def test_dpkg_status_lists_installed_packages_with_their_source() -> None:
    assert parse_dpkg_status(STATUS, "status") == [
        Package("deb", "busybox-static", "1:1.35.0-4+b3", "amd64", "busybox"),
        Package("deb", "ntpsec", "1.2.2+dfsg1-1+deb12u1", "amd64", "ntpsec"),
    ]


def test_a_damaged_status_file_names_the_file_and_line() -> None:
    broken = STATUS.replace("Version: 1.2.2+dfsg1-1+deb12u1\n", "")
    with pytest.raises(MediaError) as e:
        parse_dpkg_status(broken, "/root/var/lib/dpkg/status")
    assert e.value.where == "/root/var/lib/dpkg/status"
    assert "the installed package at line 13 has no Package or Version field" in str(e.value)


def test_rpm_lines_skip_keys_and_mark_the_toolkit() -> None:
    got = parse_rpm_lines(RPMS, ["perfsonar-toolkit-3.3.2-1.el7.noarch"])
    assert got == [
        Package(
            "rpm", "openssl", "1:1.0.1e-34.el7", "x86_64", "openssl-1.0.1e-34.el7.src.rpm", "centos"
        ),
        Package(
            "rpm",
            "perfsonar-toolkit",
            "3.3.2-1.el7",
            "noarch",
            "perfsonar-toolkit-3.3.2-1.el7.src.rpm",
            "ps-performance-toolkit",
            "toolkit",
        ),
    ]
    # a package without a vendor has no purl namespace
    bare = parse_rpm_lines("hello\t(none)\t1\t1\tnoarch\thello-1-1.src.rpm\t(none)\n")
    assert _sbom(bare).count(b'"purl": "pkg:rpm/hello@1-1?arch=noarch"') == 1


def test_the_busybox_base_debs_come_from_the_kit_and_the_cache() -> None:
    kit = "Debian 12: linux-image-6.1.0-31-cloud-amd64 6.1.128-1; busybox-static 1:1.35.0-4+b3"
    cached = [
        "busybox-static_1%3a1.35.0-4+b3_amd64.deb",
        "linux-image-6.1.0-31-cloud-amd64_6.1.128-1_amd64.deb",
    ]
    assert [(p.name, p.version, p.arch) for p in parse_kit_debs(kit, cached)] == [
        ("busybox-static", "1:1.35.0-4+b3", "amd64"),
        ("linux-image-6.1.0-31-cloud-amd64", "6.1.128-1", "amd64"),
    ]
    # a production base's kernel is an RPM of the rpmdb: its description names no .deb
    assert parse_kit_debs("5.14.0-70.el9.x86_64 from https://mirror.example/el9/") == []
    assert (
        distro_of('PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\nVERSION_ID="12"\n') == "debian-12"
    )


def _sbom(packages: list[Package], distro: str = "debian-12") -> bytes:
    return sbom_json(IMAGE, packages, source_date_epoch=1397131200, distro=distro)


def test_sbom_is_valid_cyclonedx_and_loads_back() -> None:
    packages = [
        *parse_dpkg_status(STATUS, "s"),
        *parse_rpm_lines(RPMS, ["perfsonar-toolkit-3.3.2-1.el7.noarch"]),
    ]
    data = _sbom(packages)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode()) is None
    doc = json.loads(data)
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["timestamp"] == "2014-04-10T12:00:00+00:00"
    assert doc["serialNumber"] == f"urn:uuid:{uuid.uuid5(SERIAL_NAMESPACE, SHA)}"
    bom = Bom.from_json(doc)  # type: ignore[attr-defined]
    root = bom.metadata.component
    assert (root.name, root.version) == ("pS-Performance Toolkit", "3.3.2-2")
    assert [h.content for h in root.hashes] == [SHA]
    assert {str(c.purl) for c in bom.components} == {
        "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=amd64&distro=debian-12",
        "pkg:deb/debian/ntpsec@1.2.2%2Bdfsg1-1%2Bdeb12u1?arch=amd64&distro=debian-12",
        "pkg:rpm/centos/openssl@1.0.1e-34.el7?arch=x86_64&epoch=1",
        "pkg:rpm/ps-performance-toolkit/perfsonar-toolkit@3.3.2-1.el7?arch=noarch",
    }
    by_name = {c.name: c for c in bom.components}
    assert by_name["openssl"].version == "1:1.0.1e-34.el7"
    parts = {c.name: {p.name: p.value for p in c.properties} for c in bom.components}
    assert parts["perfsonar-toolkit"]["repotool:part"] == "toolkit"
    assert parts["busybox-static"]["repotool:deb:source"] == "busybox"


def test_same_packages_in_any_order_give_the_same_bytes() -> None:
    packages = [*parse_dpkg_status(STATUS, "s"), *parse_rpm_lines(RPMS)]
    first = _sbom(packages)
    assert _sbom(list(reversed(packages))) == first
    assert _sbom(packages + packages[:1]) == first
    # another image: another serial number
    other = sbom_json(
        ImageInfo("pS-Performance Toolkit", "3.3.2-2", "x.iso", "cd" * 32),
        packages,
        source_date_epoch=1397131200,
        distro="debian-12",
    )
    assert json.loads(other)["serialNumber"] != json.loads(first)["serialNumber"]


# --- media.json and the mirror's plan ------------------------------------------------


def _manifest(with_sbom: bool) -> bytes:
    names = media_names(
        prefix="pS-Performance_Toolkit", version_label="3.3.2-2", arch="x86_64", volume_label="pS"
    )
    images = [
        ImageRecord("LiveCD", names.livecd, 10, "c" * 64),
        ImageRecord("LiveUSB", names.liveusb, 10, "c" * 64),
    ]
    if with_sbom:
        images.append(ImageRecord("SBOM", names.sbom, 7, "d" * 64))
    text = manifest_json(
        names=names,
        product="pS-Performance Toolkit",
        source_date_epoch=1397131200,
        images=images,
        kernel="k",
        base="busybox",
        packages=[],
    )
    return text.encode()


def test_media_json_names_the_sbom_and_older_files_still_parse() -> None:
    m = parse_manifest(_manifest(True), "media.json")
    assert [i.kind for i in m.images] == ["LiveCD", "LiveUSB"]
    assert m.sbom is not None and m.sbom.name == "pS-Performance_Toolkit-3.3.2-2-x86_64.cdx.json"
    assert m.files == (*m.images, m.sbom)
    old = parse_manifest(_manifest(False), "media.json")
    assert old.sbom is None and len(old.images) == 2
    doc = json.loads(_manifest(True))
    doc["images"].append({**doc["images"][-1], "name": "second.cdx.json"})
    with pytest.raises(
        ManifestError, match=r"names 2 SBOMs \(.*x86_64\.cdx\.json, second\.cdx\.json\)"
    ):
        parse_manifest(json.dumps(doc), "media.json")


def test_the_mirror_plans_the_sbom_like_an_image() -> None:
    m = parse_manifest(_manifest(True), "media.json")
    sums = {i.name: i.sha256 for i in m.files}
    specs = label_images("3.3.2-2", sums, m, "media.json")
    assert {(s.path, s.size, s.digest) for s in specs} >= {
        ("3.3.2-2/pS-Performance_Toolkit-3.3.2-2-x86_64.cdx.json", 7, "d" * 64)
    }


def test_a_push_uploads_the_sbom_before_the_sums_that_name_it() -> None:
    label = "releases/3.3.2"
    files = [
        LocalFile(f"{label}/{name}", "e" * 64, 1)
        for name in ("SHA256SUMS", "SHA256SUMS.asc", "media.json", "x.iso", "x-x86_64.cdx.json")
    ]
    order = [u.path for u in order_uploads(files)]
    assert order.index(f"{label}/x-x86_64.cdx.json") < order.index(f"{label}/SHA256SUMS")
    assert classify(f"{label}/x-x86_64.cdx.json")[0] == "content"


# --- the session's release -------------------------------------------------------------


def _folder(released: Released) -> Path:
    return released.public / "releases" / "3.3.2"


def _sbom_name(released: Released) -> str:
    manifest = parse_manifest((_folder(released) / "media.json").read_bytes(), "media.json")
    assert manifest.sbom is not None, "media.json names no SBOM"
    return manifest.sbom.name


def test_release_sbom_is_summed_signed_and_valid(released: Released, tmp_path: Path) -> None:
    folder = _folder(released)
    name = _sbom_name(released)
    assert name == "pS-Performance_Toolkit-3.3.2-x86_64.cdx.json"
    media = released.result["media"]
    assert isinstance(media, dict) and media["sbom"]["name"] == name
    sums = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert f"{name}: OK" in sums.stdout
    report = gpgv_check(
        released.public / "keys/RPM-GPG-KEY-perfsonar",
        folder / "SHA256SUMS.asc",
        folder / "SHA256SUMS",
        tmp_path,
    )
    assert "Good signature" in report
    data = (folder / name).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(data) is None
    bom = Bom.from_json(json.loads(data))  # type: ignore[attr-defined]
    assert bom.metadata.component.version == "3.3.2"
    livecd = parse_manifest((folder / "media.json").read_bytes(), "m").images[0]
    assert [h.content for h in bom.metadata.component.hashes] == [livecd.sha256]


def _image_root(released: Released, tmp_path: Path) -> Path:
    """The package databases of the squashed root, read out of the LiveCD."""
    iso = next(_folder(released).glob("*-LiveCD-x86_64.iso"))
    squash = tmp_path / "squashfs.img"
    subprocess.run(
        [
            "xorriso",
            "-osirrox",
            "on",
            "-indev",
            str(iso),
            "-extract",
            "/LiveOS/squashfs.img",
            str(squash),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    root = tmp_path / "root"
    subprocess.run(
        ["unsquashfs", "-no-xattrs", "-d", str(root), str(squash), "var/lib/rpm", "var/lib/dpkg"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return root


def test_every_package_of_the_image_is_in_the_sbom(released: Released, tmp_path: Path) -> None:
    root = _image_root(released, tmp_path)
    bom = json.loads((_folder(released) / _sbom_name(released)).read_text())
    listed = {
        (c["purl"].split(":", 1)[1].split("/", 1)[0], c["name"], c["version"])
        for c in bom["components"]
    }
    home = tmp_path / "home"
    home.mkdir()
    (home / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
    rpm = subprocess.run(
        ["rpm", f"--root={root}", "-qa", "--qf", "%{NAME}\t%{EVR}\n"],
        check=True,
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    rpms = {
        tuple(line.split("\t"))
        for line in rpm.stdout.splitlines()
        if not line.startswith("gpg-pubkey\t")
    }
    assert {n for n, _ in rpms} >= {"perfsonar-toolkit", "perfsonar-toolkit-security"}
    assert {("rpm", n, v) for n, v in rpms} <= listed
    status = root / "var/lib/dpkg/status"
    if status.is_file():  # a Debian base: every installed package, the kernel among them
        dpkg = subprocess.run(
            [
                "dpkg-query",
                f"--admindir={root / 'var/lib/dpkg'}",
                "-W",
                "-f",
                "${Package}\t${Version}\t${db:Status-Status}\n",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        debs = {
            tuple(line.split("\t")[:2])
            for line in dpkg.stdout.splitlines()
            if line.endswith("\tinstalled")
        }
        assert {n for n, _ in debs} >= {"ntpsec", "apache2", "iperf3", "openssl"}
        assert {("deb", n, v) for n, v in debs} <= listed
    else:  # the busybox base: its .debs, named in media.json's kernel, kernel first
        kit = json.loads((_folder(released) / "media.json").read_text())["kernel"]
        pairs = re.findall(r"(\S+) (\S+?)(?:;|$)", kit)
        assert pairs and pairs[0][0].startswith("linux-image-")
        assert {("deb", n, v) for n, v in pairs} <= listed
    assert any(name.startswith("linux-image-") for _, name, _ in listed)


def test_release_page_links_the_sbom_and_a_mirror_carries_it(
    released: Released, served_url: str, tmp_path: Path
) -> None:
    name = _sbom_name(released)
    page = requests.get(f"{served_url}/releases/3.3.2/", timeout=30)
    assert page.status_code == 200
    assert f'href="/releases/3.3.2/{name}"' in page.text
    got = requests.get(f"{served_url}/releases/3.3.2/{name}", timeout=30)
    assert got.status_code == 200
    assert got.content == (_folder(released) / name).read_bytes()
    dest = tmp_path / "mirror" / "releases"
    fetcher = HttpFetcher(FetchLimits())
    try:
        verifier = GpgvVerifier(
            released.public / "keys/RPM-GPG-KEY-perfsonar", SubprocessRunner(), tmp_path / "gpgv"
        )
        sync_media(
            served_url,
            dest,
            labels=["3.3.2"],
            fetcher=fetcher,
            verifier=verifier,
            reporter=SilentReporter(),
            jobs=2,
        )
    finally:
        fetcher.close()
    mirrored = dest / "3.3.2"
    assert (mirrored / name).read_bytes() == (_folder(released) / name).read_bytes()
    sums = parse_sha256sums((mirrored / "SHA256SUMS").read_bytes(), "SHA256SUMS")
    assert name in sums
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=mirrored, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
