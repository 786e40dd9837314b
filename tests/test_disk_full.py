"""A full disk that no stage named is still one clear error, never a traceback:
the command line says what filled up and what can be deleted."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from repotool.cli import Context, run_command
from repotool.config import CONFIG_NAME
from repotool.report import SilentReporter

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
