"""The Fetcher seam: HttpFetcher (urllib3, against the loopback fault server) and its
in-memory fake MemoryFetcher keep the same contract; redirects and proxies, which
need a socket, only against the server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from repotool.errors import MirrorError, MirrorIntegrityError, MirrorTransportError
from repotool.mirror.fetch import Fetcher, FetchLimits, HttpFetcher, bypasses_proxy
from repotool.mirror.memory_fetch import MemoryFetcher
from tests.mirror.mirror_fixtures import files_of, serve

BODY = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "up"
    (root / "Packages").mkdir(parents=True)
    (root / "Packages" / "a.rpm").write_bytes(BODY)
    (root / "repomd.xml").write_bytes(b"<repomd/>")
    return root


@pytest.fixture(params=["http", "memory"])
def fetcher(request: pytest.FixtureRequest, tree: Path) -> Iterator[tuple[Fetcher, str]]:
    """(fetcher, base URL) serving ``tree``."""
    if request.param == "memory":
        yield MemoryFetcher(files_of(tree, "http://up.invalid/")), "http://up.invalid/"
        return
    with contextmanager(serve)(tree) as server:
        http = HttpFetcher(FetchLimits())
        try:
            yield http, server.url
        finally:
            http.close()


def test_small_reads_are_bounded_and_conditional(fetcher: tuple[Fetcher, str]) -> None:
    f, base = fetcher
    got = f.get_small(base + "repomd.xml", max_bytes=100)
    assert (got.status, got.body) == (200, b"<repomd/>") and got.etag
    again = f.get_small(
        base + "repomd.xml", max_bytes=100, headers={"If-None-Match": got.etag}, allow=(200, 304)
    )
    assert (again.status, again.body) == (304, b"")
    with pytest.raises(MirrorIntegrityError, match="sent more than the 5 bytes") as info:
        f.get_small(base + "repomd.xml", max_bytes=5)
    assert info.value.where == base + "repomd.xml"
    with pytest.raises(MirrorTransportError, match=r"not found \(HTTP 404\)"):
        f.get_small(base + "nothing", max_bytes=100)


def test_downloads_resume_from_the_partial_file_and_hash_it_all(
    fetcher: tuple[Fetcher, str], tmp_path: Path
) -> None:
    f, base = fetcher
    url = base + "Packages/a.rpm"
    part = tmp_path / "partial" / "a"
    whole = f.download(url, part, size=len(BODY), algo="sha256")
    assert (whole.resumed_from, whole.received) == (0, len(BODY))
    assert whole.digest == hashlib.sha256(BODY).hexdigest() and part.read_bytes() == BODY
    part.write_bytes(BODY[:4000])
    resumed = f.download(url, part, size=len(BODY), algo="sha256")
    assert (resumed.resumed_from, resumed.received) == (4000, len(BODY) - 4000)
    assert resumed.digest == whole.digest and part.read_bytes() == BODY


def test_a_file_larger_or_smaller_than_its_metadata_is_refused(
    fetcher: tuple[Fetcher, str], tmp_path: Path
) -> None:
    f, base = fetcher
    url = base + "Packages/a.rpm"
    with pytest.raises(MirrorIntegrityError):
        f.download(url, tmp_path / "big", size=100, algo="sha256")
    with pytest.raises(
        MirrorTransportError, match=f"the file is truncated: the server sent {len(BODY)} of 20000"
    ):
        f.download(url, tmp_path / "short", size=20000, algo="sha256")


def test_a_partial_file_that_is_a_symlink_is_not_followed(
    fetcher: tuple[Fetcher, str], tmp_path: Path
) -> None:
    f, base = fetcher
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "part").symlink_to(victim)
    with pytest.raises(MirrorError, match="the partial download is a symbolic link"):
        f.download(base + "Packages/a.rpm", tmp_path / "part", size=len(BODY), algo="sha256")
    assert victim.read_bytes() == b"keep"


def test_redirects_are_followed(tree: Path, tmp_path: Path) -> None:
    with contextmanager(serve)(tree) as server:
        server.state.faults["a.rpm"] = "redirect"
        http = HttpFetcher(FetchLimits())
        try:
            got = http.download(
                server.url + "Packages/a.rpm", tmp_path / "a", size=len(BODY), algo="sha256"
            )
        finally:
            http.close()
        assert got.digest == hashlib.sha256(BODY).hexdigest()
        assert [(r.path, r.status) for r in server.state.log] == [
            ("/Packages/a.rpm", 301),
            ("Packages/a.rpm", 200),
        ]
        server.state.faults["a.rpm"] = "redirect-loop"
        server.state.log.clear()
        http = HttpFetcher(FetchLimits())
        try:
            with pytest.raises(MirrorTransportError, match="more than 5 redirects"):
                http.get_small(server.url + "Packages/a.rpm", max_bytes=len(BODY))
        finally:
            http.close()
        assert len(server.state.log) == 6


def test_requests_go_through_the_proxy_unless_no_proxy_names_the_host(tree: Path) -> None:
    with contextmanager(serve)(tree) as proxy:
        http = HttpFetcher(
            FetchLimits(), proxies={"http": proxy.url, "no": "localhost,.internal.example"}
        )
        try:
            got = http.get_small("http://mirror.example/repomd.xml", max_bytes=100)
            assert got.body == b"<repomd/>"
            assert proxy.state.proxied == ["http://mirror.example/repomd.xml"]
            with pytest.raises(MirrorTransportError, match="cannot connect"):
                http.get_small("http://up.internal.example:9/repomd.xml", max_bytes=100)
            assert len(proxy.state.proxied) == 1
        finally:
            http.close()


@pytest.mark.parametrize(
    ("authority", "no_proxy", "bypass"),
    [
        ("mirror.example", "", False),
        ("mirror.example", "*", True),
        ("mirror.example:8080", "mirror.example", True),
        ("a.mirror.example", ".mirror.example", True),
        ("a.mirror.example", "mirror.example", True),
        ("notmirror.example", "mirror.example", False),
        ("127.0.0.1:8080", "localhost, 127.0.0.1", True),
        ("[::1]:8080", "::1", True),
    ],
)
def test_no_proxy_matching(authority: str, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(authority, no_proxy) is bypass
