"""Shared set-up for the mirror tests: signed repositories built with the real
tools, and a fault-injecting HTTP server on 127.0.0.1.

Built once per test session (cached under pytest's base temp folder) and
imported by the ``test_mirror_*`` modules.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from repotool.mirror.fetch import Fetcher, FetchLimits, HttpFetcher
from repotool.mirror.signature import GpgvVerifier
from repotool.mirror.sync import SyncResult, sync_repository
from repotool.mirror.sync_plan import UnpackLimits
from repotool.process import SubprocessRunner
from repotool.report import SilentReporter
from tests.conftest import (
    build_rpms,
    createrepo,
    detach_sign,
    export_public_key,
    make_gpg_key,
    rpmsign,
)

GPG_ENV = {**os.environ, "LC_ALL": "C.UTF-8"}
DAY = 86400

SPEC = """\
Name: {name}
Version: {version}
Release: 1
Summary: mirror test package {name}
License: MIT
BuildArch: noarch

%description
A package for the mirror tests.

%install
mkdir -p %{{buildroot}}/usr/share/{name}
head -c {size} /dev/urandom > %{{buildroot}}/usr/share/{name}/data

%files
/usr/share/{name}/data
"""


@dataclass(frozen=True)
class Repos:
    root: Path
    gen0: Path  #: mt-alpha only, metadata 30 days old (freeze)
    gen1: Path  #: mt-alpha, mt-gamma (revision = now-3600)
    gen2: Path  #: mt-alpha, mt-delta (big, ~300 KB), revision = now-60
    key: Path  #: armored public key that signed every repomd.xml
    other_key: Path
    gnupghome: Path


def _gen_key(home: Path, uid: str, algo: str = "rsa2048") -> str:
    return make_gpg_key(home, uid, algo=algo)


def _repo(dest: Path, rpms: list[Path], revision: int, home: Path, fpr: str, other: str) -> Path:
    """A repository signed by fpr (repomd.xml.asc), with a signature by `other` beside
    it (repomd.xml.other-asc) that the fault server can send instead."""
    (dest / "Packages").mkdir(parents=True)
    for rpm in rpms:
        shutil.copy2(rpm, dest / "Packages" / rpm.name)
    repomd = createrepo(dest, revision=revision)
    for who, suffix in ((fpr, ".asc"), (other, ".other-asc")):
        detach_sign(home, who, repomd, repomd.with_name(repomd.name + suffix))
    return dest


def build_repos(base: Path) -> Repos:
    root = base / "mirror-repos"
    home = root / "gnupg"
    done = root / "done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        fpr = make_gpg_key(home, "Mirror Test Release <release@localhost>")
        other = make_gpg_key(home, "Someone Else <else@localhost>")
        for who, name in ((fpr, "key.asc"), (other, "other.asc")):
            (root / name).write_bytes(export_public_key(home, who))
        sizes = {"mt-alpha": 2000, "mt-gamma": 2000, "mt-delta": 300_000}
        rpms = build_rpms(
            {n: SPEC.format(name=n, version="1.0", size=size) for n, size in sizes.items()},
            root / "rpmbuild",
        )
        rpmsign(rpms, home, fpr)
        alpha, gamma, delta = (next(r for r in rpms if r.name.startswith(f"{n}-")) for n in sizes)
        now = int(time.time())
        _repo(root / "gen0", [alpha], now - 30 * 86400, home, fpr, other)
        _repo(root / "gen1", [alpha, gamma], now - 3600, home, fpr, other)
        _repo(root / "gen2", [alpha, delta], now - 60, home, fpr, other)
        done.write_text("ok")
    return Repos(
        root=root,
        gen0=root / "gen0",
        gen1=root / "gen1",
        gen2=root / "gen2",
        key=root / "key.asc",
        other_key=root / "other.asc",
        gnupghome=home,
    )


# --- the fault-injecting server ------------------------------------------------


@dataclass
class LoggedRequest:
    path: str
    range: str | None
    status: int


@dataclass
class ServerState:
    root: Path
    #: file name (last path component) → fault kind: corrupt, endless, truncate, drop,
    #: stall, drip, badsig (repomd.xml.asc), redirect (301 to /moved/<path>),
    #: redirect-loop (302 to itself), no-etag
    faults: dict[str, str] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    #: absolute URLs asked of this server as an HTTP proxy
    proxied: list[str] = field(default_factory=list)

    def requests_for(self, name: str) -> list[LoggedRequest]:
        return [r for r in self.log if r.path.endswith(name)]


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY, the body of every
    # response on a reused connection waits ~40 ms for the client's delayed ACK
    disable_nagle_algorithm = True
    server: FaultServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        st = self.server.state
        if self.path.startswith("http://"):  # asked as a proxy: serve it as the origin
            st.proxied.append(self.path)
            self.path = "/" + self.path.split("/", 3)[3]
        rel = self.path.split("?")[0].lstrip("/")
        name = rel.rsplit("/", 1)[-1]
        fault = st.faults.get(name)
        if rel.startswith("moved/"):  # where the "redirect" fault sends a client
            rel, fault = rel.removeprefix("moved/"), None
        elif fault == "redirect":
            self._status(301, self.headers.get("Range"), location="/moved/" + rel)
            return
        elif fault == "redirect-loop":
            self._status(302, self.headers.get("Range"), location="/" + rel)
            return
        file = st.root / rel
        if name == "repomd.xml.asc" and fault == "badsig":
            file = file.with_name("repomd.xml.other-asc")
        rng = self.headers.get("Range")
        if not file.is_file() or ".." in rel:
            self._status(404, rng)
            return
        body = file.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        if fault != "no-etag" and self.headers.get("If-None-Match") == etag:
            st.log.append(LoggedRequest(rel, rng, 304))
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        status = 206 if start else 200
        st.log.append(LoggedRequest(rel, rng, status))
        part = body[start:]
        half = len(body) // 2
        if fault == "corrupt":
            part = bytes(b ^ 0xFF for b in part)
        if fault == "endless":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(1000):  # at most 64 MB, the client must stop long before
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
            return
        self.send_response(status)
        if fault != "no-etag":
            self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if fault == "truncate":
            part = part[: max(0, half - start)]
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        try:
            if fault in ("drop", "stall"):
                self.wfile.write(part[: max(0, half - start)])
                self.wfile.flush()
                if fault == "stall":
                    st.release.wait(20)
                self.close_connection = True
                return
            if fault == "drip":
                for i in range(0, min(len(part), 200 * 1000), 1000):
                    self.wfile.write(part[i : i + 1000])
                    self.wfile.flush()
                    time.sleep(0.1)
                self.close_connection = True
                return
            self.wfile.write(part)
        except OSError:
            self.close_connection = True

    def _status(self, code: int, rng: str | None, location: str | None = None) -> None:
        self.server.state.log.append(LoggedRequest(self.path, rng, code))
        self.send_response(code)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState) -> None:
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def serve(root: Path) -> Iterator[FaultServer]:
    server = FaultServer(ServerState(root=root))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def tree_snapshot(dest: Path) -> dict[str, str]:
    """What a host sees under DEST: relative path → sha256."""
    return {
        p.relative_to(dest).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(dest.rglob("*"))
        if p.is_file()
    }


# --- hostile but validly signed repositories -------------------------------------

SIGNER = "Mirror Test Release <release@localhost>"


def sign_detached(repos: Repos, path: Path) -> None:
    """``path``.asc: an armored detached signature by the pinned test key."""
    detach_sign(repos.gnupghome, SIGNER, path, path.with_name(path.name + ".asc"))


def signed_repo(
    dest: Path,
    repos: Repos,
    packages: list[tuple[str, bytes]],
    *,
    primary: bytes | None = None,
    open_size: int | None = None,
    timestamp: int | None = None,
) -> Path:
    """A repository whose repomd.xml is validly signed by the pinned key but whose
    content is whatever the test says: ``packages`` as (href, body), or a ready
    ``primary`` (gzip-compressed as is).  Files whose href the file system cannot
    hold are simply not served."""
    from xml.sax.saxutils import quoteattr

    ts = timestamp if timestamp is not None else int(time.time()) - 60
    xml = primary
    if xml is None:
        entries = "".join(
            f'<package type="rpm"><name>pkg{i}</name>'
            f'<checksum type="sha256" pkgid="YES">{hashlib.sha256(body).hexdigest()}</checksum>'
            f'<size package="{len(body)}" installed="1" archive="1"/>'
            f"<location href={quoteattr(href)}/></package>"
            for i, (href, body) in enumerate(packages)
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<metadata xmlns="http://linux.duke.edu/metadata/common" '
            f'packages="{len(packages)}">{entries}</metadata>'
        ).encode()
    for href, body in packages:
        try:
            (dest / href).parent.mkdir(parents=True, exist_ok=True)
            (dest / href).write_bytes(body)
        except OSError:
            pass
    packed = gzip.compress(xml, compresslevel=9, mtime=0)
    digest = hashlib.sha256(packed).hexdigest()
    href = f"repodata/{digest}-primary.xml.gz"
    (dest / "repodata").mkdir(parents=True, exist_ok=True)
    (dest / href).write_bytes(packed)
    opened = f"<open-size>{open_size}</open-size>" if open_size is not None else ""
    repomd = dest / "repodata" / "repomd.xml"
    repomd.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<repomd xmlns="http://linux.duke.edu/metadata/repo">'
        f"<revision>{ts}</revision>"
        f'<data type="primary"><checksum type="sha256">{digest}</checksum>'
        f'<location href="{href}"/><timestamp>{ts}</timestamp>'
        f"<size>{len(packed)}</size>{opened}</data></repomd>\n"
    )
    sign_detached(repos, repomd)
    return dest


def files_of(tree: Path, base_url: str) -> dict[str, bytes]:
    """``tree`` as the URL → bytes map a MemoryFetcher serves."""
    return {
        base_url + p.relative_to(tree).as_posix(): p.read_bytes()
        for p in tree.rglob("*")
        if p.is_file()
    }


# --- one sync, as the CLI runs it ---------------------------------------------------


def do_sync(
    url: str,
    dest: Path,
    key: Path,
    tmp: Path,
    *,
    max_age: int = 7 * DAY,
    limits: FetchLimits | None = None,
    now: Callable[[], float] = time.time,
    reporter: SilentReporter | None = None,
    unpack: UnpackLimits | None = None,
    given: Fetcher | None = None,
) -> SyncResult:
    """``sync_repository`` with the pinned key ``key`` through a real
    :class:`HttpFetcher` (or the ``given`` fetcher), as the CLI runs it."""
    fetcher: Fetcher = given or HttpFetcher(limits or FetchLimits())
    try:
        verifier = GpgvVerifier(key, SubprocessRunner(), tmp / "gpgv")
        return sync_repository(
            url,
            dest,
            fetcher=fetcher,
            verifier=verifier,
            reporter=reporter or SilentReporter(),
            max_age_seconds=max_age,
            keep_seconds=7 * DAY,
            jobs=3,
            now=now,
            unpack=unpack,
        )
    finally:
        if isinstance(fetcher, HttpFetcher):
            fetcher.close()
