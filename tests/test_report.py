"""Progress on a terminal: drawn by the thread that advances it, so that a step's
work (the publish's read pass forks its workers only when no other thread runs)
goes as fast on a terminal as in a script."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from repotool.report import ConsoleReporter


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_on_a_terminal_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    reporter = ConsoleReporter()
    before = set(threading.enumerate())
    with reporter.step("Planning repositories", 2) as step:
        assert set(threading.enumerate()) == before
        step.advance(note="el7")
        assert set(threading.enumerate()) == before
        drawn = terminal.getvalue()
        assert "Planning repositories" in drawn and "1/2" in drawn and "el7" in drawn
    assert "Planning repositories" in terminal.getvalue()
