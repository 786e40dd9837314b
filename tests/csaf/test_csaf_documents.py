"""The pure CSAF module, checked by the BSI's validator library (no release needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from repotool.csaf.document import advisory_document, check_exportable
from repotool.csaf.layout import CsafSettings
from repotool.csaf.provider import dump_json, plan_tree
from repotool.errors import CsafInvalidError
from repotool.evr import NEVRA
from repotool.records.loading import load_records
from repotool.records.models import Advisory
from repotool.records.parsing import parse_advisory
from tests.csaf.csaf_support import (
    EXPECTED_INFORMATIVE,
    REPO_ROOT,
    findings,
    informative,
    run_validator,
)

CONTENT = REPO_ROOT / "web" / "content"
SETTINGS = CsafSettings(
    base_url="https://toolkit.example.org",
    site_url="https://toolkit.example.org",
    publisher_name="pS-Performance Toolkit",
    contact_details="pS-Performance Toolkit <release@perfsonar.invalid>",
    vendor="pS-Performance Toolkit",
    product="pS-Performance Toolkit",
    purl_namespace="perfsonar",
    key_url="https://toolkit.example.org/keys/RPM-GPG-KEY-perfsonar",
    key_fingerprint="0123456789ABCDEF0123456789ABCDEF01234567",
)


def _advisories() -> tuple[Advisory, ...]:
    return load_records(CONTENT).advisories


def _published(advisories: tuple[Advisory, ...]) -> dict[str, set[NEVRA]]:
    out: dict[str, set[NEVRA]] = {}
    for adv in advisories:
        for target in adv.packages:
            out.setdefault(target, set()).update(adv.nevras(target))
    return out


def _variant(advisory_id: str, old: str, new: str, *more: tuple[str, str]) -> Advisory:
    source = CONTENT / "advisories" / f"{advisory_id}.md"
    text = source.read_text(encoding="utf-8")
    for a, b in ((old, new), *more):
        assert a in text
        text = text.replace(a, b)
    return parse_advisory(text, str(source))


SCORE = {
    "version": "3.1",
    "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "baseScore": 7.5,
    "baseSeverity": "HIGH",
}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every document these tests check, through the library in one run (it loads slowly)."""
    folder = tmp_path_factory.mktemp("csaf-docs")
    advisories = _advisories()
    heartbleed = next(a for a in advisories if a.id == "PSSA-2014-0002")
    docs: dict[str, bytes] = {
        d.advisory_id: d.data
        for d in plan_tree(advisories, _published(advisories), SETTINGS).documents
    }
    docs["scored"] = dump_json(advisory_document(heartbleed, SETTINGS, {"CVE-2014-0160": SCORE}))
    wrong = {**SCORE, "baseScore": 9.9}
    docs["wrong-score"] = dump_json(
        advisory_document(heartbleed, SETTINGS, {"CVE-2014-0160": wrong})
    )
    paths = {}
    for name, data in docs.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(data)
    result = run_validator("document", *map(str, paths.values()))
    return {name: result[str(path)] for name, path in paths.items()}


def test_every_record_validates_with_no_finding(validated: dict[str, dict[str, Any]]) -> None:
    advisories = _advisories()
    tree = plan_tree(advisories, _published(advisories), SETTINGS)
    assert [d.path for d in tree.documents] == [
        "white/2014/pssa-2014-0001.json",
        "white/2014/pssa-2014-0002.json",
    ]
    for doc in tree.documents:
        result = validated[doc.advisory_id]
        for group in ("schema", "mandatory", "recommended"):
            assert findings(result, group) == {}, (doc.path, group)
        assert informative(result) <= EXPECTED_INFORMATIVE, doc.path
        assert result["ok"] is True


def test_document_content_comes_from_the_record() -> None:
    adv = next(a for a in _advisories() if a.id == "PSSA-2014-0002")
    doc = advisory_document(adv, SETTINGS)
    tracking = doc["document"]["tracking"]
    assert tracking["id"] == "PSSA-2014-0002"
    assert tracking["initial_release_date"] == "2014-04-09T00:00:00.000Z"
    assert tracking["current_release_date"] == "2014-04-10T00:00:00.000Z"
    assert [(r["number"], r["date"]) for r in tracking["revision_history"]] == [
        ("1", "2014-04-09T00:00:00.000Z"),
        ("2", "2014-04-10T00:00:00.000Z"),
    ]
    assert tracking["version"] == "2"
    assert doc["document"]["aggregate_severity"] == {"text": "Critical"}
    (vuln,) = doc["vulnerabilities"]
    assert vuln["cve"] == "CVE-2014-0160"
    assert vuln["product_status"]["fixed"] == [
        "el6:perfsonar-toolkit-security-3.3.2-2.el6.noarch",
        "el7:perfsonar-toolkit-security-3.3.2-2.el7.noarch",
        "toolkit-3.3.2-2",
    ]
    assert vuln["remediations"][0]["category"] == "vendor_fix"
    assert "/usr/sbin/perfsonar-regenerate-host-cert" in vuln["remediations"][0]["details"]
    assert vuln["remediations"][0]["product_ids"] == ["toolkit-3.3.2"]
    # no score in the records: the affected release is not listed without one (6.2.3)
    assert "known_affected" not in vuln["product_status"] and "scores" not in vuln
    purls = json.dumps(doc["product_tree"])
    assert (
        "pkg:rpm/perfsonar/perfsonar-toolkit-security@3.3.2-2.el7?arch=noarch&distro=el7" in purls
    )
    urls = [r["url"] for r in doc["document"]["references"]]
    assert "https://toolkit.example.org/.well-known/csaf/white/2014/pssa-2014-0002.json" in urls
    assert "https://www.openssl.org/news/secadv/20140407.txt" in urls


def test_output_is_deterministic() -> None:
    advisories = _advisories()
    one = plan_tree(advisories, _published(advisories), SETTINGS).all_files()
    two = plan_tree(tuple(reversed(advisories)), _published(advisories), SETTINGS).all_files()
    assert one == two
    meta = json.loads(one["provider-metadata.json"])
    assert meta["last_updated"] == "2014-04-10T00:00:00.000Z"  # the newest record, not the clock


def test_a_score_when_set_lists_the_affected_release_and_validates(
    validated: dict[str, dict[str, Any]],
) -> None:
    adv = next(a for a in _advisories() if a.id == "PSSA-2014-0002")
    doc = advisory_document(adv, SETTINGS, {"CVE-2014-0160": SCORE})
    (vuln,) = doc["vulnerabilities"]
    assert vuln["product_status"]["known_affected"] == ["toolkit-3.3.2"]
    assert vuln["scores"] == [{"cvss_v3": SCORE, "products": ["toolkit-3.3.2"]}]
    for group in ("schema", "mandatory", "recommended"):
        assert findings(validated["scored"], group) == {}, group
    # a wrong base score is caught by the library (the check can fail)
    assert findings(validated["wrong-score"], "mandatory")


def test_bugfix_errata_are_not_exported() -> None:
    adv = _variant(
        "PSSA-2014-0001",
        "type: security\nseverity: Moderate\n",
        "type: bugfix\n",
        ("cves:\n  - CVE-2013-5211\n", ""),
    )
    tree = plan_tree((adv,), _published((adv,)), SETTINGS)
    assert tree.documents == ()
    assert json.loads(tree.files["white/csaf-feed-tlp-white.json"])["feed"]["entry"] == []


def test_a_reference_the_records_accept_but_csaf_does_not_is_refused() -> None:
    # the records take any http(s) address; a CSAF "uri" must percent-encode 'é'
    adv = _variant("PSSA-2014-0001", "Main/SecurityNotice\n", "Main/Sécurité\n")
    with pytest.raises(CsafInvalidError) as e:
        check_exportable((adv,), _published((adv,)))
    text = str(e.value)
    assert (
        "PSSA-2014-0001.md:13: references.2.url: 'https://support.ntp.org/bin/view/Main/"
        "Sécurité' is not a URI"
    ) in text
    assert "fix: percent-encode them (e.g. 'ü' as %C3%BC, a space as %20)" in text


def test_a_cve_id_outside_the_csaf_pattern_is_refused() -> None:
    # the records refuse these too (repotool.records.screening); the CSAF gate does
    # not rely on it: its pattern is the schema's, ASCII digits only
    adv = next(a for a in _advisories() if a.id == "PSSA-2014-0001")
    adv = adv.model_copy(update={"cves": ("CVE-２０１３-5211",)})
    with pytest.raises(CsafInvalidError, match="has characters CSAF does not accept"):
        check_exportable((adv,), _published((adv,)))


def test_a_missing_product_is_refused() -> None:
    adv = next(a for a in _advisories() if a.id == "PSSA-2014-0001")
    published = _published((adv,))
    published["el7"] = set()
    with pytest.raises(CsafInvalidError) as e:
        plan_tree((adv,), published, SETTINGS)
    text = str(e.value)
    assert (
        "packages.el7.0: the product perfsonar-toolkit-ntp-3.3.2-1.el7.noarch is missing: "
        "the published el7 repository does not hold it"
    ) in text
    assert "fix: publish the fixed package (repotool release)" in text
    # a target nobody publishes is refused too
    with pytest.raises(CsafInvalidError, match="'el6' is not a published target"):
        plan_tree((adv,), {"el7": published["el7"]}, SETTINGS)


def test_other_invalid_records_are_refused_all_at_once() -> None:
    adv = next(a for a in _advisories() if a.id == "PSSA-2014-0001")
    adv = adv.model_copy(
        update={
            "fixed_in": "3.3.1",
            "packages": {**adv.packages, "el6": adv.packages["el6"] * 2},
        }
    )
    with pytest.raises(CsafInvalidError) as e:
        check_exportable((adv,), _published((adv,)))
    assert [p.field for p in e.value.problems] == ["fixed_in", "packages.el6.1"]
    assert "listed twice for el6; CSAF products must be unique" in str(e.value)
