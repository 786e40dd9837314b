"""The record files under web/content: what loads, and the exact complaint when not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from repotool.errors import AdvisoryError, RecordInvalidError
from repotool.evr import NEVRA
from repotool.records.loading import load_advisories, load_news, load_records, load_releases
from repotool.records.parsing import parse_advisory, parse_release
from tests.records.record_texts import GOOD, RELEASE

REPO_CONTENT = Path(__file__).resolve().parents[2] / "web" / "content"


def problems_of(text: str, name: str = "PSSA-2014-0007.md") -> list[str]:
    with pytest.raises(RecordInvalidError) as info:
        parse_advisory(text, f"advisories/{name}")
    return [str(p) for p in info.value.problems]


def test_shipped_advisories_are_the_ntp_and_heartbleed_errata() -> None:
    advisories = {a.id: a for a in load_advisories(REPO_CONTENT)}
    ntp = advisories["PSSA-2014-0001"]
    assert (ntp.type, ntp.severity, ntp.cves) == ("security", "Moderate", ("CVE-2013-5211",))
    assert ntp.nevras("el7") == (NEVRA("perfsonar-toolkit-ntp", 0, "3.3.2", "1.el7", "noarch"),)
    assert ntp.nevras("el6")[0].filename == "perfsonar-toolkit-ntp-3.3.2-1.el6.noarch.rpm"
    assert "restrict default kod nomodify notrap nopeer noquery" in ntp.sections["Remediation"]
    hb = advisories["PSSA-2014-0002"]
    assert (hb.severity, hb.cves, hb.fixed_in) == ("Critical", ("CVE-2014-0160",), "3.3.2-2")
    assert hb.issued == dt.date(2014, 4, 9)
    steps = hb.sections["Remediation"]
    for step in ("yum update", "perfsonar-regenerate-host-cert", "service httpd restart"):
        assert step in steps
    assert all(r.url.startswith("https://") for r in hb.references)


def test_shipped_release_332_has_the_heartbleed_respin() -> None:
    (rel,) = [r for r in load_releases(REPO_CONTENT) if r.version == "3.3.2"]
    assert rel.advisories == ("PSSA-2014-0001",)
    assert [r.version for r in rel.respins] == ["3.3.2-2"]
    assert rel.respins[0].advisories == ("PSSA-2014-0002",)
    assert rel.latest_version == "3.3.2-2"
    assert rel.all_advisories == ("PSSA-2014-0001", "PSSA-2014-0002")
    assert "CVE-2013-5211" in rel.body
    records = load_records(REPO_CONTENT)
    assert records.release("3.3.2") == rel


def test_good_advisory_parses() -> None:
    adv = parse_advisory(GOOD, "advisories/PSSA-2014-0007.md")
    assert adv.id == "PSSA-2014-0007"
    assert adv.last_updated == dt.date(2014, 3, 2)
    assert adv.lines["packages"] == 12
    assert list(adv.sections) == ["Description", "Impact", "Remediation"]


def test_unknown_severity_names_line_field_and_choices() -> None:
    assert problems_of(GOOD.replace("severity: Important", "severity: Urgent")) == [
        "advisories/PSSA-2014-0007.md:4: severity: 'Urgent' is not allowed\n"
        "      fix: use one of Critical, Important, Moderate, Low (as dnf knows them)"
    ]


def test_impossible_date() -> None:
    (msg,) = problems_of(GOOD.replace("issued: 2014-03-01", "issued: 2014-02-30"))
    assert msg.startswith("advisories/PSSA-2014-0007.md:6: issued: ")
    assert "day value is outside expected range" in msg
    assert msg.endswith("fix: write a real calendar date as YYYY-MM-DD")


def test_updated_before_issued() -> None:
    assert problems_of(GOOD.replace("updated: 2014-03-02", "updated: 2014-02-02")) == [
        "advisories/PSSA-2014-0007.md:7: updated: 2014-02-02 is before issued 2014-03-01\n"
        "      fix: an advisory cannot be updated before it is issued"
    ]


def test_malformed_yaml_names_the_line() -> None:
    bad = GOOD.replace("    - name: perfsonar-toolkit-ntp", "    - name: [unclosed")
    (msg,) = problems_of(bad)
    assert msg.startswith("advisories/PSSA-2014-0007.md:15: the front matter is not valid YAML")
    assert "(while parsing a flow sequence on line 14)" in msg
    assert "fix: fix the YAML syntax at this line" in msg
    (msg,) = problems_of(GOOD.replace("type: security", " type: security"))
    assert msg.startswith(
        "advisories/PSSA-2014-0007.md:3: the front matter is not valid YAML: "
        "mapping values are not allowed here"
    )


def test_missing_or_unclosed_front_matter() -> None:
    assert problems_of("# just markdown\n")[0].startswith(
        "advisories/PSSA-2014-0007.md:1: the file does not start with YAML front matter"
    )
    assert "the front matter is never closed" in problems_of("---\nid: x\n")[0]


def test_field_given_twice() -> None:
    (msg,) = problems_of(GOOD.replace("type: security\n", "type: security\ntype: bugfix\n"))
    assert msg.startswith(
        "advisories/PSSA-2014-0007.md:4: type: the field is given twice (first on line 3)"
    )


def test_bad_cve_reference_and_typo_are_all_reported() -> None:
    bad = (
        GOOD.replace("CVE-2014-1234", "CVE-14-1")
        .replace("https://example.org/advisory", "example.org/advisory")
        .replace("fixed_in:", "fixed_inn:")
    )
    msgs = problems_of(bad)
    # every problem of the file at once, top to bottom
    assert len(msgs) == 4
    assert msgs[0].startswith(
        "advisories/PSSA-2014-0007.md:1: fixed_in: is empty: the advisory does not say which "
        "release ships the fix"
    )
    assert msgs[1] == (
        "advisories/PSSA-2014-0007.md:8: cves: 'CVE-14-1' is not a CVE id\n"
        "      fix: write CVE-<year>-<4 or more digits>"
    )
    assert msgs[2].startswith(
        "advisories/PSSA-2014-0007.md:9: references.0.url: 'example.org/advisory' is not an "
        "http(s) URL"
    )
    assert msgs[3] == (
        "advisories/PSSA-2014-0007.md:17: fixed_inn: is not a known field\n"
        "      fix: did you mean 'fixed_in'? correct its spelling"
    )


def test_missing_field_and_bad_evr() -> None:
    bad = GOOD.replace("title: A flaw\n", "").replace("3.3.2-1.el7", "3.3.2")
    msgs = problems_of(bad)
    assert (
        "advisories/PSSA-2014-0007.md:1: title: is required but missing\n"
        "      fix: add 'title:' to the front matter" in msgs
    )
    assert any(
        m.startswith("advisories/PSSA-2014-0007.md:11: packages.el7.0.evr: '3.3.2' is not an EVR")
        for m in msgs
    )


def test_security_advisory_needs_severity() -> None:
    (msg,) = problems_of(GOOD.replace("severity: Important\n", ""))
    assert msg.startswith(
        "advisories/PSSA-2014-0007.md:1: severity: a security advisory needs a severity"
    )


def test_body_sections_and_file_name() -> None:
    (msg,) = problems_of(GOOD.replace("## Impact\n\nBad.\n", ""))
    assert "body: the body lacks the section(s) Impact" in msg
    (msg,) = problems_of(GOOD, name="PSSA-2014-0008.md")
    assert msg == (
        "advisories/PSSA-2014-0008.md:2: id: the file is named PSSA-2014-0008.md but its id "
        "is PSSA-2014-0007\n      fix: rename the file to PSSA-2014-0007.md or correct the id"
    )


def _content(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_duplicate_id_across_files_and_every_file_reported(tmp_path: Path) -> None:
    content = _content(
        tmp_path,
        {
            "advisories/PSSA-2014-0007.md": GOOD,
            "advisories/copy.md": GOOD,
            "advisories/PSSA-2014-0009.md": GOOD.replace("0007", "0009").replace(
                "severity: Important", "severity: High"
            ),
        },
    )
    with pytest.raises(AdvisoryError) as info:
        load_advisories(content)
    text = str(info.value)
    assert text.startswith("2 problems in the records:")
    assert f"{content}/advisories/PSSA-2014-0009.md:4: severity: 'High' is not allowed" in text
    assert f"{content}/advisories/copy.md:2: id: the file is named copy.md" in text
    # and the duplicate itself, when the file name does not give it away
    from repotool.records.loading import duplicate_advisory_problems

    a = parse_advisory(GOOD, "x/PSSA-2014-0007.md")
    b = parse_advisory(GOOD, "y/PSSA-2014-0007.md")
    (dup,) = duplicate_advisory_problems([a, b])
    assert str(dup) == (
        "y/PSSA-2014-0007.md:2: id: the id PSSA-2014-0007 is already used by "
        "x/PSSA-2014-0007.md\n      fix: give this advisory the next free id "
        "(repotool advisory new)"
    )


def test_release_respin_checks() -> None:
    with pytest.raises(RecordInvalidError) as info:
        parse_release(RELEASE.replace("2014-04-10", "2014-01-01"), "releases/3.3.2.md")
    assert str(info.value.problems[0]) == (
        "releases/3.3.2.md:5: respins: 3.3.2-2 is dated 2014-01-01, before the release itself "
        "(2014-01-28)\n      fix: fix the date"
    )
    with pytest.raises(RecordInvalidError) as info:
        parse_release(RELEASE.replace("3.3.2-2", "3.3.1-2"), "releases/3.3.2.md")
    assert "3.3.1-2 is not a respin of 3.3.2" in str(info.value)


def test_release_must_name_existing_earlier_advisories(tmp_path: Path) -> None:
    content = _content(
        tmp_path,
        {
            "advisories/PSSA-2014-0007.md": GOOD,
            "releases/3.3.2.md": RELEASE.replace("PSSA-2014-0007", "PSSA-2014-0099"),
            "news/hello.md": "---\ntitle: Hello\ndate: 2014-01-28\n---\nHi.\n",
        },
    )
    with pytest.raises(RecordInvalidError) as info:
        load_records(content)
    assert [str(p) for p in info.value.problems] == [
        f"{content}/releases/3.3.2.md:4: advisories: 3.3.2 includes PSSA-2014-0099, but there "
        "is no advisories/PSSA-2014-0099.md\n      fix: correct the id or add the advisory"
    ]
    (content / "releases/3.3.2.md").write_text(RELEASE, encoding="utf-8")
    with pytest.raises(RecordInvalidError) as info:
        load_records(content)
    assert "3.3.2 (2014-01-28) includes PSSA-2014-0007, which is issued later (2014-03-01)" in str(
        info.value
    )
    (content / "releases/3.3.2.md").write_text(
        RELEASE.replace("2014-01-28", "2014-03-01"), encoding="utf-8"
    )
    records = load_records(content)
    assert [n.slug for n in records.news] == ["hello"]
    assert load_news(content)[0].title == "Hello"
