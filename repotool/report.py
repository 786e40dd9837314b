"""How commands talk to the person watching: progress and notices on stderr.

Commands return a JSON-able result; the CLI prints it (as JSON with --json).
Progress and notices always go to stderr so stdout stays parseable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # rich is imported when something is first printed: a no-op stays fast
    from rich.console import Console
    from rich.progress import Progress


class Step(Protocol):
    def advance(self, n: int = 1, *, note: str = "") -> None: ...


class Reporter(Protocol):
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def step(self, title: str, total: int | None) -> AbstractContextManager[Step]: ...


class _RichStep:
    def __init__(self, progress: Progress | None = None, task: int | None = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1, *, note: str = "") -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)  # type: ignore[arg-type]
            if note:
                self._progress.update(self._task, note=note)  # type: ignore[arg-type]
            self._progress.refresh()


class ConsoleReporter:
    """Progress bars when stderr is a terminal, plain lines otherwise."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False)

    def warn(self, message: str) -> None:
        self.console.print(f"WARNING: {message}", style="bold yellow", markup=False)

    @contextmanager
    def step(self, title: str, total: int | None) -> Iterator[_RichStep]:
        if self.quiet or not sys.stderr.isatty():
            if not self.quiet:
                self.console.print(f"{title}" + (f" ({total})" if total else ""), markup=False)
            yield _RichStep()
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=self.console,
            transient=False,
            # drawn on each advance, by this thread: rich's refresh thread would make
            # the publish's read pass run in one process (it forks only a process
            # with no other thread), 2x slower on a terminal than in a script
            auto_refresh=False,
        ) as progress:
            task = progress.add_task(title, total=total, note="")
            yield _RichStep(progress, task)


class SilentReporter:
    """For tests and library use: records messages instead of printing."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warn(self, message: str) -> None:
        self.messages.append("WARNING: " + message)

    @contextmanager
    def step(self, title: str, total: int | None) -> Iterator[_RichStep]:
        self.messages.append(title)
        yield _RichStep()
