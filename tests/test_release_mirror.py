"""A mirror of a real release is a faithful copy: hosts install from it with every check on."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DnfHost, Released, run_repotool


def test_mirror_of_the_release_serves_hosts_with_signatures_checked(
    released: Released, served_url: str, dnf_host: DnfHost, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror" / "el7"
    key = released.public / "keys/RPM-GPG-KEY-perfsonar"
    url = f"{served_url}/repo/el7/x86_64/"
    done = run_repotool(
        released.project, "mirror", "sync", url, str(dest), "--key", str(key), "--json", "--quiet"
    )
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    again = run_repotool(
        released.project, "mirror", "sync", url, str(dest), "--key", str(key), "--json", "--quiet"
    )
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["requests"] == 1 and second["revision"] == first["revision"]
    dnf_host.add_repo_file(
        "[mirror]\nname=toolkit mirror\n"
        f"baseurl={dest.resolve().as_uri()}/\n"
        f"gpgcheck=1\nrepo_gpgcheck=1\ngpgkey={key.resolve().as_uri()}\n"
    )
    dnf_host.dnf("install", "perfsonar-toolkit", check=True)
    assert "perfsonar-toolkit-3.3.2-1.el7" in dnf_host.installed()
    assert (dnf_host.root / "etc/perfsonar-toolkit-release").is_file()
