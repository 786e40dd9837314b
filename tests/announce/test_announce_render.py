"""The pure parts of announcements: plain text, rendering, PGP/MIME bytes, mbox."""

from __future__ import annotations

import hashlib
import mailbox
import re
from pathlib import Path

import pytest

from repotool.announce.archive import ArchiveEntry, mbox_bytes
from repotool.announce.pgpmime import assemble, signed_part, signed_parts
from repotool.announce.plaintext import markdown_to_text
from repotool.announce.render import (
    Links,
    long_lines,
    parse_media_list,
    render_advisory,
    render_release,
)
from repotool.errors import AnnounceError, MediaListMissingError, NothingToAnnounceError
from repotool.media.manifest import MediaManifest
from repotool.media.plan import ImageRecord, manifest_json, media_names
from repotool.records.loading import load_records
from repotool.records.models import Records

CONTENT = Path(__file__).resolve().parents[2] / "web" / "content"
FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
LINKS = Links(
    site_url="https://www.example.org",
    download_url="https://downloads.example.org/toolkit",
    key_name="RPM-GPG-KEY-perfsonar",
    list_name="perfsonar-announce",
    product="pS-Performance Toolkit",
)


@pytest.fixture(scope="module")
def records() -> Records:
    return load_records(CONTENT)


def _only_unbreakable(lines: list[str]) -> list[str]:
    """Lines over 72 columns that are more than one word (which would be a defect)."""
    return [ln for ln in lines if len(ln.split()) > 1]


def test_markdown_lists_and_code_keep_structure_and_width() -> None:
    md = (
        "Intro paragraph " + "word " * 30 + "\n\n"
        "1. First step, which is long enough to need wrapping onto a second line "
        "of text here:\n\n"
        "   ```\n   yum update perfsonar-toolkit-ntp\n   ```\n\n"
        "2. Run `service ntpd restart` now.\n\n"
        "See <https://example.org/" + "x" * 80 + ">.\n"
    )
    text = markdown_to_text(md)
    lines = text.splitlines()
    assert "1. First step, which is long enough to need wrapping onto a second line" in lines
    assert "   of text here:" in lines
    # the command is indented under its list item and never wrapped
    assert "       yum update perfsonar-toolkit-ntp" in lines
    assert "2. Run `service ntpd restart` now." in lines
    assert _only_unbreakable(long_lines(text)) == []
    assert any(len(ln) > 72 for ln in lines)  # the long URL stands alone, unbroken


def test_advisory_message_says_what_who_and_how(records: Records) -> None:
    adv = records.advisory("PSSA-2014-0001")
    assert adv is not None
    ann = render_advisory(adv, LINKS, FPR)
    assert ann.subject == (
        "[perfsonar-announce] PSSA-2014-0001 (Moderate): NTP amplification: toolkit hosts "
        "answered monlist queries (CVE-2013-5211)"
    )
    lines = ann.text.splitlines()
    assert "Who is affected" in lines and "What to do" in lines
    assert "Affected: pS-Performance Toolkit 3.3, 3.3.1" in lines
    assert "  https://www.example.org/advisories/PSSA-2014-0001/" in lines
    # the exact steps and configuration lines, as commands to type
    assert "    yum update perfsonar-toolkit-ntp" in lines
    assert "    restrict default kod nomodify notrap nopeer noquery" in lines
    assert "  el7: perfsonar-toolkit-ntp-3.3.2-1.el7.noarch" in lines
    assert "  0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567" in lines
    assert "  https://downloads.example.org/toolkit/keys/RPM-GPG-KEY-perfsonar" in lines
    assert long_lines(ann.text) == []


def test_every_real_record_fits_72_columns(records: Records) -> None:
    for adv in records.advisories:
        assert _only_unbreakable(long_lines(render_advisory(adv, LINKS, FPR).text)) == []
    for rel in records.releases:
        for version in (rel.version, *(r.version for r in rel.respins)):
            text = render_release(records, version, None, LINKS, FPR).text
            assert _only_unbreakable(long_lines(text)) == [], version


def _media(version: str, data: bytes) -> str:
    """media.json as the media stage writes it (its own writer, so shapes agree)."""
    names = media_names(
        prefix="pS-Performance_Toolkit",
        version_label=version,
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    digest = hashlib.sha256(data).hexdigest()
    return manifest_json(
        names=names,
        product="pS-Performance Toolkit",
        source_date_epoch=1397131200,
        images=[
            ImageRecord("livecd", names.livecd, len(data), digest),
            ImageRecord("liveusb", names.liveusb, len(data), digest),
        ],
        kernel="6.1.0",
        base="busybox",
        packages=["perfsonar-toolkit"],
    )


def test_respin_lists_media_with_checksums(records: Records) -> None:
    digest = hashlib.sha256(b"iso").hexdigest()
    media = parse_media_list(_media("3.3.2-2", b"iso"), where="media.json", version="3.3.2-2")
    ann = render_release(records, "3.3.2-2", media, LINKS, FPR)
    assert ann.subject == "[perfsonar-announce] pS-Performance Toolkit 3.3.2-2: new live media"
    lines = ann.text.splitlines()
    assert "- pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso (livecd, 3 bytes)" in lines
    assert lines.count(f"  {digest}") == 2
    assert (
        "  https://downloads.example.org/toolkit/releases/3.3.2-2/"
        "pS-Performance_Toolkit-3.3.2-2-LiveUSB-x86_64.img" in lines
    )
    assert '- PSSA-2014-0002 (Critical): OpenSSL "Heartbleed": regenerate the host' in lines
    assert "  https://www.example.org/releases/3.3.2/#respin-3.3.2-2" in lines


def test_release_without_media_says_so(records: Records) -> None:
    text = render_release(records, "3.3.2", None, LINKS, FPR).text
    assert "The live media of 3.3.2 are not published yet" in text
    assert "SHA-256:" not in text
    # hosts keep metadata for hours: the upgrade steps refresh it first
    lines = [ln.strip() for ln in text.splitlines()]
    assert lines.index("yum clean expire-cache") + 1 == lines.index("yum update")


def test_media_list_for_another_version_or_without_checksum_is_refused() -> None:
    with pytest.raises(MediaListMissingError, match=re.escape("for version '3.3.2-2', not 3.3.2")):
        parse_media_list(_media("3.3.2-2", b"x"), where="m.json", version="3.3.2")
    bad = _media("3.3.2", b"x").replace(hashlib.sha256(b"x").hexdigest(), "abc")
    with pytest.raises(MediaListMissingError, match=r"image #1 lacks .* 64-digit SHA-256") as e:
        parse_media_list(bad, where="m.json", version="3.3.2")
    assert e.value.where == "m.json"
    assert e.value.hint == "rebuild the media with: repotool media build 3.3.2"


def test_unknown_advisory_and_release_name_the_known_ones(records: Records) -> None:
    from repotool.announce.render import find_advisory, find_release

    with pytest.raises(NothingToAnnounceError) as e:
        find_advisory(records, "PSSA-2099-0001", where="web/content")
    assert "known advisories: PSSA-2014-0001, PSSA-2014-0002" in str(e.value)
    with pytest.raises(NothingToAnnounceError, match=re.escape("3.3.2, 3.3.2-2")):
        find_release(records, "3.3.2-9", where="web/content")
    with pytest.raises(NothingToAnnounceError):
        render_release(records, "9.9", MediaManifest("9.9", (), "S", "S.asc"), LINKS, FPR)


def test_signed_part_is_7bit_crlf_and_safe_for_mbox() -> None:
    part = signed_part("From here on\ntrailing space \nh\u00e9\n-- \n")
    assert b"\n" not in part.replace(b"\r\n", b"")
    body = part.split(b"\r\n\r\n", 1)[1]
    assert body == b"=46rom here on\r\ntrailing space=20\r\nh=C3=A9\r\n--=20\r\n"
    assert max(part) < 128


def test_signed_parts_takes_back_exactly_what_was_signed() -> None:
    part = signed_part("Hello list\n")
    sig = b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
    msg = assemble([("Subject", "t"), ("To", "a@b")], part, sig, "=-b0undary")
    got_part, got_sig = signed_parts(msg)
    assert got_part == part
    assert got_sig.replace(b"\r\n", b"\n") == sig
    # the same with the line ends an mbox file has
    assert signed_parts(msg.replace(b"\r\n", b"\n"))[0] == part
    with pytest.raises(AnnounceError, match="boundary occurs inside"):
        assemble([], part + b"--=-b0undary\r\n", sig, "=-b0undary")


def test_mbox_escapes_from_lines_and_reads_back(tmp_path: Path) -> None:
    raw = b"Message-ID: <1@x>\r\nSubject: s\r\n\r\nFrom the list\r\n>From quoted\r\n"
    entry = ArchiveEntry("<1@x>", "s", "2014-04-10T12:00:00Z", "advisory", "X", "a.eml")
    data = mbox_bytes([(entry, raw), (entry, raw.replace(b"<1@", b"<2@"))], "rel@x")
    assert data.startswith(b"From rel@x Thu Apr 10 12:00:00 2014\n")
    assert b"\n>From the list\n>>From quoted\n" in data
    path = tmp_path / "a.mbox"
    path.write_bytes(data)
    box = mailbox.mbox(str(path))
    try:
        assert [m["Message-ID"] for m in box] == ["<1@x>", "<2@x>"]
    finally:
        box.close()


def test_headers_are_7bit_encoded_words_that_read_back_and_refuse_line_breaks() -> None:
    import email
    import email.policy

    from repotool.announce.headers import header_lines

    headers = [
        ("From", "Café Toolkit <release@example.org>"),
        ("Subject", "Café"),
        ("List-Id", "pS-Performance Toolkit announcements <announce.example.org>"),
        ("Content-Type", 'multipart/signed; protocol="application/pgp-signature"; ' + "x" * 60),
    ]
    raw = header_lines(headers)
    assert raw.startswith(b"From: =?utf-8?q?Caf=C3=A9_Toolkit?=\r\n <release@example.org>\r\n")
    assert b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n" in raw
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    msg = email.message_from_bytes(raw + b"\r\n", policy=email.policy.default)
    for name, value in headers:
        assert msg[name] == value
    for bad in ("a\r\nBcc: x@y", "a\nb", "a\x00", "a\u202eb", "a\u2028b"):
        with pytest.raises(AnnounceError, match="control character"):
            header_lines([("Subject", bad)])
