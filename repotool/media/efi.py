"""UEFI boot: GRUB as the EFI loader and the FAT EFI System Partition image.

The loader is made with ``grub-mkimage`` (Debian's grub-efi-amd64-bin modules
built in, plus a small config that finds the medium by its volume label), not
``grub-mkstandalone``: the latter packs a memdisk tar whose members carry the
build's file times and the whole module tree, while grub-mkimage's output
depends only on the module files, the module list and the config.

The EFI System Partition image is a FAT file system made with ``mkfs.fat
--invariant`` and a volume id derived from SOURCE_DATE_EPOCH; ``mmd`` and
``mcopy`` (mtools) take SOURCE_DATE_EPOCH for folders and the loader's time,
in UTC.  Same inputs, same bytes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from repotool.errors import BaseSystemError, ToolMissingError
from repotool.media.plan import GRUB_DIR, GRUB_EFI_MODULES, esp_size_kib
from repotool.process import DEBIAN_PACKAGES, Runner

GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")
#: mkfs.fat lives in /sbin, which is not on a normal user's PATH on Debian
_SBIN = "/usr/sbin:/sbin"


def check_efi_loader_files() -> None:
    missing = [m for m in GRUB_EFI_MODULES if not (GRUB_EFI_DIR / f"{m}.mod").is_file()]
    if missing:
        raise BaseSystemError(
            f"GRUB's EFI modules are missing ({', '.join(missing)})",
            where=str(GRUB_EFI_DIR),
            hint="install them with: apt-get install grub-efi-amd64-bin",
        )


def mkfs_fat() -> str:
    found = shutil.which("mkfs.fat") or shutil.which("mkfs.fat", path=_SBIN)
    if found is None:
        raise ToolMissingError("mkfs.fat", DEBIAN_PACKAGES.get("mkfs.fat"))
    return found


def make_efi_loader(runner: Runner, out: Path, *, early_cfg: str) -> None:
    """BOOTX64.EFI: GRUB with its modules and ``early_cfg`` built in."""
    check_efi_loader_files()
    cfg = out.with_name(out.name + ".cfg")
    cfg.write_text(early_cfg)
    runner.run(
        [
            "grub-mkimage",
            "-O",
            "x86_64-efi",
            "-d",
            str(GRUB_EFI_DIR),
            "-o",
            str(out),
            "-c",
            str(cfg),
            "-p",
            f"/{GRUB_DIR}",
            *GRUB_EFI_MODULES,
        ],
        timeout=300,
        where=str(out),
    )


def make_esp_image(runner: Runner, loader: Path, out: Path, *, epoch: int) -> None:
    """A FAT image holding EFI/BOOT/BOOTX64.EFI, byte-identical for the same inputs."""
    fat = mkfs_fat()
    os.utime(loader, (epoch, epoch))
    env = {"SOURCE_DATE_EPOCH": str(epoch), "TZ": "UTC", "MTOOLSRC": None}
    runner.run(
        [
            fat,
            "-C",
            "--invariant",
            "-i",
            f"{epoch & 0xFFFFFFFF:08X}",
            "-n",
            "EFIBOOT",
            str(out),
            str(esp_size_kib(loader.stat().st_size)),
        ],
        timeout=300,
        where=str(out),
    )
    runner.run(
        ["mmd", "-i", str(out), "::/EFI", "::/EFI/BOOT"], env=env, timeout=300, where=str(out)
    )
    runner.run(
        ["mcopy", "-m", "-i", str(out), str(loader), "::/EFI/BOOT/BOOTX64.EFI"],
        env=env,
        timeout=300,
        where=str(out),
    )
