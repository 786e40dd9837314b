"""The image: squash the root (mksquashfs), master the ISO (xorriso), implant
the media checksum (implantisomd5).

The ISO boots through isolinux (El Torito, no emulation) from a CD on BIOS and
through GRUB (a second El Torito entry: the EFI System Partition image) on
UEFI.  It has an isohybrid MBR and a GPT whose EFI partition is that image
(``-isohybrid-gpt-basdat``), so the same bytes boot from a USB stick or a raw
disk on either firmware.
Both mksquashfs and xorriso take SOURCE_DATE_EPOCH for every time stamp; with
the same inputs the image is byte-identical.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from repotool.errors import BaseSystemError, MediaVerifyError
from repotool.media.plan import (
    EFI_IMAGE_PATH,
    EFI_LOADER_PATH,
    GRUB_DIR,
    ISOLINUX_DIR,
    SQUASHFS_PATH,
)
from repotool.process import Runner

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
ISOHYBRID_MBR = Path("/usr/lib/ISOLINUX/isohdpfx.bin")
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
#: menu.c32 and what it links against
MENU_MODULES = ("ldlinux.c32", "libcom32.c32", "libutil.c32", "menu.c32")


def check_boot_loader_files() -> None:
    for p, pkg in [(ISOLINUX_BIN, "isolinux"), (ISOHYBRID_MBR, "isolinux")] + [
        (SYSLINUX_MODULES / m, "syslinux-common") for m in MENU_MODULES
    ]:
        if not p.is_file():
            raise BaseSystemError(
                "a boot loader file is missing",
                where=str(p),
                hint=f"install it with: apt-get install {pkg}",
            )


def mksquashfs_argv(root: Path, out: Path, *, compression: str) -> list[str]:
    # The time stamps come from SOURCE_DATE_EPOCH in the environment (mksquashfs
    # refuses -all-time/-mkfs-time beside it, and a maintainer may have it set).
    return [
        "mksquashfs",
        str(root),
        str(out),
        "-noappend",
        "-no-progress",
        "-quiet",
        "-comp",
        compression,
    ]


def squash_root(runner: Runner, root: Path, out: Path, *, epoch: int, compression: str) -> None:
    runner.run(
        mksquashfs_argv(root, out, compression=compression),
        env={"SOURCE_DATE_EPOCH": str(epoch)},
        timeout=3600,
        where=str(root),
    )


def layout_iso_tree(
    tree: Path,
    *,
    kernel: Path,
    initrd: Path,
    squashfs: Path,
    isolinux_cfg: str,
    grub_cfg: str,
    efi_image: Path,
    efi_loader: Path,
    extra_files: Mapping[str, bytes],
) -> None:
    """The tree xorriso masters: isolinux/, boot/grub/ (menu, EFI image),
    EFI/BOOT/BOOTX64.EFI, LiveOS/squashfs.img and extra files."""
    check_boot_loader_files()
    boot = tree / ISOLINUX_DIR
    boot.mkdir(parents=True)
    shutil.copyfile(ISOLINUX_BIN, boot / "isolinux.bin")
    for m in MENU_MODULES:
        shutil.copyfile(SYSLINUX_MODULES / m, boot / m)
    shutil.copyfile(kernel, boot / "vmlinuz")
    os.link(initrd, boot / "initrd.img")
    (boot / "isolinux.cfg").write_text(isolinux_cfg)
    grub = tree / GRUB_DIR
    grub.mkdir(parents=True)
    (grub / "grub.cfg").write_text(grub_cfg)
    os.link(efi_image, tree / EFI_IMAGE_PATH)
    (tree / EFI_LOADER_PATH).parent.mkdir(parents=True)
    os.link(efi_loader, tree / EFI_LOADER_PATH)
    live = tree / SQUASHFS_PATH
    live.parent.mkdir(parents=True)
    os.link(squashfs, live)
    for name, data in sorted(extra_files.items()):
        (tree / name).write_bytes(data)


def xorriso_argv(tree: Path, out: Path, *, volume_label: str) -> list[str]:
    """Master with El Torito (isolinux for BIOS, the EFI image for UEFI), an
    isohybrid MBR and GPT, Rock Ridge and Joliet."""
    return [
        "xorriso",
        "-as",
        "mkisofs",
        "-o",
        str(out),
        "-V",
        volume_label,
        "-iso-level",
        "3",
        "-R",
        "-J",
        "-joliet-long",
        "-b",
        f"{ISOLINUX_DIR}/isolinux.bin",
        "-c",
        f"{ISOLINUX_DIR}/boot.cat",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
        "-isohybrid-mbr",
        str(ISOHYBRID_MBR),
        "-eltorito-alt-boot",
        "-e",
        EFI_IMAGE_PATH,
        "-no-emul-boot",
        "-isohybrid-gpt-basdat",
        str(tree),
    ]


def master_iso(runner: Runner, tree: Path, out: Path, *, volume_label: str, epoch: int) -> None:
    runner.run(
        xorriso_argv(tree, out, volume_label=volume_label),
        env={"SOURCE_DATE_EPOCH": str(epoch)},
        timeout=3600,
        where=str(out),
    )


def implant_md5(runner: Runner, iso: Path) -> None:
    runner.run(["implantisomd5", "--force", str(iso)], timeout=1800, where=str(iso))


def check_md5(runner: Runner, iso: Path) -> None:
    """What a user's checkisomd5 says about a burned disc, or a clear error."""
    done = runner.run(["checkisomd5", "--verbose", str(iso)], check=False, timeout=1800)
    if done.returncode != 0:
        text = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
        raise MediaVerifyError(
            f"checkisomd5 rejects the image: {text.splitlines()[-1] if text else 'no output'}",
            where=str(iso),
            hint="the image is damaged; build it again",
        )
