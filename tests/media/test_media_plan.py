"""The pure decisions of the media stage: names, labels, menu, modules, sums, dnf errors."""

from __future__ import annotations

import json

import pytest

from repotool.errors import MediaError
from repotool.media.base import deb_version, parse_apt_depends
from repotool.media.liveroot import RepoSource, explain_dnf_failure, repo_file
from repotool.media.manifest import MediaImage, MediaManifest, parse_manifest
from repotool.media.plan import (
    ImageRecord,
    esp_size_kib,
    grub_cfg,
    grub_early_cfg,
    isolinux_cfg,
    manifest_json,
    media_names,
    module_load_order,
    parse_modules_dep,
    parse_sha256sums,
    release_of,
    sha256sums,
)


def names(label: str = "3.3.2") -> object:
    return media_names(
        prefix="pS-Performance_Toolkit",
        version_label=label,
        arch="x86_64",
        volume_label="pS-Toolkit",
    )


def test_names_of_a_release_and_a_respin() -> None:
    n = media_names(
        prefix="pS-Performance_Toolkit",
        version_label="3.3.2",
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    assert n.livecd == "pS-Performance_Toolkit-3.3.2-LiveCD-x86_64.iso"
    assert n.liveusb == "pS-Performance_Toolkit-3.3.2-LiveUSB-x86_64.img"
    assert n.volume_label == "pS-Toolkit-3.3.2"
    r = media_names(
        prefix="pS-Performance_Toolkit",
        version_label="3.3.2-2",
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    assert r.livecd == "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso"
    assert release_of("3.3.2-2") == "3.3.2"


@pytest.mark.parametrize("label", ["3.3.2 beta", "../3.3.2", "", "v3", "3.3.2-x"])
def test_bad_version_labels_are_refused(label: str) -> None:
    with pytest.raises(MediaError) as e:
        names(label)
    assert "is not a release label" in str(e.value)
    assert "3.3.2-2" in str(e.value)


def test_volume_label_too_long_for_iso9660() -> None:
    with pytest.raises(MediaError) as e:
        media_names(
            prefix="p",
            version_label="3.3.2",
            arch="x86_64",
            volume_label="pS-Performance-Toolkit-LiveCD-x",
        )
    assert "[media] volume_label" in str(e.value)
    assert "at most 32" in str(e.value)


def test_boot_menu_has_live_install_and_local_entries() -> None:
    cfg = isolinux_cfg(
        product="pS-Performance Toolkit",
        version_label="3.3.2-2",
        volume_label="pS-Toolkit-3.3.2-2",
        timeout=50,
    )
    assert "UI menu.c32" in cfg and "DEFAULT live" in cfg and "TIMEOUT 50" in cfg
    entries = [ln.split()[1] for ln in cfg.splitlines() if ln.startswith("LABEL ")]
    assert entries == ["live", "install", "local"]
    assert "pslive.mode=live" in cfg and "pslive.mode=install" in cfg
    assert cfg.count("pslive.label=pS-Toolkit-3.3.2-2 ") == 2
    assert "LOCALBOOT 0x80" in cfg
    assert "console=ttyS0,115200" in cfg


def test_uefi_menu_has_the_same_entries_and_kernel_lines_as_the_bios_menu() -> None:
    args = dict(
        product="pS-Performance Toolkit",
        version_label="3.3.2-2",
        volume_label="pS-Toolkit-3.3.2-2",
        timeout=50,
    )
    grub = grub_cfg(**args)  # type: ignore[arg-type]
    bios = isolinux_cfg(**args)  # type: ignore[arg-type]
    assert [
        ln.split("--id ")[1].rstrip(" {") for ln in grub.splitlines() if ln.startswith("menuentry ")
    ] == ["live", "install", "local"]
    assert "set default=live" in grub and "set timeout=5" in grub
    bios_lines = [
        ln.split("APPEND initrd=initrd.img ")[1] for ln in bios.splitlines() if "APPEND" in ln
    ]
    grub_lines = [
        ln.split("/isolinux/vmlinuz ")[1]
        for ln in grub.splitlines()
        if ln.strip().startswith("linux ")
    ]
    assert grub_lines == bios_lines
    assert grub.count("initrd /isolinux/initrd.img") == 2
    assert "terminal_output serial console" in grub
    assert 'menuentry "Boot from the local drive" --id local {\n  exit\n}' in grub


@pytest.mark.parametrize(("tenths", "seconds"), [(5, 1), (50, 5), (51, 6), (0, -1)])
def test_uefi_menu_timeout_in_whole_seconds(tenths: int, seconds: int) -> None:
    grub = grub_cfg(product="p", version_label="1", volume_label="l", timeout=tenths)
    assert f"set timeout={seconds}\n" in grub


def test_efi_loader_finds_the_medium_by_its_label() -> None:
    early = grub_early_cfg("pS-Toolkit-3.3.2-2")
    assert early == (
        "search --no-floppy --set=root --label pS-Toolkit-3.3.2-2\nset prefix=($root)/boot/grub\n"
    )


def test_esp_image_size_leaves_room_for_the_loader() -> None:
    assert esp_size_kib(663552) == 1024  # today's GRUB: the 1 MiB floor
    # a larger loader: its size plus 128 KiB for FAT's tables, in 64 KiB steps
    assert esp_size_kib(5_000_000) == 5056


def test_module_order_puts_dependencies_first_and_reports_missing() -> None:
    deps = parse_modules_dep(
        "kernel/fs/isofs/isofs.ko: kernel/drivers/cdrom/cdrom.ko\n"
        "kernel/drivers/cdrom/cdrom.ko:\n"
        "kernel/drivers/scsi/sr_mod.ko: kernel/drivers/scsi/scsi_mod.ko "
        "kernel/drivers/cdrom/cdrom.ko\n"
        "kernel/drivers/scsi/scsi_mod.ko:\n"
        "kernel/drivers/virtio/virtio-blk.ko.xz:\n"
    )
    order, missing = module_load_order(deps, ["isofs", "sr_mod", "virtio_blk", "ahci"])
    assert order == [
        "kernel/drivers/cdrom/cdrom.ko",
        "kernel/fs/isofs/isofs.ko",
        "kernel/drivers/scsi/scsi_mod.ko",
        "kernel/drivers/scsi/sr_mod.ko",
        "kernel/drivers/virtio/virtio-blk.ko.xz",
    ]
    assert missing == ["ahci"]


def test_sha256sums_round_trip_in_sha256sum_format() -> None:
    text = sha256sums([("b.img", "b" * 64), ("a.iso", "a" * 64)])
    assert text == f"{'a' * 64}  a.iso\n{'b' * 64}  b.img\n"
    assert parse_sha256sums(text) == {"a.iso": "a" * 64, "b.img": "b" * 64}
    with pytest.raises(MediaError) as e:
        parse_sha256sums("not a sum\n")
    assert "line 1" in str(e.value)


def test_manifest_depends_only_on_content_and_is_read_back_by_the_one_reader() -> None:
    """media.json is reproducible (same release, same bytes, whatever order dnf
    listed the packages in) and the site/mirror reader reads what the writer wrote."""
    n = media_names(
        prefix="pS-Performance_Toolkit",
        version_label="3.3.2-2",
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    img = ImageRecord("LiveCD", n.livecd, 10, "c" * 64)

    def manifest(packages: list[str]) -> str:
        return manifest_json(
            names=n,
            product="pS-Performance Toolkit",
            source_date_epoch=1390000000,
            images=[img],
            kernel="k",
            base="busybox",
            packages=packages,
        )

    text = manifest(["b", "a", "c"])
    assert manifest(["c", "a", "b"]) == text
    assert manifest(["a", "b"]) != text  # a different package set is a different manifest
    assert text.endswith("}\n") and text.startswith('{\n  "base": "busybox",\n')
    assert list(json.loads(text)) == sorted(json.loads(text))  # keys in a fixed order
    doc = json.loads(text)
    assert doc["release"] == "3.3.2" and doc["version"] == "3.3.2-2"
    assert doc["date"] == "2014-01-17T23:06:40Z"  # from SOURCE_DATE_EPOCH, not the clock
    assert doc["packages"] == ["a", "b", "c"]
    assert doc["images"][0] == {"kind": "LiveCD", "name": n.livecd, "size": 10, "sha256": "c" * 64}
    read = parse_manifest(text, "media.json")
    assert read == MediaManifest(
        version="3.3.2-2",
        images=(MediaImage("LiveCD", n.livecd, 10, "c" * 64),),
        checksums="SHA256SUMS",
        signature="SHA256SUMS.asc",
        date="2014-01-17T23:06:40Z",
    )


def test_repo_file_turns_every_check_on() -> None:
    text = repo_file(
        [
            RepoSource(
                "perfsonar", "file:///p/repo/el7/x86_64/", ("file:///p/keys/RPM-GPG-KEY-perfsonar",)
            )
        ]
    )
    assert "gpgcheck=1\n" in text and "repo_gpgcheck=1\n" in text
    assert "gpgkey=file:///p/keys/RPM-GPG-KEY-perfsonar\n" in text


def test_dnf_failures_are_explained() -> None:
    what, hint = explain_dnf_failure(
        "Importing GPG key 0x1234\nNo match for argument: perfsonar-nosuch\n"
        "Error: Unable to find a match: perfsonar-nosuch\n"
    )
    assert what == "package(s) not in the repository: perfsonar-nosuch"
    assert "repotool publish" in hint
    what, _ = explain_dnf_failure("Error: GPG check FAILED\n")
    assert "signature check failed" in what
    what, _ = explain_dnf_failure(
        "Errors during downloading metadata for repository\nCannot download repomd.xml: x\n"
    )
    assert "metadata could not be read" in what


def test_debian_metapackage_and_version_are_read() -> None:
    text = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n"
    assert parse_apt_depends(text) == ["linux-image-6.1.0-56-cloud-amd64"]
    deb = "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
    assert deb_version(deb) == "1:1.35.0-4+deb12u1+b1"
