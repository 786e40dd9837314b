"""The live media built for real: dnf, mksquashfs, cpio, xorriso, implantisomd5,
checkisomd5, gpg, sha256sum, and qemu booting the image as a CD and as a disk."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from repotool.cli import main
from repotool.config import Config, load_config
from repotool.errors import (
    BaseSystemError,
    LiveRootError,
    MediaError,
    MediaVerifyError,
    ToolError,
    ToolMissingError,
)
from repotool.media import TOOLS, MediaResult, build_media, publish_media
from repotool.process import Completed, Runner, SubprocessRunner
from repotool.report import SilentReporter
from repotool.signing.release_key import open_signer
from repotool.signing.signer import Signer
from tests.media.media_support import (
    HELLO_FILE,
    SerialBoot,
    ovmf_available,
    publish_signed_repo,
    qemu_available,
    uefi_firmware_args,
    write_config,
)

EPOCH = 1390000000
LIVECD = "pS-Performance_Toolkit-3.3.2-LiveCD-x86_64.iso"
LIVEUSB = "pS-Performance_Toolkit-3.3.2-LiveUSB-x86_64.img"
SBOM = "pS-Performance_Toolkit-3.3.2-x86_64.cdx.json"
BOOT_TIMEOUT = 120.0
#: OVMF under TCG takes a while before GRUB even starts
UEFI_BOOT_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Signer]:
    root = tmp_path_factory.mktemp("media-project")
    cfg = load_config(write_config(root))
    runner = SubprocessRunner()
    signer = open_signer(cfg, runner, SilentReporter())
    publish_signed_repo(cfg, signer, runner)
    return cfg, signer


def build(cfg: Config, signer: Signer, label: str, runner: Runner | None = None) -> MediaResult:
    staged = build_media(
        cfg,
        signer,
        runner or SubprocessRunner(),
        SilentReporter(),
        version_label=label,
        source_date_epoch=EPOCH,
    )
    return publish_media(staged)


@pytest.fixture(scope="module")
def built(project: tuple[Config, Signer]) -> MediaResult:
    cfg, signer = project
    return build(cfg, signer, "3.3.2")


def releases_listing(cfg: Config) -> list[str]:
    rel = cfg.public_dir / "releases"
    return sorted(os.listdir(rel)) if rel.exists() else []


# --- what lands in public/releases/ ----------------------------------------


def test_release_folder_holds_complete_media(
    project: tuple[Config, Signer], built: MediaResult
) -> None:
    cfg, _ = project
    folder = cfg.public_dir / "releases" / "3.3.2"
    assert built.directory == folder
    assert sorted(os.listdir(folder)) == sorted(
        [LIVECD, LIVEUSB, SBOM, "SHA256SUMS", "SHA256SUMS.asc", "media.json"]
    )
    cd, usb = folder / LIVECD, folder / LIVEUSB
    assert cd.read_bytes()[:2048] == usb.read_bytes()[:2048]
    assert os.path.samefile(cd, usb)
    manifest = json.loads((folder / "media.json").read_text())
    assert manifest["version"] == "3.3.2"
    assert manifest["date"] == "2014-01-17T23:06:40Z"
    assert manifest["volume_label"] == "pS-Toolkit-3.3.2"
    assert manifest["packages"] == [
        "perfsonar-release-3.3.2-1.noarch",
        "perfsonar-toolkit-3.3.2-1.noarch",
        "perfsonar-toolkit-hello-3.3.2-1.noarch",
    ]
    by_kind = {i["kind"]: i for i in manifest["images"]}
    assert by_kind["LiveCD"]["name"] == LIVECD
    assert by_kind["LiveCD"]["size"] == cd.stat().st_size
    assert by_kind["LiveUSB"]["sha256"] == built.images[0].sha256
    assert by_kind["SBOM"]["name"] == SBOM
    # the busybox base has no dpkg database: its two .debs (kernel, busybox) are listed
    purls = {c["purl"] for c in json.loads((folder / SBOM).read_text())["components"]}
    assert {p.split("@")[0] for p in purls} == {
        "pkg:deb/debian/busybox-static",
        f"pkg:deb/debian/{manifest['kernel'].split()[0]}",
        "pkg:rpm/perfsonar-release",
        "pkg:rpm/perfsonar-toolkit",
        "pkg:rpm/perfsonar-toolkit-hello",
    }
    # nothing half-made or left over next to it, nor in the state folder
    assert [n for n in releases_listing(cfg) if n.startswith(".")] == []
    assert not (cfg.state / "media-work" / "3.3.2").exists()
    assert not (cfg.state / "media-staging" / "3.3.2").exists()


def test_checkisomd5_passes_and_fails_after_one_flipped_byte(
    built: MediaResult, tmp_path: Path
) -> None:
    iso = built.directory / LIVECD
    ok = subprocess.run(["checkisomd5", str(iso)], capture_output=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "flipped.iso"
    shutil.copyfile(iso, bad)
    with bad.open("r+b") as f:
        f.seek(bad.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    broken = subprocess.run(["checkisomd5", str(bad)], capture_output=True, timeout=120)
    assert broken.returncode != 0


def test_sha256sums_verify_with_gpg_and_sha256sum(
    project: tuple[Config, Signer], built: MediaResult, tmp_path: Path
) -> None:
    cfg, _ = project
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    key = cfg.public_dir / "keys" / cfg.key.public_key_name
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run([*gpg, "--import", str(key)], check=True, capture_output=True, timeout=60)
    good = subprocess.run(
        [*gpg, "--verify", str(built.signature), str(built.checksums)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0 and "Good signature" in good.stderr
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"],
        cwd=built.directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sums.returncode == 0
    assert f"{LIVECD}: OK" in sums.stdout and f"{LIVEUSB}: OK" in sums.stdout
    tampered = tmp_path / "SHA256SUMS"
    tampered.write_text(built.checksums.read_text().replace(built.images[0].sha256, "0" * 64, 1))
    bad = subprocess.run(
        [*gpg, "--verify", str(built.signature), str(tampered)], capture_output=True, timeout=60
    )
    assert bad.returncode != 0


# --- booting it ---------------------------------------------------------------


def test_efi_system_partition_holds_the_loader(built: MediaResult, tmp_path: Path) -> None:
    """The stick's MBR (hybrid, no 0xEE entry, so UEFI firmware reads it as an MBR
    disk) has an EFI System Partition (0xEF) with the removable-media loader."""
    image = built.directory / LIVEUSB
    with image.open("rb") as f:
        mbr = f.read(512)
        assert mbr[510:512] == b"\x55\xaa"
        entries = [mbr[446 + 16 * i : 446 + 16 * (i + 1)] for i in range(4)]
        assert 0xEE not in [e[4] for e in entries]
        esp = [e for e in entries if e[4] == 0xEF]
        assert len(esp) == 1, "no EFI System Partition (0xEF) in the MBR"
        first = int.from_bytes(esp[0][8:12], "little")
        count = int.from_bytes(esp[0][12:16], "little")
        f.seek(first * 512)
        part = tmp_path / "esp.img"
        part.write_bytes(f.read(count * 512))
    listing = subprocess.run(
        ["mdir", "-b", "-i", str(part), "::/EFI/BOOT"], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    assert "::/EFI/BOOT/BOOTX64.EFI" in listing.stdout


def boot_and_wait(drive: list[str], timeout: float) -> str:
    boot = SerialBoot(drive)
    try:
        ready = boot.wait_for("pslive: ready", timeout)
    finally:
        boot.close()
    out = boot.output
    assert ready, f"the live system did not come up within {timeout} s:\n{out[-3000:]}"
    return out


@pytest.mark.slow
@pytest.mark.skipif(not qemu_available(), reason="qemu-system-x86 and isolinux are needed")
@pytest.mark.parametrize(
    ("how", "device"),
    [("cdrom", "/dev/sr0"), ("usb-disk", "/dev/sda")],
)
def test_image_boots_into_the_live_toolkit(built: MediaResult, how: str, device: str) -> None:
    if how == "cdrom":
        drive = ["-cdrom", str(built.directory / LIVECD)]
    else:
        drive = ["-drive", f"file={built.directory / LIVEUSB},format=raw,if=ide,snapshot=on"]
    out = boot_and_wait(drive, BOOT_TIMEOUT)
    assert f"pslive: booting from {device}" in out
    assert "pslive: switching into the live root" in out
    assert "pslive: release: pS-Performance Toolkit release 3.3.2" in out
    assert f"pslive: toolkit file: {HELLO_FILE}" in out
    assert "MISSING" not in out


@pytest.mark.slow
@pytest.mark.skipif(not ovmf_available(), reason="qemu-system-x86 and ovmf are needed")
@pytest.mark.parametrize(
    ("how", "device"),
    [("cdrom", "/dev/sr0"), ("usb-disk", "/dev/sda")],
)
def test_image_boots_on_uefi(built: MediaResult, tmp_path: Path, how: str, device: str) -> None:
    """OVMF starts GRUB from the El Torito EFI entry (CD) or the GPT's EFI System
    Partition (disk); GRUB's menu starts the same kernel line as isolinux."""
    if how == "cdrom":
        drive = ["-cdrom", str(built.directory / LIVECD)]
    else:
        drive = ["-drive", f"file={built.directory / LIVEUSB},format=raw,if=ide,snapshot=on"]
    out = boot_and_wait([*uefi_firmware_args(tmp_path), *drive], UEFI_BOOT_TIMEOUT)
    assert "Start pS-Performance Toolkit 3.3.2 (live system)" in out  # GRUB's menu
    assert f"pslive: booting from {device}" in out
    assert "pslive: release: pS-Performance Toolkit release 3.3.2" in out
    assert f"pslive: toolkit file: {HELLO_FILE}" in out
    assert "MISSING" not in out


# --- respins, reproducibility, the command line ------------------------------


def test_respin_gets_its_own_names_and_label(project: tuple[Config, Signer]) -> None:
    cfg, signer = project
    result = build(cfg, signer, "3.3.2-2")
    folder = cfg.public_dir / "releases" / "3.3.2-2"
    assert (folder / "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso").is_file()
    assert (folder / "pS-Performance_Toolkit-3.3.2-2-LiveUSB-x86_64.img").is_file()
    manifest = json.loads((folder / "media.json").read_text())
    assert (manifest["version"], manifest["release"]) == ("3.3.2-2", "3.3.2")
    with (folder / result.images[0].name).open("rb") as f:
        f.seek(32808)
        assert f.read(32).rstrip(b" ") == b"pS-Toolkit-3.3.2-2"


def test_same_inputs_give_the_same_image(
    project: tuple[Config, Signer], built: MediaResult
) -> None:
    cfg, signer = project
    first = built.images[0].sha256
    again = build(cfg, signer, "3.3.2")
    assert again.images[0].sha256 == first
    assert again.sbom is not None and built.sbom is not None
    assert again.sbom.sha256 == built.sbom.sha256
    sums = (cfg.public_dir / "releases" / "3.3.2" / "SHA256SUMS").read_text()
    assert f"{first}  {LIVECD}\n" in sums


def test_command_line_builds_and_prints_json(
    project: tuple[Config, Signer], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _ = project
    code = main(
        [
            "media",
            "build",
            "3.3.2-3",
            "--config",
            str(cfg.root / "repotool.toml"),
            "--json",
            "--quiet",
            "--source-date-epoch",
            str(EPOCH),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads(out)
    assert doc["ok"] is True
    assert [i["name"] for i in doc["images"]] == [
        "pS-Performance_Toolkit-3.3.2-3-LiveCD-x86_64.iso",
        "pS-Performance_Toolkit-3.3.2-3-LiveUSB-x86_64.img",
    ]
    assert doc["sbom"]["name"] == "pS-Performance_Toolkit-3.3.2-3-x86_64.cdx.json"
    assert "pS-Performance_Toolkit-3.3.2-3-x86_64.cdx.json" in doc["summary"]


# --- failures leave nothing behind -----------------------------------------


class BreakingRunner:
    """The real runner, except that one tool misbehaves the way a broken install would."""

    def __init__(self, tool: str, *, corrupt_output: bool = False) -> None:
        self.tool = tool
        self.corrupt_output = corrupt_output
        self.real = SubprocessRunner()

    def run(self, argv: Sequence[str | os.PathLike[str]], **kw: object) -> Completed:
        args = [os.fspath(a) for a in argv]
        if args[0] != self.tool:
            return self.real.run(args, **kw)  # type: ignore[arg-type]
        if not self.corrupt_output:
            return self.real.run([*args[:1], "--no-such-option", *args[1:]], **kw)  # type: ignore[arg-type]
        done = self.real.run(args, **kw)  # type: ignore[arg-type]
        target = Path(args[-1])
        with target.open("r+b") as f:
            f.seek(target.stat().st_size // 2)
            f.write(b"\xff" * 16)
        return done


@pytest.fixture
def untouched(project: tuple[Config, Signer]) -> Iterator[Config]:
    cfg, _ = project
    before = releases_listing(cfg)
    yield cfg
    assert releases_listing(cfg) == before, "a failed build left something in public/releases/"
    assert not (cfg.state / "media-work" / "3.3.2-9").exists()
    assert not (cfg.state / "media-staging" / "3.3.2-9").exists()


def with_media(cfg: Config, **changes: object) -> Config:
    return dataclasses.replace(cfg, media=dataclasses.replace(cfg.media, **changes))  # type: ignore[arg-type]


def test_package_missing_from_repository(project: tuple[Config, Signer], untouched: Config) -> None:
    cfg, signer = project
    bad = with_media(cfg, packages=("perfsonar-toolkit", "perfsonar-nosuch"))
    with pytest.raises(LiveRootError) as e:
        build(bad, signer, "3.3.2-9")
    assert "package(s) not in the repository: perfsonar-nosuch" in str(e.value)
    assert "/repo/el7/x86_64/" in str(e.value.where)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"kernel_package": "linux-image-nosuch-cloud-amd64"},
            "the base package linux-image-nosuch-cloud-amd64 could not be fetched",
        ),
        ({"base": "repos"}, 'base = "repos" needs base_repos and base_packages'),
        ({"base": "floppy"}, "unknown live base 'floppy'"),
    ],
)
def test_missing_base(
    project: tuple[Config, Signer],
    untouched: Config,
    changes: Mapping[str, object],
    expected: str,
) -> None:
    cfg, signer = project
    with pytest.raises(BaseSystemError) as e:
        build(with_media(cfg, **changes), signer, "3.3.2-9")
    assert expected in str(e.value)


def test_failing_step_leaves_nothing(project: tuple[Config, Signer], untouched: Config) -> None:
    cfg, signer = project
    with pytest.raises(ToolError) as e:
        build(cfg, signer, "3.3.2-9", BreakingRunner("xorriso"))
    assert "'xorriso' exited with status" in str(e.value)


def test_missing_uefi_tool_names_its_package(
    project: tuple[Config, Signer],
    untouched: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine without mtools: refused before any work, with the package to install."""
    cfg, signer = project
    path = tmp_path / "bin"
    path.mkdir()
    for tool in TOOLS:
        if tool != "mcopy":
            (path / tool).symlink_to(shutil.which(tool) or tool)
    monkeypatch.setenv("PATH", str(path))
    with pytest.raises(ToolMissingError) as e:
        build(cfg, signer, "3.3.2-9")
    assert "the program 'mcopy' is not installed" in str(e.value)
    assert "apt-get install mtools" in str(e.value)


def test_image_damaged_before_publishing_is_refused(
    project: tuple[Config, Signer], untouched: Config
) -> None:
    cfg, signer = project
    with pytest.raises(MediaVerifyError) as e:
        build(cfg, signer, "3.3.2-9", BreakingRunner("implantisomd5", corrupt_output=True))
    assert "checkisomd5 rejects the image" in str(e.value)


def test_repository_of_another_release_is_refused(
    project: tuple[Config, Signer], untouched: Config
) -> None:
    cfg, signer = project
    with pytest.raises(MediaError) as e:
        build(cfg, signer, "3.4")
    assert "the repository holds 'pS-Performance Toolkit release 3.3.2', not release 3.4" in str(
        e.value
    )


def test_unpublished_repository_is_refused(project: tuple[Config, Signer], tmp_path: Path) -> None:
    _, signer = project
    empty = load_config(write_config(tmp_path))
    with pytest.raises(LiveRootError) as e:
        build(empty, signer, "3.3.2")
    assert "the toolkit repository is not published" in str(e.value)
    assert not (tmp_path / "public" / "releases").exists()
