"""The mirror network: check (status.json), list (mirrorlist/metalink) and what
Debian's dnf does with the generated metalink."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest

from repotool.cli import main
from repotool.process import stop_gpg_agents_in
from tests.mirror.mirror_fixtures import FaultServer, Repos, serve


def _tree(src: Path, dest: Path) -> Path:
    """A copy of public/ with one repository (repo/el7/x86_64/) from ``src``."""
    repo = dest / "repo" / "el7" / "x86_64"
    shutil.copytree(src, repo)
    return dest


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def network(mirror_repos: Repos, tmp_path: Path) -> Iterator[dict[str, object]]:
    """A project whose master is gen2 and five mirrors: two fresh, one stale,
    one down, one with a bad signature."""
    public = _tree(mirror_repos.gen2, tmp_path / "project" / "public")
    (public / "keys").mkdir()
    shutil.copy(mirror_repos.key, public / "keys" / "RPM-GPG-KEY-perfsonar")
    with ExitStack() as stack:
        servers: dict[str, FaultServer] = {}
        for name, gen in (
            ("fresh-1", mirror_repos.gen2),
            ("fresh-2", mirror_repos.gen2),
            ("stale", mirror_repos.gen1),
            ("forged", mirror_repos.gen2),
        ):
            root = _tree(gen, tmp_path / name)
            servers[name] = stack.enter_context(_serving(root))
        servers["forged"].state.faults["repomd.xml.asc"] = "badsig"
        urls = {n: s.url for n, s in servers.items()}
        urls["down"] = f"http://127.0.0.1:{_dead_port()}/"
        mirrors = "".join(
            f'[[mirror]]\nname = "{n}"\nurl = "{u}"\nregion = "DE"\ncontact = "{n}@localhost"\n\n'
            for n, u in urls.items()
        )
        project = tmp_path / "project"
        (project / "mirrors.toml").write_text(mirrors)
        (project / "repotool.toml").write_text(
            f'[publish]\nbase_url = "http://127.0.0.1:{_dead_port()}"\n\n'
            '[mirror]\nmirrors_file = "mirrors.toml"\ntimeout_seconds = 3.0\n'
        )
        yield {"project": project, "servers": servers, "urls": urls}


def _serving(root: Path) -> AbstractContextManager[FaultServer]:
    from contextlib import contextmanager

    return contextmanager(serve)(root)


def test_check_classifies_mirrors_and_list_steers_dnf_to_a_fresh_one(
    network: dict[str, object],
    mirror_repos: Repos,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = network["project"]
    assert isinstance(project, Path)
    servers = network["servers"]
    assert isinstance(servers, dict)
    urls = network["urls"]
    assert isinstance(urls, dict)
    config = str(project / "repotool.toml")

    assert main(["mirror", "check", "--config", config, "-q"]) == 0
    assert "5 mirror(s): 1 bad-signature, 1 down, 2 fresh, 1 stale" in capsys.readouterr().out
    status = json.loads((project / "public" / "mirrors" / "status.json").read_text())
    by_name = {m["name"]: m for m in status["mirrors"]}
    assert {n: m["status"] for n, m in by_name.items()} == {
        "fresh-1": "fresh",
        "fresh-2": "fresh",
        "stale": "stale",
        "forged": "bad-signature",
        "down": "down",
    }
    stale = by_name["stale"]["repos"]["el7/x86_64"]
    assert 3500 <= stale["behind_seconds"] <= 3600 and "59 min behind the master" in stale["detail"]
    assert "cannot connect" in by_name["down"]["repos"]["el7/x86_64"]["detail"]
    assert "bad signature" in by_name["forged"]["repos"]["el7/x86_64"]["detail"]

    assert main(["mirror", "list", "--config", config, "-q"]) == 0
    out_dir = project / "public" / "mirrors" / "el7" / "x86_64"
    mirrorlist = (out_dir / "mirrorlist").read_text().splitlines()
    assert mirrorlist[:2] == [
        f"{urls['fresh-1']}repo/el7/x86_64/",
        f"{urls['fresh-2']}repo/el7/x86_64/",
    ]
    assert len(mirrorlist) == 3 and mirrorlist[2].endswith("/repo/el7/x86_64/")
    metalink = (out_dir / "metalink.xml").read_text()
    for absent in ("stale", "down", "forged"):
        assert urls[absent] not in metalink

    # fresh-1 goes stale after the check: dnf must notice (hash mismatch) and use fresh-2
    servers["fresh-1"].state.root = tmp_path / "stale"
    for s in servers.values():
        s.state.log.clear()
    root = tmp_path / "installroot"
    reposd = tmp_path / "repos.d"
    reposd.mkdir()
    (reposd / "perfsonar.repo").write_text(
        "[perfsonar]\nname=perfsonar\n"
        f"metalink=file://{out_dir / 'metalink.xml'}\n"
        "gpgcheck=1\nrepo_gpgcheck=1\n"
        f"gpgkey=file://{project / 'public' / 'keys' / 'RPM-GPG-KEY-perfsonar'}\n"
    )
    dnf_tmp = tmp_path / "dnf-tmp"
    dnf_tmp.mkdir()
    done = subprocess.run(
        [
            "dnf",
            "-y",
            "-q",
            f"--installroot={root}",
            f"--setopt=reposdir={reposd}",
            f"--setopt=cachedir={tmp_path / 'dnf-cache'}",
            "--releasever=7",
            "--setopt=install_weak_deps=False",
            "--disablerepo=*",
            "--enablerepo=perfsonar",
            "install",
            "mt-delta",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TMPDIR": str(dnf_tmp)},  # dnf's throwaway GnuPG homes
    )
    stop_gpg_agents_in(dnf_tmp)  # their agents outlive them
    assert done.returncode == 0, done.stderr + done.stdout
    installed = subprocess.run(
        ["rpm", "--root", str(root), "-q", "mt-delta"], capture_output=True, text=True
    )
    assert installed.stdout.strip() == "mt-delta-1.0-1.noarch"
    rpm = "Packages/mt-delta-1.0-1.noarch.rpm"
    assert [r.status for r in servers["fresh-2"].state.requests_for(rpm)] == [200]
    # dnf tried the now-stale mirror first (highest preference), rejected its repomd.xml
    # (it does not match the metalink) and took the metadata from fresh-2 (mt-delta exists
    # only in the current generation).  librepo still asks the stale mirror for files, but
    # it has none of the current ones: everything dnf used came from fresh-2.
    stale_log = servers["fresh-1"].state.log
    assert {r.status for r in stale_log if r.path.endswith("repomd.xml")} == {200}
    assert all(r.status == 404 for r in stale_log if "/repomd.xml" not in r.path)
    assert {r.status for r in servers["fresh-2"].state.requests_for("primary.xml.gz")} == {200}
    assert servers["stale"].state.log == [] and servers["forged"].state.log == []
