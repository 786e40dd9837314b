"""The command line as people and scripts use it: --help that teaches, --json, production keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    REPOTOOL,
    Released,
    make_gpg_key,
    make_project,
    run_repotool,
    use_production_key,
)

COMMANDS = {
    "release": ["--respin", "example"],
    "build": ["COMPONENT", "example"],
    "sign": ["rpmkeys", "example"],
    "publish": ["--add", "example"],
    "serve": ["--port", "example"],
    "advisory": ["check", "new", "list"],
    "media": ["build"],
    "site": ["build"],
    "announce": ["release", "advisory"],
    "mirror": ["sync", "check", "list"],
}


def test_top_level_help_lists_every_command() -> None:
    done = subprocess.run([*REPOTOOL, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"    {name}" in done.stdout, name
    assert "--json" in done.stdout and "Exit status" in done.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_teaches(command: str) -> None:
    done = subprocess.run([*REPOTOOL, command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for word in COMMANDS[command]:
        assert word in done.stdout, (command, word)


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
    fpr = make_gpg_key(home, "Release Team <release@example.invalid>", passphrase_file=secret)
    # the agent must not have the passphrase cached from key generation
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=True)
    project = make_project(tmp_path / "p", base_url=released.url)
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
