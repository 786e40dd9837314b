"""Pure decisions about the live media: names, labels, boot menu, scripts, sums.

Values in, values out; nothing here touches the disk or runs a program.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from repotool.errors import MediaError

#: ISO 9660 volume identifiers hold at most 32 characters.
MAX_LABEL = 32
#: checked with ``fullmatch``: ``$`` would let a trailing newline through
_LABEL_OK = re.compile(r"[A-Za-z0-9._-]+")
_VERSION_LABEL = re.compile(r"[0-9][0-9A-Za-z.]*(-[0-9]+)?")

#: kernel command line switch that selects the menu entry's mode
MODE_ARG = "pslive.mode"
LABEL_ARG = "pslive.label"

#: in the ISO: where the squashed root and the boot files live
SQUASHFS_PATH = "LiveOS/squashfs.img"
ISOLINUX_DIR = "isolinux"
#: UEFI: GRUB's menu, the EFI System Partition image (El Torito EFI entry and
#: the hybrid image's GPT partition) and the loader, also loose in the ISO tree
#: for firmware that reads the ISO 9660 file system itself
GRUB_DIR = "boot/grub"
EFI_IMAGE_PATH = f"{GRUB_DIR}/efiboot.img"
EFI_LOADER_PATH = "EFI/BOOT/BOOTX64.EFI"
#: built into the EFI loader (grub-mkimage), so it needs nothing from the medium
#: but its grub.cfg
GRUB_EFI_MODULES = (
    "part_gpt",
    "part_msdos",
    "fat",
    "iso9660",
    "search",
    "search_label",
    "normal",
    "configfile",
    "linux",
    "echo",
    "test",
    "serial",
    "terminal",
    "efi_gop",
    "all_video",
    "gzio",
    "sleep",
)
#: in the live root: the toolkit banner and the list of toolkit files it checks
#: how to boot with another kernel, said by the note on missing drivers (busybox base)
KERNEL_PACKAGE_CHOICE = (
    "set [media] kernel_package in repotool.toml to a kernel with these drivers "
    "(e.g. linux-image-amd64)"
)
BANNER_PATH = "usr/libexec/pslive/banner"
TOOLKIT_FILES_PATH = "usr/share/pslive/toolkit-files"


@dataclass(frozen=True)
class MediaNames:
    """What one release's media are called."""

    version_label: str
    volume_label: str
    livecd: str
    liveusb: str
    #: the image's SBOM (CycloneDX JSON), beside the images
    sbom: str
    checksums: str = "SHA256SUMS"
    signature: str = "SHA256SUMS.asc"
    manifest: str = "media.json"


def media_names(*, prefix: str, version_label: str, arch: str, volume_label: str) -> MediaNames:
    """Names like ``pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso``.

    The LiveUSB image is the same isohybrid image under its own name (``.img``,
    to be written to a stick with dd); it is published as a hard link.  The
    SBOM of both is ``pS-Performance_Toolkit-3.3.2-2-x86_64.cdx.json``.
    """
    if not _VERSION_LABEL.fullmatch(version_label):
        raise MediaError(
            f"{version_label!r} is not a release label",
            where="repotool media build VERSION",
            hint="use the toolkit version, with -N for a respin: 3.3.2 or 3.3.2-2",
        )
    label = f"{volume_label}-{version_label}"
    if len(label) > MAX_LABEL or not _LABEL_OK.fullmatch(label):
        raise MediaError(
            f"the volume label {label!r} is not usable on an ISO 9660 image "
            f"(at most {MAX_LABEL} of A-Z a-z 0-9 . _ -)",
            where="repotool.toml [media] volume_label",
            hint="choose a shorter volume_label without spaces",
        )
    stem = f"{prefix}-{version_label}"
    return MediaNames(
        version_label=version_label,
        volume_label=label,
        livecd=f"{stem}-LiveCD-{arch}.iso",
        liveusb=f"{stem}-LiveUSB-{arch}.img",
        sbom=f"{stem}-{arch}.cdx.json",
    )


def release_of(version_label: str) -> str:
    """``3.3.2-2`` -> ``3.3.2``: the toolkit release a respin label belongs to."""
    return version_label.split("-", 1)[0]


def kernel_cmdline(volume_label: str, mode: str) -> str:
    # ttyS0 last: it becomes /dev/console, so the live system talks on the
    # serial line (headless servers, virtual machines) as well as the screen.
    return (
        f"{LABEL_ARG}={volume_label} {MODE_ARG}={mode} console=tty0 console=ttyS0,115200 loglevel=4"
    )


def isolinux_cfg(*, product: str, version_label: str, volume_label: str, timeout: int) -> str:
    """The BIOS boot menu: live system (default), install, boot from local disk."""
    title = f"{product} {version_label}"
    return "\n".join(
        [
            "SERIAL 0 115200",
            "UI menu.c32",
            "PROMPT 0",
            f"TIMEOUT {timeout}",
            f"MENU TITLE {title}",
            "DEFAULT live",
            "",
            "LABEL live",
            f"  MENU LABEL ^Start {title} (live system)",
            "  MENU DEFAULT",
            "  KERNEL vmlinuz",
            f"  APPEND initrd=initrd.img {kernel_cmdline(volume_label, 'live')}",
            "",
            "LABEL install",
            f"  MENU LABEL ^Install {title} to disk",
            "  KERNEL vmlinuz",
            f"  APPEND initrd=initrd.img {kernel_cmdline(volume_label, 'install')}",
            "",
            "LABEL local",
            "  MENU LABEL Boot from the ^local drive",
            "  LOCALBOOT 0x80",
            "",
        ]
    )


def grub_cfg(*, product: str, version_label: str, volume_label: str, timeout: int) -> str:
    """The UEFI boot menu: the isolinux menu's entries with the same kernel lines.

    ``timeout`` is isolinux's, in tenths of a second (0: wait for a choice);
    GRUB counts whole seconds and waits for ever at -1.  "Local drive" leaves
    GRUB, so the firmware boots its next boot option.
    """
    title = f"{product} {version_label}"
    seconds = -1 if timeout <= 0 else -(-timeout // 10)
    kernel = f"/{ISOLINUX_DIR}/vmlinuz"
    initrd = f"/{ISOLINUX_DIR}/initrd.img"
    return "\n".join(
        [
            # both terminals: the serial line (headless servers, VMs) and the screen
            "serial --unit=0 --speed=115200",
            "terminal_input serial console",
            "terminal_output serial console",
            f"set timeout={seconds}",
            "set default=live",
            "",
            f'menuentry "Start {title} (live system)" --id live {{',
            f"  linux {kernel} {kernel_cmdline(volume_label, 'live')}",
            f"  initrd {initrd}",
            "}",
            "",
            f'menuentry "Install {title} to disk" --id install {{',
            f"  linux {kernel} {kernel_cmdline(volume_label, 'install')}",
            f"  initrd {initrd}",
            "}",
            "",
            'menuentry "Boot from the local drive" --id local {',
            "  exit",
            "}",
            "",
        ]
    )


def grub_early_cfg(volume_label: str) -> str:
    """Built into the EFI loader: find the medium by its label; GRUB's normal mode
    then reads ``$prefix/grub.cfg`` from it.

    By label, as the initramfs does, so the loader finds the ISO whether the
    firmware started it from the CD's El Torito image or the stick's partition.
    """
    return f"search --no-floppy --set=root --label {volume_label}\nset prefix=($root)/{GRUB_DIR}\n"


def esp_size_kib(loader_size: int) -> int:
    """Size of the FAT EFI System Partition image that holds the loader.

    The loader plus room for FAT12's tables and folders, rounded to 64 KiB;
    at least 1 MiB (mkfs.vfat's smallest comfortable FAT12).
    """
    need = -(-loader_size // 1024) + 128
    return max(1024, -(-need // 64) * 64)


# --- kernel modules ---------------------------------------------------------


def parse_modules_dep(text: str) -> dict[str, tuple[str, ...]]:
    """``depmod``'s modules.dep: module path -> the paths it needs."""
    deps: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, _, rest = line.partition(":")
        deps[path.strip()] = tuple(rest.split())
    return deps


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base.replace("-", "_")


def module_load_order(
    deps: Mapping[str, Sequence[str]], wanted: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Module files to insmod, dependencies first, and the wanted names not found.

    A wanted module that is built into the kernel has no file: it is reported
    as not found, which is harmless (the caller tells built-in from absent).
    """
    by_name = {module_name(p): p for p in deps}
    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str, depth: int) -> None:
        if path in seen or depth > 64:
            return
        seen.add(path)
        for dep in deps.get(path, ()):
            visit(dep, depth + 1)
        order.append(path)

    missing = []
    for name in wanted:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            missing.append(name)
        else:
            visit(path, 0)
    return order, missing


def builtin_modules(text: str) -> set[str]:
    """Names in ``modules.builtin``."""
    return {module_name(line.strip()) for line in text.splitlines() if line.strip()}


# --- scripts ----------------------------------------------------------------


def initramfs_init(*, kernel_version: str, modules: Sequence[str]) -> str:
    """/init of the initramfs: find the medium, mount the squashed root, switch.

    The medium is recognised by its ISO 9660 volume label (read from the
    device's primary volume descriptor), so an older disc in another drive is
    never booted by mistake.  The root is a read-only squashfs under a tmpfs
    overlay, so the live system can write.
    """
    mods = " ".join(modules)
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /run /medium /squash /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {mods}; do
  insmod /lib/modules/{kernel_version}/$m 2>/dev/null
done
label=
for arg in $(cat /proc/cmdline); do
  case "$arg" in {LABEL_ARG}=*) label="${{arg#{LABEL_ARG}=}}" ;; esac
done
echo "pslive: looking for the medium labelled $label"
found=
tries=0
while [ -z "$found" ] && [ $tries -lt 30 ]; do
  for dev in /dev/sr* /dev/sd? /dev/vd? /dev/hd?; do
    [ -b "$dev" ] || continue
    vol=$(dd if="$dev" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' ')
    if [ "$vol" = "$label" ] && mount -t iso9660 -o ro "$dev" /medium 2>/dev/null; then
      found=$dev
      break
    fi
  done
  [ -n "$found" ] && break
  tries=$((tries + 1))
  sleep 1
done
if [ -z "$found" ]; then
  echo "pslive: ERROR: no medium labelled $label was found; dropping to a shell"
  exec sh
fi
echo "pslive: booting from $found"
if ! mount -t squashfs -o ro,loop /medium/{SQUASHFS_PATH} /squash; then
  echo "pslive: ERROR: cannot mount /{SQUASHFS_PATH}; dropping to a shell"
  exec sh
fi
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/squash,upperdir=/rw/upper,workdir=/rw/work /newroot
mkdir -p /newroot/run/pslive/medium /newroot/dev /newroot/proc /newroot/sys
mount --move /medium /newroot/run/pslive/medium
mount --move /dev /newroot/dev
umount /proc /sys
echo "pslive: switching into the live root"
exec switch_root /newroot /sbin/init
"""


def banner_script(*, release_file: str) -> str:
    """Run at the end of the live system's start: the release and the toolkit files.

    Every file a toolkit package installed is checked; the serial console
    shows the release and each file, so a headless boot can be verified.
    """
    return f"""#!/bin/sh
echo "pslive: live root is up"
if [ -r {release_file} ]; then
  echo "pslive: release: $(cat {release_file})"
else
  echo "pslive: ERROR: {release_file} is missing"
fi
present=0
missing=0
while read -r f; do
  [ -n "$f" ] || continue
  if [ -e "$f" ] || [ -L "$f" ]; then
    echo "pslive: toolkit file: $f"
    present=$((present + 1))
  else
    echo "pslive: MISSING toolkit file: $f"
    missing=$((missing + 1))
  fi
done < /{TOOLKIT_FILES_PATH}
echo "pslive: toolkit files present: $present, missing: $missing"
"""


# --- checksums and manifest -------------------------------------------------


def sha256sums(entries: Sequence[tuple[str, str]]) -> str:
    """``sha256sum`` format (two spaces, text mode), sorted by name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))


def parse_sha256sums(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^([0-9a-f]{64}) [ *](.+)$", line)
        if not m:
            raise MediaError(f"line {n} is not a sha256sum line", where="SHA256SUMS")
        out[m.group(2)] = m.group(1)
    return out


@dataclass(frozen=True)
class ImageRecord:
    kind: str
    name: str
    size: int
    sha256: str


def manifest_json(
    *,
    names: MediaNames,
    product: str,
    source_date_epoch: int,
    images: Sequence[ImageRecord],
    kernel: str,
    base: str,
    packages: Sequence[str],
    superseded_by: str = "",
) -> str:
    """media.json, read by the site's download table and the announcements.

    ``images``: the boot images and the SBOM (kind ``SBOM``, see
    :data:`repotool.media.manifest.SBOM_KIND`).
    ``superseded_by``: the newer respin already out when these media were
    built (``release --respin N --force``); the key is absent otherwise."""
    doc: dict[str, object] = {
        "product": product,
        "version": names.version_label,
        "release": release_of(names.version_label),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source_date_epoch)),
        "source_date_epoch": source_date_epoch,
        "volume_label": names.volume_label,
        "base": base,
        "kernel": kernel,
        "packages": sorted(packages),
        "images": [
            {"kind": i.kind, "name": i.name, "size": i.size, "sha256": i.sha256} for i in images
        ],
        "checksums": names.checksums,
        "signature": names.signature,
    }
    if superseded_by:
        doc["superseded_by"] = superseded_by
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
