"""repotool mirror media against a real HTTP server on 127.0.0.1 that injects faults.

The release folder is small (200 KB "images") but real: a SHA256SUMS made like the
media stage makes it, a gpg detached signature by a throwaway key, media.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repotool.cli import main
from repotool.errors import MirrorIntegrityError, MirrorTransportError
from repotool.mirror.fetch import FetchLimits, HttpFetcher
from repotool.mirror.media import MediaSyncResult, sync_media
from repotool.mirror.signature import GpgvVerifier
from repotool.process import SubprocessRunner
from repotool.report import SilentReporter
from tests.mirror.mirror_fixtures import GPG_ENV, FaultServer, _gen_key, serve, tree_snapshot

PRODUCT = "pS-Performance_Toolkit"


@dataclass(frozen=True)
class Keys:
    home: Path
    release: str  #: fingerprint of the release key
    other: str
    key: Path  #: the release key, armored


@pytest.fixture(scope="session")
def media_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    root = tmp_path_factory.mktemp("media-keys")
    home = root / "gnupg"
    home.mkdir(mode=0o700)
    release = _gen_key(home, "Media Test Release <release@localhost>", algo="ed25519")
    other = _gen_key(home, "Someone Else <else@localhost>", algo="ed25519")
    key = root / "key.asc"
    key.write_bytes(
        subprocess.run(
            ["gpg", "--homedir", str(home), "--armor", "--export", release],
            check=True,
            capture_output=True,
            env=GPG_ENV,
        ).stdout
    )
    return Keys(home=home, release=release, other=other, key=key)


def sign(keys: Keys, folder: Path, *, who: str | None = None) -> None:
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(keys.home),
            "--batch",
            "--yes",
            "--local-user",
            who or keys.release,
            "--armor",
            "--output",
            str(folder / "SHA256SUMS.asc"),
            "--detach-sign",
            str(folder / "SHA256SUMS"),
        ],
        check=True,
        capture_output=True,
        env=GPG_ENV,
    )


def publish_label(site: Path, label: str, keys: Keys, *, size: int = 200_000) -> Path:
    """``site/releases/<label>/`` as the media stage publishes it."""
    folder = site / "releases" / label
    folder.mkdir(parents=True)
    iso = f"{PRODUCT}-{label}-LiveCD-x86_64.iso"
    img = f"{PRODUCT}-{label}-LiveUSB-x86_64.img"
    body = hashlib.sha256(label.encode()).digest() * (size // 32)
    (folder / iso).write_bytes(body)
    os.link(folder / iso, folder / img)  # the same bytes, as on the master
    digest = hashlib.sha256(body).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  {iso}\n{digest}  {img}\n")
    sign(keys, folder)
    (folder / "media.json").write_text(
        json.dumps(
            {
                "version": label,
                "date": "2026-11-27T08:00:00Z",
                "kernel": "x",
                "images": [
                    {"kind": "LiveCD", "name": iso, "size": len(body), "sha256": digest},
                    {"kind": "LiveUSB", "name": img, "size": len(body), "sha256": digest},
                ],
                "checksums": "SHA256SUMS",
                "signature": "SHA256SUMS.asc",
            },
            indent=2,
        )
    )
    (folder / "index.html").write_text("<html>download page</html>")
    return folder


def write_api(site: Path, labels: list[str]) -> None:
    (site / "api").mkdir(exist_ok=True)
    (site / "api" / "releases").write_text(
        json.dumps(
            [{"version": label, "media": [{"label": label, "images": []}]} for label in labels]
        )
    )


@pytest.fixture
def site(media_keys: Keys, tmp_path: Path) -> Path:
    root = tmp_path / "site"
    publish_label(root, "3.3.2", media_keys)
    publish_label(root, "3.3.2-2", media_keys)
    write_api(root, ["3.3.2-2", "3.3.2"])
    return root


@pytest.fixture
def server(site: Path) -> Iterator[FaultServer]:
    yield from serve(site)


def do_media(
    server: FaultServer,
    dest: Path,
    keys: Keys,
    tmp: Path,
    labels: list[str] | None = None,
    **options: Any,
) -> MediaSyncResult:
    fetcher = HttpFetcher(FetchLimits())
    try:
        verifier = GpgvVerifier(keys.key, SubprocessRunner(), tmp / "gpgv")
        return sync_media(
            server.url,
            dest,
            labels=labels,
            fetcher=fetcher,
            verifier=verifier,
            reporter=SilentReporter(),
            jobs=2,
            **options,
        )
    finally:
        fetcher.close()


def published(site: Path, label: str) -> dict[str, str]:
    snap = tree_snapshot(site / "releases" / label)
    snap.pop("index.html")  # the site's page is not mirrored
    return snap


def test_mirrors_every_label_and_a_rerun_is_one_request_per_label(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror" / "releases"
    result = do_media(server, dest, media_keys, tmp_path)
    assert result.changed and result.labels == ("3.3.2", "3.3.2-2")
    assert result.fetched == 2  # one download per label: the LiveUSB image is a hard link
    for label in ("3.3.2", "3.3.2-2"):
        assert tree_snapshot(dest / label) == published(site, label)
        done = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=dest / label, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count(": OK") == 2
        iso, img = sorted(p for p in (dest / label).iterdir() if p.suffix in (".iso", ".img"))
        assert iso.stat().st_ino == img.stat().st_ino
    target = os.readlink(dest)

    server.state.log.clear()
    again = do_media(server, dest, media_keys, tmp_path)
    assert not again.changed and again.labels == ("3.3.2", "3.3.2-2")
    assert [(r.path, r.status) for r in server.state.log] == [
        ("api/releases", 200),
        ("releases/3.3.2-2/SHA256SUMS", 304),
        ("releases/3.3.2/SHA256SUMS", 304),
    ]
    assert os.readlink(dest) == target

    server.state.log.clear()
    named = do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    assert not named.changed and named.requests == 1 and named.bytes == 0
    assert named.labels == ("3.3.2", "3.3.2-2")


def test_a_new_respin_reuses_held_images_and_a_dropped_label_goes(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    publish_label(site, "3.3.2-3", media_keys)
    write_api(site, ["3.3.2-3", "3.3.2"])
    server.state.log.clear()
    result = do_media(server, dest, media_keys, tmp_path)
    assert result.updated == ("3.3.2-3",) and result.labels == ("3.3.2", "3.3.2-3")
    assert sorted(p.name for p in dest.iterdir()) == ["3.3.2", "3.3.2-3"]
    # the held label costs one 304; the respin's images are fetched once
    assert [(r.path, r.status) for r in server.state.log if "3.3.2/" in r.path] == [
        ("releases/3.3.2/SHA256SUMS", 304)
    ]
    assert tree_snapshot(dest / "3.3.2-3") == published(site, "3.3.2-3")


def test_a_changed_release_folder_downloads_only_what_changed(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    folder = site / "releases" / "3.3.2"
    # the master re-signs (a new signature, so a new SHA256SUMS.asc) and adds a README
    (folder / "README.txt").write_text("burn the iso\n")
    digest = hashlib.sha256(b"burn the iso\n").hexdigest()
    (folder / "SHA256SUMS").write_text(
        (folder / "SHA256SUMS").read_text() + f"{digest}  README.txt\n"
    )
    sign(media_keys, folder)
    manifest = json.loads((folder / "media.json").read_text())
    manifest["images"].append({"kind": "note", "name": "README.txt", "size": 13, "sha256": digest})
    (folder / "media.json").write_text(json.dumps(manifest))
    server.state.log.clear()
    result = do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    assert result.changed and result.fetched == 1 and result.reused == 1
    assert not any(r.path.endswith((".iso", ".img")) for r in server.state.log)
    assert tree_snapshot(dest / "3.3.2") == published(site, "3.3.2")


def refused(
    server: FaultServer,
    dest: Path,
    keys: Keys,
    tmp: Path,
    error: type[Exception],
    match: str,
    labels: list[str] | None = None,
    **options: Any,
) -> None:
    before = tree_snapshot(dest) if dest.exists() else None
    link = os.readlink(dest) if dest.exists() else None
    with pytest.raises(error, match=match):
        do_media(server, dest, keys, tmp, labels, **options)
    if before is None:
        assert not dest.exists() and not dest.is_symlink()
    else:
        assert tree_snapshot(dest) == before and os.readlink(dest) == link


def test_a_bad_signature_is_refused_before_anything_else_is_fetched(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    folder = site / "releases" / "3.3.2-2"
    sign(media_keys, folder, who=media_keys.other)
    server.state.log.clear()
    refused(
        server,
        dest,
        media_keys,
        tmp_path,
        MirrorIntegrityError,
        r"bad signature: SHA256SUMS\.asc does not verify against the pinned key key\.asc",
    )
    assert not any(
        "3.3.2-2/" in r.path and not r.path.endswith(("SHA256SUMS", "SHA256SUMS.asc"))
        for r in server.state.log
    )
    # a first sync refused leaves no DEST at all
    refused(
        server,
        tmp_path / "fresh",
        media_keys,
        tmp_path,
        MirrorIntegrityError,
        "bad signature",
        labels=["3.3.2-2"],
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            "sha256",
            r"the sha256 of pS-Performance_Toolkit-3\.3\.2-2-LiveCD-x86_64\.iso is 0{64} "
            r"in media\.json but [0-9a-f]{64} in the signed SHA256SUMS",
        ),
        (
            "missing",
            r"pS-Performance_Toolkit-3\.3\.2-2-LiveUSB-x86_64\.img in the signed "
            r"SHA256SUMS but not in media\.json",
        ),
        ("version", r"media\.json is for release '3\.3\.1', not '3\.3\.2-2'"),
    ],
)
def test_media_json_that_disagrees_with_sha256sums_is_refused(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path, change: str, match: str
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    path = site / "releases" / "3.3.2-2" / "media.json"
    manifest = json.loads(path.read_text())
    if change == "sha256":
        manifest["images"][0]["sha256"] = "0" * 64
    elif change == "missing":
        manifest["images"].pop()
    else:
        manifest["version"] = "3.3.1"
    path.write_text(json.dumps(manifest))
    refused(server, dest, media_keys, tmp_path, MirrorIntegrityError, match)


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (
            "truncate",
            MirrorTransportError,
            r"the file is truncated: the server sent 100000 of "
            r"200000 bytes",
        ),
        ("corrupt", MirrorIntegrityError, r"checksum mismatch: sha256 of the download is"),
    ],
)
def test_a_truncated_or_wrong_image_is_refused_and_dest_is_unchanged(
    server: FaultServer,
    site: Path,
    media_keys: Keys,
    tmp_path: Path,
    fault: str,
    error: type[Exception],
    match: str,
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    server.state.faults[f"{PRODUCT}-3.3.2-2-LiveCD-x86_64.iso"] = fault
    refused(server, dest, media_keys, tmp_path, error, match)
    assert sorted(p.name for p in dest.iterdir()) == ["3.3.2"]
    server.state.faults.clear()
    result = do_media(server, dest, media_keys, tmp_path)
    assert result.updated == ("3.3.2-2",)
    assert tree_snapshot(dest / "3.3.2-2") == published(site, "3.3.2-2")


def test_a_dropped_connection_resumes_with_range(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "releases"
    iso = f"{PRODUCT}-3.3.2-LiveCD-x86_64.iso"
    server.state.faults[iso] = "drop"
    refused(
        server,
        dest,
        media_keys,
        tmp_path,
        MirrorTransportError,
        r"the connection dropped after 100000 of 200000 bytes",
        labels=["3.3.2"],
    )
    server.state.faults.clear()
    server.state.log.clear()
    result = do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    assert result.resumed == 1 and result.fetched == 1
    assert [(r.range, r.status) for r in server.state.requests_for(iso)] == [("bytes=100000-", 206)]
    assert tree_snapshot(dest / "3.3.2") == published(site, "3.3.2")


def test_the_cli_mirrors_media_and_reports(
    server: FaultServer,
    site: Path,
    media_keys: Keys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "releases"
    code = main(
        [
            "mirror",
            "media",
            server.url,
            str(dest),
            "--key",
            str(media_keys.key),
            "--label",
            "3.3.2-2",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"] == ["3.3.2-2"] and out["fetched"] == 1
    assert tree_snapshot(dest / "3.3.2-2") == published(site, "3.3.2-2")
    code = main(
        [
            "mirror",
            "media",
            server.url,
            str(dest),
            "--key",
            str(media_keys.key),
            "--label",
            "../etc",
            "--quiet",
        ]
    )
    assert code == 11
    assert "not a release label: '../etc'" in capsys.readouterr().err


def test_what_a_failed_run_staged_for_a_withdrawn_label_is_not_published(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "releases"
    server.state.faults[f"{PRODUCT}-3.3.2-2-LiveCD-x86_64.iso"] = "truncate"
    refused(server, dest, media_keys, tmp_path, MirrorTransportError, "truncated")
    server.state.faults.clear()
    shutil.rmtree(site / "releases" / "3.3.2-2")  # withdrawn by the master
    write_api(site, ["3.3.2"])
    result = do_media(server, dest, media_keys, tmp_path)
    assert result.labels == ("3.3.2",)
    assert [p.name for p in dest.iterdir()] == ["3.3.2"]
    assert tree_snapshot(dest) == {f"3.3.2/{k}": v for k, v in published(site, "3.3.2").items()}


def test_an_unsigned_listing_never_deletes_a_label_only_the_operator_does(
    server: FaultServer,
    site: Path,
    media_keys: Keys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path)
    before, target = tree_snapshot(dest), os.readlink(dest)
    write_api(site, [])  # a hostile or broken master lists nothing
    result = do_media(server, dest, media_keys, tmp_path)
    assert not result.changed and result.removed == ()
    assert result.labels == result.withdrawn == ("3.3.2", "3.3.2-2")
    assert tree_snapshot(dest) == before and os.readlink(dest) == target
    monkeypatch.chdir(tmp_path)
    argv = ["mirror", "media", server.url, str(dest), "--key", str(media_keys.key)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "kept 3.3.2, 3.3.2-2 (no longer listed; --remove to delete)" in out
    assert (
        f"{server.url}api/releases no longer lists 3.3.2; kept, since that list is not signed "
        "(delete it with --remove 3.3.2)" in err
    )
    assert tree_snapshot(dest) == before
    # the operator decides
    assert main([*argv, "--remove", "3.3.2", "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["removed"] == ["3.3.2"] and data["labels"] == ["3.3.2-2"]
    assert sorted(p.name for p in dest.iterdir()) == ["3.3.2-2"]


def test_media_json_sizes_cannot_make_a_download_grow(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    path = site / "releases" / "3.3.2" / "media.json"
    manifest = json.loads(path.read_text())
    for image in manifest["images"]:
        image["size"] = 10**12
    path.write_text(json.dumps(manifest))
    iso = f"{PRODUCT}-3.3.2-LiveCD-x86_64.iso"
    server.state.faults[iso] = "endless"  # up to 64 MB, as long as the client reads
    dest = tmp_path / "releases"
    refused(
        server,
        dest,
        media_keys,
        tmp_path,
        MirrorIntegrityError,
        rf"media\.json gives {iso} a size of 1000000000000 bytes, more than the limit of "
        r"17179869184 bytes for one image",
        labels=["3.3.2"],
    )
    assert server.state.requests_for(iso) == []
    partial = tmp_path / ".releases.repotool" / "partial"
    assert not partial.exists() or list(partial.iterdir()) == []
    # the operator's bound also holds below the real size
    server.state.faults.clear()
    publish_label(site, "3.3.3", media_keys)
    refused(
        server,
        dest,
        media_keys,
        tmp_path,
        MirrorIntegrityError,
        "a size of 200000 bytes, more than the limit of 1000 bytes",
        labels=["3.3.3"],
        max_image_bytes=1000,
    )


@pytest.mark.parametrize("label", ["3.3.2\n", "3.3.2\t", "\u202e3.3.2"])
def test_a_label_with_a_control_character_is_refused(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path, label: str
) -> None:
    dest = tmp_path / "releases"
    do_media(server, dest, media_keys, tmp_path, labels=["3.3.2"])
    write_api(site, ["3.3.2", label])
    refused(server, dest, media_keys, tmp_path, MirrorIntegrityError, "not a release label")
    assert not [p for p in tmp_path.rglob("*") if not p.name.isprintable()]


def test_a_file_name_with_a_control_character_in_sha256sums_is_refused(
    server: FaultServer, site: Path, media_keys: Keys, tmp_path: Path
) -> None:
    folder = site / "releases" / "3.3.2"
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text() + f"{'0' * 64}  evil\tname.iso\n")
    sign(media_keys, folder)
    refused(
        server,
        tmp_path / "releases",
        media_keys,
        tmp_path,
        MirrorIntegrityError,
        r"line 3 of SHA256SUMS names a file that contains the control character U\+0009: "
        r"'evil\\tname\.iso'",
        labels=["3.3.2"],
    )
