"""The initramfs: busybox, the kernel modules that reach the medium, /init.

Packed with GNU cpio (newc, --reproducible) from a tree whose times are all
SOURCE_DATE_EPOCH, in sorted order, then gzip without a name or time stamp.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from repotool.media.base import BootKit
from repotool.media.plan import (
    KERNEL_PACKAGE_CHOICE,
    builtin_modules,
    initramfs_init,
    module_load_order,
    parse_modules_dep,
)
from repotool.process import Runner
from repotool.report import Reporter


def set_tree_times(tree: Path, epoch: int) -> None:
    """Every file, link and folder gets the epoch as its time (links themselves)."""
    paths = [tree, *tree.rglob("*")]
    for p in sorted(paths, key=lambda q: len(q.parts), reverse=True):
        os.utime(p, (epoch, epoch), follow_symlinks=False)


#: what a driver the initramfs may load is for, in a reader's words
_DRIVER_USE = {
    "ahci": "SATA disks and drives in AHCI mode",
    "ata_piix": "older IDE/SATA disks and CD drives",
    "sr_mod": "CD/DVD drives",
    "sd_mod": "disks and USB sticks",
    "usb_storage": "USB sticks",
    "uas": "USB 3 sticks and disks",
    "xhci_pci": "USB 3 ports",
    "ehci_pci": "USB 2 ports",
    "virtio_blk": "virtual machine disks",
    "virtio_scsi": "virtual machine disks and CD drives",
}


def absent_modules_note(
    kernel_version: str, absent: Sequence[str], *, choice: str = KERNEL_PACKAGE_CHOICE
) -> str:
    """Pure: what it means for the media that the kernel lacks some of the drivers
    [media] kernel_modules asks for (neither as modules nor built in)."""
    names = ", ".join(absent)
    uses = list(dict.fromkeys(_DRIVER_USE[m] for m in absent if m in _DRIVER_USE))
    reach = f" ({'; '.join(uses)})" if uses else ""
    return (
        f"note: kernel {kernel_version} has no driver {names}, as a module or built in: "
        f"the live system cannot find its medium through these{reach}, and boots only "
        f"where the kernel has a driver for it. To boot such hardware, {choice}; "
        f"to stop this note, remove {names} from [media] kernel_modules."
    )


def make_initramfs(
    kit: BootKit,
    wanted_modules: tuple[str, ...],
    *,
    work: Path,
    out: Path,
    epoch: int,
    runner: Runner,
    reporter: Reporter,
) -> list[str]:
    """Write a gzip'd newc cpio to ``out``; return the modules it loads (by name)."""
    tree = work / "initramfs"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "bin").mkdir(parents=True)
    shutil.copy2(kit.busybox, tree / "bin" / "busybox")
    os.chmod(tree / "bin" / "busybox", 0o755)

    deps = parse_modules_dep((kit.modules_dir / "modules.dep").read_text())
    order, missing = module_load_order(deps, wanted_modules)
    builtin_file = kit.modules_dir / "modules.builtin"
    builtin = builtin_modules(builtin_file.read_text()) if builtin_file.exists() else set()
    absent = [m for m in missing if m.replace("-", "_") not in builtin]
    if absent:
        reporter.info(absent_modules_note(kit.kernel_version, absent, choice=kit.kernel_choice))
    for rel in order:
        dst = tree / "lib" / "modules" / kit.kernel_version / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kit.modules_dir / rel, dst)

    init = tree / "init"
    init.write_text(initramfs_init(kernel_version=kit.kernel_version, modules=order))
    init.chmod(0o755)
    for d in ("dev", "proc", "sys", "run"):
        (tree / d).mkdir()
    set_tree_times(tree, epoch)

    names = sorted(os.path.relpath(p, tree) for p in tree.rglob("*"))
    listing = "".join(f"{n}\n" for n in names).encode()
    done = runner.run(
        ["cpio", "--quiet", "-o", "-H", "newc", "--reproducible", "-R", "0:0"],
        cwd=tree,
        input=listing,
        where=f"initramfs for kernel {kit.kernel_version}",
    )
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(gzip.compress(done.stdout, compresslevel=9, mtime=0))
    os.replace(tmp, out)
    shutil.rmtree(tree)
    return [n.rsplit("/", 1)[-1] for n in order]
