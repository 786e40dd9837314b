"""The CSAF tree a real `repotool release` publishes, as readers and tools see it."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from repotool.announce.render import Links, render_advisory
from repotool.config import Config, load_config
from repotool.csaf.writer import publish_csaf
from repotool.errors import BadSignatureError, CsafInvalidError
from repotool.records.loading import load_records
from repotool.report import SilentReporter
from repotool.signing.signer import Signer
from tests.conftest import REPOTOOL, Released, gpgv_check, tree_digest
from tests.csaf.csaf_support import (
    EXPECTED_INFORMATIVE,
    REPO_ROOT,
    findings,
    informative,
    run_validator,
)

KEY_NAME = "RPM-GPG-KEY-perfsonar"
HTTPS = "https://toolkit.example.org"


def _security_ids(project: Path) -> list[str]:
    records = load_records(project / "web" / "content")
    return sorted(a.id for a in records.advisories if a.type == "security")


def _doc_path(public: Path, advisory_id: str) -> Path:
    year = advisory_id.split("-")[1]  # the records' issue years match their ids here
    return public / ".well-known" / "csaf" / "white" / year / f"{advisory_id.lower()}.json"


@pytest.fixture(scope="module")
def provider_report(released: Released) -> dict[str, Any]:
    """The trusted-provider checks (and every document's tests) on the released tree."""
    return run_validator("provider", str(released.public), released.url)


def test_every_security_advisory_is_published_and_passes_the_library(
    released: Released, provider_report: dict[str, Any]
) -> None:
    ids = _security_ids(released.project)
    assert ids == ["PSSA-2014-0001", "PSSA-2014-0002"]
    documents = provider_report["documents"]
    assert sorted(documents) == [f"2014/{i.lower()}.json" for i in ids]
    for rel, result in documents.items():
        assert findings(result, "schema") == {}, rel
        assert findings(result, "mandatory") == {}, rel
        # the one recommended finding of the embedded default: it serves plain HTTP on
        # 127.0.0.1, and 6.2.11 wants an https:// canonical URL (see the https test)
        assert findings(result, "recommended") == {
            "optionalTest_6_2_11": ["missing canonical url"]
        }, rel
        assert informative(result) <= EXPECTED_INFORMATIVE, rel
    docs = (REPO_ROOT / "docs" / "advisories.md").read_text(encoding="utf-8")
    for test in EXPECTED_INFORMATIVE:
        assert test.replace("informativeTest_", "").replace("_", ".") in docs


def test_signatures_verify_with_gpgv_against_the_published_key(
    released: Released, tmp_path: Path
) -> None:
    key = released.public / "keys" / KEY_NAME
    for advisory_id in _security_ids(released.project):
        doc = _doc_path(released.public, advisory_id)
        asc = doc.with_name(doc.name + ".asc")
        assert asc.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
        scratch = tmp_path / advisory_id
        scratch.mkdir()
        assert "Good signature" in gpgv_check(key, asc, doc, scratch)
    # a changed byte does not verify (the check can fail)
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(doc.read_bytes().replace(b"Heartbleed", b"Heartbleeb"))
    done = subprocess.run(
        ["gpgv", "--keyring", str(scratch / "published.gpg"), str(asc), str(tampered)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "BAD signature" in done.stderr


def test_hash_files_match(released: Released) -> None:
    for advisory_id in _security_ids(released.project):
        doc = _doc_path(released.public, advisory_id)
        data = doc.read_bytes()
        for algo in ("sha256", "sha512"):
            text = doc.with_name(f"{doc.name}.{algo}").read_text()
            assert text == f"{hashlib.new(algo, data).hexdigest()}  {doc.name}\n"


def test_index_changes_and_feed_list_every_document(released: Released) -> None:
    white = released.public / ".well-known" / "csaf" / "white"
    ids = _security_ids(released.project)
    names = [f"2014/{i.lower()}.json" for i in ids]
    assert (white / "index.txt").read_text().splitlines() == names
    rows = list(csv.reader(io.StringIO((white / "changes.csv").read_text())))
    # newest current_release_date first: 0002 was updated on 2014-04-10
    assert rows == [
        ["2014/pssa-2014-0002.json", "2014-04-10T00:00:00.000Z"],
        ["2014/pssa-2014-0001.json", "2014-01-28T00:00:00.000Z"],
    ]
    feed = json.loads((white / "csaf-feed-tlp-white.json").read_text())["feed"]
    base = f"{released.url}/.well-known/csaf/white/"
    for entry in feed["entry"]:
        links = {(link["rel"], link["href"]) for link in entry["link"]}
        url = base + f"2014/{entry['id'].lower()}.json"
        assert links == {
            ("self", url),
            ("hash", url + ".sha256"),
            ("hash", url + ".sha512"),
            ("signature", url + ".asc"),
        }
    assert sorted(e["id"] for e in feed["entry"]) == ids


def test_provider_metadata_passes_the_trusted_provider_checks(
    released: Released, provider_report: dict[str, Any]
) -> None:
    failed = {k: v["problems"] for k, v in provider_report["requirements"].items() if not v["ok"]}
    # only TLS cannot hold for the embedded default (http://127.0.0.1); the https
    # test below passes every requirement
    assert failed == {
        "7.1.3 TLS": [
            f"{released.url} is not an https:// address: CSAF documents must be served over TLS"
        ]
    }
    meta = json.loads((released.public / ".well-known/csaf/provider-metadata.json").read_text())
    assert meta["role"] == "csaf_trusted_provider"
    assert meta["public_openpgp_keys"][0]["url"] == f"{released.url}/keys/{KEY_NAME}"


def _https_cfg(released: Released) -> Config:
    cfg = load_config(released.project / "repotool.toml")
    return dataclasses.replace(
        cfg,
        site=dataclasses.replace(cfg.site, base_url=HTTPS),
        publish=dataclasses.replace(cfg.publish, base_url=HTTPS),
    )


def _stop_agent(cfg: Config) -> None:
    """Stop the gpg-agent that signing in the project's development GNUPGHOME started."""
    subprocess.run(
        ["gpgconf", "--homedir", str(cfg.state / "gnupg"), "--kill", "gpg-agent"],
        capture_output=True,
        check=False,
    )


def test_an_https_site_passes_every_check(released: Released, tmp_path: Path) -> None:
    cfg = _https_cfg(released)
    public = tmp_path / "public"
    (public / "keys").mkdir(parents=True)
    shutil.copy2(released.public / "keys" / KEY_NAME, public / "keys" / KEY_NAME)
    try:
        result = publish_csaf(cfg, SilentReporter(), public)
    finally:
        _stop_agent(cfg)
    assert len(result.signed) == 2
    report = run_validator("provider", str(public), HTTPS)
    failed = {k: v["problems"] for k, v in report["requirements"].items() if not v["ok"]}
    assert failed == {}
    for rel, doc in report["documents"].items():
        for group in ("schema", "mandatory", "recommended"):
            assert findings(doc, group) == {}, (rel, group)
    assert report["ok"] is True


def test_an_unchanged_tree_opens_no_key_and_a_change_swaps_in_whole(
    released: Released, tmp_path: Path
) -> None:
    cfg = _https_cfg(released)
    public = tmp_path / "public"
    (public / "keys").mkdir(parents=True)
    shutil.copy2(released.public / "keys" / KEY_NAME, public / "keys" / KEY_NAME)
    try:
        first = publish_csaf(cfg, SilentReporter(), public)
        link = public / ".well-known" / "csaf"
        generation = os.readlink(link)

        def no_key() -> Signer:
            raise AssertionError("the key was opened for an unchanged tree")

        again = publish_csaf(cfg, SilentReporter(), public, open_key=no_key)
        assert again.unchanged and os.readlink(link) == generation
        # a lost signature is put back (same generation, only that document signed)
        lost = link / "white" / "2014" / "pssa-2014-0001.json.asc"
        lost.unlink()
        repaired = publish_csaf(cfg, SilentReporter(), public)
        assert repaired.signed == ("white/2014/pssa-2014-0001.json",)
        assert os.readlink(link) == generation and lost.is_file()
        # another site address changes every document: a new generation, signed anew,
        # while the previous one stays for downloads in flight; no staging is left
        other = dataclasses.replace(cfg, site=dataclasses.replace(cfg.site, base_url=HTTPS + "/x"))
        changed = publish_csaf(other, SilentReporter(), public)
    finally:
        _stop_agent(cfg)
    assert first.signed and len(changed.signed) == 2
    assert os.readlink(link) != generation
    entries = sorted(p.name for p in link.parent.iterdir())
    assert entries == sorted(["csaf", generation, os.readlink(link)])
    assert "/x/.well-known/csaf/" in (link / "provider-metadata.json").read_text()


def test_a_key_other_than_the_published_one_is_refused(released: Released, tmp_path: Path) -> None:
    cfg = _https_cfg(released)
    public = tmp_path / "public"
    (public / "keys").mkdir(parents=True)
    shutil.copy2(released.public / "keys" / KEY_NAME, public / "keys" / KEY_NAME)

    class OtherKey:
        fingerprint = "F" * 40

        def public_key_armored(self) -> str:
            return "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot the published key\n"

    with pytest.raises(BadSignatureError, match="is not the published key"):
        publish_csaf(cfg, SilentReporter(), public, open_key=lambda: OtherKey())  # type: ignore[arg-type,return-value]
    assert not (public / ".well-known").exists() or not any((public / ".well-known").iterdir())


def _copy_with_bad_reference(released: Released, dest: Path) -> tuple[Path, Path]:
    """A copy of the released project (no media, no agent sockets) whose
    PSSA-2014-0001 cites a URL with an 'é' (the records take it, CSAF does not)."""

    def skip(folder: str, names: list[str]) -> set[str]:
        if Path(folder) == released.public:
            return {"releases"}
        return {n for n in names if n.startswith("S.") or n.endswith(".log")}  # agent sockets

    project = dest / "project"
    shutil.copytree(released.project, project, symlinks=True, ignore=skip)
    record = project / "web" / "content" / "advisories" / "PSSA-2014-0001.md"
    record.write_text(
        record.read_text().replace("Main/SecurityNotice\n", "Main/Sécurité\n"),
        encoding="utf-8",
    )
    return project, record


@pytest.mark.parametrize("command", [("site", "build"), ("release",)])
def test_an_invalid_advisory_is_refused_before_anything_is_published(
    released: Released, tmp_path: Path, command: tuple[str, ...]
) -> None:
    project, record = _copy_with_bad_reference(released, tmp_path)
    before = tree_digest(project / "public")
    done = subprocess.run(
        [*REPOTOOL, *command],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    subprocess.run(
        ["gpgconf", "--homedir", str(project / ".repotool" / "gnupg"), "--kill", "gpg-agent"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 7, done.stderr
    assert f"{record}:13: references.2.url:" in done.stderr
    assert "is not a URI" in done.stderr and "fix: percent-encode them" in done.stderr
    # no repository, page or CSAF file changed
    assert tree_digest(project / "public") == before


def test_the_advisory_page_links_the_document_and_the_server_serves_it(
    released: Released, served_url: str
) -> None:
    page = requests.get(f"{served_url}/advisories/PSSA-2014-0002/", timeout=30)
    assert page.status_code == 200
    href = "/.well-known/csaf/white/2014/pssa-2014-0002.json"
    assert f'href="{href}"' in page.text and f'href="{href}.asc"' in page.text
    doc = requests.get(served_url + href, timeout=30)
    assert doc.status_code == 200 and doc.headers["content-type"] == "application/json"
    assert doc.content == _doc_path(released.public, "PSSA-2014-0002").read_bytes()
    meta = requests.get(f"{served_url}/.well-known/csaf/provider-metadata.json", timeout=30)
    assert meta.status_code == 200 and meta.json()["role"] == "csaf_trusted_provider"
    # staging and generation folders stay private
    generation = os.readlink(released.public / ".well-known" / "csaf")
    hidden = requests.get(
        f"{served_url}/.well-known/{generation}/provider-metadata.json", timeout=30
    )
    assert hidden.status_code == 404


def test_the_announcement_names_the_published_document(released: Released) -> None:
    records = load_records(released.project / "web" / "content")
    adv = records.advisory("PSSA-2014-0001")
    assert adv is not None
    links = Links(
        released.url, released.url, KEY_NAME, "perfsonar-announce", "pS-Performance Toolkit"
    )
    lines = render_advisory(adv, links, "0" * 40).text.splitlines()
    url = f"{released.url}/.well-known/csaf/white/2014/pssa-2014-0001.json"
    assert lines[lines.index("CSAF 2.0 document:") + 1] == url
    assert (released.public / url.removeprefix(released.url + "/")).is_file()


def test_invalid_records_in_the_release_path_raise_csaf_invalid(released: Released) -> None:
    # the same check build_site runs, on the released records and repositories
    from repotool.csaf.document import check_exportable
    from repotool.csaf.writer import published_nevras

    cfg = load_config(released.project / "repotool.toml")
    records = load_records(released.project / "web" / "content")
    published = published_nevras(cfg)
    check_exportable(records.advisories, published)  # the real records pass
    published["el7"] = set()
    with pytest.raises(CsafInvalidError, match="the published el7 repository does not hold it"):
        check_exportable(records.advisories, published)
