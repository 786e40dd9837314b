"""What a host admin gets on the release night besides the page (issue 13, items 9-10):
a .repo whose metadata expires in hours, ``yum clean expire-cache`` in the mail,
``dnf updateinfo info`` as plain text, and one size unit in mail and site."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from repotool.announce.plaintext import format_size
from repotool.announce.render import Links, parse_media_list, render_advisory, render_release
from repotool.config import load_config
from repotool.records.loading import load_records
from repotool.repo.publish import render_repo_file
from tests.conftest import DnfHost
from tests.site.site_support import MEDIA_LABEL, InProcessClient, SiteProject

CONTENT = Path(__file__).resolve().parents[2] / "web" / "content"
LINKS = Links(
    site_url="https://www.example.org",
    download_url="https://downloads.example.org/toolkit",
    key_name="RPM-GPG-KEY-perfsonar",
    list_name="perfsonar-announce",
    product="pS-Performance Toolkit",
)
SYSTEM_PYTHON = "/usr/bin/python3"


def _dnf_reads(repo_text: str, tmp_path: Path) -> str:
    """metadata_expire of the repository as dnf's own configuration parser reads it."""
    reposdir = tmp_path / "repos.d"
    reposdir.mkdir()
    (reposdir / "perfsonar.repo").write_text(repo_text, encoding="utf-8")
    done = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import dnf, sys\n"
            "b = dnf.Base()\n"
            "b.conf.reposdir = [sys.argv[1]]\n"
            "b.conf.substitutions['releasever'] = '7'\n"
            "b.read_all_repos()\n"
            "print(b.repos['perfsonar'].metadata_expire)\n",
            str(reposdir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_repo_file_lets_hosts_see_new_errata_within_hours(tmp_path: Path) -> None:
    (tmp_path / "repotool.toml").write_text(
        '[publish]\nbase_url = "http://mirror.example.test"\n'
        '[[targets]]\nname = "el7"\nreleasever = "7"\ndist = ".el7"\n',
        encoding="utf-8",
    )
    text = render_repo_file(load_config(tmp_path / "repotool.toml"), gpgkey="file:///k")
    assert "\nmetadata_expire=6h\n" in text
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dnf"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the system python3 has no dnf module")
    # dnf's default is 48 hours (172800 s): a new advisory stayed invisible for two days
    assert _dnf_reads(text, tmp_path) == "21600"


def test_advisory_mail_says_yum_clean_expire_cache_before_the_steps() -> None:
    records = load_records(CONTENT)
    adv = records.advisory("PSSA-2014-0002")
    assert adv is not None
    text = render_advisory(adv, LINKS, "0" * 40).text
    todo = text.split("What to do\n----------\n", 1)[1].split("Fixed packages\n", 1)[0]
    lines = [ln.strip() for ln in todo.splitlines()]
    assert lines[:4] == ["", "First make yum see the new errata:", "", "yum clean expire-cache"]
    assert (
        todo.index("yum clean expire-cache")
        < todo.index("yum update")
        < todo.index("/usr/sbin/perfsonar-regenerate-host-cert")
    )
    ntp = records.advisory("PSSA-2014-0001")
    assert ntp is not None
    default = ntp.model_copy(update={"update_command": ""})
    mail = render_advisory(default, LINKS, "0" * 40).text
    assert (
        "First make yum see the new errata, then install the fix:\n\n"
        "    yum clean expire-cache\n    yum update --advisory PSSA-2014-0001\n"
    ) in mail


def test_dnf_updateinfo_info_is_plain_text_with_the_refresh(host: DnfHost) -> None:
    text = host.dnf("-q", "updateinfo", "info", "PSSA-2014-0002", check=True).stdout
    assert "```" not in text
    assert "yum clean expire-cache" in text
    # dnf prefixes each line with ": "; the command is indented on a line of its own
    assert re.search(r"^\s*:\s{5,}/usr/sbin/perfsonar-regenerate-host-cert$", text, re.M), text
    assert "CVSS v3 base score: 7.5 (High), CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" in text


def test_sizes_read_the_same_in_mail_and_on_the_site(
    site: InProcessClient, site_project: SiteProject
) -> None:
    assert [format_size(n) for n in (999, 37_000, 19_900_000, 1_073_741_824)] == [
        "999 bytes",
        "37.0 kB",
        "19.9 MB",
        "1.1 GB",
    ]
    data = (site_project.public / "releases" / MEDIA_LABEL / "media.json").read_bytes()
    media = parse_media_list(data, where="media.json", version=MEDIA_LABEL)
    size = media.images[0].size
    mail = render_release(load_records(CONTENT), MEDIA_LABEL, media, LINKS, "0" * 40).text
    page = site.get("/releases/3.3.2/").text
    assert f"(livecd, {format_size(size)})" in mail
    assert f"{format_size(size)}<br><small>{size:,} bytes</small>" in page
    assert "KiB" not in page and "MiB" not in page


def test_updateinfo_plain_text_needs_no_markdown_reader() -> None:
    """The description keeps the structure a terminal can show: headings underlined,
    commands indented, no fences."""
    from repotool.records.updateinfo import updateinfo_description

    adv = load_records(CONTENT).advisory("PSSA-2014-0001")
    assert adv is not None
    text = updateinfo_description(adv)
    assert "```" not in text
    assert "Remediation\n-----------\n" in text
    assert "\n    restrict default kod nomodify notrap nopeer noquery\n" in text
