"""What a media build says when the kernel lacks drivers the initramfs asks for."""

from __future__ import annotations

from repotool.config.settings import MediaConfig
from repotool.media.initramfs import absent_modules_note


def test_missing_drivers_are_explained_with_what_they_drive_and_the_fix() -> None:
    # the drivers Debian's cloud kernel (the default base) lacks
    absent = ["ahci", "usb_storage", "uas", "xhci_pci", "ehci_pci"]
    assert set(absent) <= set(MediaConfig().kernel_modules)
    note = absent_modules_note("6.1.0-56-cloud-amd64", absent)
    assert note == (
        "note: kernel 6.1.0-56-cloud-amd64 has no driver ahci, usb_storage, uas, xhci_pci, "
        "ehci_pci, as a module or built in: the live system cannot find its medium through "
        "these (SATA disks and drives in AHCI mode; USB sticks; USB 3 sticks and disks; "
        "USB 3 ports; USB 2 ports), and boots only where the kernel has a driver for it. "
        "To boot such hardware, set [media] kernel_package in repotool.toml to a kernel "
        "with these drivers (e.g. linux-image-amd64); to stop this note, remove ahci, "
        "usb_storage, uas, xhci_pci, ehci_pci from [media] kernel_modules."
    )
    assert "(skipped)" not in note


def test_a_driver_without_a_known_use_is_still_named() -> None:
    note = absent_modules_note("6.1.0-1-amd64", ["nvme"])
    assert (
        "has no driver nvme, as a module or built in: the live system cannot find its "
        "medium through these, and boots" in note
    )
