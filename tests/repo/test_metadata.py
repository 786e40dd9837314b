"""primary/filelists/other written in gzip members from the index's chunks: the XML is
byte for byte createrepo_c's, every reader reads it, and a publish that adds one
package compresses only that package's block."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import createrepo_c as cr
import pytest

from repotool.repo import metadata
from repotool.repo.index import RepoIndex
from repotool.repo.metadata import KINDS, split_blocks, write_gz, write_metadata
from repotool.repo.packages import RepoPackage, read_package
from tests.conftest import build_rpms

SPEC = """Name: meta
Version: 1.0
Release: 1
Summary: metadata test
License: MIT
BuildArch: noarch
%description
Metadata, with UTF-8: café, Straße.
%package -n meta-two
Summary: the second
Requires: meta = 1.0
%description -n meta-two
second
%install
mkdir -p %{buildroot}/usr/share/meta %{buildroot}/usr/share/meta-two
echo one > %{buildroot}/usr/share/meta/one
echo two > %{buildroot}/usr/share/meta-two/two
%files
/usr/share/meta
%files -n meta-two
/usr/share/meta-two
%changelog
* Tue Jan 28 2014 b <b@b> - 1.0-1
- first
"""


@pytest.fixture(scope="module")
def real_packages(tmp_path_factory: pytest.TempPathFactory) -> list[RepoPackage]:
    rpms = build_rpms({"meta": SPEC}, tmp_path_factory.mktemp("meta"))
    return sorted((read_package(p) for p in rpms), key=lambda p: p.filename)


def _createrepo_c_xml(packages: list[RepoPackage], folder: Path) -> list[bytes]:
    """What createrepo_c's own writers write for these chunks, uncompressed."""
    folder.mkdir()
    none = cr.NO_COMPRESSION
    files = [
        cr.PrimaryXmlFile(str(folder / "primary.xml"), none),
        cr.FilelistsXmlFile(str(folder / "filelists.xml"), none),
        cr.OtherXmlFile(str(folder / "other.xml"), none),
    ]
    for f in files:
        f.set_num_of_pkgs(len(packages))
    for p in packages:
        for f, chunk in zip(files, p.chunks, strict=True):
            f.add_chunk(chunk)
    for f in files:
        f.close()
    return [(folder / f"{kind}.xml").read_bytes() for kind in KINDS]


@pytest.mark.parametrize("count", [0, 2])
def test_the_xml_is_createrepo_c_s_and_repomd_says_what_the_files_hold(
    real_packages: list[RepoPackage], tmp_path: Path, count: int
) -> None:
    packages = real_packages[:count]
    staging = tmp_path / "staging"
    staging.mkdir()
    records = write_metadata(packages, staging, "gz", tmp_path / "blocks.json", tmp_path)
    expected = _createrepo_c_xml(packages, tmp_path / "createrepo_c")
    for rec, kind, xml in zip(records, KINDS, expected, strict=True):
        path = staging / Path(rec.location_href).name
        data = path.read_bytes()
        assert rec.type == kind
        assert rec.location_href == f"repodata/{hashlib.sha256(data).hexdigest()}-{kind}.xml.gz"
        assert gzip.decompress(data) == xml
        # the record as createrepo_c fills it from the file
        filled = cr.RepomdRecord(kind, str(path))
        filled.fill(cr.SHA256)
        assert (rec.checksum, rec.checksum_open, rec.size, rec.size_open) == (
            filled.checksum,
            filled.checksum_open,
            filled.size,
            filled.size_open,
        )
    # createrepo_c's own (zlib gzread) reader reads every member
    seen: list[str] = []

    def package(p: cr.Package) -> bool:
        seen.append(p.name)
        return True

    primary = staging / Path(records[0].location_href).name
    cr.xml_parse_primary(str(primary), pkgcb=package, do_files=False)
    assert seen == [p.name for p in packages]


def _synthetic(n: int, salt: str = "") -> list[RepoPackage]:
    out = []
    for i in range(n):
        name = f"pkg{i:04d}{salt}"
        out.append(
            RepoPackage(
                f"{name}-1-1.noarch.rpm",
                name,
                0,
                "1",
                "1",
                "noarch",
                hashlib.sha256(name.encode()).hexdigest(),
                (100, 200),
                (1, 2, 3, i),
                (f"<package>{name} p</package>\n", f"<f>{name}</f>\n", f"<o>{name}</o>\n"),
            )
        )
    return out


def _write(packages: list[RepoPackage], repo: Path, revision: str) -> list[bytes]:
    staging = repo / f".repodata-{revision}.tmp"
    staging.mkdir(parents=True)
    written = write_gz(packages, staging, repo / "blocks.json", repo)
    staging.rename(repo / f".repodata-{revision}")
    return [
        gzip.decompress((repo / f".repodata-{revision}" / w.path.name).read_bytes())
        for w in written
    ]


def test_adding_a_package_compresses_only_its_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = sorted(_synthetic(400), key=lambda p: p.filename)
    # the chunks where a publish has them: in the index's store
    index = RepoIndex({p.filename: p for p in packages})
    index.save(tmp_path / "index.json")
    packages = sorted(index.packages.values(), key=lambda p: p.filename)
    assert len(split_blocks(packages)) > 3
    repo = tmp_path / "repo"
    inputs: list[list[bytes]] = []  # what each gzip member compressed, in pieces
    real = metadata._compressor

    class Counting:
        def __init__(self) -> None:
            self.z = real()
            self.pieces: list[bytes] = []
            inputs.append(self.pieces)

        def compress(self, data: bytes) -> bytes:
            self.pieces.append(bytes(data))
            return bytes(self.z.compress(data))

        def flush(self) -> bytes:
            return bytes(self.z.flush())

    monkeypatch.setattr(metadata, "_compressor", Counting)
    _write(packages, repo, "100")
    assert len(inputs) == 3 * (len(split_blocks(packages)) + 2)
    inputs.clear()
    plus_one = sorted([*packages, *_synthetic(1, "new")], key=lambda p: p.filename)
    xml = _write(plus_one, repo, "101")
    # the new package's block (three kinds), the heads (the count changed) and tails
    compressed = [b"".join(pieces) for pieces in inputs]
    assert len(compressed) == 3 + 6
    assert any(b"pkg0000new" in c for c in compressed)
    # and the files hold exactly what a write from nothing holds
    (repo / "blocks.json").unlink()
    assert xml == _write(plus_one, repo, "102")


def test_chunks_read_in_short_runs_write_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer holds at most about RUN_BYTES of a block's XML at a time (a block of
    packages with long file lists is megabytes); reading in short runs changes nothing
    in the files, compressed or not."""
    index = RepoIndex({p.filename: p for p in _synthetic(300)})
    index.save(tmp_path / "index.json")
    packages = sorted(index.packages.values(), key=lambda p: p.filename)
    reads: list[int] = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    whole = _write(packages, tmp_path / "a", "100")
    gz_whole = sorted(p.read_bytes() for p in (tmp_path / "a/.repodata-100").iterdir())
    assert max(reads) > 500
    reads.clear()
    monkeypatch.setattr(metadata, "RUN_BYTES", 500)
    assert _write(packages, tmp_path / "b", "100") == whole
    assert sorted(p.read_bytes() for p in (tmp_path / "b/.repodata-100").iterdir()) == gz_whole
    # a run stops at the first package past 500 bytes (each package's chunks: ~60)
    assert 500 < max(reads) <= 500 + 100


def test_a_stale_or_damaged_blocks_file_means_compressing_again(tmp_path: Path) -> None:
    packages = _synthetic(200)
    repo = tmp_path / "repo"
    fresh = _write(packages, repo, "100")
    for damage in (b"{not json", b'{"format": "repotool-metadata-blocks", "version": 9}'):
        (repo / "blocks.json").write_bytes(damage)
        assert _write(packages, repo, f"10{len(damage)}") == fresh
    _write(packages, repo, "200")
    # the generation it names is gone (pruned, or a run that never swapped in)
    for gen in repo.glob(".repodata-*"):
        for f in gen.iterdir():
            f.write_bytes(b"\0" * 10)
    assert _write(packages, repo, "201") == fresh


@pytest.mark.parametrize("compression", ["xz", "zstd"])
def test_other_compressions_go_through_createrepo_c_whole(
    real_packages: list[RepoPackage], tmp_path: Path, compression: str
) -> None:
    """xz and zstd files are written by createrepo_c's writers from the stored chunks."""
    index = RepoIndex({p.filename: p for p in real_packages})
    index.save(tmp_path / "index.json")
    packages = sorted(index.packages.values(), key=lambda p: p.filename)
    staging = tmp_path / "staging"
    staging.mkdir()
    blocks = tmp_path / "blocks.json"
    blocks.write_text("{}")  # a gzip layout means nothing to these: it goes
    records = write_metadata(packages, staging, compression, blocks, tmp_path)
    assert not blocks.exists()
    expected = _createrepo_c_xml(real_packages, tmp_path / "createrepo_c")
    for rec, xml in zip(records, expected, strict=True):
        path = staging / Path(rec.location_href).name
        assert path.name.endswith(
            f".xml.{compression[:3] if compression == 'zstd' else compression}"
        )
        out = tmp_path / f"out-{rec.type}.xml"
        cr.decompress_file(str(path), str(out), cr.AUTO_DETECT_COMPRESSION)
        assert out.read_bytes() == xml
