"""repotool mirror sync against hostile or odd upstreams on 127.0.0.1: metadata that is
validly signed by the pinned key yet malicious or unusual, an upstream that stopped
updating, and things planted in the mirror's own working folders."""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from repotool.cli import main
from repotool.errors import MirrorError, MirrorIntegrityError
from repotool.mirror.memory_fetch import MemoryFetcher
from repotool.mirror.sync_plan import UnpackLimits
from tests.mirror.mirror_fixtures import (
    DAY,
    FaultServer,
    Repos,
    do_sync,
    files_of,
    serve,
    signed_repo,
    tree_snapshot,
)

served = contextmanager(serve)
RPM = b"not really an rpm, but the sync only checks size and sha256\n" * 50


def test_the_same_rpm_at_two_paths_is_fetched_once_and_linked(
    mirror_repos: Repos, tmp_path: Path
) -> None:
    up = signed_repo(
        tmp_path / "up",
        mirror_repos,
        [("Packages/a/x.rpm", RPM), ("Packages/b/x.rpm", RPM), ("Packages/y.rpm", RPM[:-1])],
    )
    dest = tmp_path / "el7"
    with served(up) as server:
        result = do_sync(server.url, dest, mirror_repos.key, tmp_path)
        fetched = sorted(r.path for r in server.state.log if r.path.endswith(".rpm"))
    assert result.changed and result.fetched == 3  # the primary and two distinct contents
    assert len(fetched) == 2 and fetched[1] == "Packages/y.rpm"
    a, b = dest / "Packages/a/x.rpm", dest / "Packages/b/x.rpm"
    assert a.read_bytes() == b.read_bytes() == RPM
    assert a.stat().st_ino == b.stat().st_ino


def test_a_path_that_is_also_a_folder_is_refused_clearly(
    mirror_repos: Repos, tmp_path: Path
) -> None:
    up = signed_repo(
        tmp_path / "up", mirror_repos, [("Packages/X.rpm", RPM), ("Packages/X.rpm/x.rpm", RPM)]
    )
    dest = tmp_path / "el7"
    with served(up) as server:
        with pytest.raises(
            MirrorIntegrityError,
            match=r"lists Packages/X\.rpm both as a file and as the folder of "
            r"Packages/X\.rpm/x\.rpm",
        ) as info:
            do_sync(server.url, dest, mirror_repos.key, tmp_path)
        assert info.value.where == server.url + "repodata/repomd.xml"
    assert not dest.exists()


@pytest.mark.parametrize(
    ("href", "char"),
    [
        ("Packages/a\nb.rpm", "000A"),
        ("Packages/a\rb.rpm", "000D"),
        ("Packages/a\x85b.rpm", "0085"),  # NEL, allowed in XML 1.0
        ("Packages/a\u2028b.rpm", "2028"),  # line separator
        ("Packages/evil\u202egpj.rpm", "202E"),  # right-to-left override
        ("Packages/a\x7fb.rpm", "007F"),
    ],
)
def test_control_characters_in_a_location_are_refused(
    mirror_repos: Repos, tmp_path: Path, href: str, char: str
) -> None:
    """Table-driven through the in-memory fake (no socket needed); the newline case
    also goes through the loopback server below."""
    up = signed_repo(tmp_path / "up", mirror_repos, [(href, RPM)])
    fake = MemoryFetcher(files_of(up, "http://up.invalid/"))
    dest = tmp_path / "el7"
    with pytest.raises(
        MirrorIntegrityError,
        match=f"the location of a file contains the control character U\\+{char}",
    ):
        do_sync("http://up.invalid/", dest, mirror_repos.key, tmp_path, given=fake)
    assert not dest.exists()
    assert not any(r.url.endswith(".rpm") for r in fake.log)


def test_a_newline_in_a_package_file_name_never_reaches_the_disk(
    mirror_repos: Repos, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = signed_repo(tmp_path / "up", mirror_repos, [("Packages/a\nb.rpm", RPM)])
    dest = tmp_path / "el7"
    with served(up) as server:
        argv = ["mirror", "sync", server.url, str(dest), "--key", str(mirror_repos.key), "-q"]
        assert main(argv) == 11
    err = capsys.readouterr().err
    assert "contains the control character U+000A: 'Packages/a\\nb.rpm'" in err
    assert not dest.exists()
    assert not [p for p in tmp_path.rglob("*") if "\n" in p.name and "up" not in p.parts]


@pytest.mark.parametrize("size", ["-1", "12abc"])
def test_a_negative_or_bad_size_is_refused(mirror_repos: Repos, tmp_path: Path, size: str) -> None:
    primary = (
        '<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">'
        '<package type="rpm"><name>a</name>'
        f'<checksum type="sha256" pkgid="YES">{"a" * 64}</checksum>'
        f'<size package="{size}"/><location href="Packages/a.rpm"/></package></metadata>'
    ).encode()
    up = signed_repo(tmp_path / "up", mirror_repos, [], primary=primary)
    fake = MemoryFetcher(files_of(up, "http://up.invalid/"))
    with pytest.raises(
        MirrorIntegrityError, match=r"package size is (negative|not a whole number)"
    ):
        do_sync("http://up.invalid/", tmp_path / "el7", mirror_repos.key, tmp_path, given=fake)


BOMB_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def bomb_primary() -> bytes:
    """A primary that unpacks to 16 MiB (gzip: about 16 KB), well-formed XML so far."""
    return b'<metadata xmlns="http://linux.duke.edu/metadata/common">' + b" " * BOMB_BYTES


@pytest.mark.parametrize("open_size", [-1, None, 10**12])
def test_a_decompression_bomb_stops_early_whatever_open_size_says(
    mirror_repos: Repos, tmp_path: Path, bomb_primary: bytes, open_size: int | None
) -> None:
    up = signed_repo(tmp_path / "up", mirror_repos, [], primary=bomb_primary, open_size=open_size)
    packed = next((up / "repodata").glob("*-primary.xml.gz")).stat().st_size
    dest = tmp_path / "el7"
    if open_size == -1:
        with pytest.raises(MirrorIntegrityError, match="open-size is negative: -1"):
            do_sync_served(up, dest, mirror_repos, tmp_path)
        return
    with pytest.raises(
        MirrorIntegrityError,
        match=rf"unpacks to more than {100 * packed} bytes \(at most 1073741824 bytes and "
        rf"100 times its {packed} compressed bytes\)",
    ):
        do_sync_served(up, dest, mirror_repos, tmp_path)
    assert not dest.exists()
    # an operator's smaller cap wins over the ratio
    with pytest.raises(MirrorIntegrityError, match="unpacks to more than 1000 bytes"):
        do_sync_served(up, dest, mirror_repos, tmp_path, UnpackLimits(max_bytes=1000))


def do_sync_served(
    up: Path, dest: Path, repos: Repos, tmp: Path, unpack: UnpackLimits | None = None
) -> None:
    with served(up) as server:
        do_sync(server.url, dest, repos.key, tmp, unpack=unpack)


@pytest.mark.parametrize("how", ["304", "same bytes"])
def test_an_upstream_that_stopped_updating_is_reported_on_every_run(
    fault_server: FaultServer,
    mirror_repos: Repos,
    tmp_path: Path,
    how: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "el7"
    if how == "same bytes":
        fault_server.state.faults["repomd.xml"] = "no-etag"
    start = time.time()
    assert do_sync(fault_server.url, dest, mirror_repos.key, tmp_path).changed
    before, target = tree_snapshot(dest), os.readlink(dest)
    # the same upstream, unchanged, a day later: fine; eight days later: stale
    fault_server.state.log.clear()
    assert not do_sync(
        fault_server.url, dest, mirror_repos.key, tmp_path, now=lambda: start + DAY
    ).changed
    assert fault_server.state.log[0].status == (304 if how == "304" else 200)
    with pytest.raises(
        MirrorIntegrityError,
        match=r"stale upstream: its repomd\.xml is unchanged \(revision \d+\) and \d+ seconds "
        r"old \(newest timestamp \d+\), more than the allowed 604800",
    ) as info:
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path, now=lambda: start + 8 * DAY)
    assert info.value.where == fault_server.url + "repodata/repomd.xml"
    assert "DEST still serves that revision" in str(info.value)
    assert tree_snapshot(dest) == before and os.readlink(dest) == target
    # from cron: the exit status says so, on every run
    argv = ["mirror", "sync", fault_server.url, str(dest), "--key", str(mirror_repos.key), "-q"]
    assert main([*argv, "--max-age", "60"]) == 11
    assert "stale upstream" in capsys.readouterr().err
    assert main([*argv, "--max-age", "60"]) == 11
    assert main(argv) == 0


def _planted_folder(dest: Path) -> Path:
    staging = dest.parent / f".{dest.name}.repotool" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def test_a_symlink_planted_in_staging_is_refused_not_published(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    before, target = tree_snapshot(dest), os.readlink(dest)
    fault_server.state.root = mirror_repos.gen2
    # a link to a file with the right bytes: it would verify, and be published as a link
    planted = _planted_folder(dest) / "Packages" / "mt-delta-1.0-1.noarch.rpm"
    planted.parent.mkdir()
    planted.symlink_to(mirror_repos.gen2 / "Packages" / planted.name)
    with pytest.raises(MirrorError, match="a symbolic link in a mirror's working folders") as info:
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert info.value.where == str(planted)
    assert tree_snapshot(dest) == before and os.readlink(dest) == target
    planted.unlink()
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_a_symlinked_folder_in_staging_is_never_written_through(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "el7"
    (_planted_folder(dest) / "Packages").symlink_to(outside)
    with pytest.raises(MirrorError, match="a symbolic link in a mirror's working folders"):
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert list(outside.iterdir()) == []
    assert not dest.exists()


def test_a_symlink_planted_as_a_partial_download_is_not_followed(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    dest = tmp_path / "el7"
    do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    fault_server.state.root = mirror_repos.gen2
    partial = dest.parent / ".el7.repotool" / "partial"
    partial.mkdir(exist_ok=True)
    rpm = mirror_repos.gen2 / "Packages" / "mt-delta-1.0-1.noarch.rpm"
    planted = partial / f"sha256-{hashlib.sha256(rpm.read_bytes()).hexdigest()}"
    planted.symlink_to(victim)
    with pytest.raises(MirrorError, match="a symbolic link in a mirror's working folders"):
        do_sync(fault_server.url, dest, mirror_repos.key, tmp_path)
    assert victim.read_bytes() == b"precious"


def test_a_file_that_becomes_a_folder_and_back_between_generations(
    mirror_repos: Repos, tmp_path: Path
) -> None:
    """Valid but odd: each generation is consistent, the next one turns a file into a
    folder (or back), after a failed run left staging behind and while the replaced
    generation's files are kept for hosts that still hold its repomd.xml."""
    now = int(time.time())
    gens = {
        name: signed_repo(tmp_path / name, mirror_repos, packages, timestamp=now - age)
        for name, packages, age in (
            ("a", [("Packages/X.rpm", RPM)], 400),
            ("b", [("Packages/X.rpm/x.rpm", RPM[:-2])], 300),
            ("c", [("Packages/X.rpm", RPM[:-3])], 200),
            ("d", [("Packages/X.rpm/x.rpm", RPM[:-4])], 100),
        )
    }
    dest = tmp_path / "el7"
    with served(gens["a"]) as server:
        do_sync(server.url, dest, mirror_repos.key, tmp_path)
        server.state.root = gens["b"]
        server.state.faults["x.rpm"] = "corrupt"  # leaves staging/Packages/X.rpm/ behind
        with pytest.raises(MirrorIntegrityError, match="checksum mismatch"):
            do_sync(server.url, dest, mirror_repos.key, tmp_path)
        server.state.faults.clear()
        server.state.root = gens["c"]
        assert do_sync(server.url, dest, mirror_repos.key, tmp_path).changed
        assert (dest / "Packages" / "X.rpm").read_bytes() == RPM[:-3]
        server.state.root = gens["d"]
        assert do_sync(server.url, dest, mirror_repos.key, tmp_path).changed
    assert (dest / "Packages" / "X.rpm" / "x.rpm").read_bytes() == RPM[:-4]
    # c's Packages/X.rpm cannot be kept beside d's folder of that name; the primaries
    # of a and c (replaced within the keep window) are
    snap = tree_snapshot(dest)
    assert sorted(p for p in snap if p.startswith("Packages/")) == ["Packages/X.rpm/x.rpm"]
    assert len([p for p in snap if p.endswith("-primary.xml.gz")]) == 3


def test_a_symlink_planted_as_the_lock_file_is_not_followed(
    fault_server: FaultServer, mirror_repos: Repos, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    workdir = tmp_path / ".el7.repotool"
    workdir.mkdir()
    (workdir / "lock").symlink_to(victim)
    with pytest.raises(MirrorError, match="a symbolic link in a mirror's working folders"):
        do_sync(fault_server.url, tmp_path / "el7", mirror_repos.key, tmp_path)
    assert victim.read_bytes() == b"precious"
