"""The pure decisions of the spine: versions, signature reports, retention.

The config's are in tests/test_config.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from repotool.build.specs import referenced_sources
from repotool.config import Config, PublishConfig
from repotool.evr import EVR, evr_cmp, parse_evr, vercmp
from repotool.repo.packages import RepoPackage, content_digest, select_retained
from repotool.repo.publish import render_repo_file
from repotool.signing.checksig import read_checksig, split_checksig_output


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        # cases from rpm's own test suite (rpmvercmp.at)
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1a", "2.0.1", 1),
        ("5.5p1", "5.5p2", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("xyz10", "xyz10.1", -1),
        ("1b.fc17", "1.fc17", -1),
        ("1.0~rc1", "1.0", -1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0^", "1.0", 1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.01", -1),
        ("1.0^git1~pre", "1.0^git1", -1),
        ("3.3.2-2", "3.3.2-10", -1),
        ("1.el7", "1.el6", 1),
    ],
)
def test_vercmp_agrees_with_rpm(a: str, b: str, want: int) -> None:
    assert vercmp(a, b) == want
    assert vercmp(b, a) == -want


def test_evr_epoch_wins_and_parse() -> None:
    assert evr_cmp(EVR(1, "1.0", "1"), EVR(0, "9.9", "9")) == 1
    assert parse_evr("1:3.3.2-1.el7") == EVR(1, "3.3.2", "1.el7")
    assert str(parse_evr("3.3.2-2.el6")) == "3.3.2-2.el6"


def _pkg(name: str, version: str, release: str) -> RepoPackage:
    return RepoPackage(
        f"{name}-{version}-{release}.noarch.rpm",
        name,
        0,
        version,
        release,
        "noarch",
        f"sha-{name}-{version}-{release}",
        (0, 0),
        (0, 0, 0, 0),
        ("", "", ""),
    )


def test_retention_keeps_the_newest_versions_by_rpm_order() -> None:
    pkgs = [_pkg("ntp", "3.3.2", r) for r in ("1.el7", "2.el7", "10.el7", "9.el7")]
    pkgs.append(_pkg("other", "1.0", "1.el7"))
    kept = {p.filename for p in select_retained(pkgs, 2)}
    assert kept == {
        "ntp-3.3.2-10.el7.noarch.rpm",
        "ntp-3.3.2-9.el7.noarch.rpm",
        "other-1.0-1.el7.noarch.rpm",
    }


def test_retention_counts_each_arch_apart_and_lists_by_file_name() -> None:
    x86 = [
        dataclasses.replace(p, filename=p.filename.replace("noarch", "x86_64"), arch="x86_64")
        for p in (_pkg("ntp", "3.3.2", r) for r in ("1.el7", "2.el7", "3.el7"))
    ]
    pkgs = [*x86, _pkg("ntp", "3.3.2", "1.el7"), _pkg("a", "1", "1"), _pkg("z", "1", "1")]
    kept = [p.filename for p in select_retained(pkgs, 2)]
    assert kept == sorted(kept)
    assert kept == [
        "a-1-1.noarch.rpm",
        "ntp-3.3.2-1.el7.noarch.rpm",
        "ntp-3.3.2-2.el7.x86_64.rpm",
        "ntp-3.3.2-3.el7.x86_64.rpm",
        "z-1-1.noarch.rpm",
    ]
    assert [p.filename for p in select_retained(pkgs, 1)] == [
        "a-1-1.noarch.rpm",
        "ntp-3.3.2-1.el7.noarch.rpm",
        "ntp-3.3.2-3.el7.x86_64.rpm",
        "z-1-1.noarch.rpm",
    ]


def test_content_digest_changes_with_packages_and_errata() -> None:
    a = [_pkg("x", "1", "1")]
    assert content_digest(a, None) == content_digest(list(a), None)
    assert content_digest(a, None) != content_digest(a, b"<updates/>")
    assert content_digest(a, None) != content_digest([_pkg("x", "1", "2")], None)


def test_checksig_report_reading() -> None:
    good = "    Header V4 RSA/SHA256 Signature, key ID 8c464aeb: OK\n    Header SHA256 digest: OK\n"
    assert read_checksig(good, "8C464AEB")[0]
    assert read_checksig(good, "deadbeef") == (False, "the package is signed by another key")
    assert read_checksig("    Header SHA256 digest: OK\n", "8c464aeb") == (
        False,
        "the package is not signed",
    )
    bad = good + "    Payload SHA256 digest: BAD (Expected abc != def)\n"
    assert not read_checksig(bad, "8c464aeb")[0]
    nokey = "    Header V4 RSA/SHA256 Signature, key ID 11111111: NOKEY\n"
    assert read_checksig(nokey, "8c464aeb") == (
        False,
        "the package is signed by another key (key ID 11111111), not the release key",
    )


def test_checksig_output_is_split_per_file() -> None:
    out = "a.rpm:\n    x: OK\nb.rpm:\n    y: OK\n"
    blocks = split_checksig_output(
        out, "error: c.rpm: not an rpm package\n", [Path("a.rpm"), Path("b.rpm"), Path("c.rpm")]
    )
    assert blocks[0] == "    x: OK\n" and blocks[1] == "    y: OK\n"
    assert "not an rpm package" in blocks[2] and "NOT OK" in blocks[2]


def test_repo_file_for_hosts_and_for_the_release_package() -> None:
    cfg = Config(publish=PublishConfig(base_url="https://example.invalid/ps/"))
    text = render_repo_file(cfg, gpgkey="file:///etc/pki/rpm-gpg/RPM-GPG-KEY-perfsonar")
    assert "baseurl=https://example.invalid/ps/repo/el$releasever/$basearch/\n" in text
    assert "gpgcheck=1\n" in text and "repo_gpgcheck=1\n" in text
    assert "metalink" not in text
    with_metalink = dataclasses.replace(
        cfg, publish=dataclasses.replace(cfg.publish, metalink=True)
    )
    assert (
        "metalink=https://example.invalid/ps/mirrors/el$releasever/$basearch/metalink.xml"
        in render_repo_file(with_metalink, gpgkey="x")
    )


def test_sources_are_found_with_their_lines() -> None:
    spec = "Name: x\nSource0: http://example.invalid/a/ntp.conf\n#Source1: no\nPatch3:  fix.patch\n"
    assert referenced_sources(spec) == [(2, "ntp.conf"), (4, "fix.patch")]
