"""The command line as people and scripts use it: --help examples that work, --json,
production keys."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from repotool.cli import build_parser
from tests.announce.announce_support import ListServer, smtp_server
from tests.conftest import (
    REPO_ROOT,
    REPOTOOL,
    Released,
    build_rpms,
    free_port,
    make_gpg_key,
    make_project,
    run_repotool,
    start_server,
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


def _example_lines(help_text: str) -> list[str]:
    """The command lines under "examples:" (or "examples (when ...):") as a user
    copies them: continued lines joined, trailing comments cut off, pipes kept."""
    m = re.search(r"^examples[^\n]*:\n", help_text, re.M)
    if m is None:
        return []
    block = re.sub(r"\s*\\\n\s*", " ", help_text[m.end() :])  # continued lines
    found = []
    for line in block.splitlines():
        if not line.strip().startswith("repotool"):
            break  # the block ends at a blank line or at prose
        found.append(re.split(r"\s+#|\s{3,}", line.strip())[0])
    return found


def _examples(help_text: str) -> list[str]:
    """The command lines under "examples:", without their trailing comments or pipes."""
    return [re.split(r"\s\|\s", line)[0] for line in _example_lines(help_text)]


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


def test_every_command_and_subcommand_has_a_description_and_an_example() -> None:
    """--help of each command says what it does and shows how to run it, as text a
    terminal shows as written (no %-escapes, no line as wide as a paragraph)."""
    missing = []
    for path, sub in _parsers(build_parser()):
        if not path:
            continue  # the top level: its epilog lists every command
        text = sub.format_help()
        if not (sub.description or "").strip():
            missing.append(f"repotool {' '.join(path)}: no description")
        if not _examples(text):
            missing.append(f"repotool {' '.join(path)}: no example")
        if "%%" in text:
            missing.append(f"repotool {' '.join(path)}: a literal %%")
        wide = [ln for ln in text.splitlines() if len(ln) > 100]
        if wide:
            missing.append(f"repotool {' '.join(path)}: a line of {len(wide[0])} columns")
    assert missing == []


#: examples not run here, and why
NOT_RUN = {
    ("push",): "needs an S3 endpoint; tests/push/ runs push against a local SeaweedFS",
    ("key", "rotate"): "needs a second release key; tests/signing/test_key_rotation.py "
    "rotates on a real dnf host",
    ("key", "retire"): "needs a rotation past its switch date; "
    "tests/signing/test_key_rotation.py retires on a real dnf host",
    ("key", "compromised"): "needs a rotation with its release package published; "
    "tests/signing/test_key_compromise.py runs it on a real dnf host",
}


def _not_run(path: tuple[str, ...]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in NOT_RUN)


def _example_cases() -> list[tuple[tuple[str, ...], str]]:
    """(command path, example line) for every example, in --help order."""
    return [
        (path, line)
        for path, sub in _parsers(build_parser())
        if path
        for line in _example_lines(sub.format_help())
    ]


def _serve_example(line: str, cwd: Path, env: dict[str, str]) -> None:
    """`repotool serve ...` on a free loopback port: it must answer, then it is stopped."""
    argv = shlex.split(line.replace("0.0.0.0", "127.0.0.1"))
    port = free_port()
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    else:
        argv += ["--port", str(port)]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"`{line}` exited with {proc.returncode}"
            try:
                got = requests.get(f"http://127.0.0.1:{port}/repo/perfsonar.repo", timeout=5)
                if got.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"`{line}` did not answer within 60 s"
            time.sleep(0.2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_every_example_in_help_runs(release_copy: Path, tmp_path: Path) -> None:
    """Each example of each --help, run as a user would type it (through bash, pipes
    and globs included), in order, on a copy of the session's release.

    What the examples name that a copy does not have is made first, as a user would
    have it: extra/foo-1.0-1.el7.noarch.rpm, the pinned key RPM-GPG-KEY-perfsonar in
    the working folder, a list server (loopback SMTP) for --send.  Addresses are
    moved to loopback: https://master.example/ is the copy served by `repotool serve`,
    /srv, /tmp and /etc paths are under tmp_path, serve listens on a free port."""
    project = release_copy
    smtp_port = free_port()
    with (project / "repotool.toml").open("a") as toml:
        toml.write(f'\n[announce]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n')
    (project / "extra").mkdir()
    (rpm,) = build_rpms({"foo": FOO_SPEC}, tmp_path / "foo-build")
    shutil.copy2(rpm, project / "extra" / rpm.name)
    shutil.copy2(project / "public/keys/RPM-GPG-KEY-perfsonar", project)
    (tmp_path / "etc/nginx/conf.d").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    advisories = project / "web/content/advisories"
    server = start_server(project, free_port())
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        with smtp_server(smtp_port, ListServer()) as mail:
            for path, example in _example_cases():
                if _not_run(path):
                    continue
                line = re.sub(
                    r" /(srv|tmp|etc)/",
                    lambda m: f" {tmp_path}/{m.group(1)}/",
                    example.replace("https://master.example/", server.url + "/"),
                )
                if path == ("serve",):
                    _serve_example(line, project, env)
                    continue
                before = {p.name for p in advisories.iterdir()}
                done = subprocess.run(
                    ["bash", "-o", "pipefail", "-c", line],
                    cwd=project,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert done.returncode == 0, (
                    f"`{example}` from `repotool {' '.join(path)} --help` exited "
                    f"{done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                )
                outputs[example] = done
                # an unfinished advisory would stop the examples after it: as its
                # author would, write it or delete it; here it is deleted
                for new in {p.name for p in advisories.iterdir()} - before:
                    (advisories / new).unlink()
            sent = len(mail.received)
    finally:
        server.stop()
    # every command but those NOT_RUN names ran at least one example
    ran = {path for path, example in _example_cases() if example in outputs}
    assert {p for p, _ in _example_cases() if not _not_run(p) and p != ("serve",)} <= ran
    assert ("key",) in ran  # `repotool key status` on the copy
    assert sent >= 3  # advisories and a respin went to the list
    # what the examples made is there
    assert (project / "public/releases/3.3.2-2/media.json").is_file()
    assert (tmp_path / "srv/mirror/el7/repodata/repomd.xml").is_file()
    assert (tmp_path / "srv/mirror/perfsonar/releases/3.3.2-2/SHA256SUMS").is_file()
    assert (tmp_path / "tmp/site-preview/index.html").is_file()
    assert "server_name downloads.example.org;" in (
        tmp_path / "etc/nginx/conf.d/perfsonar.conf"
    ).read_text(encoding="utf-8")
    assert "foo-1.0-1.el7.noarch.rpm" in {
        p.name for p in (project / "public/repo/el7/x86_64/Packages").iterdir()
    }
    # site build says what it did once, not twice (stdout and stderr together)
    forced = outputs["repotool site build --force"]
    assert (forced.stdout + forced.stderr).count("site exported into") == 1, forced


FOO_SPEC = """\
Name: foo
Version: 1.0
Release: 1.el7
Summary: an extra package a maintainer signs and publishes by hand
License: ASL 2.0
BuildArch: noarch

%description
An extra package for the sign and publish --add examples.

%files

%changelog
* Sat Nov 28 2026 Test <test@example.invalid> - 1.0-1.el7
- first
"""


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
