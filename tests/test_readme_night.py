"""README's "night of a security release", run as written on a copy of the release.

The section's command block is read from README.md; its placeholders get what a
maintainer would type (the id `repotool advisory new` prints, the next respin),
its `$EDITOR` lines become the edits a maintainer makes, and every other line
runs as it stands (`cp`, `repotool ...`).  A step the test does not know fails
it, so the README cannot drift away from what works.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.announce.announce_support import ListServer, smtp_server
from tests.conftest import REPO_ROOT, DnfHost, free_port, make_project, run_repotool

COMPONENT = "perfsonar-toolkit-security"
CVE = "CVE-2014-0224"


def night_steps(readme: str) -> list[str]:
    """The command lines of the section's ```sh block, comments cut off."""
    section = readme.split("## The night of a security release", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's night section has no ```sh block of commands"
    text = re.sub(r"\\\n\s*", " ", block.group(1))
    return [re.split(r"\s+#\s", ln.strip(), maxsplit=1)[0] for ln in text.splitlines() if ln]


def test_the_steps_are_read_with_their_placeholders() -> None:
    steps = night_steps((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert steps[0].startswith("cp specs/<component>/<component>.spec specs/<component>/archive/")
    assert "repotool release --respin <n>" in steps
    assert steps.index("repotool advisory check") < steps.index("repotool release --respin <n>")
    assert all("PSSA-2014" not in s and "--respin 2" not in s for s in steps)


def test_every_repotool_line_in_the_readme_parses() -> None:
    """The README's other command lines name commands and options that exist."""
    from repotool.cli import build_parser

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    lines, fenced = [], False
    for ln in re.sub(r"\\\n\s*", " ", readme).splitlines():
        fenced ^= ln.startswith("```")
        if (fenced or ln.startswith("    ")) and ln.strip().startswith("repotool "):
            lines.append(re.split(r"\s+#\s", ln.strip(), maxsplit=1)[0])
    assert len(lines) >= 6
    sample = {"<new-id>": "PSSA-2014-0003", "<n>": "3", "<version>": "3.3.2", "<CVE-id>": CVE}
    for line in lines:
        for key, value in sample.items():
            line = line.replace(key, value)
        try:
            args = build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit as e:
            pytest.fail(f"README: `{line}` is refused by repotool ({e})")
        assert getattr(args, "handler", None) is not None, line


def _bump_release(spec: Path, today: dt.date) -> None:
    """The fix: Release +1 and a changelog entry on top (the spec's sources stay)."""
    text = spec.read_text(encoding="utf-8")
    release = int(re.search(r"^Release:\s*(\d+)%\{\?dist\}", text, re.M).group(1))  # type: ignore[union-attr]
    version = re.search(r"^Version:\s*(\S+)", text, re.M).group(1)  # type: ignore[union-attr]
    text = re.sub(
        r"^(Release:\s*)\d+", lambda m: f"{m.group(1)}{release + 1}", text, count=1, flags=re.M
    )
    entry = (
        f"* {today:%a %b %d %Y} pS-Performance Toolkit release team "
        f"<release@perfsonar.invalid> - {version}-{release + 1}\n"
        f"- Security fix ({CVE})\n\n"
    )
    spec.write_text(text.replace("%changelog\n", "%changelog\n" + entry, 1), encoding="utf-8")


def _fill_advisory(path: Path, *, fixed: str, respin: str) -> None:
    """What the maintainer writes into the file `advisory new` made."""
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        '"FILL IN: what is wrong, in one line"',
        '"OpenSSL ChangeCipherSpec injection: update the host certificate helper"',
    )
    text = text.replace('summary: ""', "summary: Update, then make a new host key.")
    for target in ("el6", "el7"):
        text = re.sub(
            rf"^  {target}: \[\].*$",
            f"  {target}:\n    - name: {COMPONENT}\n      evr: {fixed}.{target}",
            text,
            flags=re.M,
        )
    text = re.sub(r'^fixed_in: "".*$', f'fixed_in: "{respin}"', text, flags=re.M)
    text = text.replace(
        "FILL IN: what the flaw is and which toolkit components it touches.",
        "OpenSSL accepted a ChangeCipherSpec message too early.",
    )
    text = text.replace(
        "FILL IN: what an attacker can do to a toolkit host, and under what conditions.",
        "An attacker in the middle could read and change the web interface's traffic.",
    )
    text = text.replace("FILL IN: the steps for every host, starting with:", "On every host:")
    assert "FILL IN" not in text
    path.write_text(text, encoding="utf-8")


def _add_respin(record: Path, *, respin: str, advisory: str, today: dt.date) -> None:
    text = record.read_text(encoding="utf-8")
    entry = (
        f"  - version: {respin}\n    date: {today.isoformat()}\n    advisories:\n"
        f"      - {advisory}\n    notes: >-\n      New live media with the fixed {COMPONENT}.\n"
    )
    head, sep, body = text[4:].partition("\n---\n")
    assert sep and "respins:\n" in head
    record.write_text("---\n" + head + "\n" + entry.rstrip("\n") + sep + body, encoding="utf-8")


def test_the_night_of_a_security_release_as_the_readme_says(
    release_copy: Path, dnf_host: DnfHost
) -> None:
    project = release_copy
    today = dt.date.today()
    port = free_port()
    with (project / "repotool.toml").open("a") as toml:
        toml.write(f'\n[announce]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n')
    repo = project / "public/repo/el7/x86_64"
    # a host that has the package as it is now
    dnf_host.add_local_repo(repo)
    dnf_host.dnf("install", COMPONENT, check=True)
    (before,) = dnf_host.installed()
    version = "3.3.2"
    assert before == f"{COMPONENT}-{version}-2.el7"

    # what the maintainer reads off the project before starting
    record = project / f"web/content/releases/{version}.md"
    listed = re.findall(rf"version: {re.escape(version)}-(\d+)", record.read_text())
    n = str(max(map(int, listed), default=1) + 1)
    spec = project / f"specs/{COMPONENT}/{COMPONENT}.spec"
    current = subprocess.run(
        ["rpmspec", "-q", "--qf", "%{VERSION}|%{RELEASE}\n", "--define", "dist %{nil}", str(spec)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    current_version, current_release = current.split("|")
    values = {
        "<component>": COMPONENT,
        "<current-version>": current_version,
        "<current-release>": current_release,
        "<version>": version,
        "<n>": n,
        "<CVE-id>": CVE,
    }
    fixed = f"{current_version}-{int(current_release) + 1}"
    respin = f"{version}-{n}"

    def substitute(step: str) -> str:
        for key, value in values.items():
            step = step.replace(key, value)
        left = re.findall(r"<[a-z-]+>", step)
        assert not left, f"README step `{step}`: no value for {left}"
        return step

    edits: dict[str, Callable[[Path], None]] = {
        f"specs/{COMPONENT}/{COMPONENT}.spec": lambda p: _bump_release(p, today),
        f"web/content/releases/{version}.md": lambda p: _add_respin(
            p, respin=respin, advisory=values["<new-id>"], today=today
        ),
    }
    steps = night_steps((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    with smtp_server(port, ListServer()) as server:
        for raw in steps:
            step = substitute(raw)
            argv = shlex.split(step)
            if argv[0] == "cp":
                subprocess.run(argv, cwd=project, check=True)
            elif argv[0] == "$EDITOR":
                (path,) = argv[1:]
                if path.startswith("web/content/advisories/"):
                    _fill_advisory(project / path, fixed=fixed, respin=respin)
                else:
                    assert path in edits, f"README step `{raw}`: the test knows no such edit"
                    edits[path](project / path)
            elif argv[0] == "repotool":
                done = run_repotool(project, *argv[1:], timeout=1500)
                assert done.returncode == 0, f"`{step}` failed:\n{done.stdout}\n{done.stderr}"
                outputs[raw] = done
                made = re.search(r"wrote \S*/(PSSA-\d{4}-\d{4,})\.md", done.stdout)
                if argv[1:3] == ["advisory", "new"]:
                    assert made, done.stdout
                    values["<new-id>"] = made.group(1)
            else:
                pytest.fail(f"README step `{raw}`: the test does not know how to run it")
        received = list(server.received)

    new_id = values["<new-id>"]
    # the old spec is kept: specs/ still builds every package an advisory names
    archived = (
        project / f"specs/{COMPONENT}/archive/{COMPONENT}-{current_version}-{current_release}.spec"
    )
    assert archived.is_file()
    assert "WARNING" not in outputs["repotool advisory check"].stderr
    # the release published the fix with its errata and made the respin's media
    published = {p.name for p in (repo / "Packages").glob(f"{COMPONENT}-*.rpm")}
    assert f"{COMPONENT}-{fixed}.el7.noarch.rpm" in published
    assert f"{COMPONENT}-{current_version}-{current_release}.el7.noarch.rpm" in published
    assert (project / f"public/releases/{respin}/media.json").is_file()
    # the host sees the advisory and takes exactly the fix
    listed_now = dnf_host.dnf("-q", "--refresh", "updateinfo", "list", "--security", check=True)
    assert re.search(
        rf"^{new_id}\s+Critical/Sec\.\s+{COMPONENT}-{fixed}\.el7\.noarch$",
        listed_now.stdout,
        re.M,
    ), listed_now.stdout
    dnf_host.dnf("upgrade", "--advisory", new_id, check=True)
    assert dnf_host.installed() == {f"{COMPONENT}-{fixed}.el7"}
    # the announcement was shown, then sent once and archived on the site
    shown = outputs["repotool announce advisory <new-id>"].stdout
    assert new_id in shown
    (message,) = received
    assert f"{new_id}".encode() in message[2]
    outbox = run_repotool(project, "announce", "outbox", "--json", "--quiet")
    assert outbox.returncode == 0, outbox.stderr
    assert new_id in outbox.stdout and '"sent"' in outbox.stdout
    archive = json.loads(
        next((project / "public/lists").glob("*/archive.json")).read_text(encoding="utf-8")
    )
    assert new_id in json.dumps(archive)


def test_forgetting_the_archive_step_is_warned_about(release_copy: Path, tmp_path: Path) -> None:
    """Without the archive copy, release would still pass (the old package sits in
    public/), but a fresh checkout could not publish what PSSA-2014-0002 names:
    advisory check says so, and what to do."""
    spec = release_copy / f"specs/{COMPONENT}/{COMPONENT}.spec"
    as_released = spec.read_text(encoding="utf-8")
    _bump_release(spec, dt.date(2014, 6, 5))
    done = run_repotool(release_copy, "advisory", "check", "--json")
    assert done.returncode == 0, done.stderr
    archived = f"specs/{COMPONENT}/archive/{COMPONENT}-3.3.2-2.spec"
    for target in ("el6", "el7"):
        assert (
            f"WARNING: {COMPONENT}-3.3.2-2.{target}.noarch ({target}), named by PSSA-2014-0002 "
            f"(web/content/advisories/PSSA-2014-0002.md:21) and held by the published {target} "
            f"repository, is built by no spec under specs/: a fresh checkout cannot publish "
            f"it; fix: specs/ builds {COMPONENT} 3.3.2-1.{target}, 3.3.2-3.{target} only; keep "
            f"the spec that built 3.3.2-2 as {archived} (e.g. from git history)"
        ) in done.stderr
    result = json.loads(done.stdout)
    assert len(result["not_rebuildable"]) == 2
    assert result["not_published_yet"] == []  # no advisory names 3.3.2-3 yet
    # a fresh checkout of the same files: the release would fail, and the warning
    # comes first with the fix that works
    fresh = make_project(tmp_path / "fresh", base_url="http://127.0.0.1:9")
    (fresh / f"specs/{COMPONENT}/{COMPONENT}.spec").write_text(spec.read_text())
    refused = run_repotool(fresh, "advisory", "check")
    assert refused.returncode == 7
    assert refused.stderr.index("WARNING") < refused.stderr.index("repotool: error:")
    assert f"keep the spec that built 3.3.2-2 as {archived}" in refused.stderr
    # and the error's own fix says the same, not "build the fix" of an older version
    assert (
        f"fix: keep the spec that built {COMPONENT} 3.3.2-2.el7 under specs/<component>/archive/ "
        "(specs/README.md, 'Bumping a component'), or correct evr if the fix is one of: "
        "3.3.2-1.el7, 3.3.2-3.el7"
    ) in refused.stderr
    # with the spec kept under archive/, nothing is warned about
    (release_copy / archived).write_text(as_released, encoding="utf-8")
    again = run_repotool(release_copy, "advisory", "check")
    assert again.returncode == 0, again.stderr
    assert "WARNING" not in again.stderr
