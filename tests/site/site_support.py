"""Shared set-up of the site tests: a small but real published tree and a live server.

The tree holds what the pages read, made with the real tools: a release key
from a throwaway GNUPGHOME, a .repo file, repository metadata from createrepo_c
behind the in-tree ``repodata -> .repodata-<rev>`` symlink, a media.json with
SHA256SUMS signed by that key, and a mailing list archive.  The records are the
repository's own ``web/content/``.

The app is tested in-process (:class:`InProcessClient`, httpx's ASGITransport);
:func:`live_server` is for the few tests that need a real socket (raw request
paths, idle connections, a browser).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from repotool.config import Config, load_config
from repotool.process import SubprocessRunner
from repotool.report import SilentReporter
from repotool.site.export import SiteResult, build_site
from repotool.site.key_inspection import GpgKeyInspector
from tests.conftest import createrepo, detach_sign, export_public_key, make_gpg_key
from tests.conftest import free_port as free_port  # the site tests take it from here

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIA_LABEL = "3.3.2-2"
IMAGE_NAME = "pS-Performance_Toolkit-3.3.2-2-LiveCD-x86_64.iso"

# the fixed package of the security advisory (pages and browser tests build it)
SECURITY_SPEC = """\
Name:           perfsonar-toolkit-security
Version:        3.3.2
Release:        2.el7
Summary:        test build of the fixed package
License:        ASL 2.0
BuildArch:      noarch

%description
Test package.

%install
install -d %{buildroot}/usr/share/perfsonar-test-security

%files
/usr/share/perfsonar-test-security
"""


@dataclass(frozen=True)
class SiteProject:
    root: Path
    cfg: Config
    public: Path
    gnupghome: Path
    fingerprint: str
    image_sha256: str
    outside_file: Path


def _gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ],
        input=input,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def make_site_project(base: Path, *, content: Path | None = None) -> SiteProject:
    """A project folder (repotool.toml, web/) with a published tree in public/."""
    root = base / "project"
    root.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "web", root / "web")
    if content is not None:
        shutil.rmtree(root / "web" / "content")
        shutil.copytree(content, root / "web" / "content")
    (root / "repotool.toml").write_text(
        '[site]\nbase_url = "http://mirror.example.test"\n'
        '[publish]\nbase_url = "http://mirror.example.test"\n'
        '[[targets]]\nname = "el7"\nreleasever = "7"\ndist = ".el7"\n',
        encoding="utf-8",
    )
    cfg = load_config(root / "repotool.toml")
    public = cfg.public_dir

    home = base / "gnupg"
    fingerprint = make_gpg_key(home, "Site Test Release Key <release@example.test>")
    (public / "keys").mkdir(parents=True)
    (public / "keys" / "RPM-GPG-KEY-perfsonar").write_bytes(export_public_key(home, fingerprint))

    repo = public / "repo"
    (repo / "perfsonar.repo").parent.mkdir(parents=True, exist_ok=True)
    (repo / "perfsonar.repo").write_text(
        "[perfsonar]\nname=pS-Performance Toolkit $releasever - $basearch\n"
        "baseurl=http://mirror.example.test/repo/el$releasever/$basearch/\n"
        "gpgcheck=1\nrepo_gpgcheck=1\n"
        "gpgkey=http://mirror.example.test/keys/RPM-GPG-KEY-perfsonar\n",
        encoding="utf-8",
    )
    arch_dir = repo / "el7" / "x86_64"
    (arch_dir / "Packages").mkdir(parents=True)
    createrepo(arch_dir)
    (arch_dir / "repodata").rename(arch_dir / ".repodata-1")
    os.symlink(".repodata-1", arch_dir / "repodata")

    media = public / "releases" / MEDIA_LABEL
    media.mkdir(parents=True)
    image = b"live image bytes for the site tests\n" * 1000
    (media / IMAGE_NAME).write_bytes(image)
    sha = hashlib.sha256(image).hexdigest()
    (media / "SHA256SUMS").write_text(f"{sha}  {IMAGE_NAME}\n", encoding="utf-8")
    detach_sign(home, fingerprint, media / "SHA256SUMS", media / "SHA256SUMS.asc")
    (media / "media.json").write_text(
        json.dumps(
            {
                "version": MEDIA_LABEL,
                "release": "3.3.2",
                "date": "2014-04-10T00:00:00Z",
                "images": [
                    {"kind": "livecd", "name": IMAGE_NAME, "size": len(image), "sha256": sha}
                ],
                "checksums": "SHA256SUMS",
                "signature": "SHA256SUMS.asc",
            }
        ),
        encoding="utf-8",
    )

    lists = public / "lists" / "perfsonar-announce"
    lists.mkdir(parents=True)
    (lists / "PSSA-2014-0002.eml").write_text(
        "Subject: [PSSA-2014-0002] Heartbleed\n\nUpdate now.\n", encoding="utf-8"
    )
    (lists / "archive.json").write_text(
        json.dumps(
            [
                {
                    "message_id": "<pssa-2014-0002@example.test>",
                    "subject": "[PSSA-2014-0002] OpenSSL Heartbleed: regenerate the host key",
                    "date": "2014-04-10T12:00:00+00:00",
                    "kind": "advisory",
                    "ref": "PSSA-2014-0002",
                    "file": "PSSA-2014-0002.eml",
                }
            ]
        ),
        encoding="utf-8",
    )
    (lists / "archive.mbox").write_text("From x\nSubject: s\n\nb\n", encoding="utf-8")

    outside = base / "outside-secret.txt"
    outside.write_text("TOP SECRET outside public\n", encoding="utf-8")
    os.symlink(outside, public / "leak.txt")
    os.symlink(base, public / "leakdir")
    return SiteProject(root, cfg, public, home, fingerprint, sha, outside)


@contextlib.contextmanager
def live_server(app: object) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 15 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def export_site(project: SiteProject, **kw: Any) -> SiteResult:
    """`repotool site build` of the project, with the real gpg key inspector."""
    return build_site(project.cfg, SilentReporter(), keys=GpgKeyInspector(SubprocessRunner()), **kw)


class InProcessClient:
    """Requests straight into the ASGI app (httpx.ASGITransport): no socket, no thread."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def _send(self, method: str, path: str, **kw: Any) -> tuple[httpx.Response, bytes]:
        transport = httpx.ASGITransport(app=self.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://site.test") as client,
            client.stream(method, path, **kw) as response,
        ):
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        response._content = _decoded(response, raw)
        return response, raw

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return asyncio.run(self._send(method, path, **kw))[0]

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def get_raw(self, path: str, **kw: Any) -> tuple[httpx.Response, bytes]:
        """The response and the bytes as they went on the wire (still gzipped)."""
        return asyncio.run(self._send("GET", path, **kw))


def _decoded(response: httpx.Response, raw: bytes) -> bytes:
    import gzip

    if response.headers.get("content-encoding") == "gzip":
        return gzip.decompress(raw)
    return raw


# --- nginx over a public/ tree (tests and bench/bench_site.py) ---------------------

NGINX_MAIN_CONF = """\
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    include {server};
}}
"""


@contextlib.contextmanager
def run_nginx(
    server_block: Path, prefix: Path, port: int, *, probe: str = "/", worker_connections: int = 256
) -> Iterator[str]:
    """nginx as root in its own prefix on a loopback port, stopped afterwards."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_MAIN_CONF.format(
            prefix=prefix, server=server_block, worker_connections=worker_connections
        )
    )
    check = subprocess.run(
        ["nginx", "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (prefix / "error.log").read_text(errors="replace")
            try:
                httpx.get(url + probe, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
