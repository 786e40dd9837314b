"""The pure parts of the mirror area: metadata parsing, rollback/freeze, plans,
mirrors.toml, health classification and metalink rendering."""

from __future__ import annotations

import bz2
import gzip
import lzma
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from repotool.errors import MirrorError, MirrorIntegrityError
from repotool.mirror.health import Observation, classify, overall
from repotool.mirror.metadata_values import safe_relpath
from repotool.mirror.metalink import (
    Resource,
    digest_repomd,
    render_metalink,
    render_mirrorlist,
    update_history,
)
from repotool.mirror.network import parse_mirrors
from repotool.mirror.sync_plan import (
    FileSpec,
    ReplacedGeneration,
    UnpackLimits,
    carried_files,
    check_update,
    decompress,
    live_replaced,
    parse_primary,
    parse_repomd,
    plan_sync,
    unpack_bound,
    wanted_files,
)

DIGEST = "a" * 64


def repomd(
    revision: str,
    ts: int,
    href: str = "repodata/x-primary.xml.gz",
    checksum: tuple[str, str] = ("sha256", DIGEST),
) -> bytes:
    return f"""<?xml version="1.0"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <revision>{revision}</revision>
  <data type="primary">
    <checksum type="{checksum[0]}">{checksum[1]}</checksum>
    <location href="{href}"/>
    <timestamp>{ts}</timestamp>
    <size>10</size>
    <open-size>20</open-size>
  </data>
</repomd>""".encode()


def test_parse_repomd_reads_entries() -> None:
    r = parse_repomd(repomd("42", 1000), "u")
    assert r.revision == "42" and r.newest_timestamp == 1000
    primary = r.entry("primary")
    assert primary is not None
    assert primary.file == FileSpec("repodata/x-primary.xml.gz", 10, "sha256", DIGEST)
    assert primary.open_size == 20


@pytest.mark.parametrize("href", ["../etc/passwd", "/etc/passwd", "a/../../b", "."])
def test_locations_outside_the_repository_are_refused(href: str) -> None:
    with pytest.raises(MirrorIntegrityError, match="names a file outside the repository"):
        parse_repomd(repomd("1", 1, href), "u")
    with pytest.raises(MirrorIntegrityError):
        safe_relpath(href, "u")


def primary(algo: str, digest: str) -> bytes:
    return f"""<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">
      <package type="rpm"><name>a</name>
        <checksum type="{algo}" pkgid="YES">{digest}</checksum>
        <size package="123" installed="1" archive="1"/>
        <location href="Packages/a.rpm"/></package></metadata>""".encode()


def test_parse_primary_and_duplicates() -> None:
    pkgs = parse_primary(primary("sha256", " " + "B" * 64 + "\n"), "p")
    assert pkgs == [FileSpec("Packages/a.rpm", 123, "sha256", "b" * 64)]
    r = parse_repomd(repomd("1", 1, "Packages/a.rpm"), "u")
    with pytest.raises(MirrorIntegrityError, match=r"lists Packages/a\.rpm twice"):
        wanted_files(r, pkgs, "u")


@pytest.mark.parametrize(
    ("algo", "length"),
    [("sha", 40), ("sha1", 40), ("sha224", 56), ("sha256", 64), ("sha384", 96), ("sha512", 128)],
)
def test_checksums_of_each_algorithm_are_accepted(algo: str, length: int) -> None:
    name = "sha1" if algo == "sha" else algo
    assert parse_primary(primary(algo, "0f" * (length // 2)), "p")[0].algo == name
    assert (
        parse_repomd(repomd("1", 1, checksum=(algo, "9" * length)), "u").entries[0].file.digest
        == "9" * length
    )


BAD_DIGESTS = [
    ("sha256", "../../../../tmp/owned", r"the sha256 checksum is not 64 hex digits"),
    ("sha256", "a" * 63 + "/", r"the sha256 checksum is not 64 hex digits"),
    ("sha256", "a" * 40, r"the sha256 checksum is not 64 hex digits"),
    ("sha1", "a" * 64, r"the sha1 checksum is not 40 hex digits"),
    ("sha512", "g" * 128, r"the sha512 checksum is not 128 hex digits"),
    ("sha256", "", r"the sha256 checksum is not 64 hex digits: ''"),
    ("md5", "a" * 32, r"unsupported checksum type 'md5'"),
]


@pytest.mark.parametrize(
    ("algo", "digest", "message"),
    BAD_DIGESTS,
    ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(BAD_DIGESTS)],
)
def test_checksums_must_be_hex_of_their_length(algo: str, digest: str, message: str) -> None:
    with pytest.raises(MirrorIntegrityError, match=message) as info:
        parse_primary(primary(algo, digest), "http://up/repodata/p-primary.xml.gz")
    assert info.value.where == "http://up/repodata/p-primary.xml.gz (package a)"
    with pytest.raises(MirrorIntegrityError, match=message) as info:
        parse_repomd(repomd("1", 1, checksum=(algo, digest)), "http://up/repodata/repomd.xml")
    assert info.value.where == "http://up/repodata/repomd.xml <data type='primary'>"


def test_decompress_is_bounded() -> None:
    bomb = gzip.compress(b"\0" * 100_000)
    limits = UnpackLimits()
    with pytest.raises(MirrorIntegrityError, match="unpacks to more than its declared open-size"):
        decompress(bomb, "x.xml.gz", 1000, limits)
    assert decompress(gzip.compress(b"abc"), "x.xml.gz", 3, limits) == b"abc"
    # without an open-size (or with one larger), the ratio and the cap bound it
    for open_size in (None, 10**12):
        with pytest.raises(
            MirrorIntegrityError,
            match=rf"unpacks to more than {100 * len(bomb)} bytes \(at most 1073741824 bytes "
            rf"and 100 times its {len(bomb)} compressed bytes\)",
        ) as info:
            decompress(bomb, "x.xml.gz", open_size, limits)
        assert "--max-metadata-size" in str(info.value)
    with pytest.raises(MirrorIntegrityError, match="unpacks to more than 50000 bytes"):
        decompress(bomb, "x.xml.gz", None, UnpackLimits(max_bytes=50_000, max_ratio=10**6))
    assert unpack_bound(10, None, UnpackLimits(max_bytes=500, max_ratio=100)) == 500
    assert unpack_bound(10, 20, limits) == 20


@pytest.mark.parametrize(
    ("suffix", "pack"),
    [(".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)],
)
def test_every_compression_is_unpacked_in_bounded_steps(
    suffix: str, pack: Callable[[bytes], bytes]
) -> None:
    # 2 MB (more than one step), about as compressible as a real primary.xml
    text = (
        b"<metadata>"
        + b"".join(f'<p n="{i * 7919 % 100003}"/>'.encode() for i in range(150_000))
        + b"</metadata>"
    )
    assert decompress(pack(text), "p.xml" + suffix, None, UnpackLimits()) == text
    bomb = pack(b" " * 3_000_000)
    with pytest.raises(MirrorIntegrityError, match=f"unpacks to more than {100 * len(bomb)} "):
        decompress(bomb, "p.xml" + suffix, None, UnpackLimits())
    with pytest.raises(MirrorIntegrityError, match="the metadata cannot be unpacked"):
        decompress(b"\x00garbage" * 10, "p.xml" + suffix, None, UnpackLimits())


def test_rollback_and_freeze_decisions() -> None:
    held = parse_repomd(repomd("200", 5000), "u")
    older_rev = parse_repomd(repomd("100", 6000), "u")
    older_ts = parse_repomd(repomd("300", 4000), "u")
    newer = parse_repomd(repomd("300", 6000), "u")
    for bad in (older_rev, older_ts):
        with pytest.raises(MirrorIntegrityError, match="rollback refused"):
            check_update(bad, held, now=6000, max_age_seconds=100, where="u")
    check_update(newer, held, now=6050, max_age_seconds=100, where="u")
    check_update(held, held, now=5000, max_age_seconds=100, where="u")
    with pytest.raises(
        MirrorIntegrityError, match="freeze refused: the upstream metadata is 101 seconds old"
    ):
        check_update(newer, held, now=6101, max_age_seconds=100, where="u")


def test_plan_reuses_verified_and_deletes_unreferenced() -> None:
    a = FileSpec("Packages/a.rpm", 1, "sha256", "1")
    b = FileSpec("Packages/b.rpm", 1, "sha256", "2")
    plan = plan_sync([a, b], {a}, {"Packages/a.rpm", "Packages/old.rpm", "repodata/repomd.xml"})
    assert plan.reuse == (a,) and plan.fetch == (b,) and plan.delete == ("Packages/old.rpm",)


def test_replaced_generations_are_carried_for_the_keep_window() -> None:
    old = ReplacedGeneration(
        "1", 1000.0, frozenset({"repodata/1-primary.xml.gz", "Packages/a.rpm", "Packages/gone.rpm"})
    )
    newer = ReplacedGeneration(
        "2",
        5000.0,
        frozenset({"repodata/2-primary.xml.gz", "Packages/a.rpm", "repodata/repomd.xml"}),
    )
    assert live_replaced([old, newer], now=5000.0, keep_seconds=4001) == [old, newer]
    assert live_replaced([old, newer], now=5000.0, keep_seconds=4000) == [newer]
    assert live_replaced([old, newer], now=5000.0, keep_seconds=0) == []
    # a path the new metadata names again is the new file; repomd.xml is always the new one
    assert carried_files([old, newer], {"Packages/a.rpm", "repodata/3-primary.xml.gz"}) == {
        "repodata/1-primary.xml.gz",
        "Packages/gone.rpm",
        "repodata/2-primary.xml.gz",
    }
    # an old file where the new tree has a folder, or inside a new file, is not carried
    odd = ReplacedGeneration("3", 5000.0, frozenset({"Packages/X.rpm", "Packages/Y.rpm/y.rpm"}))
    assert carried_files([odd], {"Packages/X.rpm/x.rpm", "Packages/Y.rpm"}) == set()


def test_mirrors_toml_is_validated() -> None:
    ok = parse_mirrors('[[mirror]]\nname="A"\nurl="http://a/x"\nregion="de"\ncontact="c"\n', "f")
    assert ok[0].url == "http://a/x/" and ok[0].region == "DE"
    assert ok[0].repo_url("el7", "x86_64") == "http://a/x/repo/el7/x86_64/"
    with pytest.raises(MirrorError, match="missing: contact; unknown: mail"):
        parse_mirrors('[[mirror]]\nname="A"\nurl="http://a/"\nregion="DE"\nmail="c"\n', "f")
    with pytest.raises(MirrorError, match="not a two-letter country code"):
        parse_mirrors('[[mirror]]\nname="A"\nurl="http://a/"\nregion="Europe"\ncontact="c"\n', "f")
    with pytest.raises(MirrorError, match="used twice"):
        parse_mirrors('[[mirror]]\nname="A"\nurl="http://a/"\nregion="DE"\ncontact="c"\n' * 2, "f")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1/", r"is not a valid URL \(Invalid IPv6 URL\)"),
        ("http://mirror.example:99999/", r"is not a valid URL \(Port out of range"),
        ("ftp://mirror.example/", r"is not http\(s\)"),
        ("mirror.example/perfsonar/", r"is not http\(s\)"),
        ("http:///perfsonar/", r"names no host"),
        ("http://mirror example/", r"contains a space or control character"),
        ("https://mirror.example/p/?x=1", r"has a query or fragment"),
    ],
)
def test_mirror_urls_are_checked(url: str, problem: str) -> None:
    text = f'[[mirror]]\nname="A"\nurl="{url}"\nregion="DE"\ncontact="c"\n'
    with pytest.raises(
        MirrorError,
        match=r"^mirror/mirrors\.toml \[\[mirror\]\] #1: the url "
        r"of 'A' " + problem,
    ) as info:
        parse_mirrors(text, "mirror/mirrors.toml")
    assert "hint: give the base URL" in str(info.value)
    ok = parse_mirrors(text.replace(url, "http://[::1]:8080/perfsonar"), "f")
    assert ok[0].url == "http://[::1]:8080/perfsonar/"


def test_the_shipped_mirror_list_parses() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "mirror" / "mirrors.toml"
    mirrors = parse_mirrors(path.read_text(), str(path))
    assert len(mirrors) >= 2 and all(m.contact for m in mirrors)


def test_classify() -> None:
    master_bytes = repomd("300", 7200)
    master = parse_repomd(master_bytes, "m")
    assert classify(master, master_bytes, Observation(repomd=master_bytes), "u").status == "fresh"
    stale = classify(master, master_bytes, Observation(repomd=repomd("200", 3600)), "u")
    assert (stale.status, stale.behind_seconds, stale.revision) == ("stale", 3600, "200")
    assert stale.detail == "1 h behind the master (revision 200 vs 300)"
    assert classify(master, master_bytes, Observation(down="x"), "u").status == "down"
    assert (
        classify(master, master_bytes, Observation(bad_signature="y"), "u").status
        == "bad-signature"
    )
    assert overall(["fresh", "stale", "down"]) == "down"


def test_metalink_lists_hashes_alternates_and_urls() -> None:
    old = digest_repomd(b"old", 100)
    cur = digest_repomd(b"new", 200)
    history, alternates = update_history([old], cur, now=1000, keep_seconds=50)
    assert alternates == [history[1]] and history[1].superseded_at == 1000
    _, later = update_history(history, cur, now=1051, keep_seconds=50)
    assert later == []
    text = render_metalink(
        cur, alternates, [Resource("http://m/r/repodata/repomd.xml", "DE", 100)], generated=1000
    )
    root = ET.fromstring(text)
    ns = {"m": "http://www.metalinker.org/", "mm0": "http://fedorahosted.org/mirrormanager"}
    f = root.find("m:files/m:file", ns)
    assert f is not None and f.get("name") == "repomd.xml"
    assert f.findtext("m:size", namespaces=ns) == "3"
    assert f.findtext("m:verification/m:hash[@type='sha256']", namespaces=ns) == cur.sha256
    alt = f.findall("mm0:alternates/mm0:alternate", ns)
    assert [a.findtext("m:verification/m:hash[@type='sha256']", namespaces=ns) for a in alt] == [
        old.sha256
    ]
    url = f.find("m:resources/m:url", ns)
    assert url is not None and url.text == "http://m/r/repodata/repomd.xml"
    assert url.get("location") == "DE" and url.get("preference") == "100"
    assert render_mirrorlist(["http://a/", "http://b/"]) == "http://a/\nhttp://b/\n"


def test_gzip_of_several_members_is_unpacked_whole() -> None:
    """A gzip file may be several members one after the other (RFC 1952); the
    publisher writes primary.xml.gz that way, and dnf reads every member."""
    parts = [b"<metadata>", b"<package/>" * 1000, b"</metadata>"]
    data = b"".join(gzip.compress(p) for p in parts)
    assert decompress(data, "primary.xml.gz", None, UnpackLimits()) == b"".join(parts)
    # the bound still holds over all members together
    with pytest.raises(MirrorIntegrityError, match="unpacks to more than"):
        decompress(data, "primary.xml.gz", None, UnpackLimits(max_bytes=5000, max_ratio=10**6))
