"""Live media (LiveCD / LiveUSB) of a release: the stage entry point.

``build_media`` composes the live root from the base system and the signed
toolkit repository, squashes it, masters an isohybrid ISO with an isolinux
menu (BIOS) and a GRUB menu (UEFI), implants the media checksum, writes
SHA256SUMS(.asc) and media.json and checks everything as a user would, in a
staging folder on the file system of ``public/releases/``.  It publishes
nothing: :func:`publish_media` moves the checked folder into
``public/releases/<version_label>/`` in one step (the release does so right
after its repositories are swapped in), :func:`discard_media` drops it.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repotool.config import Config
from repotool.errors import LiveRootError, MediaError
from repotool.media.base import open_base
from repotool.media.efi import (
    check_efi_loader_files,
    make_efi_loader,
    make_esp_image,
    mkfs_fat,
)
from repotool.media.initramfs import make_initramfs, set_tree_times
from repotool.media.iso import implant_md5, layout_iso_tree, master_iso, squash_root
from repotool.media.liveroot import (
    DnfInstaller,
    RepoSource,
    normalise_root,
    read_release,
    write_toolkit_banner,
)
from repotool.media.plan import (
    ImageRecord,
    grub_cfg,
    grub_early_cfg,
    isolinux_cfg,
    manifest_json,
    media_names,
    release_of,
)
from repotool.media.publish import (
    place_images,
    staging_dir,
    swap_into_place,
    verify_stage,
    write_sums,
)
from repotool.media.sbom import read_packages, write_sbom
from repotool.process import Runner, require_tools
from repotool.repo.tree_checks import check_name
from repotool.report import Reporter
from repotool.signing.signer import Signer

__all__ = ["MediaResult", "StagedMedia", "build_media", "discard_media", "publish_media"]

TOOLS = (
    "dnf",
    "rpm",
    "mksquashfs",
    "xorriso",
    "implantisomd5",
    "checkisomd5",
    "cpio",
    "gpgv",
    "sha256sum",
    "grub-mkimage",
    "mmd",
    "mcopy",
)


@dataclass(frozen=True)
class MediaResult:
    """What the site's download table and the announcement need."""

    version_label: str
    directory: Path
    images: tuple[ImageRecord, ...]
    checksums: Path
    signature: Path
    manifest: Path
    release: str
    kernel: str
    packages: tuple[str, ...]
    #: the newer respin already out when these were built (``--force``); "" if none
    superseded_by: str = ""
    #: the images' SBOM (CycloneDX JSON), also in SHA256SUMS and media.json
    sbom: ImageRecord | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version_label,
            "directory": str(self.directory),
            "images": [i.__dict__ for i in self.images],
            "checksums": str(self.checksums),
            "signature": str(self.signature),
            "manifest": str(self.manifest),
            "release": self.release,
            "kernel": self.kernel,
            "packages": list(self.packages),
        }
        if self.superseded_by:
            out["superseded_by"] = self.superseded_by
        if self.sbom is not None:
            out["sbom"] = self.sbom.__dict__
        return out


@dataclass(frozen=True)
class StagedMedia:
    """Checked media waiting in ``stage`` (same file system as ``result.directory``)."""

    stage: Path
    result: MediaResult


def publish_media(staged: StagedMedia) -> MediaResult:
    """Move the checked media into ``public/releases/<label>/`` in one step."""
    swap_into_place(staged.stage, staged.result.directory)
    _tidy_staging(staged)
    return staged.result


def discard_media(staged: StagedMedia) -> None:
    shutil.rmtree(staged.stage, ignore_errors=True)
    _tidy_staging(staged)


def _tidy_staging(staged: StagedMedia) -> None:
    # an empty releases/.media-staging/ must not linger in the published tree
    with contextlib.suppress(OSError):
        staged.stage.parent.rmdir()


def toolkit_repo(
    cfg: Config, repo_dir: Path | None = None, key_file: Path | None = None
) -> RepoSource:
    """The just-published (or staged) repository of the media target, and the published key."""
    repo = repo_dir or cfg.public_dir / "repo" / cfg.media.target / cfg.media.arch
    key = key_file or cfg.public_dir / "keys" / cfg.key.public_key_name
    if not (repo / "repodata" / "repomd.xml").is_file():
        raise LiveRootError(
            "the toolkit repository is not published",
            where=str(repo / "repodata" / "repomd.xml"),
            hint="run 'repotool publish' (or 'repotool release') first",
        )
    if not key.is_file():
        raise LiveRootError(
            "the release public key is not published",
            where=str(key),
            hint="run 'repotool publish' first",
        )
    return RepoSource(cfg.publish.repo_id, repo.resolve().as_uri() + "/", (key.resolve().as_uri(),))


def build_media(
    cfg: Config,
    signer: Signer,
    runner: Runner,
    reporter: Reporter,
    *,
    version_label: str,
    source_date_epoch: int,
    repo_dir: Path | None = None,
    key_file: Path | None = None,
    superseded_by: str = "",
) -> StagedMedia:
    """Build and check the live media of ``version_label`` (e.g. 3.3.2-2); staged only.

    The toolkit is installed from ``repo_dir`` (default: the published
    public/repo/<media target>/<arch>/; a release may pass its staged,
    signed repository instead) with the key ``key_file`` (default: the
    published public/keys/ key).  ``superseded_by`` names the newer respin
    already out (media.json then says so).
    """
    check_name(
        "media label",
        version_label,
        where="repotool media build",
        hint="use a release version like 3.3.2 (a respin is VERSION-N)",
    )
    m = cfg.media
    names = media_names(
        prefix=m.name_prefix, version_label=version_label, arch=m.arch, volume_label=m.volume_label
    )
    require_tools(TOOLS)
    mkfs_fat()
    check_efi_loader_files()
    source = toolkit_repo(cfg, repo_dir, key_file)
    releasever = cfg.target(m.target).releasever
    releases = cfg.public_dir / "releases"
    work = cfg.state / "media-work" / version_label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stage: Path | None = None
    try:
        with reporter.step(f"Live media {version_label}", total=6) as step:
            installer = DnfInstaller(
                runner, work=work, releasever=releasever, epoch=source_date_epoch
            )
            root = work / "root"
            root.mkdir()
            base = open_base(cfg, runner, reporter, installer)
            kit = base.prepare(root)
            step.advance(note=f"base {base.name}")

            before = set(installer.installed(root))
            installer.install(root, [source], m.packages, what="toolkit packages")
            toolkit = sorted(set(installer.installed(root)) - before)
            release = read_release(root, m.release_file)
            if release_of(version_label) not in release.split():
                raise MediaError(
                    f"the repository holds '{release}', not release {release_of(version_label)}",
                    where=f"{source.baseurl} ({m.release_file})",
                    hint="publish the release's packages first, or build media for the "
                    "version the repository holds",
                )
            write_toolkit_banner(
                root, release_file=m.release_file, toolkit_files=installer.files_of(root, toolkit)
            )
            normalise_root(root)
            # the SBOM's packages: read now, the root is deleted once squashed
            sbom_packages, distro = read_packages(
                cfg, runner, root, kit_description=kit.description, toolkit=toolkit
            )
            step.advance(note="toolkit installed")

            squashfs = work / "squashfs.img"
            squash_root(
                runner, root, squashfs, epoch=source_date_epoch, compression=m.squashfs_compression
            )
            step.advance(note="root squashed")

            initrd = work / "initrd.img"
            make_initramfs(
                kit,
                m.kernel_modules,
                work=work,
                out=initrd,
                epoch=source_date_epoch,
                runner=runner,
                reporter=reporter,
            )
            step.advance(note="initramfs")

            efi_loader = work / "BOOTX64.EFI"
            make_efi_loader(runner, efi_loader, early_cfg=grub_early_cfg(names.volume_label))
            efi_image = work / "efiboot.img"
            make_esp_image(runner, efi_loader, efi_image, epoch=source_date_epoch)

            tree = work / "iso"
            layout_iso_tree(
                tree,
                kernel=kit.kernel,
                initrd=initrd,
                squashfs=squashfs,
                isolinux_cfg=isolinux_cfg(
                    product=cfg.product,
                    version_label=version_label,
                    volume_label=names.volume_label,
                    timeout=m.menu_timeout,
                ),
                grub_cfg=grub_cfg(
                    product=cfg.product,
                    version_label=version_label,
                    volume_label=names.volume_label,
                    timeout=m.menu_timeout,
                ),
                efi_image=efi_image,
                efi_loader=efi_loader,
                extra_files={cfg.key.public_key_name: signer.public_key_armored().encode()},
            )
            # the kernel, its modules and busybox came from the root (a Debian or
            # repos base); it is squashed and no longer needed
            shutil.rmtree(root)
            # xorriso takes the files' own times; SOURCE_DATE_EPOCH covers the volume.
            set_tree_times(tree, source_date_epoch)
            iso = work / names.livecd
            master_iso(runner, tree, iso, volume_label=names.volume_label, epoch=source_date_epoch)
            implant_md5(runner, iso)
            step.advance(note="ISO mastered")

            stage = staging_dir(cfg.state, releases, version_label)
            images = place_images(iso, stage, names)
            sbom = write_sbom(
                stage,
                names,
                product=cfg.product,
                livecd=images[0],
                packages=sbom_packages,
                distro=distro,
                source_date_epoch=source_date_epoch,
            )
            write_sums(stage, names, [*images, sbom], signer)
            (stage / names.manifest).write_text(
                manifest_json(
                    names=names,
                    product=cfg.product,
                    source_date_epoch=source_date_epoch,
                    images=[*images, sbom],
                    kernel=kit.description,
                    base=base.name,
                    packages=toolkit,
                    superseded_by=superseded_by,
                )
            )
            verify_stage(stage, names, runner, signer)
            step.advance(note="verified")
            final = releases / version_label
            staged = StagedMedia(
                stage,
                MediaResult(
                    version_label=version_label,
                    directory=final,
                    images=tuple(images),
                    checksums=final / names.checksums,
                    signature=final / names.signature,
                    manifest=final / names.manifest,
                    release=release,
                    kernel=kit.description,
                    packages=tuple(toolkit),
                    superseded_by=superseded_by,
                    sbom=sbom,
                ),
            )
            stage = None  # from here the caller owns it
    except OSError as e:  # a full disk, most often: the live root and the ISO are large
        raise MediaError(
            f"cannot write the live media: {e.strerror or e}",
            where=str(e.filename2 or e.filename or work),
            hint=f"free space there and under {cfg.state} (the live root and the images need "
            "about a gigabyte), then run again; nothing was published",
        ) from e
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
            with contextlib.suppress(OSError):  # an empty .media-staging/ must not linger
                stage.parent.rmdir()
        shutil.rmtree(work, ignore_errors=True)
    return staged
