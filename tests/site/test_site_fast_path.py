"""`repotool serve`'s fast paths (issue 15 item 4): released pages answered from memory
before routing, with exactly the bytes and headers the app's routes send; files sent
with sendfile (zero-copy) by the httptools protocol; the h11 protocol still works."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn

from repotool.site.app import SiteApp, create_app
from repotool.site.serving import ServeLimits, guarded_protocol, server_config
from tests.site.site_support import (
    IMAGE_NAME,
    MEDIA_LABEL,
    REPO_ROOT,
    InProcessClient,
    SiteProject,
    export_site,
    free_port,
    make_site_project,
)

PAGES = [
    "/",
    "/advisories/",
    "/advisories/PSSA-2014-0002/",
    "/advisories/PSSA-2014-0002/index.html",
    "/feeds/advisories.atom",
    "/static/site.css",
]
IMAGE = f"/releases/{MEDIA_LABEL}/{IMAGE_NAME}"
#: set by the server per response: not part of what the app decides
_PER_RESPONSE = {"date", "server"}


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in _PER_RESPONSE)


def _slow(site_project: SiteProject) -> InProcessClient:
    app = create_app(site_project.cfg)
    assert isinstance(app, SiteApp)
    app.fast_path = None  # routes and middlewares only, as before the fast path
    return InProcessClient(app)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("encoding", ["gzip", "identity", "gzip;q=0"])
def test_fast_path_sends_what_the_routes_send(
    site: InProcessClient, site_project: SiteProject, method: str, encoding: str
) -> None:
    slow = _slow(site_project)
    for path in PAGES:
        headers = {"accept-encoding": encoding}
        fast_r, fast_raw = asyncio.run(site._send(method, path, headers=headers))
        slow_r, slow_raw = asyncio.run(slow._send(method, path, headers=headers))
        assert fast_r.status_code == slow_r.status_code == 200, path
        assert fast_raw == slow_raw, path
        assert _headers(fast_r) == _headers(slow_r), path
        assert "content-security-policy" in fast_r.headers
        assert (fast_r.headers.get("content-encoding") == "gzip") == (encoding == "gzip")


def _answers(app: SiteApp, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    assert app.fast_path is not None
    answered = asyncio.run(app.fast_path.answer(scope, send))  # type: ignore[arg-type]
    assert answered == bool(sent)
    return answered


def test_fast_path_takes_only_plain_reads_of_released_documents(
    site_project: SiteProject,
) -> None:
    app = create_app(site_project.cfg)
    assert isinstance(app, SiteApp)
    gz = [(b"accept-encoding", b"gzip")]
    assert _answers(app, "GET", "/advisories/PSSA-2014-0002/", gz)
    assert _answers(app, "HEAD", "/feeds/advisories.atom", [])
    # everything else is the app's: conditionals (its 304 rules), writes, files, API
    assert not _answers(app, "GET", "/advisories/", [*gz, (b"if-none-match", b'"x"')])
    assert not _answers(app, "GET", "/", [(b"if-modified-since", b"Sat, 01 Jan 2000 00:00:00 GMT")])
    assert not _answers(app, "POST", "/", gz)
    assert not _answers(app, "GET", "/advisories", gz)  # the 308 to the folder
    assert not _answers(app, "GET", "/repo/perfsonar.repo", gz)
    assert not _answers(app, "GET", "/api/advisories", gz)
    assert not _answers(app, "GET", "/nowhere/", gz)


def test_conditional_page_requests_still_get_304(site: InProcessClient) -> None:
    first = site.get("/advisories/", headers={"accept-encoding": "gzip"})
    again = site.get(
        "/advisories/",
        headers={"accept-encoding": "gzip", "if-none-match": first.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.headers["etag"] == first.headers["etag"]
    assert "content-security-policy" in again.headers


# --- a live `repotool serve`: sendfile for files, gzip for text files ----------------


@contextlib.contextmanager
def serve_traced(project: SiteProject, trace: Path) -> Iterator[str]:
    """`repotool serve` under strace, which records every sendfile(2) it makes."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=sendfile",
            "-o",
            str(trace),
            str(REPO_ROOT / ".venv" / "bin" / "repotool"),
            "serve",
            "--quiet",
            "--port",
            str(port),
        ],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # its own process group: stopping strace alone would leave the server running
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "repotool serve exited"
            try:
                if httpx.get(url + "/repo/perfsonar.repo", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "repotool serve did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # strace and the server it runs
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        # nothing of the group may outlive the test
        deadline = time.monotonic() + 15
        while _group_alive(proc.pid):
            assert time.monotonic() < deadline, "repotool serve outlived strace"
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_files_go_out_with_sendfile_and_text_files_gzipped(
    site_project: SiteProject, tmp_path: Path
) -> None:
    image = (site_project.public / IMAGE.lstrip("/")).read_bytes()
    repo_file = (site_project.public / "repo/perfsonar.repo").read_bytes()
    trace = tmp_path / "strace.txt"
    with serve_traced(site_project, trace) as url, httpx.Client(base_url=url) as client:
        # (the readiness check's plain GET of the .repo file was a sendfile already)
        before = len(trace.read_text()) if trace.exists() else 0
        got = client.get(IMAGE, headers={"accept-encoding": "gzip"})
        assert got.status_code == 200
        assert got.content == image and got.headers["content-length"] == str(len(image))
        assert "content-encoding" not in got.headers
        assert got.headers["content-type"] == "application/octet-stream"
        assert "content-security-policy" in got.headers
        # HEAD: headers only; a Range request: the part (Starlette reads that one)
        head = client.head(IMAGE)
        assert head.headers["content-length"] == str(len(image)) and head.content == b""
        part = client.get(IMAGE, headers={"range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == image[:10]
        # a text file is gzipped (the middleware reads the file the pathsend names)
        text = client.get("/repo/perfsonar.repo", headers={"accept-encoding": "gzip"})
        assert text.headers.get("content-encoding") == ("gzip" if len(repo_file) >= 512 else None)
        assert text.content == repo_file
        # the page still comes from memory
        page = client.get("/advisories/PSSA-2014-0002/", headers={"accept-encoding": "gzip"})
        assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
    calls = [line for line in trace.read_text()[before:].splitlines() if "sendfile(" in line]
    # the whole image in sendfile calls (the kernel copied it; nothing in userspace)
    sent = sum(int(line.rsplit("=", 1)[1].split()[0]) for line in calls if "= -1" not in line)
    assert calls, "no sendfile(2) call"
    assert sent >= len(image), calls


@contextlib.contextmanager
def uvicorn_with(project: SiteProject, http: str, public: Path | None = None) -> Iterator[str]:
    port = free_port()
    config = server_config(
        create_app(project.cfg, public_dir=public),
        "127.0.0.1",
        port,
        ServeLimits(),
        http=http,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_both_protocols_serve_pages_files_and_pipelined_requests(
    site_project: SiteProject, http: Literal["httptools", "h11"]
) -> None:
    protocol = guarded_protocol(ServeLimits(), http)
    assert protocol.__name__.lower().startswith(f"guarded{http}")
    image = (site_project.public / IMAGE.lstrip("/")).read_bytes()
    with uvicorn_with(site_project, http) as url, httpx.Client(base_url=url) as client:
        page = client.get("/advisories/PSSA-2014-0002/", headers={"accept-encoding": "gzip"})
        assert page.status_code == 200 and b"PSSA-2014-0002" in page.content
        assert client.get(IMAGE).content == image
        port = int(url.rsplit(":", 1)[1])
        # two pipelined requests in one packet: two whole answers, in order
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"GET /static/site.css HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /repo/perfsonar.repo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 2, data[:300]
        assert data.index(b"text/css") < data.index(b"text/plain")


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _split(response: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    return status, sorted(line for line in lines if not line.startswith(b"date:")), body


def test_the_protocol_answers_pages_with_the_apps_exact_response(
    site_project: SiteProject,
) -> None:
    """On the wire, a page answered by the protocol from memory and the same page
    answered by the app's routes (an old If-Modified-Since sends it there) are the
    same bytes but for the date; HTTP/1.0, HEAD and pipelining behave."""
    page = "/advisories/PSSA-2014-0002/"
    old = "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    with uvicorn_with(site_project, "httptools") as url:
        port = int(url.rsplit(":", 1)[1])
        for extra in ("Accept-Encoding: gzip\r\n", ""):
            for method in ("GET", "HEAD"):
                ask = f"{method} {page} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n"
                fast = _split(_exchange(port, (ask + "\r\n").encode()))
                slow = _split(_exchange(port, (ask + old + "\r\n").encode()))
                assert fast == slow, (method, extra)
                assert fast[0] == b"HTTP/1.1 200 OK"
                assert b"connection: close" in fast[1]
        # HTTP/1.0 without keep-alive: answered, then closed by the server
        reply = _exchange(port, f"GET {page} HTTP/1.0\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 200 OK") and b"PSSA-2014-0002" in reply
        # three pipelined requests (page, file, page) in one packet, answered in order
        reply = _exchange(
            port,
            (
                f"GET {page} HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /repo/perfsonar.repo HTTP/1.1\r\nHost: t\r\n\r\n"
                f"HEAD /static/site.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            ).encode(),
        )
        assert reply.count(b"HTTP/1.1 200 OK") == 3
        first, second, third = (
            reply.index(b"text/html"),
            reply.index(b"text/plain"),
            reply.index(b"text/css"),
        )
        assert first < second < third
        # a page asked with a body (odd, but legal) still gets its answer from the app
        reply = _exchange(
            port,
            f"GET {page} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
            "Connection: close\r\n\r\nabc".encode(),
        )
        assert reply.startswith(b"HTTP/1.1 200 OK") and b"PSSA-2014-0002" in reply


def test_a_text_files_gzip_copy_follows_the_file(site_project: SiteProject, tmp_path: Path) -> None:
    """The gzip copy of a text file is made once per version of the file: a file
    replaced in place (same size too) is never answered with the old copy."""
    public = tmp_path / "public"
    (public / "repo").mkdir(parents=True)
    target = public / "repo" / "perfsonar.repo"
    versions = [
        b"".join(b"baseurl=http://mirror-%d.example/%d\n" % (v, i) for i in range(40))
        for v in (1, 2, 3)
    ]
    assert len(versions[1]) == len(versions[2])
    with uvicorn_with(site_project, "httptools", public) as url, httpx.Client(base_url=url) as c:
        for n, text in enumerate(versions):
            staged = public / "repo" / ".new"
            staged.write_bytes(text)
            stamp = 1_700_000_000 + n  # a new mtime, as any rewrite gets
            os.utime(staged, (stamp, stamp))
            os.replace(staged, target)
            for _ in range(2):  # made, then from the cache
                got = c.get("/repo/perfsonar.repo", headers={"accept-encoding": "gzip"})
                assert got.status_code == 200
                assert got.headers["content-encoding"] == "gzip"
                assert got.content == text, n


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _one_response(s: socket.socket) -> bytes:
    """One whole response (headers and content-length body) from a keep-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    assert len(body) == length
    return head


def test_limits_hold_for_requests_answered_from_memory(site_project: SiteProject) -> None:
    """After a page from memory, an idle keep-alive connection is closed after the
    keep-alive timeout, and a half-sent next request after the request timeout,
    though the connection stays useful while requests keep coming."""
    limits = ServeLimits(request_timeout=3.0, keepalive_timeout=1.0, max_connections=100)
    port = free_port()
    # no new export looked for during the test: every page below comes from memory
    app = create_app(site_project.cfg, check_interval=3600)
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, limits))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    ask = b"GET /advisories/ HTTP/1.1\r\nHost: t\r\n\r\n"
    closed: dict[str, float] = {}
    try:
        # the first request loads the site through the app (then uvicorn arms its own
        # keep-alive timer); the ones below never reach it
        assert _exchange(port, ask.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as idle,
            socket.create_connection(("127.0.0.1", port), timeout=10) as half,
            socket.create_connection(("127.0.0.1", port), timeout=10) as busy,
        ):
            for s in (idle, half, busy):
                s.sendall(ask)
                assert _one_response(s).startswith(b"HTTP/1.1 200 OK")
            started = time.monotonic()
            half.sendall(b"GET /advisories/ HTTP/1.1\r\n")  # and no more
            idle.setblocking(False)
            half.setblocking(False)
            # busy: a request every 0.25 s for 4.5 s, past both timeouts, all answered;
            # meanwhile note when the server closed the other two
            for _ in range(18):
                time.sleep(0.25)
                busy.sendall(ask)
                assert _one_response(busy).startswith(b"HTTP/1.1 200 OK")
                for name, s in (("idle", idle), ("half", half)):
                    if name not in closed and _closed_by_server(s):
                        closed[name] = time.monotonic() - started
        # idle: the keep-alive timeout (1 s), well before the request timeout (3 s)
        assert closed.get("idle", 99) < 2.5, closed
        # half a request: the request timeout, though it is no longer idle
        assert 2.5 <= closed.get("half", 99) < 4.5, closed
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_a_new_export_reaches_pages_answered_from_memory(tmp_path: Path) -> None:
    """The protocol never waits for the disk: when a look for a new export is due, a
    thread looks while the snapshot in service answers; the new export is served
    within a few seconds, and every answer meanwhile is one export or the other."""
    project = make_site_project(tmp_path)
    export_site(project)
    page = "/advisories/PSSA-2014-0002/"
    with uvicorn_with(project, "httptools") as url, httpx.Client(base_url=url) as client:
        old = client.get(page).text
        assert "RENAMED" not in old
        adv = project.root / "web" / "content" / "advisories" / "PSSA-2014-0002.md"
        text = adv.read_text(encoding="utf-8")
        adv.write_text(text.replace('title: "', 'title: "RENAMED ', 1), encoding="utf-8")
        export_site(project)
        new = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = client.get(page)
            assert got.status_code == 200
            assert got.text == old or "RENAMED" in got.text
            if "RENAMED" in got.text:
                new = got.text
                break
            time.sleep(0.05)
        assert new, "the new export was not served within 10 s"
        assert client.get(page).text == new  # and it stays
