"""Checksums, signature, manifest, and the all-or-nothing move into public/releases/.

The release folder is assembled in a staging folder on the same file system,
checked the way a user would check it (checkisomd5, sha256sum -c, gpgv against
the published key) and only then exchanged with the published one in one step.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from repotool.digests import file_digest
from repotool.errors import MediaVerifyError
from repotool.media.iso import check_md5
from repotool.media.plan import ImageRecord, MediaNames, sha256sums
from repotool.process import Runner
from repotool.signing.signer import Signer

#: the staging folder's name inside releases/ when the state folder is on another volume
STAGING = ".media-staging"


def staging_dir(state: Path, releases: Path, version_label: str) -> Path:
    """A fresh staging folder that can be renamed to releases/<label> (same file system).

    The state folder is preferred so that mirrors never copy a half-made
    folder.  A web root on a volume of its own is the usual production layout:
    then it is ``releases/.media-staging/<label>`` on that volume (two levels
    down, so that nothing reading ``releases/*/`` takes it for a release).
    """
    releases.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    device = os.stat(releases).st_dev
    parent = state / "media-staging"
    parent.mkdir(exist_ok=True)
    if os.stat(parent).st_dev != device:
        parent = releases / STAGING
        parent.mkdir(exist_ok=True)
    stage = parent / version_label
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
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


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_OLD_PREFIX = ".old-"


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); both must
    exist on one file system.  False where the C library, kernel or file system cannot."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def recover_interrupted_swaps(releases: Path) -> None:
    """Tidy what a swap cut short left in ``releases``: a ``.old-<label>-<pid>`` folder
    goes back to ``<label>`` when that is missing (the crash came between the two
    renames) and is deleted otherwise."""
    for old in sorted(releases.glob(_OLD_PREFIX + "*")):
        label, _, pid = old.name.removeprefix(_OLD_PREFIX).rpartition("-")
        if not (label and pid.isdigit() and old.is_dir()):
            continue
        final = releases / label
        if not final.exists() and not final.is_symlink():
            os.replace(old, final)
        else:
            shutil.rmtree(old, ignore_errors=True)


def swap_into_place(
    stage: Path, final: Path, *, exchange: Callable[[Path, Path], bool] = exchange_paths
) -> None:
    """Put the checked folder at ``final`` in one step, so that ``final`` is never
    missing; files already there that media does not make (release notes, the site's
    index.html) are kept."""
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_swaps(final.parent)
    if not final.exists():
        os.replace(stage, final)
        return
    for entry in sorted(final.iterdir()):
        target = stage / entry.name
        if not target.exists() and entry.is_file() and not entry.name.startswith("."):
            os.link(entry, target)
    if exchange(stage, final):
        shutil.rmtree(stage, ignore_errors=True)  # now the previous folder
        return
    # no atomic exchange here: two renames, with a short window without ``final``;
    # a crash inside it is repaired by recover_interrupted_swaps on the next run
    old = final.with_name(f"{_OLD_PREFIX}{final.name}-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(final, old)
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)
