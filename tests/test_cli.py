"""The command line as people and scripts use it: --help examples that work, --json,
production keys."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from repotool.cli import build_parser
from tests.conftest import (
    REPOTOOL,
    Released,
    make_gpg_key,
    make_project,
    run_repotool,
    use_production_key,
)


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command tree with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _examples(help_text: str) -> list[str]:
    """The command lines under "examples:", without their trailing comments."""
    if "examples:\n" not in help_text:
        return []
    block = re.sub(r"\s*\\\n\s*", " ", help_text.split("examples:\n", 1)[1])  # continued lines
    found = []
    for line in block.splitlines():
        if not line.strip().startswith("repotool"):
            break  # the block ends at a blank line or at prose
        found.append(re.split(r"\s+#|\s\|\s|\s{3,}", line.strip())[0])
    return found


def test_top_level_help_lists_every_command() -> None:
    done = subprocess.run([*REPOTOOL, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    commands = [path[0] for path, _ in _parsers(build_parser()) if len(path) == 1]
    assert len(commands) >= 10
    for name in commands:
        assert f"    {name}" in done.stdout, name
    assert "--json" in done.stdout and "Exit status" in done.stdout


def test_every_example_in_help_is_a_command_line_that_runs_that_command() -> None:
    """What people copy from --help works: each example parses, reaches the command
    whose help shows it, and names a command that does something (not only help)."""
    parser = build_parser()
    seen = 0
    for path, sub in _parsers(parser):
        for example in _examples(sub.format_help()):
            argv = shlex.split(example)
            assert argv[0] == "repotool", (path, example)
            try:
                args = parser.parse_args(argv[1:])
            except SystemExit as e:  # argparse refused it
                pytest.fail(f"`{example}` from `repotool {' '.join(path)} --help`: exit {e}")
            words = (args.command, getattr(args, f"{args.command}_command", None))
            assert tuple(w for w in words if w)[: len(path)] == path, (path, example)
            assert getattr(args, "handler", None) is not None, example
            seen += 1
    assert seen >= 15  # release, build, sign, publish and announce teach by example


def test_an_example_with_a_wrong_option_would_be_caught() -> None:
    """The check above is not vacuous: argparse refuses what a stale example would say."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["build", "--jobz", "1"])
    help_text = (
        "usage\n\nexamples:\n  repotool build --jobs 1   # one at a time\n"
        "  repotool build \\\n      --jobs 2\n\nexit 0 ok\n"
    )
    assert _examples(help_text) == ["repotool build --jobs 1", "repotool build --jobs 2"]


def test_json_error_is_machine_readable(released: Released, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", base_url=released.url, share_key_from=released.project)
    done = run_repotool(project, "build", "nosuch", "--json")
    assert done.returncode == 4
    data = json.loads(done.stdout)
    assert data["ok"] is False and data["error"] == "UnknownComponentError"
    assert data["what"] == "unknown component 'nosuch'"
    assert "perfsonar-toolkit" in data["hint"]


def test_production_key_with_passphrase_file_signs_a_release(
    released: Released, tmp_path: Path
) -> None:
    """A passphrase-protected release key: the passphrase comes from a file, never argv."""
    home = tmp_path / "gnupg"
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    fpr = make_gpg_key(
        home, "Release Team <release@example.invalid>", algo="rsa3072", passphrase_file=secret
    )
    # the agent must not have the passphrase cached from key generation
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=True)
    # the session's builds, signed afresh with the production key
    project = make_project(
        tmp_path / "p", base_url=released.url, share_builds_from=released.project
    )
    use_production_key(project, fpr, home, secret)
    done = run_repotool(project, "release", "--no-media", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "DEVELOPMENT" not in done.stderr
    published = (project / "public/keys/RPM-GPG-KEY-perfsonar").read_text()
    shown = subprocess.run(
        ["gpg", "--show-keys", "--with-colons"],
        input=published,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert fpr in shown
    rpms = sorted((project / "public/repo/el7/x86_64/Packages").glob("*.rpm"))
    check = run_repotool(project, "sign", "--check", *map(str, rpms), "--json", "--quiet")
    assert check.returncode == 0, check.stderr
    assert all(r["ok"] for r in json.loads(check.stdout)["files"])
    # the private key never enters the published tree
    home_files = {f.name for f in home.rglob("*") if f.is_file()}
    for path in (project / "public").rglob("*"):
        if path.is_file() and path.stat().st_size < 1_000_000:
            data = path.read_bytes()
            assert b"PRIVATE KEY" not in data and b"private-key" not in data, path
            assert path.name not in home_files or path.name.endswith(".rpm"), path
    # a wrong passphrase is a clear signing error, and nothing new is published
    secret.write_text("wrong\n")
    spec = project / "specs/perfsonar-toolkit-sysctl/perfsonar-toolkit-sysctl.spec"
    spec.write_text(
        spec.read_text().replace("Release:        1%{?dist}", "Release:        9%{?dist}")
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=True)
    bad = run_repotool(project, "release", "--no-media")
    assert bad.returncode == 5, bad.stderr
    assert not list((project / "public/repo/el7/x86_64/Packages").glob("*-3.3.2-9.*"))
