"""Advisories against repository contents, updateinfo rendering, ids, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import createrepo_c as cr
import pytest

from repotool.cli import main
from repotool.errors import AdvisoryError, AdvisoryMismatchError, RecordInvalidError
from repotool.evr import NEVRA
from repotool.records.advisories import advisory_problems, check_advisories
from repotool.records.authoring import next_advisory_id, scaffold_advisory
from repotool.records.loading import load_advisories
from repotool.records.models import Advisory
from repotool.records.parsing import parse_advisory
from repotool.records.updateinfo import render_updateinfo

PROJECT = Path(__file__).resolve().parents[2]
CONTENT = PROJECT / "web" / "content"


def nevra(name: str, evr: str, target: str) -> NEVRA:
    version, release = evr.split("-")
    return NEVRA(name, 0, version, f"{release}.{target}", "noarch")


def repo_for(target: str, *, security_fix: bool = True) -> set[NEVRA]:
    pkgs = {
        nevra("perfsonar-toolkit-ntp", "3.3.1-1", target),
        nevra("perfsonar-toolkit-ntp", "3.3.2-1", target),
        nevra("perfsonar-toolkit-security", "3.3.2-1", target),
        nevra("perfsonar-toolkit-firewall", "3.3.2-1", target),
    }
    if security_fix:
        pkgs.add(nevra("perfsonar-toolkit-security", "3.3.2-2", target))
    return pkgs


@pytest.fixture(scope="module")
def shipped() -> list[Advisory]:
    return load_advisories(CONTENT)


def test_shipped_advisories_match_a_repository_with_the_fixes(shipped: list[Advisory]) -> None:
    check_advisories(shipped, {"el6": repo_for("el6"), "el7": repo_for("el7")})


def test_missing_fix_and_unknown_target_are_reported_together(shipped: list[Advisory]) -> None:
    with pytest.raises(AdvisoryMismatchError) as info:
        check_advisories(shipped, {"el7": repo_for("el7", security_fix=False)})
    got = [(p.file.rsplit("/", 1)[-1], p.line, p.field, p.what) for p in info.value.problems]
    assert got == [
        (
            "PSSA-2014-0001.md",
            20,
            "packages.el6",
            "'el6' is not a target of this configuration",
        ),
        (
            "PSSA-2014-0002.md",
            21,
            "packages.el6",
            "'el6' is not a target of this configuration",
        ),
        (
            "PSSA-2014-0002.md",
            21,
            "packages.el7.0",
            "perfsonar-toolkit-security-3.3.2-2.el7.noarch is not in the el7 repository "
            "(it holds perfsonar-toolkit-security 3.3.2-1.el7)",
        ),
    ]
    # a real target whose repository is not at hand is skipped, not an error
    problems = advisory_problems(shipped, {"el7": repo_for("el7")}, unchecked_targets=("el6",))
    assert problems == []


def test_epoch_and_arch_must_match_exactly(shipped: list[Advisory]) -> None:
    el7 = repo_for("el7")
    el7.discard(nevra("perfsonar-toolkit-ntp", "3.3.2-1", "el7"))
    el7.add(NEVRA("perfsonar-toolkit-ntp", 1, "3.3.2", "1.el7", "noarch"))
    el7.add(NEVRA("perfsonar-toolkit-ntp", 0, "3.3.2", "1.el7", "x86_64"))
    problems = advisory_problems(shipped, {"el6": repo_for("el6"), "el7": el7})
    assert [p.what for p in problems] == [
        "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch is not in the el7 repository "
        "(it holds perfsonar-toolkit-ntp 3.3.1-1.el7, 1:3.3.2-1.el7)"
    ]


def test_the_versions_a_repository_holds_are_listed_in_rpm_order(
    shipped: list[Advisory],
) -> None:
    el7 = repo_for("el7")
    el7.discard(nevra("perfsonar-toolkit-ntp", "3.3.2-1", "el7"))
    # rpm: a pre-release (~) is older than its release, 10 is newer than 9, and a
    # digit run is newer than a letter run
    el7.add(NEVRA("perfsonar-toolkit-ntp", 0, "3.3.2~rc1", "1.el7", "noarch"))
    el7.add(NEVRA("perfsonar-toolkit-ntp", 0, "3.3.10", "1.el7", "noarch"))
    el7.add(NEVRA("perfsonar-toolkit-ntp", 0, "3.3.9", "1.el7", "noarch"))
    el7.add(NEVRA("perfsonar-toolkit-ntp", 0, "3.3.a", "1.el7", "noarch"))
    problems = advisory_problems(shipped, {"el6": repo_for("el6"), "el7": el7})
    assert [p.what for p in problems] == [
        "perfsonar-toolkit-ntp-3.3.2-1.el7.noarch is not in the el7 repository "
        "(it holds perfsonar-toolkit-ntp 3.3.a-1.el7, 3.3.1-1.el7, 3.3.2~rc1-1.el7, "
        "3.3.9-1.el7, 3.3.10-1.el7)"
    ]


def _updates(xml: bytes, tmp_path: Path) -> dict[str, list[tuple[str, str | None]]]:
    path = tmp_path / "updateinfo.xml"
    path.write_bytes(xml)
    info = cr.UpdateInfo(str(path))
    return {
        u.id: [(p.filename, p.sum) for c in u.collections for p in c.packages] for u in info.updates
    }


def test_updateinfo_lists_only_the_targets_packages(
    shipped: list[Advisory], tmp_path: Path
) -> None:
    el6 = repo_for("el6", security_fix=False)
    digest = "ab" * 32
    sums = {nevra("perfsonar-toolkit-ntp", "3.3.2-1", "el6"): digest}
    xml = render_updateinfo(shipped, "el6", el6, sums=sums)
    assert _updates(xml, tmp_path) == {
        "PSSA-2014-0001": [("perfsonar-toolkit-ntp-3.3.2-1.el6.noarch.rpm", digest)],
    }
    xml = render_updateinfo(shipped, "el7", repo_for("el7"))
    assert _updates(xml, tmp_path) == {
        "PSSA-2014-0001": [("perfsonar-toolkit-ntp-3.3.2-1.el7.noarch.rpm", None)],
        "PSSA-2014-0002": [("perfsonar-toolkit-security-3.3.2-2.el7.noarch.rpm", None)],
    }


def test_updateinfo_record_fields(shipped: list[Advisory], tmp_path: Path) -> None:
    xml = render_updateinfo(
        shipped,
        "el7",
        repo_for("el7"),
        advisory_url=lambda a: f"http://127.0.0.1:8080/advisories/{a.id}.html",
    )
    path = tmp_path / "updateinfo.xml"
    path.write_bytes(xml)
    (hb,) = [u for u in cr.UpdateInfo(str(path)).updates if u.id == "PSSA-2014-0002"]
    assert (hb.type, hb.severity, hb.status) == ("security", "Critical", "final")
    assert hb.issued_date == dt.datetime(2014, 4, 9)
    assert hb.updated_date == dt.datetime(2014, 4, 10)
    assert hb.release == "pS-Performance Toolkit 3.3.2-2"
    refs = [(r.type, r.id, r.href) for r in hb.references]
    assert refs[0] == (
        "self",
        "PSSA-2014-0002",
        "http://127.0.0.1:8080/advisories/PSSA-2014-0002.html",
    )
    assert refs[1] == ("cve", "CVE-2014-0160", "https://nvd.nist.gov/vuln/detail/CVE-2014-0160")
    assert ("other", "", "https://www.openssl.org/news/secadv/20140407.txt") in refs
    assert "perfsonar-regenerate-host-cert" in hb.solution
    assert hb.description.startswith("Description\n-----------\n")
    # deterministic: the same records give the same bytes
    assert render_updateinfo(shipped, "el7", repo_for("el7")) == render_updateinfo(
        list(reversed(shipped)), "el7", repo_for("el7")
    )


def test_next_id_and_scaffold() -> None:
    assert next_advisory_id(["PSSA-2014-0001", "PSSA-2014-0002"], 2014) == "PSSA-2014-0003"
    assert next_advisory_id(["PSSA-2014-0002", "notes"], 2015) == "PSSA-2015-0001"
    text = scaffold_advisory(
        "PSSA-2015-0001",
        today=dt.date(2015, 1, 2),
        targets=["el6", "el7"],
        title='ntpd "again"',
        cves=["CVE-2014-9293"],
    )
    # the scaffold is valid YAML but can not pass the check until every part is written
    with pytest.raises(RecordInvalidError) as info:
        parse_advisory(text, "advisories/PSSA-2015-0001.md")
    assert [(p.line, p.field) for p in info.value.problems] == [
        (12, "packages"),
        (15, "affected_releases"),
        (17, "fixed_in"),
        (21, "body"),
        (25, "body"),
        (29, "body"),
    ]
    assert all("FILL IN" in p.what for p in info.value.problems if p.field == "body")
    filled = (
        text.replace("el7: []", "el7: [{name: perfsonar-toolkit-ntp, evr: 3.3.3-1.el7}]")
        .replace('"FILL IN: e.g. 3.3.2"', '"3.3.2"')
        .replace('fixed_in: ""', 'fixed_in: "3.3.3"')
        .replace("FILL IN: what the flaw is", "ntpd answers")
        .replace("FILL IN: what an attacker can do", "An attacker can")
        .replace("FILL IN: the steps for every host, starting with:", "Update every host:")
    )
    adv = parse_advisory(filled, "advisories/PSSA-2015-0001.md")
    assert (adv.title, adv.cves, adv.issued) == (
        'ntpd "again"',
        ("CVE-2014-9293",),
        dt.date(2015, 1, 2),
    )
    with pytest.raises(AdvisoryError, match="unknown severity 'High'"):
        scaffold_advisory("PSSA-2015-0001", today=dt.date(2015, 1, 2), targets=[], severity="High")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy2(PROJECT / "repotool.toml", tmp_path / "repotool.toml")
    shutil.copytree(CONTENT, tmp_path / "web" / "content")
    return tmp_path


def test_cli_list_table_and_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(project / "repotool.toml")
    assert main(["advisory", "list", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "SEVERITY", "ISSUED", "CVES", "TITLE"]
    assert lines[1].split()[:5] == [
        "PSSA-2014-0002",
        "security",
        "Critical",
        "2014-04-09",
        "CVE-2014-0160",
    ]
    assert lines[2].split()[:5] == [
        "PSSA-2014-0001",
        "security",
        "Moderate",
        "2014-01-28",
        "CVE-2013-5211",
    ]
    assert main(["advisory", "list", "--config", config, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    assert [a["id"] for a in data["advisories"]] == ["PSSA-2014-0002", "PSSA-2014-0001"]
    assert data["advisories"][1]["packages"]["el6"] == ["perfsonar-toolkit-ntp-3.3.2-1.el6.noarch"]


def test_cli_new_takes_the_next_free_id_and_check_refuses_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "repotool.toml")
    folder = project / "web" / "content" / "advisories"
    assert main(["advisory", "new", "--config", config, "--year", "2014", "--json", "-q"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["id"] == "PSSA-2014-0003"
    assert (folder / "PSSA-2014-0003.md").is_file()
    assert main(["advisory", "new", "--config", config, "--year", "2014", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "PSSA-2014-0004"
    assert sorted(p.name for p in folder.iterdir()) == [
        "PSSA-2014-0001.md",
        "PSSA-2014-0002.md",
        "PSSA-2014-0003.md",
        "PSSA-2014-0004.md",
    ]
    assert main(["advisory", "check", "--config", config, "-q"]) == 7
    err = capsys.readouterr().err
    assert f"{folder}/PSSA-2014-0003.md:11: packages: no fixed packages" in err
    assert "hint: fix each file as its 'fix:' line says, then run: repotool advisory check" in err


def test_cli_check_malformed_front_matter(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "repotool.toml")
    path = project / "web/content/advisories/PSSA-2014-0001.md"
    path.write_text(path.read_text(encoding="utf-8").replace("---\n", "", 1), encoding="utf-8")
    assert main(["advisory", "check", "--config", config, "-q"]) == 7
    assert (
        f"{path}:1: the file does not start with YAML front matter\n"
        "      fix: make the first line '---', then the fields, then a closing '---' line"
    ) in capsys.readouterr().err
