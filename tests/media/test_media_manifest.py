"""media.json read back (repotool.media.manifest) from what its writer (plan.py) writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from repotool.media.manifest import ManifestError, MediaImage, MediaManifest, parse_manifest
from repotool.media.plan import ImageRecord, manifest_json, media_names

WHERE = "public/releases/3.3.2-2/media.json"


def _written() -> str:
    n = media_names(
        prefix="pS-Performance_Toolkit",
        version_label="3.3.2-2",
        arch="x86_64",
        volume_label="pS-Toolkit",
    )
    return manifest_json(
        names=n,
        product="pS-Performance Toolkit",
        source_date_epoch=1397131200,
        images=[
            ImageRecord("livecd", n.livecd, 10, "c" * 64),
            ImageRecord("liveusb", n.liveusb, 10, "c" * 64),
        ],
        kernel="6.1.0",
        base="busybox",
        packages=["perfsonar-toolkit"],
    )


def _with(**changes: Any) -> bytes:
    doc = json.loads(_written())
    doc.update(changes)
    return json.dumps(doc).encode()


def _image(**changes: Any) -> bytes:
    img = {"kind": "livecd", "name": "a.iso", "size": 10, "sha256": "c" * 64, **changes}
    return _with(images=[img])


def test_what_the_writer_writes_reads_back() -> None:
    text = _written()
    expected = MediaManifest(
        version="3.3.2-2",
        images=(
            MediaImage("livecd", "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso", 10, "c" * 64),
            MediaImage(
                "liveusb", "pS-Performance_Toolkit-3.3.2-2-LiveUSB-x86_64.img", 10, "c" * 64
            ),
        ),
        checksums="SHA256SUMS",
        signature="SHA256SUMS.asc",
        date="2014-04-10T12:00:00Z",
    )
    assert parse_manifest(text.encode(), WHERE) == expected
    assert parse_manifest(text, WHERE) == expected


def test_absent_checksums_signature_and_kind_take_their_defaults() -> None:
    doc = json.loads(_written())
    del doc["checksums"], doc["signature"], doc["date"], doc["images"][0]["kind"]
    m = parse_manifest(json.dumps(doc).encode(), WHERE)
    assert (m.checksums, m.signature, m.date) == ("SHA256SUMS", "SHA256SUMS.asc", "")
    assert m.images[0].kind == ""


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (
            b"{",
            "not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            b"\xff{}",
            "not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte",
        ),
        (b"[]", "media.json has no 'images' list"),
        (b'{"images": {}}', "media.json has no 'images' list"),
        (_with(images=[]), "media.json names no images"),
        (
            _with(images=["a.iso"]),
            "image #1 lacks a name, a size and a SHA-256: it is not a JSON object",
        ),
        (
            _image(name="../x.iso"),
            "image #1 lacks a plain file name: '../x.iso' is not a name beside media.json",
        ),
        (
            _image(name=".."),
            "image #1 lacks a plain file name: '..' is not a name beside media.json",
        ),
        (
            _image(name=None),
            "image #1 lacks a plain file name: None is not a name beside media.json",
        ),
        (_image(size="10"), "image #1 lacks an integer size: '10'"),
        (_image(size=True), "image #1 lacks an integer size: True"),
        (
            _image(sha256="C" * 64),
            f"image #1 lacks a 64-digit SHA-256 (lower-case hex): '{'C' * 64}'",
        ),
        (_image(sha256="abc"), "image #1 lacks a 64-digit SHA-256 (lower-case hex): 'abc'"),
        (_with(version=3.3), "media.json has no 'version' string: 3.3"),
        (
            _with(checksums="../SHA256SUMS"),
            "'checksums' is '../SHA256SUMS', not a plain file name beside media.json",
        ),
        (_with(signature=["x"]), "'signature' is ['x'], not a plain file name beside media.json"),
    ],
)
def test_anything_else_is_refused_with_what_and_where(data: bytes, what: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, WHERE)
    assert info.value.what == what
    assert info.value.where == WHERE
    assert isinstance(info.value, ValueError)
    assert str(info.value) == f"{WHERE}: {what}"
