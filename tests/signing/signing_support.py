"""Helpers shared by the signing tests and tests/repo/test_read_once.py."""

from __future__ import annotations

import os
from collections.abc import Sequence

from repotool.process import Completed, SubprocessRunner


class RecordingRunner(SubprocessRunner):
    """The real runner, noting which programs ran."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str | os.PathLike[str]], **kw: object) -> Completed:
        self.calls.append([os.fspath(a) for a in argv])
        return super().run(argv, **kw)  # type: ignore[arg-type]

    def checksig_runs(self) -> int:
        return sum(1 for c in self.calls if "--checksig" in c)
