"""Names the media stage makes and reads back refuse a trailing newline, control and
bidi characters (issue 12, item 13): such a name becomes a file on disk, an ISO volume
label, a link on the download page and a line in an announcement."""

from __future__ import annotations

import json
from typing import Any

import pytest

from repotool.errors import MediaError
from repotool.media.manifest import ManifestError, parse_manifest
from repotool.media.plan import media_names

WHERE = "public/releases/3.3.2/media.json"
SHA = "c" * 64


def _names(version_label: str, volume_label: str = "pS-Toolkit") -> None:
    media_names(
        prefix="pS-Performance_Toolkit",
        version_label=version_label,
        arch="x86_64",
        volume_label=volume_label,
    )


@pytest.mark.parametrize("label", ["3.3.2\n", "3.3.2-2\n", "3.3.2\r", "3.3.2\x00", "3.3.2\u202e"])
def test_a_version_label_with_a_trailing_newline_or_control_character_is_refused(
    label: str,
) -> None:
    with pytest.raises(MediaError) as e:
        _names(label)
    # the label is shown escaped: the message stays one line
    assert f"{label!r} is not a release label" in str(e.value)
    assert "\n" not in e.value.what
    assert e.value.hint is not None and "3.3.2-2" in e.value.hint


def test_a_volume_label_with_a_newline_is_refused() -> None:
    with pytest.raises(MediaError) as e:
        _names("3.3.2", volume_label="pS-Toolkit\n")
    assert e.value.where == "repotool.toml [media] volume_label"
    assert e.value.what.startswith("the volume label 'pS-Toolkit\\n-3.3.2' is not usable")


def test_good_labels_still_pass() -> None:
    _names("3.3.2")
    _names("3.3.2-2")


def _manifest(**changes: Any) -> bytes:
    image = {"kind": "livecd", "name": "pS-3.3.2-LiveCD-x86_64.iso", "size": 10, "sha256": SHA}
    image.update(changes.pop("image", {}))
    doc: dict[str, Any] = {"version": "3.3.2", "images": [image]}
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("pS-3.3.2-LiveCD\n.iso", "U+000A"),
        ("pS-3.3.2-LiveCD.iso\n", "U+000A"),
        ("pS-3.3.2-LiveCD.iso\r", "U+000D"),
        ("\x1b[31mpS-3.3.2-LiveCD.iso", "U+001B"),
        # a right-to-left override shows "pS-3.3.2-LiveCD-osi.exe" as "...exe.iso"
        ("pS-3.3.2-LiveCD-\u202eosi.exe", "U+202E"),
        ("pS-3.3.2-LiveCD\u2066.iso", "U+2066"),
        ("pS-3.3.2-LiveCD\u200f.iso", "U+200F"),
    ],
)
def test_an_image_name_with_a_control_or_bidi_character_is_refused(name: str, shown: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(_manifest(image={"name": name}), WHERE)
    assert e.value.where == WHERE
    assert e.value.what == (
        f"image #1 lacks a plain file name: {name!r} is not a name beside media.json "
        f"(it holds the control character {shown})"
    )


@pytest.mark.parametrize("key", ["checksums", "signature"])
def test_a_checksums_or_signature_name_with_a_control_character_is_refused(key: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(_manifest(**{key: "SHA256SUMS\n"}), WHERE)
    assert e.value.what == (
        f"'{key}' is 'SHA256SUMS\\n', not a plain file name beside media.json "
        "(it holds the control character U+000A)"
    )


def test_a_sha256_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(_manifest(image={"sha256": SHA + "\n"}), WHERE)
    assert e.value.what == f"image #1 lacks a 64-digit SHA-256 (lower-case hex): {SHA + chr(10)!r}"


def test_plain_names_still_read_back() -> None:
    m = parse_manifest(_manifest(checksums="SHA256SUMS", signature="SHA256SUMS.asc"), WHERE)
    assert [i.name for i in m.images] == ["pS-3.3.2-LiveCD-x86_64.iso"]
    assert (m.checksums, m.signature) == ("SHA256SUMS", "SHA256SUMS.asc")
