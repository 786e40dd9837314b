"""`repotool serve`'s limits on a real socket: idle and trickling connections are dropped,
connections beyond the cap get a 503 (issue 12 item 8)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from repotool.site.app import create_app
from repotool.site.serving import ServeLimits, server_config
from tests.site.site_support import REPO_ROOT, SiteProject, free_port

REPOTOOL = str(REPO_ROOT / ".venv" / "bin" / "repotool")

IDLE = 120  # sockets that send nothing
PARTIAL = 120  # sockets that send half a request and stop
TRICKLE = 4  # sockets that send one header byte every 0.25 s


@contextlib.contextmanager
def guarded_server(project: SiteProject, limits: ServeLimits) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(server_config(create_app(project.cfg), "127.0.0.1", port, limits))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def _get(port: int, path: str = "/repo/perfsonar.repo") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _wait_closed(socks: list[socket.socket], within: float, trickle: list[socket.socket]) -> float:
    """Seconds until the server closed every socket (trickling ones keep sending)."""
    started = time.monotonic()
    open_socks = set(socks)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    try:
        while open_socks and time.monotonic() - started < within:
            for key, _ in sel.select(timeout=0.25):
                ready = key.fileobj
                if not isinstance(ready, socket.socket):
                    raise AssertionError(f"not a socket: {ready!r}")
                if ready in open_socks and _closed_by_server(ready):
                    open_socks.discard(ready)
                    sel.unregister(ready)
            for s in trickle:
                if s in open_socks:
                    with contextlib.suppress(OSError):
                        s.send(b"a")
        assert not open_socks, f"{len(open_socks)} connections still open after {within} s"
        return time.monotonic() - started
    finally:
        sel.close()


def test_idle_and_slow_connections_are_dropped(site_project: SiteProject) -> None:
    limits = ServeLimits(request_timeout=1.5, keepalive_timeout=1.0, max_connections=1000)
    socks: list[socket.socket] = []
    try:
        with guarded_server(site_project, limits) as port:
            opened = time.monotonic()
            for _ in range(IDLE):
                socks.append(_connect(port))
            for _ in range(PARTIAL):
                s = _connect(port)
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
                socks.append(s)
            trickle = []
            for _ in range(TRICKLE):
                s = _connect(port)
                s.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
                trickle.append(s)
            socks += trickle
            # one keep-alive client that got its answer, then trickles the next request
            kept = _connect(port)
            kept.setblocking(True)
            kept.sendall(b"GET /repo/perfsonar.repo HTTP/1.1\r\nHost: t\r\n\r\n")
            assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
            kept.setblocking(False)
            kept.sendall(b"GET / HTTP/1.1\r\n")
            socks.append(kept)
            trickle.append(kept)

            # meanwhile the server answers everyone else
            assert _get(port).startswith(b"HTTP/1.1 200 ")
            assert not any(_closed_by_server(s) for s in socks), "dropped too early"
            took = _wait_closed(socks, within=limits.request_timeout + 4, trickle=trickle)
            assert time.monotonic() - opened >= limits.request_timeout - 0.1
            assert took <= limits.request_timeout + 4
            # and it still serves afterwards
            assert _get(port).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in socks:
            s.close()


def test_connections_beyond_the_cap_get_503(site_project: SiteProject) -> None:
    limits = ServeLimits(request_timeout=2.0, keepalive_timeout=1.0, max_connections=40)
    socks: list[socket.socket] = []
    try:
        with guarded_server(site_project, limits) as port:
            for _ in range(limits.max_connections):
                socks.append(_connect(port))
            time.sleep(0.5)  # the server has accepted them all
            busy = _get(port)
            assert busy.startswith(b"HTTP/1.1 503 "), busy[:80]
            assert b"retry-after: 10" in busy.lower()
            assert b"Too many connections" in busy
            # once the idle ones are dropped there is room again
            _wait_closed(socks, within=limits.request_timeout + 4, trickle=[])
            assert _get(port).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in socks:
            s.close()


def test_repotool_serve_applies_the_limits(site_project: SiteProject, tmp_path: Path) -> None:
    """The command wires the guarded protocol: an idle connection is dropped."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [REPOTOOL, "serve", "--port", str(port), "--request-timeout", "1", "--quiet"],
            cwd=site_project.root,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    idle: socket.socket | None = None
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                if _get(port).startswith(b"HTTP/1.1 200 "):
                    break
            assert time.monotonic() < deadline, "repotool serve did not answer"
            time.sleep(0.2)
        idle = _connect(port)
        idle.sendall(b"GET / HTTP/1.1\r\n")
        _wait_closed([idle], within=5, trickle=[idle])
    finally:
        if idle is not None:
            idle.close()
        proc.terminate()
        proc.wait(timeout=15)


def test_repotool_serve_refuses_limits_that_are_not_positive(site_project: SiteProject) -> None:
    done = subprocess.run(
        [REPOTOOL, "serve", "--request-timeout", "0"],
        cwd=site_project.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--request-timeout: must be a number above 0, not '0'" in done.stderr
