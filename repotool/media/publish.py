"""Checksums, signature, manifest, and the all-or-nothing move into public/releases/.

The release folder is assembled in a staging folder on the same file system,
checked the way a user would check it (checkisomd5, sha256sum -c, gpgv against
the published key) and only then renamed into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from repotool.digests import file_digest
from repotool.errors import MediaVerifyError
from repotool.media.iso import check_md5
from repotool.media.plan import ImageRecord, MediaNames, sha256sums
from repotool.process import Runner
from repotool.signing import Signer


def staging_dir(state: Path, releases: Path, version_label: str) -> Path:
    """A fresh staging folder that can be renamed to releases/<label> (same file system).

    The state folder is preferred so that mirrors never copy a half-made
    folder; it is used when it shares the file system with public/.
    """
    releases.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    if os.stat(state).st_dev == os.stat(releases).st_dev:
        stage = state / "media-staging" / version_label
    else:
        stage = releases / f".incoming-{version_label}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    return stage


def place_images(iso: Path, stage: Path, names: MediaNames) -> list[ImageRecord]:
    """The LiveCD and, as a hard link to the same bytes, the LiveUSB image."""
    cd = stage / names.livecd
    usb = stage / names.liveusb
    if os.stat(iso).st_dev == os.stat(stage).st_dev:
        os.link(iso, cd)
    else:
        shutil.copy2(iso, cd)
    os.link(cd, usb)
    digest = file_digest(cd)
    size = cd.stat().st_size
    return [
        ImageRecord("LiveCD", names.livecd, size, digest),
        ImageRecord("LiveUSB", names.liveusb, size, digest),
    ]


def write_sums(
    stage: Path, names: MediaNames, images: Sequence[ImageRecord], signer: Signer
) -> None:
    text = sha256sums([(i.name, i.sha256) for i in images]).encode()
    (stage / names.checksums).write_bytes(text)
    (stage / names.signature).write_bytes(signer.detach_sign(text))


def verify_stage(stage: Path, names: MediaNames, runner: Runner, signer: Signer) -> None:
    """What a user does with the download: checkisomd5, sha256sum -c, gpgv."""
    check_md5(runner, stage / names.livecd)
    done = runner.run(["sha256sum", "--strict", "-c", names.checksums], cwd=stage, check=False)
    if done.returncode != 0:
        raise MediaVerifyError(
            f"sha256sum -c fails: {done.text.strip() or done.stderr.decode().strip()}",
            where=str(stage / names.checksums),
            hint="the image changed after it was summed; build it again",
        )
    sums = (stage / names.checksums).read_bytes()
    signer.verify_detached(sums, (stage / names.signature).read_bytes())


def swap_into_place(stage: Path, final: Path) -> None:
    """Rename the checked folder into place; files already there that media does not
    make (release notes) are kept."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old: Path | None = None
    if final.exists():
        for entry in sorted(final.iterdir()):
            target = stage / entry.name
            if not target.exists() and entry.is_file() and not entry.name.startswith("."):
                os.link(entry, target)
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(stage, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
