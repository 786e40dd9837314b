"""The advisory page as a host admin reads it on the release night (issue 13, items 8-10).

The update box gives the record's own command and every remediation step in
order; the page carries what an RHSA or Bodhi page has: vulnerable and fixed
versions, the RPM with its SHA-256 from the repository metadata, the
``updateinfo info`` command, CVSS when the record sets it, the signed
announcement and the revision history.  The new record fields are checked with
errors that name the file, the line and the fix.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from repotool.errors import RecordInvalidError
from repotool.records.parsing import parse_advisory
from repotool.site.contexts import yum_update_command
from tests.conftest import build_rpms, createrepo
from tests.site.site_support import (
    REPO_ROOT,
    SECURITY_SPEC,
    InProcessClient,
    export_site,
    make_site_project,
)

CONTENT = REPO_ROOT / "web" / "content"


_BLOCKS = frozenset({"p", "li", "td", "th", "tr", "dt", "dd", "pre", "h2", "h3", "div", "ol", "ul"})


class _Text(HTMLParser):
    """The visible text of one element (by id) and the links inside it."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self.depth:
            self.depth += 1
            if tag in _BLOCKS:
                self.parts.append(" ")
            if tag == "a" and a.get("href"):
                self.links.append(str(a["href"]))
        elif a.get("id") == self.element_id or a.get("aria-labelledby") == self.element_id:
            self.depth = 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <br>, <meta>: no depth change

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def section(html: str, labelled_by: str) -> tuple[str, list[str]]:
    """Text and links of the section labelled by a heading id."""
    p = _Text(labelled_by)
    p.feed(html.replace("<br>", " "))
    p.close()
    return " ".join("".join(p.parts).split()), p.links


@pytest.fixture(scope="module")
def with_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[InProcessClient, Path]:
    """A site whose el7 repository holds the fixed perfsonar-toolkit-security RPM."""
    from repotool.site.app import create_app

    base = tmp_path_factory.mktemp("site-pkg")
    project = make_site_project(base)
    rpm = build_rpms({"perfsonar-toolkit-security": SECURITY_SPEC}, base / "rpmbuild")[0]
    arch_dir = project.public / "repo" / "el7" / "x86_64"
    shutil.copy2(rpm, arch_dir / "Packages" / rpm.name)
    (arch_dir / "repodata").unlink()
    shutil.rmtree(arch_dir / ".repodata-1")
    createrepo(arch_dir)
    export_site(project)
    return InProcessClient(create_app(project.cfg)), arch_dir / "Packages" / rpm.name


def test_heartbleed_update_box_gives_the_records_command_and_every_step_in_order(
    site: InProcessClient,
) -> None:
    html = site.get("/advisories/PSSA-2014-0002/").text
    box, _ = section(html, "update-h")
    # the record says `yum update` (OpenSSL comes from CentOS), not the toolkit package alone
    assert "yum update perfsonar-toolkit-security" not in html
    steps = [
        "yum clean expire-cache",
        "yum update",
        "/usr/sbin/perfsonar-regenerate-host-cert",
        "service httpd restart",
        "htpasswd",
        "booted from the new image",
    ]
    where = [box.find(s) for s in steps]
    assert -1 not in where, f"the update box lacks a step: {list(zip(steps, where, strict=True))}"
    assert where == sorted(where), f"the steps are out of order: {where}"
    assert "yum updateinfo info PSSA-2014-0002" in box


def test_update_command_defaults_to_the_advisory(tmp_path: Path) -> None:
    text = (CONTENT / "advisories" / "PSSA-2014-0001.md").read_text(encoding="utf-8")
    without = text.replace("update_command: yum update perfsonar-toolkit-ntp\n", "")
    assert without != text
    adv = parse_advisory(without, "PSSA-2014-0001.md")
    assert yum_update_command(adv) == "yum update --advisory PSSA-2014-0001"
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    (content / "advisories" / "PSSA-2014-0001.md").write_text(without, encoding="utf-8")
    project = make_site_project(tmp_path / "p", content=content)
    export_site(project)
    from repotool.site.app import create_app

    box, _ = section(
        InProcessClient(create_app(project.cfg)).get("/advisories/PSSA-2014-0001/").text,
        "update-h",
    )
    # the Remediation's own `yum update perfsonar-toolkit-ntp` does not match the default,
    # so the box gives the refresh and the default command before the steps
    assert box.index("yum clean expire-cache") < box.index("yum update --advisory PSSA-2014-0001")
    assert box.index("yum update --advisory PSSA-2014-0001") < box.index("service ntpd restart")


def test_cvss_shown_when_set_and_only_then(site: InProcessClient) -> None:
    heartbleed = site.get("/advisories/PSSA-2014-0002/").text
    assert re.search(r"<dt>CVSS v3</dt><dd><strong>7.5</strong> \(High\)", heartbleed)
    assert "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" in heartbleed
    assert "CVSS" not in site.get("/advisories/PSSA-2014-0001/").text


def test_revision_history_and_signed_announcement(site: InProcessClient) -> None:
    html = site.get("/advisories/PSSA-2014-0002/").text
    history, _ = section(html, "rev-h")
    assert history.startswith("Revision history 2014-04-09: Initial release.")
    assert "2014-04-10: The live media are regenerated as 3.3.2-2" in history
    # a record without revisions shows issued (and updated) on its own
    ntp, _ = section(site.get("/advisories/PSSA-2014-0001/").text, "rev-h")
    assert ntp == "Revision history 2014-01-28: Initial release."
    assert (
        '<a href="/lists/perfsonar-announce/PSSA-2014-0002/">signed message</a> to the list, '
        '<time class="when" datetime="2014-04-10T12:00:00+00:00">2014-04-10 12:00 UTC</time>'
    ) in html
    assert 'href="/lists/perfsonar-announce/PSSA-2014-0002.eml" type="message/rfc822"' in html
    assert "not sent to the list yet" in site.get("/advisories/PSSA-2014-0001/").text


def test_vulnerable_versions_rpm_links_and_checksums(
    with_package: tuple[InProcessClient, Path],
) -> None:
    client, rpm = with_package
    html = client.get("/advisories/PSSA-2014-0002/").text
    table, links = section(html, "pkg-h")
    sha = hashlib.sha256(rpm.read_bytes()).hexdigest()
    assert "el7 perfsonar-toolkit-security < 3.3.2-2.el7 3.3.2-2.el7.noarch" in table
    assert f"/repo/el7/x86_64/Packages/{rpm.name}" in links
    assert sha in table
    # the RPM link answers with the very bytes whose SHA-256 the page shows
    got = client.get(f"/repo/el7/x86_64/Packages/{rpm.name}")
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha
    # el6 has no repository in this configuration: said, not left blank
    assert "el6 perfsonar-toolkit-security < 3.3.2-2.el6 3.3.2-2.el6.noarch not in the" in table


@pytest.mark.parametrize(
    ("field", "value", "what", "fix"),
    [
        (
            "cvss",
            "\n  score: 7.5\n  vector: AV:N/AC:L",
            "'AV:N/AC:L' is not a CVSS v3 base vector",
            "copy it from the NVD entry",
        ),
        ("cvss", "\n  score: 12\n  vector: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "10", ""),
        (
            "update_command",
            " yum update; rm -rf /",
            "the update command is not one yum or dnf command",
            "further steps go under ## Remediation",
        ),
        (
            "revisions",
            "\n  - date: 2014-03-01\n    note: too early",
            "is not between issued (2014-04-09) and updated (2014-04-10)",
            "list revisions oldest first",
        ),
    ],
)
def test_bad_new_fields_name_file_line_and_fix(field: str, value: str, what: str, fix: str) -> None:
    text = (CONTENT / "advisories" / "PSSA-2014-0002.md").read_text(encoding="utf-8")
    text = re.sub(r"\nupdate_command:.*?\n---\n", "\n---\n", text, flags=re.S)
    text = text.replace("\n---\n", f"\n{field}:{value}\n---\n", 1)
    line = text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith(field)))
    with pytest.raises(RecordInvalidError) as e:
        parse_advisory(text, "web/content/advisories/PSSA-2014-0002.md")
    problems = [p for p in e.value.problems if p.field.split(".")[0] == field]
    assert problems, e.value.problems
    p = problems[0]
    assert (p.file, p.line) == ("web/content/advisories/PSSA-2014-0002.md", line + 1)
    assert what in p.what
    assert fix in p.fix
