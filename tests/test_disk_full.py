"""A full disk that no stage named is still one clear error, never a traceback:
the command line says what filled up and what can be deleted."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from repotool.cli import Context, run_command
from repotool.config import CONFIG_NAME
from repotool.report import SilentReporter
from tests.conftest import make_project, run_repotool

REPO_ROOT = Path(__file__).resolve().parent.parent


def _fills_the_disk(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    assert ctx.config.version
    Path("/dev/full").write_bytes(b"x" * 4096)  # the kernel answers ENOSPC
    return {"summary": "not reached"}


def test_a_full_disk_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Context(config_path=REPO_ROOT / CONFIG_NAME, reporter=SilentReporter())
    args = argparse.Namespace(json=True)
    assert run_command(_fills_the_disk, args, ctx) == 1
    out, err = capsys.readouterr()
    state, public = REPO_ROOT / ".repotool", REPO_ROOT / "public"
    assert err == (
        f"repotool: error: {state} or {public}: no space left on the disk: "
        "No space left on device\n"
        f"  hint: free space on the disk holding {state} and {public} "
        f"(e.g. delete {state}/build-cache and {state}/media-cache: they are made again "
        "when needed), then run the command again\n"
    )
    data = json.loads(out)
    assert data["ok"] is False and data["what"].startswith("no space left on the disk")


def test_other_os_errors_are_not_dressed_up() -> None:
    def broken(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
        raise IsADirectoryError(21, "Is a directory", "/tmp")

    ctx = Context(config_path=REPO_ROOT / CONFIG_NAME, reporter=SilentReporter())
    with pytest.raises(IsADirectoryError):
        run_command(broken, argparse.Namespace(json=False), ctx)


@contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """A real 1 MB file system (tmpfs) mounted over ``folder`` (its files copied in),
    unmounted when the block ends."""
    saved = folder.with_name(folder.name + ".saved")
    shutil.copytree(folder, saved)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_while_making_the_live_media_names_the_file(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    try:
        released = run_repotool(project, "release", "--no-media", "--quiet")
        assert released.returncode == 0, released.stderr
        # the images are staged on the file system of their final place
        with small_disk(project / "public" / "releases") as releases:
            before = sorted(p.name for p in releases.iterdir())
            done = run_repotool(project, "media", "build", "--quiet")
            assert done.returncode == 8, done.stderr
            assert "Traceback" not in done.stderr
            assert re.search(
                rf"repotool: error: {re.escape(str(releases))}/\S+\.iso: cannot write the live "
                r"media: No space left on device\n  hint: free space there and under "
                rf"{re.escape(str(project / '.repotool'))} \(the live root and the images need "
                r"about a gigabyte\), then run again; nothing was published\n",
                done.stderr,
            ), done.stderr
            # the half-written stage is gone
            assert sorted(p.name for p in releases.iterdir()) == before
    finally:
        home = project / ".repotool" / "gnupg"
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
