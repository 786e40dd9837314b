"""The session's gpg-agent clean-up: the tests' own agents are found and stopped,
everybody else's are left alone, and one that will not stop is reported."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.conftest import gpg_agents_under, stop_gpg_agents_under


def _start_agent(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True)
    subprocess.run(
        ["gpg-connect-agent", "--homedir", str(home), "/bye"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_the_tests_agents_are_stopped_and_others_left_running(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine" / "gnupg", tmp_path / "other" / "gnupg"
    _start_agent(mine)
    _start_agent(other)
    try:
        assert set(gpg_agents_under(tmp_path / "mine").values()) == {mine}
        assert stop_gpg_agents_under(tmp_path / "mine") == {}
        assert gpg_agents_under(tmp_path / "mine") == {}
        # an agent of a home elsewhere is neither counted nor touched
        assert set(gpg_agents_under(tmp_path / "other").values()) == {other}
    finally:
        assert stop_gpg_agents_under(tmp_path) == {}
    assert gpg_agents_under(tmp_path) == {}


def test_an_agent_that_ignores_gpgconf_is_reported_and_terminated(tmp_path: Path) -> None:
    """A process that looks like an agent of a test's home but has no socket to be
    told to stop on: the clean-up names it (so the run fails) and still ends it."""
    home = tmp_path / "deaf"
    home.mkdir()
    proc = subprocess.Popen(
        ["bash", "-c", "exec -a gpg-agent sleep 60"],
        env={**os.environ, "GNUPGHOME": str(home)},
    )
    try:
        deadline = time.monotonic() + 10
        while not gpg_agents_under(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gpg_agents_under(tmp_path) == {proc.pid: home}
        assert stop_gpg_agents_under(tmp_path, wait=0.5) == {proc.pid: home}
        assert proc.wait(timeout=10) == -15  # SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
